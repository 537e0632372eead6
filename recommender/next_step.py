"""What to do next inside a course: rank exercises/assignments by expected learning.

Rules, in order of precedence (each one is why the ranking looks the way it does):

1. Exercises already completed are dropped.
2. Exercises whose prerequisite skills are not yet "familiar" (estimate ≥ ``prerequisite_threshold``)
   come after every exercise that is ready, with a reason naming the prerequisite to work on first.
   Practising on top of a gap wastes the learner's time.
3. Among ready exercises the score is *expected learning* = (1 − mastery of the skill) × how well
   the difficulty suits the learner, plus a due-date urgency bonus:

   * low mastery means more to gain;
   * difficulty suits when the predicted chance of success is near ``target_success`` (0.7 —
     "desirable difficulty": hard enough to learn from, easy enough not to give up). The chance is
     modelled as ``sigmoid(6 · (mastery − difficulty) + logit(target_success))``, so an exercise
     exactly at the learner's mastery is passed with ``target_success``;
   * urgency = ``exp(−days_left / due_scale_days)`` for a future due date, so close due dates
     come first; past due dates and undated exercises get no bonus.

Difficulty and mastery share one scale in [0, 1]; difficulty may also be given as
"beginner"/"intermediate"/"advanced" (0.25/0.5/0.75).

Every row says why with a structured reason (:mod:`learnhub.recommender.reasons`): ``practice``,
``not_started`` (a ready exercise on a skill the learner has not practised yet) or
``prerequisite_first``, each with the due date's parameters. No English here: the service renders it.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from . import reasons as R
from ._validation import require_columns, require_frame
from .ranking import as_list

_DIFFICULTY_NAMES = {"beginner": 0.25, "easy": 0.25, "intro": 0.25, "intermediate": 0.5,
                     "medium": 0.5, "advanced": 0.75, "hard": 0.75, "expert": 0.9}


def _difficulty(value) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.5
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _DIFFICULTY_NAMES:
            return _DIFFICULTY_NAMES[key]
        try:
            value = float(key)
        except ValueError:
            raise ValueError(f"exercises column 'difficulty' has unknown value {value!r}") from None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"exercises column 'difficulty' must be in [0, 1], got {value}")
    return value


def _mastery_map(mastery) -> dict:
    if isinstance(mastery, Mapping):
        out = {}
        for k, v in mastery.items():
            v = float(v)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"mastery estimate for skill {k!r} must be in [0, 1], got {v}")
            out[k] = v
        return out
    mastery = require_frame(mastery, "mastery")
    require_columns(mastery, ["skill", "estimate"], "mastery")
    est = pd.to_numeric(mastery["estimate"], errors="coerce")
    if est.isna().any() or ((est < 0) | (est > 1)).any():
        raise ValueError("mastery column 'estimate' must hold numbers in [0, 1]")
    if "learner" in mastery.columns and mastery["learner"].nunique() > 1:
        raise ValueError("mastery column 'learner' holds several learners; pass one learner's rows")
    return dict(zip(mastery["skill"], est.astype(float)))


def _to_utc(value):
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    ts = pd.Timestamp(value)
    if pd.isna(ts):
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _not_started(mastery, given) -> set:
    """The skills the learner has not practised: ``given``, else what a mastery table says
    (``level`` "not started", or ``attempts`` 0); a mapping of estimates says nothing."""
    if given is not None:
        return set(as_list(given))
    if isinstance(mastery, pd.DataFrame):
        if "level" in mastery.columns:
            return set(mastery.loc[mastery["level"] == "not started", "skill"])
        if "attempts" in mastery.columns:
            return set(mastery.loc[pd.to_numeric(mastery["attempts"], errors="coerce") == 0, "skill"])
    return set()


def _due_params(due, now) -> dict:
    """The due date's reason parameters (none for an undated exercise)."""
    if due is None:
        return {}
    days = (due - now).total_seconds() / 86400.0
    params = {"due": due.isoformat()}
    if days < 0:
        params["due_status"] = "past"
    elif days < 1:
        params["due_status"] = "today"
    else:
        params["due_status"] = "upcoming"
        params["due_in_days"] = int(round(days))  # as "{days:.0f}" prints it: half to even
    return params


def rank_next_steps(mastery, exercises, now=None, *, target_success: float = 0.7,
                    prerequisite_threshold: float = 0.6, default_estimate: float = 0.0,
                    urgency_weight: float = 0.5, due_scale_days: float = 3.0,
                    not_started=None, k: int | None = None) -> pd.DataFrame:
    """Rank one learner's next exercises; returns a DataFrame, best first.

    Parameters
    ----------
    mastery : DataFrame with ``skill`` and ``estimate`` (e.g. ``KnowledgeTracer.mastery`` for one
        learner) or a mapping skill → estimate in [0, 1]. Skills missing from it count as
        ``default_estimate``.
    exercises : DataFrame with ``exercise`` and ``skill`` (or ``skills``: list, the weakest one is
        what the exercise is ranked for), and optionally ``title``, ``difficulty``, ``prerequisites``
        (list of skills), ``due`` (datetime; naive = UTC), ``completed`` (bool).
    now : datetime for the due-date rule; default the current UTC time.
    not_started : skills the learner has not practised yet (their reasons say so: ``not_started``,
        ``prerequisite_started`` false). Default: from the mastery table's ``level`` or
        ``attempts`` column; none for a mapping.

    Returns columns ``exercise``, ``title``, ``skill``, ``mastery``, ``p_success``, ``ready``,
    ``due``, ``score``, ``rank``, ``reason`` (a dict ``{"code", "params"}``,
    :mod:`learnhub.recommender.reasons`).
    """
    est = _mastery_map(mastery)
    fresh = _not_started(mastery, not_started)
    exercises = require_frame(exercises, "exercises")
    require_columns(exercises, ["exercise"], "exercises")
    if "skill" not in exercises.columns and "skills" not in exercises.columns:
        raise ValueError("exercises is missing required column 'skill' (or 'skills'); "
                         f"got columns {list(exercises.columns)}")
    now = _to_utc(now) or pd.Timestamp(datetime.now(timezone.utc))
    logit_target = math.log(target_success / (1 - target_success))
    rows = []
    for rec in exercises.to_dict("records"):
        done = rec.get("completed")
        if done is True or (isinstance(done, (int, float, np.integer, np.floating, np.bool_))
                            and done == 1):
            continue  # NaN / None / False / 0 all mean "not completed"
        skills = as_list(rec.get("skills")) if "skills" in rec else []
        if "skill" in rec and rec["skill"] is not None and rec["skill"] == rec["skill"]:
            skills = [rec["skill"], *skills]
        if not skills:
            raise ValueError(f"exercises column 'skill' is empty for exercise {rec['exercise']!r}")
        skill = min(skills, key=lambda s: est.get(s, default_estimate))
        m = est.get(skill, default_estimate)
        d = _difficulty(rec.get("difficulty"))
        p = 1.0 / (1.0 + math.exp(-(6.0 * (m - d) + logit_target)))
        suit = math.exp(-(((p - target_success) / 0.2) ** 2))
        learning = (1.0 - m) * suit
        missing = [s for s in as_list(rec.get("prerequisites"))
                   if est.get(s, default_estimate) < prerequisite_threshold]
        due = _to_utc(rec.get("due"))
        urgency = 0.0
        if due is not None:
            days = (due - now).total_seconds() / 86400.0
            if days >= 0:
                urgency = math.exp(-days / due_scale_days)
        title = rec.get("title") or str(rec["exercise"])
        if missing:
            first = missing[0]
            reason = R.reason(R.PREREQUISITE_FIRST, skill=skill, prerequisite=first,
                              prerequisite_mastery=R.share(est.get(first, default_estimate)),
                              prerequisite_started=first not in fresh)
        elif skill in fresh:
            reason = R.reason(R.NOT_STARTED, skill=skill)
        else:
            fit = "stretch" if d - m > 0.25 else "next_level" if d > m else "consolidate"
            reason = R.reason(R.PRACTICE, skill=skill, mastery=R.share(m), fit=fit)
        reason["params"].update(_due_params(due, now))
        rows.append({
            "exercise": rec["exercise"], "title": title, "skill": skill, "mastery": m,
            "p_success": p, "ready": not missing, "due": due,
            "score": learning + urgency_weight * urgency, "reason": reason,
        })
    cols = ["exercise", "title", "skill", "mastery", "p_success", "ready", "due", "score",
            "rank", "reason"]
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(rows)
    out = out.sort_values(["ready", "score"], ascending=[False, False], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    out = out[cols].reset_index(drop=True)
    return out if k is None else out.head(k)
