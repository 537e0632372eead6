"""The courses service's GradeRecorder: graded events name their submission in context.submission_id.

A submission's first grading is a job under the submission's own id; a regrade is a job of its own for
the same submission. On the backend under test (SQLite, or PostgreSQL with LEARNHUB_TEST_DB_URL).
"""
from __future__ import annotations

from datetime import timedelta

from learnhub import db as lhdb
from learnhub.event_schemas import Verb
from learnhub.extensions.courses import models as m
from learnhub.extensions.courses.demo import DEMO_FOLDER
from learnhub.extensions.courses.grades import GradeRecorder
from learnhub.extensions.courses.importer import import_course
from learnhub.models import Event
from learnhub.timeutil import utcnow


def graded(job: str, submission: str | None, score: float, *, regrade: str | None = None,
           verb: Verb = Verb.GRADED, minutes: int = 0) -> Event:
    context = {"course_id": "intro-python", "assignment_id": "01-basics", "role": "learner"}
    if submission:
        context["submission_id"] = submission
    if regrade:
        context["regrade_id"] = regrade
    return Event(id=f"graded:{job}", time=utcnow() + timedelta(minutes=minutes), actor="ada", verb=verb,
                 object_type="submission", object_id=job, course_id="intro-python", source="feedback",
                 result={"score": score, "max_score": 10.0, "tests": [{"grade_id": "shout", "points": 1.0}]}
                 if verb == Verb.GRADED else {"error": "no sandbox"}, context=context, schema_version=2)


def test_a_regrade_updates_the_submission_it_names(db_url, db_session_factory, tmp_path):
    import_course(DEMO_FOLDER, db_url, tmp_path / "store", status="published", release=True, log=lambda *a: None)
    sessions = db_session_factory
    with lhdb.session_scope(sessions) as session:
        session.add(m.Submission(id="sub-1", course_id="intro-python", assignment_id="01-basics", user_name="ada",
                                 attempt=1, timestamp="2026-12-01 10:00:00.000000 UTC", files=[],
                                 grading_job_id="sub-1", autograde_status="queued"))
    with lhdb.session_scope(sessions) as session:
        # the first grading: the job is the submission (as since migration 0009), and says so
        GradeRecorder.record(session, graded("sub-1", "sub-1", 6.0))
        # a regrade: another job, the same submission
        GradeRecorder.record(session, graded("job-r", "sub-1", 7.0, regrade="r-1", minutes=1))
        # a job that names no submission of ours (a check, another platform's) changes nothing
        GradeRecorder.record(session, graded("job-x", "no-such-submission", 1.0, regrade="r-1"))
    with sessions() as session:
        sub = session.get(m.Submission, "sub-1")
        assert (sub.autograde_status, sub.autograde_score, sub.grading_job_id) == ("graded", 7.0, "job-r")
        assert sub.autograde_cells == {"shout": 1.0}
    with lhdb.session_scope(sessions) as session:
        # a regrade that could not run leaves the grade the submission has
        GradeRecorder.record(session, graded("job-r2", "sub-1", 0.0, regrade="r-2", verb=Verb.GRADING_FAILED))
    with sessions() as session:
        sub = session.get(m.Submission, "sub-1")
        assert (sub.autograde_status, sub.autograde_score, sub.grading_job_id) == ("graded", 7.0, "job-r")
    with lhdb.session_scope(sessions) as session:
        # events from before context.submission_id: found by the job's id, as before
        GradeRecorder.record(session, graded("sub-1", None, 5.0))
    with sessions() as session:
        assert session.get(m.Submission, "sub-1").autograde_score == 5.0
