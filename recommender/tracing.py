"""Knowledge tracing: estimate the chance that a learner answers the next item on a skill right.

All estimators here share one contract (scikit-learn style, no I/O):

* ``fit(X)`` on a DataFrame with columns ``learner``, ``skill``, ``correct`` (0/1) and ``order``
  (or ``timestamp``); returns ``self``.
* ``predict_proba(X)`` returns an (n, 2) array in the *input* row order; column 1 is the
  probability that the row's answer is correct given only the same learner's EARLIER rows of
  ``X`` (rows sorted by ``order``/``timestamp``; ties keep input order). A row's own label never
  affects its own prediction, so the same table can be used both as history and as the rows to
  score. ``correct`` may be NaN in ``predict_proba`` for rows not answered yet: they are scored
  but do not count as history. Unknown learners and skills are cold starts, not errors.
* ``mastery(history)`` summarises, per learner and skill, the predicted chance of success on
  the next attempt as a level a learner understands (see :data:`MASTERY_LEVELS`).

Models: :class:`SkillRateBaseline` (per-skill success rate), :class:`PFA` (performance-factors
logistic regression), :class:`learnhub.recommender.bkt.BKT` (Bayesian knowledge tracing), and
:class:`KnowledgeTracer`, the production model: gradient-boosted trees on recency-weighted
history features (see :mod:`learnhub.recommender.features`).
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController

from ._validation import check_answers, sorted_positions
from .features import FEATURE_NAMES, history_features

_controller: ThreadpoolController | None = None


def limit_threads(n_threads: int | None):
    """Cap OpenMP/BLAS threads for a block. The controller is built once (building one scans every
    loaded library, about 2 ms); limiting through it afterwards costs about 20 µs, which matters on
    the recommender's per-request path."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=n_threads)


#: Mastery levels, lowest first (Khan Academy's ladder). With the default thresholds:
#: "not started" = no answer on the skill yet; "attempted" = estimate < 0.60;
#: "familiar" = 0.60–0.75; "proficient" = 0.75–0.90 (or ≥ 0.90 with fewer than 3 answers);
#: "mastered" = ≥ 0.90 with at least 3 answers on the skill.
MASTERY_LEVELS = ("not started", "attempted", "familiar", "proficient", "mastered")


def mastery_level(estimate: float, attempts: int, thresholds=(0.6, 0.75, 0.9),
                  mastered_min_attempts: int = 3) -> str:
    """Map a success estimate and an attempt count to one of :data:`MASTERY_LEVELS`.

    "mastered" needs a few answers, not one lucky one: that is why it also asks for
    ``mastered_min_attempts``.
    """
    familiar, proficient, mastered = thresholds
    if attempts <= 0:
        return "not started"
    if estimate < familiar:
        return "attempted"
    if estimate < proficient:
        return "familiar"
    if estimate < mastered or attempts < mastered_min_attempts:
        return "proficient"
    return "mastered"


class _TracerBase(ClassifierMixin, BaseEstimator):
    """Shared validation, ``predict``, ``mastery`` for the knowledge-tracing estimators."""

    # subclasses implement _fit(answers) and _predict(answers) -> P(correct) in input order

    def fit(self, X, y=None):
        """Fit on an answers table; ``y`` is ignored (labels are the ``correct`` column)."""
        answers = check_answers(X)
        self.classes_ = np.array([0, 1])
        self.global_rate_ = float(answers["correct"].mean())
        self._fit(answers)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Return (n, 2) probabilities in input order; column 1 = P(correct | earlier rows)."""
        check_is_fitted(self, "global_rate_")
        answers = check_answers(X, allow_unlabelled=True, allow_empty=True)
        if len(answers) == 0:
            return np.empty((0, 2))
        p = np.clip(np.asarray(self._predict(answers), dtype=float), 1e-6, 1 - 1e-6)
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """Predicted label (1 = correct) at a 0.5 threshold."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def mastery(self, learner_history, skills: Iterable | None = None, *,
                thresholds=(0.6, 0.75, 0.9), mastered_min_attempts: int = 3) -> pd.DataFrame:
        """Per learner and skill: the predicted chance of success on the NEXT attempt, and a level.

        ``learner_history`` is an answers table (one or more learners). ``skills`` adds skills the
        learner has not tried yet (level "not started", estimate = the model's cold-start guess).
        Returns a DataFrame with ``learner``, ``skill``, ``attempts``, ``correct``, ``estimate``
        (in [0, 1]) and ``level``, sorted by learner then skill.
        """
        check_is_fitted(self, "global_rate_")
        answers = check_answers(learner_history, allow_unlabelled=True, allow_empty=skills is not None,
                                name="learner_history")
        labelled = answers[answers["correct"].notna()]
        stats = (
            labelled.groupby(["learner", "skill"], sort=False)["correct"]
            .agg(attempts="size", correct="sum")
            .reset_index()
        )
        learners = pd.unique(answers["learner"]) if len(answers) else np.array([], dtype=object)
        if skills is not None:
            skills = list(skills)
            extra = pd.DataFrame(
                [(lrn, s) for lrn in learners for s in skills], columns=["learner", "skill"]
            )
            pairs = pd.concat([stats[["learner", "skill"]], extra]).drop_duplicates()
            stats = pairs.merge(stats, on=["learner", "skill"], how="left")
        stats["attempts"] = stats["attempts"].fillna(0).astype(int)
        stats["correct"] = stats["correct"].fillna(0).astype(int)
        if len(stats) == 0:
            return stats.assign(estimate=np.array([], float), level=np.array([], object))
        last = answers.groupby("learner")["_key"].max()
        probe = pd.DataFrame(
            {
                "learner": stats["learner"],
                "skill": stats["skill"],
                "correct": np.nan,
                "order": stats["learner"].map(last).to_numpy() + 1.0,
            }
        )
        history = pd.DataFrame(
            {"learner": answers["learner"], "skill": answers["skill"],
             "correct": answers["correct"], "order": answers["_key"]}
        )
        both = pd.concat([history, probe], ignore_index=True)
        p = self.predict_proba(both)[len(history):, 1]
        stats["estimate"] = p
        stats["level"] = [
            mastery_level(e, a, thresholds, mastered_min_attempts)
            for e, a in zip(stats["estimate"], stats["attempts"])
        ]
        return stats.sort_values(["learner", "skill"], kind="stable").reset_index(drop=True)


class SkillRateBaseline(_TracerBase):
    """Per-skill success rate (smoothed towards the global rate); ignores the learner entirely.

    The floor every tracer must beat: it only knows which skills are hard.

    Parameters
    ----------
    smoothing : float
        Pseudo-answers at the global rate added to every skill, so rare skills are not 0 or 1.
    """

    def __init__(self, smoothing: float = 10.0):
        self.smoothing = smoothing

    def _fit(self, answers):
        g = answers.groupby("skill")["correct"].agg(["sum", "count"])
        rate = (g["sum"] + self.smoothing * self.global_rate_) / (g["count"] + self.smoothing)
        self.skill_rate_ = rate.to_dict()

    def _predict(self, answers):
        return answers["skill"].map(self.skill_rate_).fillna(self.global_rate_).to_numpy(float)


def prior_counts(answers: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Successes and failures of the same learner on the same skill strictly before each row."""
    order = sorted_positions(answers)
    s = answers.iloc[order]
    c = s["correct"].to_numpy()
    succ = (c == 1).astype(float)
    fail = (c == 0).astype(float)
    keys = [pd.factorize(s["learner"])[0], pd.factorize(s["skill"])[0]]
    frame = pd.DataFrame({"a": keys[0], "b": keys[1], "s": succ, "f": fail})
    cum = frame.groupby(["a", "b"], sort=False)[["s", "f"]].cumsum().to_numpy()
    prior_s = np.empty(len(s))
    prior_f = np.empty(len(s))
    prior_s[order] = cum[:, 0] - succ
    prior_f[order] = cum[:, 1] - fail
    return prior_s, prior_f


class PFA(_TracerBase):
    """Performance Factors Analysis (Pavlik et al., 2009): a logistic regression with, per skill,
    an easiness term and weights for the learner's prior successes and failures on that skill.

    Counts enter as ``log1p`` (a common PFA variant) so a learner with hundreds of answers does not
    saturate the model. Unknown skills fall back to the intercept.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int
        Iterations of the lbfgs solver.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 200):
        self.C = C
        self.max_iter = max_iter

    def _design(self, answers):
        succ, fail = prior_counts(answers)
        idx = answers["skill"].map(self.skill_index_)
        known = idx.notna().to_numpy()
        rows = np.flatnonzero(known)
        col = idx[known].to_numpy(int)
        k = len(self.skill_index_)
        data = np.concatenate([np.ones(len(rows)), np.log1p(succ[known]), np.log1p(fail[known])])
        r = np.concatenate([rows, rows, rows])
        c = np.concatenate([col, col + k, col + 2 * k])
        return sp.csr_matrix((data, (r, c)), shape=(len(answers), 3 * k))

    def _fit(self, answers):
        self.skill_index_ = {s: i for i, s in enumerate(pd.unique(answers["skill"]))}
        y = answers["correct"].to_numpy(int)
        if len(np.unique(y)) < 2:
            raise ValueError("X column 'correct' must contain both 0 and 1 to fit PFA")
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter).fit(self._design(answers), y)

    def _predict(self, answers):
        return self.model_.predict_proba(self._design(answers))[:, 1]


class KnowledgeTracer(_TracerBase):
    """The production knowledge tracer: gradient-boosted trees on recency-aware history features.

    Why: learners' recent answers on a skill (and lately overall) predict the next answer much
    better than lifetime counts; trees pick up the interactions (e.g. "failed the last two but
    the long-run rate is high") that a linear PFA cannot. Features are in
    :data:`learnhub.recommender.features.FEATURE_NAMES` plus the skill's smoothed success rate
    (its difficulty). The skill id itself is deliberately not a feature: it overfits to the
    training learners and lowered test AUC in our measurements.

    Parameters
    ----------
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization :
        Passed to :class:`sklearn.ensemble.HistGradientBoostingClassifier`.
    skill_smoothing : float
        Pseudo-answers at the global rate when estimating each skill's difficulty.
    n_threads : int or None
        OpenMP threads for the booster (None = library default). Default 1: on a shared, busy
        machine (the hub host) multi-threaded boosting was 4-5x *slower* in our runs because
        OpenMP threads spin while competing for cores; single-threaded it is predictable.
    random_state : int or None
        Seed for the booster.
    """

    def __init__(self, max_iter: int = 60, learning_rate: float = 0.15,
                 max_leaf_nodes: int = 15, min_samples_leaf: int = 200,
                 l2_regularization: float = 0.0, skill_smoothing: float = 10.0,
                 n_threads: int | None = 1, random_state: int | None = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.skill_smoothing = skill_smoothing
        self.n_threads = n_threads
        self.random_state = random_state

    def _design(self, answers):
        difficulty = answers["skill"].map(self.skill_rate_).fillna(self.global_rate_).to_numpy(float)
        return np.column_stack([history_features(answers), difficulty])

    def _fit(self, answers):
        g = answers.groupby("skill")["correct"].agg(["sum", "count"])
        s = self.skill_smoothing
        self.skill_rate_ = ((g["sum"] + s * self.global_rate_) / (g["count"] + s)).to_dict()
        self.feature_names_ = [*FEATURE_NAMES, "skill_difficulty"]
        y = answers["correct"].to_numpy(int)
        if len(np.unique(y)) < 2:
            raise ValueError("X column 'correct' must contain both 0 and 1 to fit KnowledgeTracer")
        booster = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.random_state,
        )
        X = self._design(answers)
        with limit_threads(self.n_threads):
            self.model_ = booster.fit(X, y)

    def _predict(self, answers):
        X = self._design(answers)
        with limit_threads(self.n_threads):
            return self.model_.predict_proba(X)[:, 1]
