"""The grading intake: submissions the courses service recorded, queued for the grading workers.

A submission made through nbgrader's exchange (``nbgrader submit``, JupyterLab's Submit button) is
recorded by the courses service, whose ``submitted`` event says whether it is to be autograded. The
intake looks for those events that have no grading job yet, fetches the files from the courses
service's API with this service's token, and queues the job under the submission's id — so a
submission is queued once however many times it is seen (this service's own submit, a retry, a
restart), and one the intake could not queue yet (the courses service was away) is queued on a
later round: nothing depends on a cursor that could pass an event by.
"""
from __future__ import annotations

import asyncio
import base64
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from learnhub.course_sources import SourceLocator
from learnhub.event_schemas import Verb
from learnhub.graders.models import QUEUED, GradingJob
from learnhub.graders.queue import JobExists, JobQueue
from learnhub.hubapi import APIClientError, PeerUnavailable, ServiceAPI
from learnhub.models import Event
from learnhub.timeutil import utcnow
from learnhub.uploads import UploadError, check_upload

log = logging.getLogger("learnhub.feedback.intake")


@dataclass
class PendingJob:
    """A submission recorded for grading whose job is not queued yet: it reads as a queued job."""

    id: str
    course_id: str
    assignment_id: str
    learner_id: str
    created_at: datetime
    mode: str = "grade"
    status: str = QUEUED
    score: float | None = None
    max_score: float | None = None
    finished_at: datetime | None = None
    error: str | None = None
    result: dict | None = None
    progress: dict = field(default_factory=lambda: {"type": "queued"})


class GradingIntake:
    """Queue the autograded submissions of the courses service that have no job yet."""

    def __init__(self, session_factory, queue: JobQueue, sources: SourceLocator, courses: ServiceAPI,
                 max_upload_bytes: int, lookback: timedelta = timedelta(days=2), batch_size: int = 20):
        self.sessions = session_factory
        self.queue = queue
        self.sources = sources
        self.courses = courses
        self.max_upload_bytes = max_upload_bytes
        self.lookback = lookback
        self.batch_size = batch_size
        #: submitted events seen that are not to be graded here (no autograde, no source)
        self._passed_over: set[str] = set()

    @staticmethod
    def _recorded(query):
        return query.where(Event.verb == Verb.SUBMITTED, Event.object_type == "submission",
                           Event.source == "courses")

    def waiting(self) -> list[Event]:
        """``submitted`` events of the last ``lookback`` without a grading job, oldest first."""
        with self.sessions() as session:
            query = self._recorded(select(Event)).outerjoin(GradingJob, GradingJob.id == Event.object_id).where(
                GradingJob.id.is_(None), Event.stored_at >= utcnow() - self.lookback)
            if self._passed_over:
                query = query.where(Event.id.not_in(self._passed_over))
            return list(session.scalars(query.order_by(Event.stored_at, Event.id).limit(self.batch_size)))

    def pending_job(self, session: Session, submission_id: str) -> PendingJob | None:
        """The not-yet-queued job of a recorded, autograded submission, or None."""
        event = session.scalar(self._recorded(select(Event)).where(and_(Event.object_id == submission_id)))
        if event is None or not (event.result or {}).get("autograde"):
            return None
        return PendingJob(id=submission_id, course_id=event.course_id,
                          assignment_id=(event.context or {}).get("assignment_id", ""), learner_id=event.actor,
                          created_at=event.time)

    async def run_once(self) -> int:
        """Queue what is waiting; returns how many jobs were queued."""
        loop = asyncio.get_running_loop()
        queued = 0
        for event in await loop.run_in_executor(None, self.waiting):
            try:
                queued += await self.queue_one(event)
            except PeerUnavailable as exc:
                log.warning("the courses service is not answering (%s); submission %s is queued later",
                            exc.reason, event.object_id)
                break
        return queued

    async def queue_one(self, event: Event) -> bool:
        assignment = (event.context or {}).get("assignment_id", "")
        if not (event.result or {}).get("autograde"):
            self._passed_over.add(event.id)
            return False
        try:
            source = self.sources.find(event.course_id, assignment)
        except UploadError:
            source = None
        if source is None:
            log.warning("submission %s to %s/%s is not graded: no instructor source here (%s)", event.object_id,
                        event.course_id, assignment, ", ".join(map(str, self.sources.roots)))
            self._passed_over.add(event.id)
            return False
        path = (f"courses/{quote(event.course_id, safe='')}/assignments/{quote(assignment, safe='')}"
                f"/submissions/{quote(event.object_id, safe='')}/files")
        try:
            answer = await self.courses.request("GET", path)
        except APIClientError as exc:
            log.error("submission %s cannot be fetched from the courses service (%s %s); it is not graded",
                      event.object_id, exc.status, exc.message)
            self._passed_over.add(event.id)
            return False
        files = [(f["path"], base64.b64decode(f["content_b64"])) for f in answer["files"]]
        try:
            upload = check_upload(files, self.max_upload_bytes, require_notebook=True)
        except UploadError as exc:
            log.warning("submission %s is recorded but cannot be graded: %s", event.object_id, exc.message)
            self._passed_over.add(event.id)
            return False

        def enqueue() -> bool:
            try:
                self.queue.enqueue(course_id=event.course_id, assignment_id=assignment, learner_id=event.actor,
                                   source_path=str(source), submission_blob=upload.to_zip(), mode="grade",
                                   job_id=event.object_id, submission_id=event.object_id)
                return True
            except JobExists:
                return False

        return await asyncio.get_running_loop().run_in_executor(None, enqueue)
