"""CourseRecommender and the ranking baselines: hard rules, structured reasons, cold start, goals."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from sklearn.base import clone

from learnhub.recommender import CourseRecommender, ImplicitALS, PopularityRecommender
from learnhub.recommender.reasons import COURSE_CODES

COLUMNS = ["learner", "item", "score", "rank", "reason"]


@pytest.fixture()
def items():
    return pd.DataFrame([
        dict(item="py101", title="Intro Python", description="variables loops functions",
             tags=["python"], level="beginner", prerequisites=[]),
        dict(item="pd201", title="Data analysis with pandas", description="dataframes groupby",
             tags=["pandas", "python"], level="intermediate", prerequisites=["py101"]),
        dict(item="ml301", title="Machine learning", description="scikit-learn models",
             tags=["ml"], level="advanced", prerequisites=["pd201"]),
        dict(item="viz201", title="Plotting with matplotlib", description="charts and figures",
             tags=["visualisation"], level="intermediate", prerequisites=["py101"]),
        dict(item="sql101", title="SQL basics", description="queries joins tables",
             tags=["sql"], level="beginner", prerequisites=[]),
        dict(item="git101", title="Version control with git", description="commits branches",
             tags=["git"], level="beginner", prerequisites=[]),
        dict(item="stats101", title="Statistics for data", description="distributions pandas exercises",
             tags=["statistics", "pandas"], level="beginner", prerequisites=[]),
    ])


@pytest.fixture()
def interactions():
    rows = []
    # many learners go Intro Python -> pandas; a few do SQL; git is popular with starters
    for u in range(10):
        rows += [(f"a{u}", "py101", 1), (f"a{u}", "pd201", 2)]
    for u in range(4):
        rows += [(f"b{u}", "py101", 1), (f"b{u}", "viz201", 2)]
    for u in range(6):
        rows += [(f"c{u}", "git101", 1), (f"c{u}", "sql101", 2)]
    for u in range(3):
        rows += [(f"d{u}", "git101", 1)]
    rows += [("solo", "py101", 1)]
    return pd.DataFrame(rows, columns=["learner", "item", "timestamp"])


@pytest.fixture()
def model(interactions, items):
    return CourseRecommender().fit(interactions, items)


def test_output_format_and_never_recommends_completed(model, interactions):
    learners = list(interactions["learner"].unique()) + ["stranger"]
    recs = model.recommend(learners, k=10)
    assert list(recs.columns) == COLUMNS
    taken = set(zip(interactions["learner"], interactions["item"]))
    assert not any((u, i) in taken for u, i in zip(recs["learner"], recs["item"]))
    assert all(r["code"] in COURSE_CODES and isinstance(r["params"], dict) for r in recs["reason"])
    json.dumps(list(recs["reason"]))  # plain JSON values: reasons travel in events and API answers
    for _, group in recs.groupby("learner"):
        assert list(group["rank"]) == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
        assert group["item"].is_unique


def test_collaborative_signal_and_reason(model):
    recs = model.recommend(["solo"], k=3)
    top = recs.iloc[0]
    assert top["item"] == "pd201"
    assert top["reason"] == {"code": "similar_learners", "params": {"because": "py101"}}


def test_prerequisites_respected(model):
    recs = model.recommend(["solo", "stranger", "c0"], k=10)
    for learner, group in recs.groupby("learner"):
        assert "ml301" not in set(group["item"])  # nobody here completed pd201
    assert "pd201" not in set(recs.loc[recs["learner"] != "solo", "item"])
    # once the prerequisite is completed (profile), the course becomes available
    recs = model.recommend(["stranger"], k=10, profiles={"stranger": {"completed": ["py101"]}})
    assert "pd201" in set(recs["item"]) and "py101" not in set(recs["item"])


def test_cold_start_uses_popularity_with_new_learners(model):
    recs = model.recommend(["stranger"], k=3)
    assert len(recs) == 3
    assert recs.iloc[0]["item"] in {"py101", "git101"}
    assert {"code": "popular", "params": {"audience": "new"}} in list(recs["reason"])


def test_goal_ranks_matching_items_higher(model):
    plain = model.recommend(["stranger"], k=10)
    goal = model.recommend(["stranger"], k=10, profiles={"stranger": {"goals": "I want to learn pandas"}})
    rank = lambda recs, item: int(recs.loc[recs["item"] == item, "rank"].iloc[0])  # noqa: E731
    assert rank(goal, "stats101") < rank(plain, "stats101")
    assert goal.iloc[0]["item"] == "stats101"
    assert goal.iloc[0]["reason"] == {"code": "goal_match", "params": {"matched": ["pandas"]}}


def test_goal_skills_and_text_in_a_dataframe_profile(model):
    profiles = pd.DataFrame({"learner": ["stranger"], "goals": ["database queries"],
                             "skills": [["sql"]], "level": ["beginner"]})
    recs = model.recommend(["stranger"], k=2, profiles=profiles)
    assert recs.iloc[0]["item"] == "sql101"
    assert recs.iloc[0]["reason"]["code"] == "goal_match" and "sql" in recs.iloc[0]["reason"]["params"]["matched"]


def test_level_fit_prefers_the_next_level(interactions, items):
    model = CourseRecommender(cf_weight=0, popularity_weight=0, level_weight=1).fit(interactions, items)
    recs = model.recommend(["a0"], k=10)  # completed a beginner and an intermediate course
    assert recs.iloc[0]["item"] == "ml301"  # one level above the highest completed
    assert recs.iloc[0]["reason"] == {"code": "level", "params": {"level": "advanced"}}


def test_bad_input_names_the_column(interactions, items):
    with pytest.raises(ValueError, match="'item'"):
        CourseRecommender().fit(interactions.drop(columns="item"), items)
    with pytest.raises(ValueError, match="'learner'"):
        CourseRecommender().fit(interactions.drop(columns="learner"), items)
    with pytest.raises(ValueError, match="'title'"):
        CourseRecommender().fit(interactions, items.drop(columns="title"))
    with pytest.raises(ValueError, match="'weight'"):
        CourseRecommender().fit(interactions.assign(weight="lots"), items)
    with pytest.raises(ValueError, match="'prerequisites'"):
        CourseRecommender().fit(interactions, items.assign(prerequisites=3))
    with pytest.raises(ValueError, match="empty"):
        CourseRecommender().fit(interactions.iloc[:0], items)
    with pytest.raises(ValueError, match="'learner'"):
        CourseRecommender().fit(interactions, items).recommend(
            ["x"], profiles=pd.DataFrame({"goals": ["pandas"]}))
    with pytest.raises(ValueError, match="k must be"):
        CourseRecommender().fit(interactions, items).recommend(["x"], k=0)


def test_get_params_and_clone():
    model = CourseRecommender(cf_weight=2.0)
    assert clone(model).get_params()["cf_weight"] == 2.0


@pytest.mark.parametrize("cls", [PopularityRecommender, ImplicitALS])
def test_baselines_share_the_interface(cls, interactions, items):
    model = cls().fit(interactions, items)
    recs = model.recommend(["solo", "stranger"], k=3)
    assert list(recs.columns) == COLUMNS
    assert "py101" not in set(recs.loc[recs["learner"] == "solo", "item"])
    assert len(recs[recs["learner"] == "stranger"]) == 3
    assert all(r["code"] in COURSE_CODES for r in recs["reason"])
    stranger = recs[recs["learner"] == "stranger"]["reason"]
    assert all(r["code"] == "popular" for r in stranger)  # no history: popularity is all there is


def test_als_learns_co_occurrence(interactions, items):
    # low rank on purpose: with a factor per item ALS just memorises each learner's own row
    recs = ImplicitALS(factors=2, iterations=20).fit(interactions, items).recommend(["solo"], k=4)
    assert list(recs["item"][:2]) == ["pd201", "viz201"]


def test_zero_weight_hides_the_item_but_is_not_evidence(interactions, items):
    extra = pd.DataFrame({"learner": ["solo"], "item": ["sql101"], "timestamp": [3], "weight": [0.0]})
    data = pd.concat([interactions.assign(weight=1.0), extra], ignore_index=True)
    model = CourseRecommender().fit(data, items)
    assert "sql101" not in set(model.recommend(["solo"], k=10)["item"])
    assert model.item_counts_[model.item_index_["sql101"]] == 6  # the six c-learners only


def test_learners_none_is_a_clear_error(model):
    with pytest.raises(ValueError, match="learners"):
        model.recommend(None)
