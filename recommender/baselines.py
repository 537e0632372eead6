"""Course-ranking baselines: popularity and implicit-feedback matrix factorisation (ALS).

They share :class:`learnhub.recommender.ranking.CourseRecommender`'s interface
(``fit(interactions, items=None)``, ``recommend(learners, k)`` → ``learner, item, score, rank,
reason``, the reason structured as :mod:`learnhub.recommender.reasons` says) so the offline
evaluation can compare them like for like. Both never return an item
the learner already interacted with.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from . import reasons as R
from ._validation import require_columns, require_frame


def check_interactions(interactions, name: str = "interactions") -> pd.DataFrame:
    """Validate an interactions table; return ``learner``, ``item``, ``weight`` (+``timestamp``)."""
    interactions = require_frame(interactions, name)
    require_columns(interactions, ["learner", "item"], name)
    if len(interactions) == 0:
        raise ValueError(f"{name} is empty: need at least one row with 'learner' and 'item'")
    for col in ("learner", "item"):
        if interactions[col].isna().any():
            raise ValueError(f"{name} column {col!r} has missing values")
    out = pd.DataFrame({"learner": interactions["learner"].to_numpy(),
                        "item": interactions["item"].to_numpy()})
    if "weight" in interactions.columns:
        w = interactions["weight"]
        if not pd.api.types.is_numeric_dtype(w) or pd.api.types.is_bool_dtype(w):
            raise ValueError(f"{name} column 'weight' must be numeric, got dtype {w.dtype}")
        if w.isna().any() or (w < 0).any():
            raise ValueError(f"{name} column 'weight' must be non-negative and not missing")
        out["weight"] = w.to_numpy(dtype=float)
    else:
        out["weight"] = 1.0
    if "timestamp" in interactions.columns:
        ts = interactions["timestamp"]
        if pd.api.types.is_numeric_dtype(ts) and not pd.api.types.is_bool_dtype(ts):
            values = ts.to_numpy(dtype=float)
        else:
            try:
                values = pd.to_datetime(ts, utc=True).astype("int64").to_numpy(dtype=float) / 86400e9
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"{name} column 'timestamp' must be numeric (days) or datetime-like: {exc}"
                ) from None
        if np.isnan(values).any():
            raise ValueError(f"{name} column 'timestamp' has missing values")
        out["timestamp"] = values
    return out


def as_learner_list(learners) -> list:
    """Accept one learner id or a list-like of ids."""
    if learners is None:
        raise ValueError("learners must be a learner id or a list of learner ids, got None")
    if isinstance(learners, (str, bytes, int, np.integer)):
        return [learners]
    if isinstance(learners, (pd.Series, pd.Index, np.ndarray)):
        return list(learners.tolist())
    return list(learners)


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["learner", "item", "score", "rank", "reason"])


class PopularityRecommender(BaseEstimator):
    """Recommend the items most learners interacted with (the cold-start floor)."""

    def fit(self, interactions, items=None):
        data = check_interactions(interactions)
        pop = data.groupby("item")["learner"].nunique().sort_values(ascending=False, kind="stable")
        self.popularity_ = pop
        self.history_ = data.groupby("learner")["item"].agg(set).to_dict()
        return self

    def recommend(self, learners, k: int = 10, profiles=None) -> pd.DataFrame:
        check_is_fitted(self, "popularity_")
        rows = []
        top = float(self.popularity_.iloc[0])
        for learner in as_learner_list(learners):
            seen = self.history_.get(learner, set())
            ranked = [(i, c) for i, c in self.popularity_.items() if i not in seen][:k]
            for r, (item, count) in enumerate(ranked, 1):
                rows.append((learner, item, count / top, r, R.reason(R.POPULAR, learners=int(count))))
        return _frame(rows)


class ImplicitALS(BaseEstimator):
    """Implicit-feedback matrix factorisation (Hu, Koren & Volinsky, 2008), alternating least
    squares in numpy.

    Preference p = 1 for every observed (learner, item), confidence c = 1 + alpha * weight; each
    half-step solves all learners' (or items') regularised least squares at once with a batched
    ``np.linalg.solve`` — fine for catalogues of up to a few thousand items.

    Parameters
    ----------
    factors : int
        Latent dimensions.
    regularization : float
        L2 penalty on the factors.
    alpha : float
        Confidence scale of an observed interaction.
    iterations : int
        ALS sweeps.
    random_state : int
        Seed for the initial factors.
    """

    def __init__(self, factors: int = 16, regularization: float = 0.1, alpha: float = 10.0,
                 iterations: int = 15, random_state: int = 0):
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state

    @staticmethod
    def _solve(other, rows, cols, conf, n, reg):
        """Least squares for every row entity given the other side's factors."""
        f = other.shape[1]
        gram = other.T @ other + reg * np.eye(f)
        y = other[cols]
        # per-row sums of (c - 1) y yᵀ and c y, as one sparse (rows x interactions) product
        S = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))),
                          shape=(n, len(rows)))
        outer = ((conf - 1.0)[:, None, None] * y[:, :, None] * y[:, None, :]).reshape(len(rows), -1)
        A = gram[None, :, :] + np.asarray(S @ outer).reshape(n, f, f)
        b = np.asarray(S @ (conf[:, None] * y))
        return np.linalg.solve(A, b[:, :, None])[:, :, 0]

    def fit(self, interactions, items=None):
        data = check_interactions(interactions)
        data = data.groupby(["learner", "item"], sort=False)["weight"].sum().reset_index()
        self.learner_index_ = {u: i for i, u in enumerate(pd.unique(data["learner"]))}
        self.items_ = np.asarray(pd.unique(data["item"]), dtype=object)
        item_index = {it: i for i, it in enumerate(self.items_)}
        u = data["learner"].map(self.learner_index_).to_numpy(int)
        i = data["item"].map(item_index).to_numpy(int)
        conf = 1.0 + self.alpha * data["weight"].to_numpy(float)
        rng = np.random.default_rng(self.random_state)
        n_u, n_i = len(self.learner_index_), len(self.items_)
        X = rng.normal(scale=0.1, size=(n_u, self.factors))
        Y = rng.normal(scale=0.1, size=(n_i, self.factors))
        for _ in range(self.iterations):
            X = self._solve(Y, u, i, conf, n_u, self.regularization)
            Y = self._solve(X, i, u, conf, n_i, self.regularization)
        self.learner_factors_, self.item_factors_ = X, Y
        self.history_ = data.groupby("learner")["item"].agg(set).to_dict()
        self.popularity_ = np.bincount(i, minlength=n_i).astype(float)
        return self

    def recommend(self, learners, k: int = 10, profiles=None) -> pd.DataFrame:
        check_is_fitted(self, "item_factors_")
        rows = []
        for learner in as_learner_list(learners):
            idx = self.learner_index_.get(learner)
            if idx is None:  # cold start: no factors, fall back to popularity
                scores = self.popularity_ / self.popularity_.max()
                reason = R.reason(R.POPULAR, audience="new")
            else:
                scores = self.item_factors_ @ self.learner_factors_[idx]
                reason = R.reason(R.SIMILAR_LEARNERS)
            seen = self.history_.get(learner, set())
            order = np.argsort(-scores, kind="stable")
            r = 0
            for j in order:
                if self.items_[j] in seen:
                    continue
                r += 1
                # a reason of its own per row: a caller changing one must not change the others
                rows.append((learner, self.items_[j], float(scores[j]), r,
                             {**reason, "params": dict(reason["params"])}))
                if r == k:
                    break
        return _frame(rows)
