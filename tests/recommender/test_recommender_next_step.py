"""rank_next_steps: the ordering rules documented in learnhub.recommender.next_step, and the
structured reason (code and parameters, learnhub.recommender.reasons) each row gives."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from learnhub.recommender import rank_next_steps

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def ranks(table):
    return dict(zip(table["exercise"], table["rank"]))


def test_low_mastery_first_at_equal_difficulty():
    mastery = {"loops": 0.4, "functions": 0.85}
    ex = pd.DataFrame({"exercise": ["e-func", "e-loops"], "skill": ["functions", "loops"],
                       "difficulty": [0.5, 0.5]})
    # same difficulty: loops (40%) has more to gain, and 0.5 is its next level; functions (85%)
    # would only be consolidated
    table = rank_next_steps(mastery, ex, now=NOW)
    assert list(table["exercise"]) == ["e-loops", "e-func"]
    assert table.iloc[0]["reason"] == {"code": "practice",
                                       "params": {"skill": "loops", "mastery": 0.4, "fit": "next_level"}}
    assert table.iloc[1]["reason"]["params"]["fit"] == "consolidate"


def test_prerequisites_not_met_come_last_with_a_reason():
    mastery = {"loops": 0.3, "recursion": 0.1, "functions": 0.9}
    ex = pd.DataFrame({
        "exercise": ["rec", "loop"], "skill": ["recursion", "loops"],
        "prerequisites": [["loops"], []], "difficulty": [0.2, 0.4]})
    table = rank_next_steps(mastery, ex, now=NOW)
    assert list(table["exercise"]) == ["loop", "rec"]
    assert list(table["ready"]) == [True, False]
    assert table.iloc[1]["reason"] == {"code": "prerequisite_first", "params": {
        "skill": "recursion", "prerequisite": "loops", "prerequisite_mastery": 0.3, "prerequisite_started": True}}


def test_difficulty_near_the_learner_beats_far_too_hard():
    mastery = {"loops": 0.4}
    ex = pd.DataFrame({"exercise": ["hard", "next", "easy"], "skill": "loops",
                       "difficulty": [0.95, 0.5, 0.05]})
    table = rank_next_steps(mastery, ex, now=NOW)
    # far too hard (predicted success ≈ 8 %) teaches less than far too easy (≈ 95 %, little to gain)
    assert list(table["exercise"]) == ["next", "easy", "hard"]
    p = dict(zip(table["exercise"], table["p_success"]))
    assert p["easy"] > p["next"] > p["hard"]
    fit = {e: r["params"]["fit"] for e, r in zip(table["exercise"], table["reason"])}
    assert fit == {"hard": "stretch", "next": "next_level", "easy": "consolidate"}


def test_close_due_date_first_all_else_equal():
    mastery = {"loops": 0.5}
    ex = pd.DataFrame({"exercise": ["later", "soon", "undated", "overdue"], "skill": "loops",
                       "difficulty": 0.5,
                       "due": [NOW + timedelta(days=10), NOW + timedelta(days=1), None,
                               NOW - timedelta(days=2)]})
    table = rank_next_steps(mastery, ex, now=NOW)
    assert list(table["exercise"][:2]) == ["soon", "later"]
    params = {e: r["params"] for e, r in zip(table["exercise"], table["reason"])}
    assert params["soon"]["due_status"] == "upcoming" and params["soon"]["due_in_days"] == 1
    assert params["soon"]["due"] == (NOW + timedelta(days=1)).isoformat()
    assert params["later"]["due_in_days"] == 10
    assert params["overdue"]["due_status"] == "past" and "due_in_days" not in params["overdue"]
    assert "due" not in params["undated"] and "due_status" not in params["undated"]
    json.dumps(list(table["reason"]))  # plain JSON values
    today = rank_next_steps(mastery, ex.assign(due=NOW + timedelta(hours=5)), now=NOW)
    assert {r["params"]["due_status"] for r in today["reason"]} == {"today"}


def test_completed_dropped_and_mastery_dataframe_accepted():
    mastery = pd.DataFrame({"learner": "u1", "skill": ["loops", "lists"], "estimate": [0.2, 0.6],
                            "level": ["attempted", "familiar"]})
    ex = pd.DataFrame({"exercise": ["a", "b", "c"], "skills": [["loops", "lists"], ["lists"], ["loops"]],
                       "completed": [False, False, True]})
    table = rank_next_steps(mastery, ex, now=NOW)
    assert "c" not in set(table["exercise"])
    assert table.set_index("exercise").loc["a", "skill"] == "loops"  # the weakest skill counts
    assert list(table["rank"]) == [1, 2]


def test_errors_name_the_column():
    with pytest.raises(ValueError, match="'skill'"):
        rank_next_steps({"a": 0.1}, pd.DataFrame({"exercise": ["x"]}), now=NOW)
    with pytest.raises(ValueError, match="'exercise'"):
        rank_next_steps({"a": 0.1}, pd.DataFrame({"skill": ["a"]}), now=NOW)
    with pytest.raises(ValueError, match="'estimate'"):
        rank_next_steps(pd.DataFrame({"skill": ["a"]}), pd.DataFrame({"exercise": ["x"], "skill": "a"}))
    with pytest.raises(ValueError, match="'difficulty'"):
        rank_next_steps({"a": 0.1}, pd.DataFrame({"exercise": ["x"], "skill": "a", "difficulty": [3.0]}))
    assert rank_next_steps({"a": 0.1}, pd.DataFrame({"exercise": [], "skill": []}), now=NOW).empty


def test_not_started_skills_are_introduced_and_named_as_prerequisites():
    mastery = pd.DataFrame({"skill": ["variables", "loops"], "estimate": [0.5, 0.5],
                            "attempts": [0, 0], "level": ["not started", "not started"]})
    ex = pd.DataFrame({"exercise": ["intro", "loop"], "skill": ["variables", "loops"],
                       "prerequisites": [[], ["variables"]], "difficulty": 0.3})
    table = rank_next_steps(mastery, ex, now=NOW, prerequisite_threshold=0.6)
    assert list(table["exercise"]) == ["intro", "loop"]
    assert table.iloc[0]["reason"] == {"code": "not_started", "params": {"skill": "variables"}}
    assert table.iloc[1]["reason"]["code"] == "prerequisite_first"
    assert table.iloc[1]["reason"]["params"]["prerequisite_started"] is False
    # a mapping of estimates says nothing about attempts: not_started= does
    plain = rank_next_steps({"variables": 0.7}, ex.iloc[:1], now=NOW)
    assert plain.iloc[0]["reason"]["code"] == "practice"
    told = rank_next_steps({"variables": 0.7}, ex.iloc[:1], now=NOW, not_started=["variables"])
    assert told.iloc[0]["reason"]["code"] == "not_started"


def test_missing_completed_value_means_not_completed():
    ex = pd.DataFrame({"exercise": ["a", "b"], "skill": "loops", "completed": [None, True]})
    assert list(rank_next_steps({"loops": 0.3}, ex, now=NOW)["exercise"]) == ["a"]
