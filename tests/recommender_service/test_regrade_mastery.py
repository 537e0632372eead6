"""A regrade is no new attempt for the mastery model: the submission's answers are its latest grading's,
in its place in the learner's history. The oracle: a learner whose same submissions were graded right
the first time. Events as the feedback service writes them (``graded_event`` of real job rows); on
SQLite and PostgreSQL (LEARNHUB_TEST_DB_URL)."""
from __future__ import annotations

from pathlib import Path

from learnhub import db as lhdb
from learnhub.course_content import load_course
from learnhub.extensions.recommender.engine import CourseLibrary, RecommenderEngine
from rec_events import COURSE, minutes_ago
from regrade_events import append, grading_job

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "01-basics"


def history(learner: str, fixed: bool):
    """Two submissions; the shout test is wrong at first (a right answer fails it), unless ``fixed``."""
    from learnhub.extensions.feedback.workers import graded_event

    shout = True if fixed else "AssertionError"
    return [graded_event(grading_job(f"{learner}-s1", learner, COURSE, ASSIGNMENT,
                                     {"shout": "AssertionError", "initials": True}, minutes_ago(30))),
            graded_event(grading_job(f"{learner}-s2", learner, COURSE, ASSIGNMENT,
                                     {"shout": shout, "initials": True}, minutes_ago(20)))]


def regrade(learner: str):
    from learnhub.extensions.feedback.workers import graded_event

    return [graded_event(grading_job(f"{learner}-s2", learner, COURSE, ASSIGNMENT, {"shout": True, "initials": True},
                                     minutes_ago(10), regrade="r1"))]


def strings(engine, learner) -> dict:
    """The learner's mastery of the skill the shout and initials tests practise."""
    return {it["skill"]: it for it in engine.mastery(learner, COURSE)["items"]}["strings"]


def test_a_regrade_replaces_the_submissions_answers(db_session_factory):
    engine = RecommenderEngine(db_session_factory, CourseLibrary(courses=[load_course(REPO / "courses" / COURSE)]))
    with lhdb.session_scope(db_session_factory) as session:
        append(session, history("ann", fixed=False) + history("fay", fixed=True))
    engine.refit(reload_library=False)
    assert strings(engine, "ann")["correct"] == 2  # the wrong test cost her a right answer

    with lhdb.session_scope(db_session_factory) as session:
        append(session, regrade("ann"))
    # the learner's request after the regrade (her history changed since the refit's snapshot)
    ann = strings(engine, "ann")
    assert ann == strings(engine, "fay")
    assert (ann["attempts"], ann["correct"]) == (4, 3)  # two submissions of two string tests, not three

    # the snapshot refreshed in the background and a full refit say the same
    assert engine.refresh_recent() >= 1
    assert strings(engine, "ann") == strings(engine, "fay")
    engine.refit(reload_library=False)
    assert strings(engine, "ann") == strings(engine, "fay") == ann
    assert engine.models.n_answers == 8  # two learners × two submissions × two tests of one skill each


def test_a_regrade_that_takes_back_a_pass_puts_the_exercise_back_on_the_list(db_session_factory):
    """A wrong test passed carl's wrong answer; after the fix and the regrade, shout is not done."""
    from datetime import datetime, timezone

    from learnhub.extensions.feedback.workers import graded_event

    engine = RecommenderEngine(db_session_factory, CourseLibrary(courses=[load_course(REPO / "courses" / COURSE)]))

    def exercises():
        now = datetime(2026, 9, 1, tzinfo=timezone.utc)  # before the demo course's due dates
        return {it["item"] for it in engine.recommend("carl", "exercise", course=COURSE, now=now, limit=50)["items"]}

    with lhdb.session_scope(db_session_factory) as session:
        append(session, [graded_event(grading_job("carl-s1", "carl", COURSE, ASSIGNMENT,
                                                  {"shout": True, "initials": True}, minutes_ago(20)))])
    assert f"{ASSIGNMENT}/shout" not in exercises()
    with lhdb.session_scope(db_session_factory) as session:
        append(session, [graded_event(grading_job("carl-s1", "carl", COURSE, ASSIGNMENT,
                                                  {"shout": "AssertionError", "initials": True}, minutes_ago(10),
                                                  regrade="r1"))])
    assert f"{ASSIGNMENT}/shout" in exercises() and f"{ASSIGNMENT}/initials" not in exercises()
