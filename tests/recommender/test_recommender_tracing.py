"""Contract tests shared by every knowledge tracer: no leakage, shapes, order, params, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from learnhub.recommender import BKT, MASTERY_LEVELS, PFA, KnowledgeTracer, SkillRateBaseline
from learnhub.recommender.tracing import mastery_level

TRACERS = [
    pytest.param(lambda: KnowledgeTracer(max_iter=30), id="KnowledgeTracer"),
    pytest.param(lambda: BKT(n_iter=10), id="BKT"),
    pytest.param(lambda: PFA(), id="PFA"),
    pytest.param(lambda: SkillRateBaseline(), id="SkillRate"),
]
HISTORY_TRACERS = TRACERS[:3]  # the per-skill rate ignores history by design


@pytest.fixture(scope="module")
def fitted(answers):
    return {
        "KnowledgeTracer": KnowledgeTracer(max_iter=30).fit(answers),
        "BKT": BKT(n_iter=10).fit(answers),
        "PFA": PFA().fit(answers),
        "SkillRate": SkillRateBaseline().fit(answers),
    }


@pytest.mark.parametrize("name", ["KnowledgeTracer", "BKT", "PFA", "SkillRate"])
def test_predict_proba_shape_range_and_input_order(fitted, new_answers, name):
    model = fitted[name]
    proba = model.predict_proba(new_answers)
    assert proba.shape == (len(new_answers), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # shuffled input rows give the same prediction per row, returned in the shuffled order
    perm = np.random.default_rng(3).permutation(len(new_answers))
    shuffled = new_answers.iloc[perm].reset_index(drop=True)
    np.testing.assert_allclose(model.predict_proba(shuffled)[:, 1], proba[perm, 1])


@pytest.mark.parametrize("name", ["KnowledgeTracer", "BKT", "PFA"])
def test_own_label_never_changes_own_prediction_but_changes_later_ones(fitted, new_answers, name):
    model = fitted[name]
    base = model.predict_proba(new_answers)[:, 1]
    learner = new_answers["learner"].iloc[0]
    rows = new_answers.index[new_answers["learner"] == learner]
    changed_later = False
    for pos in rows[5:15]:
        flipped = new_answers.copy()
        flipped.loc[pos, "correct"] = 1 - flipped.loc[pos, "correct"]
        p = model.predict_proba(flipped)[:, 1]
        assert p[pos] == pytest.approx(base[pos], abs=1e-12), "a row's own label leaked"
        # rows of other learners are untouched
        other = new_answers["learner"] != learner
        np.testing.assert_allclose(p[other.to_numpy()], base[other.to_numpy()])
        later = new_answers.index[(new_answers["learner"] == learner)
                                  & (new_answers["order"] > new_answers.loc[pos, "order"])]
        if not np.allclose(p[later], base[later]):
            changed_later = True
    assert changed_later, "flipping an earlier answer must be able to change later predictions"


def test_shuffling_labels_of_last_rows_keeps_their_predictions(fitted, new_answers):
    """Shuffling, then flipping, the labels of each learner's final answer cannot move those
    predictions (the flip guarantees every label really changed)."""
    model = fitted["KnowledgeTracer"]
    last = new_answers.groupby("learner")["order"].idxmax().to_numpy()
    base = model.predict_proba(new_answers)[last, 1]
    shuffled = new_answers.copy()
    labels = shuffled.loc[last, "correct"].to_numpy()
    shuffled.loc[last, "correct"] = np.random.default_rng(0).permutation(labels)
    shuffled.loc[last, "correct"] = 1 - shuffled.loc[last, "correct"]
    np.testing.assert_allclose(model.predict_proba(shuffled)[last, 1], base)


def test_timestamp_instead_of_order(fitted, new_answers):
    model = fitted["KnowledgeTracer"]
    with_ts = new_answers.drop(columns="order").assign(
        timestamp=pd.Timestamp("2024-01-01") + pd.to_timedelta(new_answers["order"], unit="min"))
    np.testing.assert_allclose(model.predict_proba(with_ts), model.predict_proba(new_answers))


def test_unknown_learners_and_skills_are_cold_start(fitted):
    X = pd.DataFrame({"learner": ["x", "x"], "skill": ["never-seen", "never-seen"],
                      "correct": [1, 0], "order": [0, 1]})
    for model in fitted.values():
        p = model.predict_proba(X)[:, 1]
        assert np.all((p > 0) & (p < 1))


@pytest.mark.parametrize("name", ["KnowledgeTracer", "BKT", "PFA"])
def test_unanswered_rows_are_scored_but_not_history(fitted, new_answers, name):
    model = fitted[name]
    X = new_answers.copy().astype({"correct": float})
    gap = X.index[3]
    X.loc[gap, "correct"] = np.nan
    p = model.predict_proba(X)[:, 1]
    assert np.isfinite(p).all()
    # scored like the answered row it replaces (a row's own label never counts) ...
    assert p[3] == pytest.approx(model.predict_proba(new_answers)[3, 1], abs=1e-12)
    # ... and no history for any other row: they are predicted as if the row were not there
    others = X.index != gap
    np.testing.assert_allclose(p[others], model.predict_proba(X.drop(index=gap))[:, 1])


@pytest.mark.parametrize("make", TRACERS)
def test_get_params_and_clone(make, answers):
    model = make()
    params = model.get_params()
    assert params
    copy = clone(model)
    assert copy.get_params() == params
    assert copy.fit(answers) is copy


def test_set_params_changes_the_model(answers, new_answers):
    a = KnowledgeTracer(max_iter=5).fit(answers).predict_proba(new_answers)
    b = clone(KnowledgeTracer(max_iter=5)).set_params(max_iter=40).fit(answers).predict_proba(new_answers)
    assert not np.allclose(a, b)


def test_mastery_levels_and_estimates(fitted, new_answers):
    model = fitted["KnowledgeTracer"]
    learner = new_answers["learner"].iloc[0]
    history = new_answers[new_answers["learner"] == learner]
    table = model.mastery(history, skills=["skill0", "brand-new-skill"])
    assert {"learner", "skill", "attempts", "estimate", "level"} <= set(table.columns)
    assert table["estimate"].between(0, 1).all()
    assert set(table["level"]) <= set(MASTERY_LEVELS)
    new = table[table["skill"] == "brand-new-skill"].iloc[0]
    assert new["level"] == "not started" and new["attempts"] == 0
    tried = table[table["attempts"] > 0]
    assert (tried["level"] != "not started").all()
    assert tried["attempts"].sum() == len(history)


def test_mastery_reflects_the_history(fitted):
    model = fitted["KnowledgeTracer"]
    good = pd.DataFrame({"learner": "g", "skill": "skill2", "correct": [1] * 12, "order": range(12)})
    bad = pd.DataFrame({"learner": "b", "skill": "skill2", "correct": [0] * 12, "order": range(12)})
    table = model.mastery(pd.concat([good, bad]))
    est = dict(zip(table["learner"], table["estimate"]))
    assert est["g"] > est["b"]


def test_mastery_level_thresholds():
    assert mastery_level(0.95, 0) == "not started"
    assert mastery_level(0.3, 5) == "attempted"
    assert mastery_level(0.65, 5) == "familiar"
    assert mastery_level(0.8, 5) == "proficient"
    assert mastery_level(0.95, 2) == "proficient"  # one lucky streak is not mastery
    assert mastery_level(0.95, 5) == "mastered"


@pytest.mark.parametrize("column", ["learner", "skill", "correct", "order"])
def test_missing_column_is_named(column, answers):
    with pytest.raises(ValueError, match=repr(column)):
        KnowledgeTracer().fit(answers.drop(columns=column))


def test_bad_values_are_named(answers):
    bad = answers.copy()
    bad["correct"] = bad["correct"].astype(str).replace({"1": "yes"})
    with pytest.raises(ValueError, match="'correct'"):
        PFA().fit(bad)
    bad = answers.assign(correct=answers["correct"] * 2)
    with pytest.raises(ValueError, match="'correct'"):
        BKT().fit(bad)
    bad = answers.assign(order="first")
    with pytest.raises(ValueError, match="'order'"):
        SkillRateBaseline().fit(bad)
    with pytest.raises(ValueError, match="empty"):
        KnowledgeTracer().fit(answers.iloc[:0])
    with pytest.raises(ValueError, match="DataFrame"):
        KnowledgeTracer().fit([[1, 2, 3]])
    with pytest.raises(ValueError, match="'correct'"):
        KnowledgeTracer().fit(answers.assign(correct=1))  # only one class


def test_predict_on_empty_frame_returns_empty(fitted, new_answers):
    assert fitted["BKT"].predict_proba(new_answers.iloc[:0]).shape == (0, 2)


def test_bkt_learns_sensible_parameters(fitted):
    params = fitted["BKT"].params_
    assert params.shape[1] == 4
    assert params.to_numpy().min() > 0 and params.to_numpy().max() < 1
    assert (params["guess"] <= 0.3 + 1e-12).all() and (params["slip"] <= 0.3 + 1e-12).all()
