"""The recommender engine without the web layer: histories from the event log, mastery,
recommendations with structured reasons, refits, the pluggable profile and schedule sources.
Runs on SQLite and on PostgreSQL (LEARNHUB_TEST_DB_URL)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from learnhub.course_content import load_course
from learnhub.extensions.recommender.engine import CourseLibrary, RecommenderEngine, UnknownCourse, answers_from_events
from learnhub.extensions.recommender.reasons import CODES, ReasonRenderer
from learnhub.extensions.recommender.sources import StaticProfileSource, StaticSchedule
from learnhub.models import Event
from rec_events import COURSE, add, graded, minutes_ago

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 9, 1, tzinfo=timezone.utc)  # before the demo course's due dates


@pytest.fixture(scope="module")
def demo_course():
    return load_course(REPO / "courses" / COURSE)


@pytest.fixture
def library(demo_course):
    return CourseLibrary(courses=[demo_course])


@pytest.fixture
def engine(db_session_factory, library):
    return RecommenderEngine(db_session_factory, library, min_fit_answers=500)


def items_of(payload):
    return [it["item"] for it in payload["items"]]


def test_library_reads_course_folders():
    library = CourseLibrary([REPO / "courses", "/nonexistent"])
    assert library.ids() == [COURSE]
    assert library.get(COURSE).lookup("01-basics", "shout") == ("01-basics/shout", ("strings",))
    assert library.skill_titles()["strings"] == "Working with strings"
    assert library.course_titles() == {COURSE: "Introduction to Python"}
    with pytest.raises(UnknownCourse):
        library.get("no-such-course")


def test_answers_from_events_one_row_per_test_and_skill(library):
    event = graded("ana", "02-control-flow", {"sum-of-evens": True, "letter-grade": False, "unknown-test": True})
    rows = [(event.actor, event.time, event.course_id, event.result, event.context)]
    answers = answers_from_events(rows, library)
    # sum-of-evens practises 3 skills, letter-grade one; the unknown grade_id is skipped
    assert sorted(answers["skill"]) == ["arithmetic", "conditionals", "conditionals", "loops"]
    assert answers.groupby("exercise")["correct"].first().to_dict() == {
        "02-control-flow/letter-grade": 0, "02-control-flow/sum-of-evens": 1}
    check = graded("ana", "02-control-flow", {"letter-grade": True})
    check.context["mode"] = "check"  # visible-tests-only checks are no evidence of mastery
    other = graded("ana", "01-basics", {"shout": True}, course="unknown-course")
    assert len(answers_from_events([(e.actor, e.time, e.course_id, e.result, e.context)
                                    for e in (check, other)], library)) == 0


def test_cold_start_learner_gets_explained_next_steps(engine, library):
    payload = engine.recommend("newcomer", "exercise", course=COURSE, limit=5, now=NOW)
    first = payload["items"][0]
    assert first["item"] == "01-basics/variables"  # the only skill without prerequisites
    assert first["ready"] and first["reason_code"] == "not_started"
    assert first["reason_params"]["skill"] == "variables-and-types"
    assert first["reason_params"]["due_status"] == "upcoming" and first["reason_params"]["due_in_days"] == 14
    assert all({"item", "title", "score", "reason_code", "reason_params", "rank"} <= set(it) for it in payload["items"])
    # everything else waits for variables-and-types, and says so
    later = payload["items"][1:]
    assert later and all(not it["ready"] and it["reason_code"] == "prerequisite_first" for it in later)
    assert later[0]["reason_params"]["prerequisite"] == "variables-and-types"
    assert not any(it["reason_params"]["prerequisite_started"] for it in later)
    # what the service shows: rendered with the course's skill titles
    shown = ReasonRenderer(library).explain(payload)["items"]
    assert shown[0]["reason"] == ("you have not started Variables and types yet; this exercise introduces it; "
                                  "due in 14 days")
    assert shown[1]["reason"].startswith("first work on Variables and types (not started yet); this exercise needs it")
    mastery = engine.mastery("newcomer", COURSE)
    assert {it["level"] for it in mastery["items"]} == {"not started"}
    assert len(mastery["items"]) == 8


def test_recommendations_change_after_passing_and_failing(engine, db_session_factory):
    before = engine.recommend("ana", "exercise", course=COURSE, limit=20, now=NOW)
    add(db_session_factory, graded("ana", "01-basics", {"variables": True}, when=minutes_ago(10)))
    after_pass = engine.recommend("ana", "exercise", course=COURSE, limit=20, now=NOW)
    assert "01-basics/variables" in items_of(before)
    assert "01-basics/variables" not in items_of(after_pass)  # completed: never recommended again
    ready = [it for it in after_pass["items"] if it["ready"]]
    assert {it["skill"] for it in ready} >= {"arithmetic", "strings", "conditionals"}  # unlocked
    # fail the strings exercise: strings drops, and the next step is to practise strings
    add(db_session_factory, graded("ana", "01-basics", {"shout": False}, when=minutes_ago(5)))
    after_fail = engine.recommend("ana", "exercise", course=COURSE, limit=20, now=NOW)
    top = after_fail["items"][0]
    assert top["skill"] == "strings" and top["reason_code"] == "practice"
    assert top["reason_params"]["skill"] == "strings" and top["reason_params"]["mastery"] == top["mastery"]
    mastery = {it["skill"]: it for it in engine.mastery("ana", COURSE)["items"]}
    assert mastery["strings"]["attempts"] == 1 and mastery["strings"]["level"] == "attempted"
    assert mastery["variables-and-types"]["correct"] == 1
    assert mastery["strings"]["estimate"] < mastery["variables-and-types"]["estimate"]
    # assignments too
    assignments = engine.recommend("ana", "assignment", course=COURSE, now=NOW)
    assert assignments["items"][0]["item"] == "01-basics"
    assert assignments["items"][0]["reason_code"] == "practice"
    shown = ReasonRenderer(engine.library).explain(assignments)["items"][0]["reason"]
    assert shown.startswith("you are at ") and "this assignment practises it" in shown


def test_new_grade_is_visible_without_refit_and_cache_follows(engine, db_session_factory):
    engine.refit(reload_library=False)
    version = engine.models.version
    first = engine.mastery("bo", COURSE)
    entries = len(engine._cache)
    assert entries >= 1
    assert engine.mastery("bo", COURSE) == first and len(engine._cache) == entries  # answered from the cache
    add(db_session_factory, graded("bo", "01-basics", {"shout": True, "initials": True}))
    second = {it["skill"]: it for it in engine.mastery("bo", COURSE)["items"]}
    assert second["strings"]["attempts"] == 2 and engine.models.version == version
    assert len(engine._cache) == entries + 1  # the new grade is a new key: the old answer is not served


def test_unknown_course_and_kind(engine):
    with pytest.raises(UnknownCourse):
        engine.recommend("ana", "exercise", course="nope")
    with pytest.raises(ValueError, match="kind"):
        engine.recommend("ana", "everything")


def synthetic_log(n_learners=60, seed=1):
    """Learners of the demo course answering every exercise several times; strong ones pass more."""
    rng = random.Random(seed)
    course = load_course(REPO / "courses" / COURSE)
    start = datetime(2026, 9, 1, tzinfo=timezone.utc)
    events = []
    for i in range(n_learners):
        ability = rng.random()
        t = start + timedelta(hours=i)
        for assignment in course.assignments:
            for attempt in range(3):
                t += timedelta(minutes=30)
                results = {ex.grade_id: rng.random() < min(0.95, 0.2 + ability * 0.6 + 0.15 * attempt
                                                                - 0.1 * ex.difficulty)
                           for ex in assignment.exercises}
                events.append(graded(f"learner{i}", assignment.id, results, when=t))
    return events


def test_refit_switches_to_knowledge_tracer_and_learns_courses(db_session_factory, demo_course):
    events = synthetic_log()
    add(db_session_factory, *events)
    add(db_session_factory, Event(actor="newbie", verb="enrolled", object_type="course", object_id=COURSE,
                                  course_id=COURSE, source="courses"))
    engine = RecommenderEngine(db_session_factory, CourseLibrary(courses=[demo_course]), min_fit_answers=500)
    assert engine.model_info()["tracer"] == "prior"
    models = engine.refit(reload_library=False)
    assert models.tracer_kind == "knowledge-tracer" and models.n_learners == 60 and models.n_answers > 500
    assert models.n_interactions == 61
    # the batch snapshot taken at refit gives exactly what the tracer gives on request
    on_request = RecommenderEngine(db_session_factory, CourseLibrary(courses=[demo_course]), min_fit_answers=500,
                                   precompute=False)
    on_request.models = models.__class__(**{**models.__dict__, "snapshot": {}})
    assert "learner0" in models.snapshot and "newbie" in models.snapshot
    for name in ("learner0", "learner7", "newbie"):
        assert engine.mastery(name, COURSE)["items"] == on_request.mastery(name, COURSE)["items"]
    # a grade after the refit: the snapshot is stale for that learner, the request sees the grade
    before = {it["skill"]: it for it in engine.mastery("learner0", COURSE)["items"]}
    add(db_session_factory, graded("learner0", "01-basics", {"shout": False}, when=datetime.now(timezone.utc)))
    after = {it["skill"]: it for it in engine.mastery("learner0", COURSE)["items"]}
    assert after["strings"]["attempts"] == before["strings"]["attempts"] + 1
    # the background update recomputes that learner's snapshot in a batch, with the same result
    assert engine.refresh_recent() == 1 and engine.refresh_recent() == 0
    marker, states = engine.models.snapshot["learner0"]
    assert marker[1] == 10 and states["strings"][0] == after["strings"]["attempts"]
    engine._cache.clear()
    assert {it["skill"]: it for it in engine.mastery("learner0", COURSE)["items"]} == after
    strong = engine.mastery("learner0", COURSE)["items"]
    assert all(0 <= it["estimate"] <= 1 for it in strong) and any(it["attempts"] for it in strong)
    recs = engine.recommend("learner0", "exercise", course=COURSE, now=NOW)
    assert recs["items"] and all(it["reason_code"] in CODES for it in recs["items"])
    # courses: the only course is taken (enrolled via the log, or via groups) -> nothing to recommend
    assert engine.recommend("newbie", "course")["items"] == []
    assert engine.recommend("someone", "course", courses=[COURSE])["items"] == []
    cold = engine.recommend("someone-else", "course")["items"]
    assert [it["item"] for it in cold] == [COURSE]
    assert (cold[0]["reason_code"], cold[0]["reason_params"]) == ("popular", {"audience": "new"})


def test_profiles_are_pluggable(db_session_factory, demo_course):
    profiles = StaticProfileSource({"pia": {"goals": "learn python programming", "level": "beginner"}})
    engine = RecommenderEngine(db_session_factory, CourseLibrary(courses=[demo_course]), profiles)
    add(db_session_factory, graded("x", "01-basics", {"shout": True}))
    engine.refit(reload_library=False)
    items = engine.recommend("pia", "course")["items"]
    assert [it["item"] for it in items] == [COURSE]
    assert items[0]["reason_code"] == "goal_match" and "python" in items[0]["reason_params"]["matched"]
    # without the profile the same course is there for its popularity, not for a goal
    plain = RecommenderEngine(db_session_factory, CourseLibrary(courses=[demo_course]))
    plain.refit(reload_library=False)
    assert plain.recommend("pia", "course")["items"][0]["reason_code"] == "popular"


def test_before_any_course_interaction_the_catalogue_is_shown(db_session_factory, demo_course):
    engine = RecommenderEngine(db_session_factory, CourseLibrary(courses=[demo_course]))
    [item] = engine.recommend("first-learner", "course")["items"]
    assert (item["item"], item["reason_code"]) == (COURSE, "starter")  # a beginner course


def test_mastery_many(engine, db_session_factory):
    add(db_session_factory, graded("a1", "01-basics", {"shout": True}), graded("a2", "01-basics", {"shout": False}))
    rows = engine.mastery_many(["a1", "a2", "a3"], COURSE)
    strings = [{it["skill"]: it for it in r["items"]}["strings"] for r in rows]
    assert [s["correct"] for s in strings] == [1, 0, 0]
    assert [s["level"] for s in strings][2] == "not started"


def test_due_dates_come_from_the_schedule_source(db_session_factory, library):
    """An import can move a course's schedule (the demo's starts a week after loading): reasons follow
    the schedule source; assignments it does not list keep the course folder's date."""
    folder_engine = RecommenderEngine(db_session_factory, library)
    folder = {it["item"]: it for it in folder_engine.recommend("fay", "exercise", course=COURSE, now=NOW,
                                                               limit=50)["items"]}
    assert {it["due"][:10] for it in folder.values()} == {"2026-09-14", "2026-09-28", "2026-10-12"}

    moved = NOW + timedelta(days=2)
    engine = RecommenderEngine(db_session_factory, library, schedule=StaticSchedule({COURSE: {"01-basics": moved}}))
    items = engine.recommend("fay", "exercise", course=COURSE, now=NOW, limit=50)["items"]
    basics = [it for it in items if it["item"].startswith("01-basics/")]
    assert len(basics) == 5 and all(it["due"] == moved.isoformat() for it in basics)
    assert {it["reason_params"]["due_in_days"] for it in basics} == {2}  # the reason says so too
    assert all(it["reason_params"]["due"] == moved.isoformat() for it in basics)
    others = [it for it in items if not it["item"].startswith("01-basics/")]
    assert others and all(it["due"] == folder[it["item"]]["due"] for it in others)
    # a due date removed at the courses service: no date, no due parameters
    undated = RecommenderEngine(db_session_factory, library, schedule=StaticSchedule({COURSE: {"01-basics": None}}))
    basics = [it for it in undated.recommend("fay", "exercise", course=COURSE, now=NOW, limit=50)["items"]
              if it["item"].startswith("01-basics/")]
    assert basics and all(it["due"] is None and "due" not in it["reason_params"] for it in basics)
