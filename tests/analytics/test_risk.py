"""The at-risk model: validated on OULAD against a baseline in the same run; reasons per learner."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from learnhub.extensions.analytics import oulad
from learnhub.extensions.analytics.risk import FEATURES, AtRiskClassifier, features_at

# Only the validation on OULAD needs the data set (data/oulad); the features and the model's conventions
# are tested on small tables of their own.
requires_oulad = pytest.mark.skipif(not (oulad.DEFAULT_DATA_DIR / "studentInfo.csv").is_file(),
                                    reason="the OULAD data set is not in data/oulad (see data/oulad/README.md)")


def test_features_use_nothing_after_the_cutoff():
    due = pd.DataFrame({"assessment": [1, 2, 3], "day": [10, 40, 90]})
    subs = pd.DataFrame({"learner": [7, 7, 8, 7], "assessment": [1, 2, 1, 3], "day": [9, 41, 30, 80],
                         "score": [80, 60, 40, 100]})
    table = features_at(due, subs, pd.Index([7, 8, 9]), cutoff=50)
    assert list(table.columns) == FEATURES
    assert table.loc[7, "frac_submitted"] == 1.0 and table.loc[7, "mean_score"] == 70  # not the day-80 100
    assert table.loc[8, "missed"] == 1 and table.loc[8, "days_since_last_submission"] == 20
    assert table.loc[9, "frac_submitted"] == 0 and table.loc[9, "days_since_last_submission"] == 50


@requires_oulad
def test_auc_on_oulad_beats_the_baseline_at_day_60_and_120():
    result = oulad.evaluate()
    for cutoff in (60, 120):
        numbers = result["cutoffs"][cutoff]
        assert numbers["n_test"] > 5000
        assert numbers["auc_model"] > 0.72, numbers
        assert numbers["auc_model"] > numbers["auc_baseline"] + 0.05, numbers


def test_sklearn_conventions_and_reasons():
    model = AtRiskClassifier(C=0.5)
    assert clone(model).get_params()["C"] == 0.5
    X = pd.DataFrame([[0.0, 0, 4, 60, 4], [1.0, 95, 0, 2, 4], [0.5, 50, 2, 20, 4], [1.0, 70, 0, 5, 4]],
                     columns=FEATURES, index=["idle", "strong", "middling", "fine"])
    model.fit(X, [1, 0, 1, 0])
    proba = model.predict_proba(X)
    assert proba.shape == (4, 2) and np.allclose(proba.sum(axis=1), 1)
    assert proba[0, 1] > proba[1, 1]
    reasons = dict(zip(X.index, model.reasons(X)))
    assert any("submitted 0 of 4" in r or "no submission for 60 days" in r for r in reasons["idle"])
    assert reasons["strong"] == []
