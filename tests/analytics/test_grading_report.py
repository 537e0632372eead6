"""The analytics summaries and course report from events as other components write them: ``Event``
objects added in a service's own session, and the feedback service's ``graded`` events of real grading
job rows. (The event log itself — validation, append, listeners — is tested in tests/core/test_events.py.)"""
from __future__ import annotations

from learnhub import db as lhdb
from learnhub.events import EventLog, Verb, make_event
from learnhub.models import Event

from analytics_helpers import at


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
