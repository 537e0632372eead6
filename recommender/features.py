"""History features for knowledge tracing, computed strictly from EARLIER answers.

Why these features: on skill-builder data the strongest signals are recency-weighted
("what happened the last few times on this skill, and lately overall") rather than the plain
lifetime counts of PFA — learners either master a skill in a streak or keep failing it. So besides
PFA's success/failure counts we keep exponentially decayed counts (DAS3H/"PFA with recency"),
the last three answers on the skill, the spacing since the skill was last practised, the number
of attempts on it in a short window, and the learner's recent overall accuracy.

Leakage rule: each row's features are computed *before* its own answer is folded into the state,
so a row's label can never influence its own prediction. Rows whose ``correct`` is NaN (not yet
answered) get features but do not update the state.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ._validation import sorted_positions

# decay per attempt on the same skill, and the two learner-wide moving averages
SKILL_DECAYS = (0.5, 0.85)
OVERALL_ALPHAS = (0.1, 0.3)
WINDOW = 10

FEATURE_NAMES = [
    "skill_attempts_log",
    "skill_success_log",
    "skill_failure_log",
    "skill_success_rate",
    "skill_dec_succ_fast",
    "skill_dec_fail_fast",
    "skill_dec_succ_slow",
    "skill_dec_fail_slow",
    "skill_last1",
    "skill_last2",
    "skill_last3",
    "steps_since_skill_log",
    "skill_in_window",
    "overall_attempts_log",
    "overall_success_rate",
    "overall_ema_slow",
    "overall_ema_fast",
    "prev_correct",
    "prev_same_skill",
    "distinct_skills_log",
]


def history_features_reference(answers: pd.DataFrame) -> np.ndarray:
    """Plain-Python reference implementation of :func:`history_features` (one pass, one state
    per learner and skill). Slower; kept because it is easy to check by reading, and the tests
    assert the vectorised version equals it.

    Returns an (n, len(FEATURE_NAMES)) float array, rows in the input order of ``answers``.

    ``answers`` is the normalised frame from :func:`check_answers` (``learner``, ``skill``,
    ``correct`` as float with NaN = unanswered, ``_key``).
    """
    n = len(answers)
    out = np.full((n, len(FEATURE_NAMES)), np.nan)
    if n == 0:
        return out
    order = sorted_positions(answers)
    learners = pd.factorize(answers["learner"].to_numpy()[order])[0].tolist()
    skills = pd.factorize(answers["skill"].to_numpy()[order])[0].tolist()
    correct = answers["correct"].to_numpy()[order].tolist()
    rows = []
    d_fast, d_slow = SKILL_DECAYS
    a_slow, a_fast = OVERALL_ALPHAS
    log1p = math.log1p
    prev_learner = -1
    for i in range(n):
        lrn = learners[i]
        if lrn != prev_learner:
            prev_learner = lrn
            state = {}
            step = 0
            n_all = 0
            s_all = 0
            ema_s = ema_f = 0.5
            prev_c = -1.0
            prev_sk = -1
        sk = skills[i]
        st = state.get(sk)
        if st is None:
            feats_skill = [0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0, 0.0]
        else:
            # st = [n, succ, dsf, dff, dss, dfs, l1, l2, l3, last_step, recent_steps]
            n_s, succ = st[0], st[1]
            recent = st[10]
            in_win = 0
            for p in recent:
                if step - p <= WINDOW:
                    in_win += 1
            feats_skill = [
                log1p(n_s), log1p(succ), log1p(n_s - succ), succ / n_s,
                st[2], st[3], st[4], st[5], st[6], st[7], st[8],
                log1p(step - st[9]), float(in_win),
            ]
        rows.append(
            feats_skill
            + [
                log1p(n_all),
                (s_all + 0.6) / (n_all + 1.0),
                ema_s,
                ema_f,
                prev_c,
                1.0 if prev_sk == sk else 0.0,
                log1p(len(state)),
            ]
        )
        c = correct[i]
        if c == c:  # labelled answer: fold into the state
            if st is None:
                st = [0, 0, 0.0, 0.0, 0.0, 0.0, -1.0, -1.0, -1.0, 0, []]
                state[sk] = st
            st[0] += 1
            st[1] += int(c)
            st[2] = st[2] * d_fast + c
            st[3] = st[3] * d_fast + (1.0 - c)
            st[4] = st[4] * d_slow + c
            st[5] = st[5] * d_slow + (1.0 - c)
            st[8], st[7], st[6] = st[7], st[6], c
            st[9] = step
            recent = [p for p in st[10] if step - p < WINDOW]
            recent.append(step)
            st[10] = recent
            n_all += 1
            s_all += int(c)
            ema_s += a_slow * (c - ema_s)
            ema_f += a_fast * (c - ema_f)
            prev_c = c
            prev_sk = sk
            step += 1
    out[order] = np.asarray(rows, dtype=float)
    return out


def _exclusive_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of ``values`` over the earlier elements of the same contiguous group."""
    cs = np.cumsum(values)
    base = np.where(starts > 0, cs[np.maximum(starts - 1, 0)], 0)
    return cs - values - base


def _scan(x: np.ndarray, starts: np.ndarray, step, init: float) -> np.ndarray:
    """Run the recurrence ``y[i] = step(y[i-1], x[i])`` (``y[-1] = init``) inside every contiguous
    group, all groups at once: one numpy operation per position within a group.

    Same floating-point operations as the reference loop, group by group, so results are
    bit-identical and never depend on other groups or on input row order (a cumulative filter
    with carry subtraction was not: its last-bit noise moved tree splits).
    """
    y = np.empty(len(x))
    if len(x) == 0:
        return y
    pos = np.arange(len(x)) - starts
    by_pos = np.argsort(pos, kind="stable")
    bounds = np.searchsorted(pos[by_pos], np.arange(pos.max() + 2))
    for t in range(len(bounds) - 1):
        idx = by_pos[bounds[t]:bounds[t + 1]]
        prev = np.full(len(idx), init) if t == 0 else y[idx - 1]
        y[idx] = step(prev, x[idx])
    return y


def _decayed_prefix(x: np.ndarray, starts: np.ndarray, decay: float) -> np.ndarray:
    """``y[i] = y[i-1] * decay + x[i]`` within each group: exponentially decayed counts."""
    return _scan(x, starts, lambda prev, v: prev * decay + v, 0.0)


def _ema(x: np.ndarray, starts: np.ndarray, alpha: float) -> np.ndarray:
    """``y[i] = y[i-1] + alpha * (x[i] - y[i-1])`` within each group, starting from 0.5."""
    return _scan(x, starts, lambda prev, v: prev + alpha * (v - prev), 0.5)


def _group_starts(codes: np.ndarray) -> np.ndarray:
    """Index of the first element of each element's group (``codes`` sorted, contiguous)."""
    n = len(codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.ones(n, dtype=bool)
    new[1:] = codes[1:] != codes[:-1]
    first = np.flatnonzero(new)
    return first[np.cumsum(new) - 1]


def history_features(answers: pd.DataFrame) -> np.ndarray:
    """Return an (n, len(FEATURE_NAMES)) float array, rows in the input order of ``answers``.

    ``answers`` is the normalised frame from :func:`check_answers` (``learner``, ``skill``,
    ``correct`` as float with NaN = unanswered, ``_key``). Vectorised with numpy; bit-identical
    to :func:`history_features_reference`, which the tests check.

    Idea: every state the reference loop keeps is "a function of the learner's (or the learner's
    skill's) labelled answers so far". So the labelled answers are laid out per group, the state
    after each of them is computed for all groups at once, and each row reads the state after the
    last labelled answer *strictly before it* — its own label is never part of that.
    """
    n = len(answers)
    out = np.full((n, len(FEATURE_NAMES)), np.nan)
    if n == 0:
        return out
    order = sorted_positions(answers)
    learner = pd.factorize(answers["learner"].to_numpy()[order])[0].astype(np.int64)
    skill = pd.factorize(answers["skill"].to_numpy()[order])[0].astype(np.int64)
    c = answers["correct"].to_numpy(dtype=float)[order]
    lab = ~np.isnan(c)
    lab_i = lab.astype(np.int64)
    cl = np.where(lab, c, 0.0)
    feats = np.empty((n, len(FEATURE_NAMES)))

    # ---- learner level (rows in learner/time order) -------------------------------------
    lstart = _group_starts(learner)
    step = _exclusive_cumsum(lab_i, lstart)  # labelled answers before the row
    s_all = _exclusive_cumsum(cl, lstart)
    L = np.flatnonzero(lab)  # labelled rows, still in learner/time order
    xL = c[L]
    startL = _group_starts(learner[L])
    lab_before_learner = np.cumsum(lab_i) - lab_i - step  # labelled rows of earlier learners
    has_prev = step > 0
    idx = np.where(has_prev, lab_before_learner + step - 1, 0)  # last labelled row before
    a_slow, a_fast = OVERALL_ALPHAS
    ema_s = _ema(xL, startL, a_slow)
    ema_f = _ema(xL, startL, a_fast)
    pair = learner * (skill.max() + 1) + skill
    first_seen = np.zeros(len(L))
    first_seen[pd.Series(pair[L]).duplicated().to_numpy() == False] = 1.0  # noqa: E712
    distinct = np.cumsum(first_seen)
    distinct = distinct - np.where(startL > 0, distinct[np.maximum(startL - 1, 0)], 0)
    if len(L) == 0:
        ema_s = ema_f = distinct = np.zeros(1)
        xL = np.zeros(1)
        skill_L = np.zeros(1, dtype=np.int64)
    else:
        skill_L = skill[L]
    feats[:, 13] = np.log1p(step)
    feats[:, 14] = (s_all + 0.6) / (step + 1.0)
    feats[:, 15] = np.where(has_prev, ema_s[idx], 0.5)
    feats[:, 16] = np.where(has_prev, ema_f[idx], 0.5)
    feats[:, 17] = np.where(has_prev, xL[idx], -1.0)
    feats[:, 18] = np.where(has_prev & (skill_L[idx] == skill), 1.0, 0.0)
    feats[:, 19] = np.log1p(np.where(has_prev, distinct[idx], 0.0))

    # ---- learner x skill level (rows regrouped by pair, time order kept) ----------------
    g = np.argsort(pair, kind="stable")
    gp, glab, gc, gstep = pair[g], lab_i[g], cl[g], step[g]
    gstart = _group_starts(gp)
    n_s = _exclusive_cumsum(glab, gstart)
    succ = _exclusive_cumsum(gc, gstart)
    G = np.flatnonzero(glab)  # labelled rows in pair order
    xG = c[g][G]
    startG = _group_starts(gp[G])
    d_fast, d_slow = SKILL_DECAYS
    dsf = _decayed_prefix(xG, startG, d_fast)
    dff = _decayed_prefix(1.0 - xG, startG, d_fast)
    dss = _decayed_prefix(xG, startG, d_slow)
    dfs = _decayed_prefix(1.0 - xG, startG, d_slow)
    pG = gstep[G]
    base_g = np.cumsum(glab) - glab - n_s  # labelled rows of earlier pairs
    seen = n_s > 0
    last = np.where(seen, base_g + n_s - 1, 0)
    if len(G) == 0:
        xG = dsf = dff = dss = dfs = np.zeros(1)
        pG = np.zeros(1, dtype=np.int64)
    gf = np.empty((n, 13))
    gf[:, 0] = np.log1p(n_s)
    gf[:, 1] = np.log1p(succ)
    gf[:, 2] = np.log1p(n_s - succ)
    gf[:, 3] = np.where(seen, succ / np.maximum(n_s, 1), -1.0)
    gf[:, 4] = np.where(seen, dsf[last], 0.0)
    gf[:, 5] = np.where(seen, dff[last], 0.0)
    gf[:, 6] = np.where(seen, dss[last], 0.0)
    gf[:, 7] = np.where(seen, dfs[last], 0.0)
    gf[:, 8] = np.where(seen, xG[last], -1.0)
    gf[:, 9] = np.where(n_s >= 2, xG[np.maximum(last - 1, 0)], -1.0)
    gf[:, 10] = np.where(n_s >= 3, xG[np.maximum(last - 2, 0)], -1.0)
    gf[:, 11] = np.where(seen, np.log1p(gstep - pG[last]), -1.0)
    # attempts on the skill at learner steps >= step - WINDOW, among the prior ones
    big = int(step.max()) + WINDOW + 2
    keys = gp[G] * big + pG if len(G) else np.zeros(0, dtype=np.int64)
    probe = gp * big + np.maximum(gstep - WINDOW, 0)
    pos = np.searchsorted(keys, probe, side="left")
    gf[:, 12] = np.where(seen, base_g + n_s - pos, 0.0)
    feats[g, :13] = gf

    out[order] = feats
    return out
