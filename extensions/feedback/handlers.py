"""HTTP and WebSocket handlers of the feedback service: thin layers over the engines."""
from __future__ import annotations

import asyncio

from tornado.ioloop import IOLoop

from learnhub import db as lhdb
from learnhub.events import Verb, record
from learnhub.graders.models import FAILED, GRADED, GradingJob
from learnhub.service import APIError, APIHandler, APIWebSocketHandler
from learnhub.timeutil import iso

from .helpdesk import HelpDeskError
from .intake import IntakeError, accept_files
from .workers import SOURCE, flatten_tests

STAFF = ("instructor", "ta")
ANY_ROLE = ("instructor", "ta", "learner")
STREAMED_TEST_KEYS = ("notebook", "grade_id", "points", "max_points", "passed", "hidden")


def submission_payload(job: GradingJob) -> dict:
    result = job.result or {}
    notebooks = result.get("notebooks", [])
    return {
        "id": job.id, "kind": "check" if job.mode == "check" else "submission",
        "course": job.course_id, "assignment": job.assignment_id, "learner": job.learner_id,
        "status": job.status, "score": job.score, "max_score": job.max_score,
        "submitted_at": iso(job.created_at), "graded_at": iso(job.finished_at), "error": job.error,
        "needs_manual_grade": any(nb.get("needs_manual_grade") for nb in notebooks),
        "limits_hit": sorted({hit for nb in notebooks for hit in nb.get("limits_hit", [])}),
        "limit_messages": [msg for nb in notebooks for msg in nb.get("limit_messages", [])],
        "tests": [{key: test.get(key) for key in ("notebook", "grade_id", "points", "max_points", "passed",
                                                   "hidden", "message", "error", "explanation", "hint")}
                  for test in flatten_tests(result)],
    }


class JobAccessMixin:
    """Load a grading job the caller may see: their own, or any in a course they teach."""

    mode = "grade"

    def initialize(self, mode: str = "grade"):
        self.mode = mode

    def _load(self, job_id: str) -> GradingJob | None:
        with self.service.session_factory() as session:
            return session.get(GradingJob, job_id)

    async def visible_job(self, job_id: str) -> GradingJob:
        job = await IOLoop.current().run_in_executor(None, self._load, job_id)
        if job is None or job.mode != self.mode:
            raise APIError(404, f"No such {'check' if self.mode == 'check' else 'submission'}: {job_id}")
        if job.learner_id != self.current_user_name and await self.course_role(job.course_id) not in STAFF:
            # Someone else's work: indistinguishable from one that does not exist.
            raise APIError(404, f"No such {'check' if self.mode == 'check' else 'submission'}: {job_id}")
        return job


class SubmitMixin:
    """Accept a multipart upload of notebooks for a course's assignment and queue it."""

    async def accept(self, mode: str) -> GradingJob | str:
        service = self.service
        length = int(self.request.headers.get("Content-Length") or len(self.request.body or b""))
        if length > service.max_upload_bytes:
            raise APIError(413, f"The upload is larger than the limit of {service.max_upload_bytes} bytes.",
                           {"limit_bytes": service.max_upload_bytes})
        course = self.get_body_argument("course", "") or self.get_argument("course", "")
        assignment = self.get_body_argument("assignment", "") or self.get_argument("assignment", "")
        if not course or not assignment:
            raise APIError(422, "Send the form fields 'course' and 'assignment' with the notebook files.",
                           {"missing": [name for name, v in (("course", course), ("assignment", assignment)) if not v]})
        await self.require_course_role(course, *ANY_ROLE)
        try:
            source = service.sources.find(course, assignment)
            if source is None:
                raise APIError(404, f"Course {course!r} has no assignment {assignment!r}.")
            uploads = [(f.filename, f.body) for field in self.request.files.values() for f in field]
            submission = accept_files(uploads, service.max_upload_bytes)
        except IntakeError as exc:
            raise APIError(exc.status, exc.message, exc.details)
        learner = self.current_user_name

        def store() -> str:
            # The submission is durable (in the job row) before the learner hears it was accepted.
            job_id = service.queue.enqueue(course_id=course, assignment_id=assignment, learner_id=learner,
                                           source_path=str(source), submission_blob=submission.to_zip(),
                                           mode=mode)
            if mode == "grade":
                with lhdb.session_scope(service.session_factory) as session:
                    record(session, learner, Verb.SUBMITTED, "submission", job_id, course_id=course,
                           result={"files": sorted(submission.files)},
                           context={"assignment_id": assignment, "role": "learner"}, source=SOURCE,
                           id=f"submitted:{job_id}")
            return job_id

        return await IOLoop.current().run_in_executor(None, store)


class SubmissionsHandler(SubmitMixin, APIHandler):
    async def post(self):
        job_id = await self.accept("grade")
        self.set_header("Location", f"{self.service.prefix}api/submissions/{job_id}")
        self.write_json({"id": job_id, "status": "queued"}, 202)


class ChecksHandler(SubmitMixin, APIHandler):
    async def post(self):
        wait = self.service.check_limiter.retry_after(self.current_user_name)
        if wait:
            raise APIError(429, f"Too many checks; try again in {wait:.0f} s.",
                           {"retry_after_seconds": round(wait, 1)}, headers={"Retry-After": str(int(wait) + 1)})
        job_id = await self.accept("check")
        self.set_header("Location", f"{self.service.prefix}api/checks/{job_id}")
        self.write_json({"id": job_id, "status": "queued"}, 202)


class SubmissionHandler(JobAccessMixin, APIHandler):
    async def get(self, submission_id):
        self.write_json(submission_payload(await self.visible_job(submission_id)))


class SubmissionEventsHandler(JobAccessMixin, APIWebSocketHandler):
    """queued → started → one ``test`` event per test as it finishes → done (or failed)."""

    poll_seconds = 0.05

    async def get(self, submission_id):
        await self.visible_job(submission_id)
        return await super().get(submission_id)

    def open(self, submission_id):
        self._task = asyncio.create_task(self.stream(submission_id))

    def on_close(self):
        if getattr(self, "_task", None):
            self._task.cancel()

    async def stream(self, job_id: str):
        sent_tests: set = set()
        started = False
        last_progress = None
        loop = IOLoop.current()
        self.send({"type": "queued", "id": job_id})
        while True:
            job = await loop.run_in_executor(None, self._load, job_id)
            progress = job.progress or {}
            if progress != last_progress:
                last_progress = progress
                if progress.get("type") in ("started", "test") and not started:
                    started = True
                    self.send({"type": "started", "id": job_id})
                if progress.get("type") == "test":
                    key = (progress.get("notebook"), progress.get("grade_id"))
                    if key not in sent_tests:
                        sent_tests.add(key)
                        self.send({"type": "test", "id": job_id,
                                   **{k: progress.get(k) for k in STREAMED_TEST_KEYS}})
            if job.status in (GRADED, FAILED):
                if not started:
                    self.send({"type": "started", "id": job_id})
                # Polling can miss intermediate tests; the stored result has them all.
                for test in flatten_tests(job.result):
                    key = (test.get("notebook"), test.get("grade_id"))
                    if key not in sent_tests:
                        sent_tests.add(key)
                        self.send({"type": "test", "id": job_id, **{k: test.get(k) for k in STREAMED_TEST_KEYS}})
                self.send({"type": "done", **submission_payload(job)})
                self.close()
                return
            await asyncio.sleep(self.poll_seconds)


class HelpRequestsHandler(APIHandler):
    async def get(self):
        course = self.get_argument("course", None)
        status = self.get_argument("status", None)
        limit = max(1, min(int(self.get_argument("limit", "50")), 200))
        desk = self.service.helpdesk
        if course and await self.course_role(course) in STAFF:
            items = desk.list(course=course, status=status, limit=limit + 1, before=self.get_argument("before", None))
        else:
            items = desk.list(learner=self.current_user_name, course=course, status=status, limit=limit + 1,
                              before=self.get_argument("before", None))
        more = len(items) > limit
        items = items[:limit]
        self.write_json({"items": items, "next": items[-1]["created_at"] if more else None})

    async def post(self):
        payload = self.get_json_body()
        if not isinstance(payload, dict):
            raise APIError(422, "Send a JSON object with course, assignment and question.")
        course = payload.get("course")
        if not isinstance(course, str) or not course:
            raise APIError(422, "'course' is required.", {"field": "course"})
        await self.require_course_role(course, *ANY_ROLE)
        try:
            request = self.service.helpdesk.ask(self.current_user_name, payload)
        except HelpDeskError as exc:
            raise APIError(422, str(exc), {"field": exc.field})
        self.service.live.publish(f"course:{course}", {"type": "help-request", "request": request})
        self.write_json(request, 201)


class VisibleHelpRequest:
    async def visible(self, request_id: str) -> dict:
        request = self.service.helpdesk.get(request_id)
        if request is None or (request["learner"] != self.current_user_name
                               and await self.course_role(request["course"]) not in STAFF):
            raise APIError(404, f"No such help request: {request_id}")
        return request



class HelpRequestHandler(VisibleHelpRequest, APIHandler):
    async def get(self, request_id):
        self.write_json(await self.visible(request_id))


class HelpAnswersHandler(VisibleHelpRequest, APIHandler):
    async def post(self, request_id):
        request = await self.visible(request_id)
        role = await self.require_course_role(request["course"], *STAFF)
        payload = self.get_json_body()
        try:
            answered = self.service.helpdesk.answer(request_id, self.current_user_name, payload
                                                    if isinstance(payload, dict) else {}, role=role)
        except HelpDeskError as exc:
            raise APIError(422, str(exc), {"field": exc.field})
        message = {"type": "help-answer", "request": answered}
        self.service.live.publish(f"learner:{answered['learner']}", message)
        self.service.live.publish(f"course:{answered['course']}", message)
        self.write_json(answered, 201)


class HelpEventsHandler(APIWebSocketHandler):
    """Live help: a learner hears answers to their questions; with ``?course=`` staff hear the
    course's new questions and answers."""

    async def get(self):
        self.topics = [f"learner:{self.current_user_name}"]
        course = self.get_argument("course", None)
        if course:
            await self.require_course_role(course, *STAFF)
            self.topics = [f"course:{course}"]
        return await super().get()

    def open(self):
        live = self.service.live
        self.queues = [(topic, live.subscribe(topic)) for topic in self.topics]
        self._task = asyncio.create_task(self.relay())
        self.send({"type": "subscribed", "topics": self.topics})

    async def relay(self):
        getters = {}
        while True:
            for topic, queue in self.queues:
                if topic not in getters:
                    getters[topic] = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait(getters.values(), return_when=asyncio.FIRST_COMPLETED)
            for topic in [t for t, task in getters.items() if task in done]:
                self.send(getters.pop(topic).result())

    def on_close(self):
        if getattr(self, "_task", None):
            self._task.cancel()
        for topic, queue in getattr(self, "queues", []):
            self.service.live.unsubscribe(topic, queue)
