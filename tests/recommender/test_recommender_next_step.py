"""rank_next_steps: the ordering rules documented in learnhub.recommender.next_step."""
from __future__ import annotations

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
    assert table.iloc[0]["reason"] == (
        "you are at 40% on loops; this exercise practises loops at the next level")


def test_prerequisites_not_met_come_last_with_a_reason():
    mastery = {"loops": 0.3, "recursion": 0.1, "functions": 0.9}
    ex = pd.DataFrame({
        "exercise": ["rec", "loop"], "skill": ["recursion", "loops"],
        "prerequisites": [["loops"], []], "difficulty": [0.2, 0.4]})
    table = rank_next_steps(mastery, ex, now=NOW)
    assert list(table["exercise"]) == ["loop", "rec"]
    assert list(table["ready"]) == [True, False]
    assert table.iloc[1]["reason"].startswith("first work on loops (you are at 30%)")


def test_difficulty_near_the_learner_beats_far_too_hard():
    mastery = {"loops": 0.4}
    ex = pd.DataFrame({"exercise": ["hard", "next", "easy"], "skill": "loops",
                       "difficulty": [0.95, 0.5, 0.05]})
    table = rank_next_steps(mastery, ex, now=NOW)
    assert table.iloc[0]["exercise"] == "next"
    assert ranks(table)["hard"] == 3 or ranks(table)["easy"] == 3
    p = dict(zip(table["exercise"], table["p_success"]))
    assert p["easy"] > p["next"] > p["hard"]
    assert "as a stretch" in table.set_index("exercise").loc["hard", "reason"]


def test_close_due_date_first_all_else_equal():
    mastery = {"loops": 0.5}
    ex = pd.DataFrame({"exercise": ["later", "soon", "undated", "overdue"], "skill": "loops",
                       "difficulty": 0.5,
                       "due": [NOW + timedelta(days=10), NOW + timedelta(days=1), None,
                               NOW - timedelta(days=2)]})
    table = rank_next_steps(mastery, ex, now=NOW)
    assert list(table["exercise"][:2]) == ["soon", "later"]
    reasons = table.set_index("exercise")["reason"]
    assert reasons["soon"].endswith("; due in 1 day")
    assert reasons["overdue"].endswith("past its due date")


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


def test_missing_completed_value_means_not_completed():
    ex = pd.DataFrame({"exercise": ["a", "b"], "skill": "loops", "completed": [None, True]})
    assert list(rank_next_steps({"loops": 0.3}, ex, now=NOW)["exercise"]) == ["a"]
