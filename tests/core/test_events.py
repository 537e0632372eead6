"""The event schema, validation with reasons, and EventLog.append (idempotent, partial success)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from learnhub import db as lhdb
from learnhub.events import EventLog, SCHEMAS, Verb, make_event, to_wire, validate_event
from learnhub.models import Event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


@pytest.fixture
def event():
    """make_event as a producer calls it, in a course by default: an event about an assignment names it
    in ``context.assignment_id`` and an enrollment says the role, as schema 2 requires."""
    def make(actor, verb, object_type, object_id, course_id="c1", **kwargs):
        if object_type == "assignment" and course_id:
            kwargs["context"] = {"assignment_id": object_id, **(kwargs.get("context") or {})}
        if verb in (Verb.ENROLLED, Verb.UNENROLLED) and not kwargs.get("result"):
            kwargs["result"] = {"role": "learner"}
        return make_event(actor, verb, object_type, object_id, course_id=course_id, **kwargs)
    return make


def test_a_valid_event_has_no_reasons(event):
    assert validate_event(event("alice", "attempted", "exercise", "loops/ex1",
                                result={"success": False, "error_type": "NameError"},
                                context={"assignment_id": "loops"})) == []
    assert validate_event(make_event("alice", "opened", "notebook", "work.ipynb")) == []  # no course needed
    assert validate_event(make_event("svc", "x-forum-posted", "course", "c1")) == []  # custom verbs


def test_every_problem_is_named_with_what_to_fix():
    reasons = validate_event({"id": "has space", "time": "2026-01-01", "actor": "", "verb": "jumped",
                              "object": {"type": "planet"}, "extra": 1})
    text = " | ".join(reasons)
    assert "id:" in text and "actor:" in text and "object:" in text and "object/type:" in text
    assert "unknown verb 'jumped'" in text and "'x-' prefixed" in text
    assert "time:" in text and "with a zone" in text
    assert "extra" in text  # additional properties are refused
    assert validate_event([1, 2]) == ["an event must be a JSON object, not list"]
    assert "schema_version" in validate_event(dict(make_event("a", "opened", "notebook", "n"), schema_version=9))[0]


def test_verb_specific_requirements(event):
    assert any("'result' is a required" in r for r in validate_event(event("a", "graded", "assignment", "a1")))
    assert any("'score' is a required" in r
               for r in validate_event(event("a", "graded", "assignment", "a1", result={"success": True})))
    assert any("success" in r for r in validate_event(event("a", "attempted", "exercise", "e", result={"score": 1})))
    assert any("course_id" in r for r in validate_event(make_event("a", "submitted", "assignment", "a1", context={"session": "s"})))
    future = event("a", "opened", "notebook", "n", time=datetime.now(timezone.utc) + timedelta(days=3))
    assert any("future" in r for r in validate_event(future))
    negative = event("a", "graded", "assignment", "a1", result={"score": -1})
    assert any("result/score" in r for r in validate_event(negative))


def test_schemas_are_versioned():
    assert SCHEMAS[1]["properties"]["schema_version"] == {"const": 1}


def test_append_stores_good_events_rejects_bad_ones_and_ignores_duplicates(db_session_factory, event):
    good = [event("alice", "enrolled", "course", "c1", time=at(0)),
            event("alice", "fetched", "assignment", "a1", time=at(1))]
    bad = {"id": "x1", "actor": "alice"}
    with lhdb.session_scope(db_session_factory) as session:
        outcome = EventLog(default_source="test").append(session, [good[0], bad, good[1], good[1]])
    assert outcome.stored == [good[0]["id"], good[1]["id"]]
    assert outcome.duplicates == [good[1]["id"]]  # repeated within the batch
    assert outcome.rejected[0]["index"] == 1 and outcome.rejected[0]["id"] == "x1"
    assert any("verb" in r for r in outcome.rejected[0]["reasons"])
    stored, rejected = outcome  # unpacks as (stored_ids, rejected_with_reasons)
    assert len(stored) == 2 and len(rejected) == 1

    with lhdb.session_scope(db_session_factory) as session:
        again = EventLog().append(session, good)
    assert again.stored == [] and again.duplicates == [good[0]["id"], good[1]["id"]]
    with db_session_factory() as session:
        assert session.execute(select(func.count()).select_from(Event)).scalar_one() == 2
        row = session.get(Event, good[1]["id"])
        assert row.source == "test" and row.course_id == "c1" and row.object_type == "assignment"
        wire = to_wire(row)
        assert wire["time"] == at(1).isoformat().replace("+00:00", "Z")
        assert validate_event(wire) == []


def test_append_in_a_failed_transaction_stores_nothing(db_session_factory, event):
    try:
        with lhdb.session_scope(db_session_factory) as session:
            EventLog().append(session, [event("bob", "enrolled", "course", "c1")])
            raise RuntimeError("the caller's own work failed")
    except RuntimeError:
        pass
    with db_session_factory() as session:
        assert session.execute(select(func.count()).select_from(Event)).scalar_one() == 0


def test_events_added_with_the_orm_reach_the_reports_too(db_session_factory):
    """Services that add Event objects to their own sessions keep the summary tables exact as well."""
    from learnhub.extensions.analytics import reports

    with lhdb.session_scope(db_session_factory) as session:
        session.add(Event(id="orm-1", actor="ann", verb="submitted", object_type="assignment", object_id="a1",
                          course_id="c9", context={"course_id": "c9"}, source="feedback", time=at(1)))
        session.add(Event(id="orm-2", actor="ann", verb="graded", object_type="assignment", object_id="a1",
                          course_id="c9", result={"score": 4, "max_score": 4}, source="feedback", time=at(1, 1)))
    try:  # a failed transaction leaves no trace in the summaries either
        with lhdb.session_scope(db_session_factory) as session:
            session.add(Event(id="orm-3", actor="bob", verb="submitted", object_type="assignment",
                              object_id="a1", course_id="c9", source="feedback", time=at(2)))
            session.flush()
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    with lhdb.session_scope(db_session_factory) as session:
        report = reports.course_report(session, "c9")
    assert report["learners"] == 1
    assert report["assignments"][0]["funnel"]["submitted"] == 1 and report["assignments"][0]["funnel"]["passed"] == 1


def test_the_grading_engines_results_fill_the_course_report(db_session_factory):
    """Submissions and grades exactly as the feedback service writes them (a ``submitted`` and a ``graded``
    event about the submission, ``graded_event`` of real job rows) count for the assignment's funnel and
    scores and, test cell by test cell, for each exercise's pass rate, attempts and errors."""
    from learnhub.extensions.analytics import reports
    from learnhub.extensions.feedback.workers import graded_event
    from learnhub.graders.models import GRADED, GradingJob

    def job(job_id, learner, minutes, variables_passed):
        tests = [{"grade_id": "variables", "passed": variables_passed, "points": 2.0 if variables_passed else 0.0,
                  "max_points": 2.0, "error": None if variables_passed else "AssertionError"},
                 {"grade_id": "greeting", "passed": True, "points": 1.0, "max_points": 1.0, "error": None}]
        return GradingJob(id=job_id, course_id="c7", assignment_id="01-basics", learner_id=learner,
                          source_path="/x", mode="grade", status=GRADED, score=sum(t["points"] for t in tests),
                          max_score=3.0, result={"notebooks": [{"name": "basics", "tests": tests}]},
                          created_at=at(1, minutes / 60), finished_at=at(1, (minutes + 1) / 60))

    attempts = [job("j1", "ann", 0, False), job("j2", "ann", 10, True), job("j3", "bob", 5, False)]
    with lhdb.session_scope(db_session_factory) as session:
        outcome = EventLog(default_source="feedback").append(session, [
            event for graded in attempts for event in (
                make_event(graded.learner_id, Verb.SUBMITTED, "submission", graded.id, course_id="c7",
                           context={"assignment_id": "01-basics"}, time=graded.created_at),
                graded_event(graded))])
    assert outcome.rejected == [] and len(outcome.stored) == 6
    with lhdb.session_scope(db_session_factory) as session:
        report = reports.course_report(session, "c7")

    (assignment,) = report["assignments"]
    assert assignment["assignment_id"] == "01-basics"
    assert assignment["funnel"]["submitted"] == 2 and assignment["funnel"]["graded"] == 2
    assert assignment["funnel"]["passed"] == 1  # ann, at her second attempt; bob not yet
    assert sum(assignment["scores"]["counts"]) == 2
    exercises = {e["exercise_id"]: e for e in report["exercises"]}
    assert set(exercises) == {"01-basics/variables", "01-basics/greeting"}
    variables = exercises["01-basics/variables"]
    assert (variables["learners_attempted"], variables["learners_passed"], variables["attempts"]) == (2, 1, 3)
    assert variables["attempts_to_pass"]["median"] == 2
    assert variables["common_errors"] == [{"error_type": "AssertionError", "count": 2}]
    assert exercises["01-basics/greeting"]["pass_rate"] == 1.0
