"""The vectorised history features equal the plain-Python reference, edge cases included."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from learnhub.recommender._validation import check_answers
from learnhub.recommender.features import (FEATURE_NAMES, history_features,
                                           history_features_reference)


def _both(frame):
    a = check_answers(frame, allow_unlabelled=True, allow_empty=True)
    return history_features(a), history_features_reference(a)


def test_vectorised_equals_reference_with_gaps_and_shuffled_rows(simulate):
    df = simulate(n_learners=40, length=70, seed=4).astype({"correct": float})
    rng = np.random.default_rng(0)
    df.loc[rng.random(len(df)) < 0.1, "correct"] = np.nan  # unanswered rows in the middle
    df = df.sample(frac=1, random_state=1)
    fast, ref = _both(df)
    assert fast.shape == (len(df), len(FEATURE_NAMES))
    # Equal to the last bits numpy's vectorised log1p may round differently from the scalar one.
    np.testing.assert_allclose(fast, ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("frame", [
    pd.DataFrame({"learner": ["a"], "skill": ["s"], "correct": [1], "order": [0]}),
    pd.DataFrame({"learner": ["a", "a"], "skill": ["s", "t"], "correct": [np.nan, np.nan],
                  "order": [0, 1]}),
    pd.DataFrame({"learner": ["a", "b", "a"], "skill": ["s", "s", "s"], "correct": [1, 0, np.nan],
                  "order": [0, 0, 1]}),
    pd.DataFrame({"learner": [], "skill": [], "correct": pd.Series([], dtype=float),
                  "order": pd.Series([], dtype=int)}),
], ids=["one-row", "all-unanswered", "mixed", "empty"])
def test_edge_cases_equal_reference(frame):
    fast, ref = _both(frame)
    np.testing.assert_array_equal(fast, ref)  # bit-identical, not just close


def test_first_answer_has_no_history():
    fast, _ = _both(pd.DataFrame({"learner": ["a"], "skill": ["s"], "correct": [0], "order": [0]}))
    row = dict(zip(FEATURE_NAMES, fast[0]))
    assert row["skill_attempts_log"] == 0 and row["skill_last1"] == -1 and row["prev_correct"] == -1
