"""Gradings and regrades as the feedback service records them: real ``grading_jobs`` rows (a first
grading's job id is its submission's; a regrade's job names the submission and the regrade) turned into
events by its own ``graded_event``, for the consumers' tests (analytics, recommender, notifications).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from learnhub.events import EventLog, Verb, make_event


def grading_job(submission: str, learner: str, course: str, assignment: str, tests: dict, finished: datetime,
                regrade: str | None = None):
    """A finished ``grade`` job of ``submission``: ``tests`` maps grade_id → ``True`` (passed, 1 point)
    or the error type of the failure. A regrade's job has its own id, as ``regrades.job_id_for`` gives."""
    from learnhub.extensions.feedback.regrades import job_id_for
    from learnhub.graders.models import GRADED, GradingJob

    cells = [{"grade_id": grade_id, "passed": outcome is True, "points": 1.0 if outcome is True else 0.0,
              "max_points": 1.0, "error": None if outcome is True else outcome} for grade_id, outcome in tests.items()]
    return GradingJob(id=job_id_for(regrade, submission) if regrade else submission, course_id=course,
                      assignment_id=assignment, learner_id=learner, source_path="/x", mode="grade", status=GRADED,
                      score=sum(c["points"] for c in cells), max_score=float(len(cells)),
                      result={"notebooks": [{"name": "basics", "tests": cells}]}, submission_id=submission,
                      regrade_id=regrade, created_at=finished - timedelta(minutes=1), finished_at=finished)


def submitted(submission: str, learner: str, course: str, assignment: str, time: datetime, attempt: int) -> dict:
    """The courses service's ``submitted`` event of a submission."""
    return make_event(learner, Verb.SUBMITTED, "submission", submission, course_id=course,
                      context={"assignment_id": assignment}, result={"attempt": attempt, "autograde": True},
                      source="courses", time=time)


def append(session, events) -> None:
    """Append as the producers do: validated, and an event the schema refuses is a broken test."""
    outcome = EventLog(default_source="feedback").append(session, list(events))
    assert outcome.rejected == [], outcome.rejected
