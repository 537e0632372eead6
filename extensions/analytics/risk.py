"""The at-risk model: who is likely to fail or withdraw, from activity and results so far — and why.

No I/O and no web here: estimators in scikit-learn style (``fit``, ``predict_proba``, ``get_params``)
and pure functions that turn tables into the features both worlds share:

* OULAD (offline validation, :mod:`.oulad`): assessments due by a cut-off day of the presentation,
  which of them the learner submitted by that day, their scores;
* the platform (:mod:`.reports`): assignments of the course so far, the learner's submissions and
  best scores from the analytics summary tables.

The features are deliberately the ones the platform can compute too, so that the model validated on
OULAD is the model that ranks learners in a course.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

#: Feature columns, in order. All are computable at any point of a course.
FEATURES = ["frac_submitted", "mean_score", "missed", "days_since_last_submission", "n_due"]


def features_at(due: pd.DataFrame, submissions: pd.DataFrame, learners: pd.Index, cutoff: float) -> pd.DataFrame:
    """The feature table of ``learners`` at ``cutoff`` (days since the course started).

    ``due``: one row per assessment, columns ``assessment`` and ``day`` (due day).
    ``submissions``: one row per submission, columns ``learner``, ``assessment``, ``day``, ``score``
    (0-100). Only rows with ``day <= cutoff`` are used: the model never sees the future.
    """
    due_now = due[due["day"] <= cutoff]
    n_due = len(due_now)
    seen = submissions[(submissions["day"] <= cutoff)]
    per = seen.groupby("learner").agg(submitted=("assessment", "nunique"), mean_score=("score", "mean"),
                                      last_day=("day", "max"))
    on_due = seen[seen["assessment"].isin(due_now["assessment"])].groupby("learner")["assessment"].nunique()
    table = pd.DataFrame(index=learners)
    table["n_due"] = float(n_due)
    submitted_due = on_due.reindex(learners).fillna(0.0)
    table["frac_submitted"] = (submitted_due / n_due) if n_due else 1.0
    table["missed"] = (n_due - submitted_due).clip(lower=0.0)
    table["mean_score"] = per["mean_score"].reindex(learners).fillna(0.0)
    last = per["last_day"].reindex(learners)
    # Never submitted: counted from the start of the course.
    table["days_since_last_submission"] = (cutoff - last.fillna(0.0)).clip(lower=0.0)
    return table[FEATURES].astype(float)


class AtRiskClassifier(BaseEstimator, ClassifierMixin):
    """Standardised logistic regression over :data:`FEATURES`, with a reason for each score.

    A linear model on purpose: an instructor can be told *why* a learner is flagged (each feature's
    share of the score), and it validates about as well as boosted trees on these few features.
    """

    def __init__(self, C: float = 1.0, class_weight: str | None = "balanced", max_iter: int = 1000):
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter

    def fit(self, X, y):
        X = self._frame(X)
        self.scaler_ = StandardScaler().fit(X.values)
        self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)
        self.model_.fit(self.scaler_.transform(X.values), np.asarray(y).astype(int))
        self.classes_ = self.model_.classes_
        self.feature_names_in_ = np.array(FEATURES)
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(self.scaler_.transform(self._frame(X).values))

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def contributions(self, X) -> pd.DataFrame:
        """Each feature's additive share of the log-odds of being at risk, per learner."""
        X = self._frame(X)
        z = self.scaler_.transform(X.values)
        return pd.DataFrame(z * self.model_.coef_[0], index=X.index, columns=FEATURES)

    def reasons(self, X, top: int = 2) -> list[list[str]]:
        """Up to ``top`` sentences per learner: the features that raise the risk most."""
        X = self._frame(X)
        shares = self.contributions(X).values
        order = np.argsort(-shares, axis=1)[:, :top]
        out = []
        for i in range(len(X)):
            values = X.iloc[i]
            raising = [FEATURES[j] for j in order[i] if shares[i, j] > 0.05]
            sentences = []
            for name in raising:
                sentence = _sentence(name, values)
                if sentence not in sentences:  # "missed" and "frac_submitted" say the same thing
                    sentences.append(sentence)
            out.append(sentences)
        return out

    @staticmethod
    def _frame(X) -> pd.DataFrame:
        if isinstance(X, pd.DataFrame):
            return X[FEATURES].astype(float)
        return pd.DataFrame(np.asarray(X, dtype=float), columns=FEATURES)


def _sentence(name: str, values: pd.Series) -> str:
    n_due = int(values["n_due"])
    if name == "frac_submitted" or name == "missed":
        return f"submitted {n_due - int(values['missed'])} of {n_due} assignments due so far"
    if name == "mean_score":
        return f"average score {values['mean_score']:.0f}%"
    if name == "days_since_last_submission":
        return f"no submission for {values['days_since_last_submission']:.0f} days"
    return f"{n_due} assignments due so far"


class PriorRiskBaseline(BaseEstimator, ClassifierMixin):
    """Baseline: logistic regression on what is known at enrolment (demographics, prior attempts, load).

    It is what a course could do with no activity data at all; the at-risk model must beat it.
    """

    def __init__(self, columns: tuple = ("gender", "region", "highest_education", "imd_band", "age_band",
                                         "num_of_prev_attempts", "studied_credits", "disability"), C: float = 1.0):
        self.columns = columns
        self.C = C

    def _encode(self, X: pd.DataFrame) -> np.ndarray:
        encoded = pd.get_dummies(X[list(self.columns)].astype({c: str for c in self.columns
                                                               if X[c].dtype == object}), dtype=float)
        if hasattr(self, "dummies_"):
            encoded = encoded.reindex(columns=self.dummies_, fill_value=0.0)
        return encoded

    def fit(self, X: pd.DataFrame, y):
        encoded = self._encode(X)
        self.dummies_ = list(encoded.columns)
        self.scaler_ = StandardScaler().fit(encoded.values)
        self.model_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000)
        self.model_.fit(self.scaler_.transform(encoded.values), np.asarray(y).astype(int))
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame):
        return self.model_.predict_proba(self.scaler_.transform(self._encode(X).values))
