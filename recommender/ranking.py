"""Course and content ranking with a structured reason for every recommendation.

:class:`CourseRecommender` blends four signals, each rescaled to [0, 1] per learner so the weights
mean the same thing for every learner:

* **collaborative** — item-item cosine similarity over who interacted with what (implicit
  feedback). Explainable: ``similar_learners`` with ``because`` = the item taken that is most
  similar ("learners who took Intro Python also took Data Analysis").
* **content / goals** — the learner's goals (free text and goal skills) against each item's title,
  description and tags/skills (explicit tag overlap plus TF-IDF cosine): ``goal_match`` with the
  ``matched`` words ("matches your goal: pandas").
* **level fit** — item level against the learner's level (stated in the profile, or one above the
  highest level they completed): ``level`` ("at your level (intermediate)").
* **popularity** — overall, and for learners without history the items new learners start with
  (``popular``, ``audience`` ``new`` or ``all``), optionally decayed by age so a new course is not buried.

Hard rules: an item the learner already interacted with (or lists as completed) is never
recommended, and with ``require_prerequisites`` an item whose prerequisites (item ids) the learner
has not completed is not recommended either. The reason given is that of the signal contributing
most to the item's score, as a code and parameters (:mod:`learnhub.recommender.reasons`); the
English is the service's business.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from . import reasons as R
from ._validation import require_columns, require_frame
from .baselines import as_learner_list, check_interactions

LEVEL_NAMES = {
    "intro": 1, "introductory": 1, "beginner": 1, "basic": 1, "easy": 1,
    "intermediate": 2, "medium": 2,
    "advanced": 3, "hard": 3, "expert": 4,
}
_LEVEL_LABEL = {1: "beginner", 2: "intermediate", 3: "advanced", 4: "expert"}


def parse_level(value) -> float:
    """Map a level ("beginner", "intermediate", "advanced", or a number) to a number; NaN if unknown."""
    if value is None:
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in LEVEL_NAMES:
            return float(LEVEL_NAMES[text])
        try:
            return float(text)
        except ValueError:
            return np.nan
    return np.nan


def level_label(value: float) -> str:
    if value != value:
        return "unknown"
    return _LEVEL_LABEL.get(int(round(value)), f"level {value:g}")


def as_list(value) -> list:
    """Lists stay lists; "a, b" becomes ["a", "b"]; None/NaN become []."""
    if value is None:
        return []
    if isinstance(value, float) and np.isnan(value):
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,;]", value) if v.strip()]
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Series)):
        return [v for v in value if v is not None and v == v]
    return [value]


def _norm_tag(tag) -> str:
    return str(tag).strip().lower()


def check_items(items, name: str = "items") -> pd.DataFrame:
    """Validate the item catalogue; return a normalised copy indexed by position."""
    items = require_frame(items, name)
    require_columns(items, ["item", "title"], name)
    if len(items) == 0:
        raise ValueError(f"{name} is empty: need at least one row with 'item' and 'title'")
    if items["item"].isna().any():
        raise ValueError(f"{name} column 'item' has missing values")
    if items["item"].duplicated().any():
        dup = items.loc[items["item"].duplicated(), "item"].iloc[0]
        raise ValueError(f"{name} column 'item' has duplicate id {dup!r}")
    for col in ("tags", "skills", "prerequisites"):
        if col in items.columns:
            bad = [v for v in items[col] if not isinstance(v, (list, tuple, set, np.ndarray, str))
                   and v is not None and not (isinstance(v, float) and np.isnan(v))]
            if bad:
                raise ValueError(f"{name} column {col!r} must hold lists (or comma-separated text), "
                                 f"got {type(bad[0]).__name__}")
    out = pd.DataFrame({"item": items["item"].to_numpy(),
                        "title": items["title"].fillna("").astype(str).to_numpy()})
    out["description"] = (items["description"].fillna("").astype(str).to_numpy()
                          if "description" in items.columns else "")
    tags = [[] for _ in range(len(items))]
    for col in ("tags", "skills"):
        if col in items.columns:
            for i, v in enumerate(items[col]):
                tags[i].extend(as_list(v))
    out["tags"] = [sorted({_norm_tag(t) for t in ts}) for ts in tags]
    out["level"] = ([parse_level(v) for v in items["level"]] if "level" in items.columns
                    else np.nan)
    out["prerequisites"] = ([as_list(v) for v in items["prerequisites"]]
                            if "prerequisites" in items.columns else [[] for _ in range(len(items))])
    return out


def normalize_profiles(profiles) -> dict:
    """Return {learner: {"goals": str, "skills": [tags], "level": float, "completed": [items]}}.

    ``profiles`` may be a DataFrame with a ``learner`` column and any of ``goals``, ``skills``
    (or ``goal_skills``), ``level``, ``completed``; or a mapping learner → dict of those keys,
    or learner → goals text.
    """
    if profiles is None:
        return {}
    if isinstance(profiles, pd.DataFrame):
        require_columns(profiles, ["learner"], "profiles")
        records = {row["learner"]: row for row in profiles.to_dict("records")}
    elif isinstance(profiles, Mapping):
        records = {}
        for learner, value in profiles.items():
            if isinstance(value, str):
                value = {"goals": value}
            if not isinstance(value, Mapping):
                raise ValueError(f"profiles[{learner!r}] must be a dict or goals text, "
                                 f"got {type(value).__name__}")
            records[learner] = value
    else:
        raise ValueError(f"profiles must be a DataFrame or dict, got {type(profiles).__name__}")
    out = {}
    for learner, rec in records.items():
        goals = rec.get("goals", "")
        goals = " ".join(as_list(goals)) if not isinstance(goals, str) else goals
        skills = as_list(rec.get("skills")) + as_list(rec.get("goal_skills"))
        out[learner] = {
            "goals": goals or "",
            "skills": sorted({_norm_tag(s) for s in skills}),
            "level": parse_level(rec.get("level")),
            "completed": as_list(rec.get("completed")),
        }
    return out


def _plain(value):
    """A numpy scalar id as the plain Python value (reasons go into JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _scaled(v: np.ndarray) -> np.ndarray:
    m = v.max() if len(v) else 0.0
    return v / m if m > 0 else np.zeros_like(v)


class CourseRecommender(BaseEstimator):
    """Hybrid course recommender: collaborative + goals/content + level fit + popularity.

    Parameters
    ----------
    cf_weight, content_weight, level_weight, popularity_weight : float
        Weights of the four signals (each in [0, 1] per learner) in the final score.
    shrinkage : float
        Added to the cosine denominator so two items sharing one learner are not "similar".
    popularity_half_life : float or None
        With a ``timestamp`` column (numbers in days, or datetimes), an interaction's weight in
        the popularity signal halves every this many days before the newest interaction, so
        recently popular courses rise. None = all interactions count the same.
    require_prerequisites : bool
        Drop items whose prerequisite items the learner has not completed.
    """

    def __init__(self, cf_weight: float = 1.0, content_weight: float = 1.0,
                 level_weight: float = 0.3, popularity_weight: float = 0.3,
                 shrinkage: float = 5.0, popularity_half_life: float | None = None,
                 require_prerequisites: bool = True):
        self.cf_weight = cf_weight
        self.content_weight = content_weight
        self.level_weight = level_weight
        self.popularity_weight = popularity_weight
        self.shrinkage = shrinkage
        self.popularity_half_life = popularity_half_life
        self.require_prerequisites = require_prerequisites

    # --- fitting -------------------------------------------------------------------------
    def fit(self, interactions, items):
        """Learn co-occurrence, popularity and item text vectors; returns ``self``."""
        catalogue = check_items(items)
        data = check_interactions(interactions)
        self.items_ = catalogue
        self.item_index_ = {it: i for i, it in enumerate(catalogue["item"])}
        known = data["item"].isin(self.item_index_)
        self.n_unknown_item_rows_ = int((~known).sum())  # ignored: not in the catalogue
        self.history_ = data.groupby("learner")["item"].agg(set).to_dict()
        # a weight of 0 (e.g. opened, then unenrolled) still hides the item from that learner,
        # but is no evidence of interest for co-occurrence or popularity
        data = data[known & (data["weight"] > 0)]
        n_items = len(catalogue)
        if len(data):
            pairs = data.groupby(["learner", "item"], sort=False)["weight"].sum().reset_index()
            learner_codes, _ = pd.factorize(pairs["learner"])
            item_codes = pairs["item"].map(self.item_index_).to_numpy(int)
            R = sp.csr_matrix((np.ones(len(pairs)), (learner_codes, item_codes)),
                              shape=(learner_codes.max() + 1, n_items))
            co = (R.T @ R).toarray()
            counts = np.diag(co).copy()
            sim = co / (np.sqrt(np.outer(counts, counts)) + self.shrinkage)
            np.fill_diagonal(sim, 0.0)
        else:
            counts = np.zeros(n_items)
            sim = np.zeros((n_items, n_items))
        self.similarity_ = sim
        self.item_counts_ = counts
        # popularity, optionally decayed by age
        w = np.ones(len(data))
        if self.popularity_half_life and "timestamp" in data.columns and len(data):
            age = data["timestamp"].max() - data["timestamp"].to_numpy()
            w = 0.5 ** (age / float(self.popularity_half_life))
        pop = np.bincount(data["item"].map(self.item_index_).to_numpy(int), weights=w,
                          minlength=n_items) if len(data) else np.zeros(n_items)
        self.popularity_ = _scaled(pop)
        # what learners start with: their first item (by timestamp if given)
        firsts = data.sort_values("timestamp", kind="stable") if "timestamp" in data.columns else data
        firsts = firsts.groupby("learner", sort=False).head(1)
        start = np.bincount(firsts["item"].map(self.item_index_).to_numpy(int),
                            minlength=n_items).astype(float) if len(firsts) else np.zeros(n_items)
        self.start_popularity_ = _scaled(start)
        # text
        text = (catalogue["title"] + " " + catalogue["description"] + " "
                + catalogue["tags"].map(lambda ts: " ".join(ts)))
        self.vectorizer_ = TfidfVectorizer(stop_words="english", sublinear_tf=True)
        try:
            self.item_text_ = self.vectorizer_.fit_transform(text)
        except ValueError:  # no usable words at all (e.g. ids as titles only)
            self.vectorizer_ = None
            self.item_text_ = None
        return self

    # --- scoring -------------------------------------------------------------------------
    def _learner_level(self, profile, hist_idx) -> float:
        """Stated level, else one above the highest level completed; NaN when nothing is known
        (a newcomer without a stated level gets no level signal rather than a guess)."""
        if profile and profile["level"] == profile["level"]:
            return profile["level"]
        levels = self.items_["level"].to_numpy(float)
        if len(hist_idx):
            done = levels[hist_idx]
            done = done[~np.isnan(done)]
            if len(done):
                return float(done.max() + 1)
        return np.nan

    def _content(self, profile):
        """Goal match per item and a ``goal_match`` reason per item (or None)."""
        n = len(self.items_)
        score = np.zeros(n)
        reasons = [None] * n
        if not profile:
            return score, reasons
        goal_tags = set(profile["skills"])
        goal_words = set(re.findall(r"[a-z0-9+#]+", profile["goals"].lower()))
        tag_score = np.zeros(n)
        for i, tags in enumerate(self.items_["tags"]):
            matched = [t for t in tags if t in goal_tags or t in goal_words]
            if matched:
                tag_score[i] = len(matched) / max(len(goal_tags | (goal_words & set(tags))), 1)
                reasons[i] = R.reason(R.GOAL_MATCH, matched=[str(t) for t in matched[:3]])
        text_score = np.zeros(n)
        query = " ".join([profile["goals"], *profile["skills"]]).strip()
        if query and self.vectorizer_ is not None:
            q = self.vectorizer_.transform([query])
            if q.nnz:
                text_score = (self.item_text_ @ q.T).toarray().ravel()
                terms = self.vectorizer_.get_feature_names_out()
                prod = self.item_text_.multiply(q)  # per item, per term contribution
                prod = prod.tocsr()
                for i in range(n):
                    if reasons[i] is None and text_score[i] > 0:
                        row = prod.getrow(i)
                        top = row.indices[np.argsort(-row.data)[:2]]
                        reasons[i] = R.reason(R.GOAL_MATCH, matched=[str(t) for t in terms[top]])
        score = np.maximum(tag_score, _scaled(text_score))
        return score, reasons

    def _score_learner(self, learner, profile):
        """Return (scores, reasons, candidate mask) over the catalogue for one learner."""
        n = len(self.items_)
        seen = set(self.history_.get(learner, set()))
        if profile:
            seen.update(profile["completed"])
        hist_idx = np.array([self.item_index_[i] for i in seen if i in self.item_index_], dtype=int)
        ids = self.items_["item"].to_numpy()
        mask = np.ones(n, dtype=bool)
        mask[hist_idx] = False
        if self.require_prerequisites:
            for i, prereq in enumerate(self.items_["prerequisites"]):
                if prereq and not all(p in seen for p in prereq):
                    mask[i] = False
        comps, reasons = {}, {}
        # collaborative
        if len(hist_idx):
            sims = self.similarity_[hist_idx]  # (history, items)
            comps["cf"] = _scaled(sims.sum(axis=0))
            best = hist_idx[sims.argmax(axis=0)]
            reasons["cf"] = [R.reason(R.SIMILAR_LEARNERS, because=_plain(ids[b])) for b in best]
        else:
            comps["cf"] = np.zeros(n)
            reasons["cf"] = [None] * n
        comps["content"], reasons["content"] = self._content(profile)
        # level fit
        target = self._learner_level(profile, hist_idx)
        levels = self.items_["level"].to_numpy(float)
        if target == target:
            fit = np.where(np.isnan(levels), 0.0, np.maximum(0.0, 1.0 - np.abs(levels - target) / 2))
        else:
            fit = np.zeros(n)
        comps["level"] = fit
        reasons["level"] = [R.reason(R.LEVEL, level=level_label(lv)) for lv in levels]
        # popularity
        if len(hist_idx):
            comps["popularity"] = self.popularity_
            reasons["popularity"] = [R.reason(R.POPULAR, audience="all") for _ in range(n)]
        else:
            comps["popularity"] = 0.5 * self.popularity_ + 0.5 * self.start_popularity_
            reasons["popularity"] = [R.reason(R.POPULAR, audience="new") for _ in range(n)]
        weights = {"cf": self.cf_weight, "content": self.content_weight,
                   "level": self.level_weight, "popularity": self.popularity_weight}
        contrib = np.vstack([weights[c] * comps[c] for c in weights])
        score = contrib.sum(axis=0)
        names = list(weights)
        out_reasons = []
        for i in range(n):
            reason = None
            for c in np.argsort(-contrib[:, i], kind="stable"):
                if contrib[c, i] > 0 and reasons[names[c]][i]:
                    reason = reasons[names[c]][i]
                    break
            out_reasons.append(reason or R.reason(R.NEW_IN_CATALOGUE))
        return score, out_reasons, mask

    def recommend(self, learners, k: int = 10, profiles=None) -> pd.DataFrame:
        """Top-``k`` items per learner as a DataFrame ``learner, item, score, rank, reason``
        (``reason``: a dict ``{"code", "params"}``, :mod:`learnhub.recommender.reasons`).

        Unknown learners get cold-start recommendations (popularity with new learners, plus
        their profile's goals and level when given). ``profiles``: see :func:`normalize_profiles`.
        """
        check_is_fitted(self, "similarity_")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        prof = normalize_profiles(profiles)
        items = self.items_["item"].to_numpy()
        rows = []
        for learner in as_learner_list(learners):
            score, reasons, mask = self._score_learner(learner, prof.get(learner))
            cand = np.flatnonzero(mask)
            order = cand[np.lexsort((cand, -score[cand]))][:k]
            for r, j in enumerate(order, 1):
                rows.append((learner, items[j], float(score[j]), r, reasons[j]))
        return pd.DataFrame(rows, columns=["learner", "item", "score", "rank", "reason"])
