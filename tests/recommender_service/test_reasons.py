"""The one renderer of reasons: every code the models and the engine give has its own English."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from learnhub.course_content import load_course
from learnhub.extensions.recommender.engine import CourseLibrary
from learnhub.extensions.recommender.reasons import CODES, ReasonRenderer, render_reason
from learnhub.recommender import CourseRecommender, rank_next_steps

REPO = Path(__file__).resolve().parents[2]
SKILLS = {"loops": "Loops (for and while)", "variables-and-types": "Variables and types"}
COURSES = {"py101": "Intro Python", "pd201": "Data analysis with pandas"}


def text(code, kind="exercise", title=None, **params):
    return render_reason({"code": code, "params": params}, kind=kind, title=title, skill_titles=SKILLS,
                         course_titles=COURSES)


@pytest.mark.parametrize("params, expected", [
    (dict(skill="loops", mastery=0.4, fit="next_level"),
     "you are at 40% on Loops (for and while); this exercise practises it at the next level"),
    (dict(skill="loops", mastery=0.25, fit="consolidate", due="2026-09-14T23:59:00+00:00",
          due_status="upcoming", due_in_days=2),
     "you are at 25% on Loops (for and while); this exercise practises it at your level, to consolidate; "
     "due in 2 days"),
    (dict(skill="loops", mastery=0.1, fit="stretch", due_status="upcoming", due_in_days=1),
     "you are at 10% on Loops (for and while); this exercise practises it as a stretch; due in 1 day"),
    (dict(skill="unknown-skill", mastery=0.5, fit="consolidate", due_status="today"),
     "you are at 50% on unknown-skill; this exercise practises it at your level, to consolidate; due today"),
])
def test_practice(params, expected):
    assert text("practice", **params) == expected


def test_next_step_codes_and_the_noun_of_the_kind():
    assert text("not_started", skill="variables-and-types", due_status="past") == (
        "you have not started Variables and types yet; this exercise introduces it; past its due date")
    assert text("prerequisite_first", kind="assignment", skill="loops", prerequisite="variables-and-types",
                prerequisite_mastery=0.3, prerequisite_started=True) == (
        "first work on Variables and types (you are at 30%); this assignment needs it")
    assert text("prerequisite_first", skill="loops", prerequisite="variables-and-types",
                prerequisite_mastery=0.5, prerequisite_started=False) == (
        "first work on Variables and types (not started yet); this exercise needs it")


def test_course_codes():
    assert text("similar_learners", kind="course", title="Data analysis with pandas", because="py101") == (
        "learners who took Intro Python also took Data analysis with pandas")
    assert text("similar_learners", kind="course") == "learners with similar registrations chose it"
    assert text("goal_match", kind="course", matched=["pandas", "python"]) == "matches your goal: pandas, python"
    assert text("level", kind="course", level="intermediate") == "at your level (intermediate)"
    assert text("popular", kind="course", audience="new") == "popular with new learners"
    assert text("popular", kind="course", audience="all") == "popular with learners on the platform"
    assert text("popular", kind="course", learners=12) == "popular: 12 learners took it"
    assert text("new_in_catalogue", kind="course") == "new in the catalogue"
    assert text("starter", kind="course") == "a course to start with"
    assert text("in_catalogue", kind="course") == "in the catalogue"


def test_every_code_has_its_own_sentence_and_unknown_ones_do_not_fail():
    fallback = text("a-code-of-a-newer-model")
    assert fallback == "recommended for you"
    assert all(text(code) != fallback for code in CODES)
    assert render_reason(None) == fallback


def test_what_the_models_give_renders_with_the_librarys_titles():
    library = CourseLibrary(courses=[load_course(REPO / "courses" / "intro-python")])
    renderer = ReasonRenderer(library)
    exercises = pd.DataFrame({"exercise": ["a/x"], "skill": ["strings"], "difficulty": [0.5]})
    [reason] = rank_next_steps({"strings": 0.3}, exercises)["reason"]
    assert renderer.text(reason) == ("you are at 30% on Working with strings; this exercise practises it "
                                     "at the next level")
    items = pd.DataFrame({"item": ["intro-python", "other"], "title": ["Introduction to Python", "Other"]})
    interactions = pd.DataFrame({"learner": ["a", "a", "b"], "item": ["intro-python", "other", "intro-python"]})
    recs = CourseRecommender().fit(interactions, items).recommend(["b"], k=1)
    assert recs.iloc[0]["reason"]["code"] == "similar_learners"
    assert renderer.text(recs.iloc[0]["reason"], kind="course", title="Other") == (
        "learners who took Introduction to Python also took Other")
