"""Autograding results, as the feedback service reports them through the event log.

The feedback service grades the submissions recorded here (it reads their ``submitted`` events) and
appends a ``graded`` (or ``grading-failed``) event about each grading job, naming the submission in
``context.submission_id`` (the job's id is the submission's for its first grading; a regrade after a
test fix is a new job for the same submission).
:class:`GradeRecorder` subscribes to those two verbs and keeps the outcome on the submission row, so
the courses service answers "how did I do" (assignments, progress) from its own tables without
reading the grading queue's.
"""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from learnhub.event_feed import EventFeed
from learnhub.event_schemas import Verb
from learnhub.models import Event

from . import models as m


class GradeRecorder:
    """Copies ``graded`` / ``grading-failed`` events onto their submissions (idempotent: the last
    event about a submission wins, and reading one twice changes nothing). A regrade's ``graded``
    replaces the score and points it had; a regrade's ``grading-failed`` changes nothing."""

    def __init__(self, session_factory, settle_seconds: float = 2.0,
                 first_run_lookback: timedelta = timedelta(days=7)):
        self.feed = EventFeed(session_factory, "courses-grades", [Verb.GRADED, Verb.GRADING_FAILED],
                              settle_seconds=settle_seconds, first_run_lookback=first_run_lookback)

    def run_once(self) -> int:
        return self.feed.poll(self.record)

    @staticmethod
    def record(session: Session, event: Event) -> None:
        if event.object_type != "submission":
            return
        context = event.context or {}
        # The event's object is the grading job; context.submission_id names our submission (a
        # regrade is a new job for an old submission). Events from before it was sent name the job
        # only, whose id is the submission's or the one kept in grading_job_id.
        submission_id = context.get("submission_id")
        if submission_id:
            sub = session.get(m.Submission, submission_id)
        else:
            sub = session.scalar(select(m.Submission).where(
                or_(m.Submission.id == event.object_id, m.Submission.grading_job_id == event.object_id)))
        if sub is None:
            return  # a check, or work submitted elsewhere: nothing of ours to update
        result = event.result or {}
        if context.get("regrade_id") and event.verb != Verb.GRADED:
            # A regrade that could not run (a sandbox, not the learner) leaves the grade it had.
            return
        if context.get("regrade_id"):
            # The submission's latest grading is the regrade: its per-test results are that job's.
            sub.grading_job_id = event.object_id
        if event.verb == Verb.GRADED:
            sub.autograde_status = "graded"
            sub.autograde_score, sub.autograde_max_score = result.get("score"), result.get("max_score")
            sub.autograde_cells = {t["grade_id"]: t.get("points") for t in result.get("tests") or []
                                   if isinstance(t, dict) and t.get("grade_id")}
        else:
            sub.autograde_status = "failed"
        sub.grading_job_id = sub.grading_job_id or event.object_id
        sub.autograded_at = event.time
