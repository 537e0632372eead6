"""HTTP and WebSocket handlers of the feedback service: thin layers over the engines."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import quote

from tornado.ioloop import IOLoop

from learnhub import db as lhdb
from learnhub.course_roles import ROLES, STAFF
from learnhub.graders.models import FAILED, GRADED, GradingJob
from learnhub.graders.queue import JobExists
from learnhub.hubapi import APIClientError, PeerUnavailable, multipart
from learnhub.service import APIError, APIHandler, APIWebSocketHandler, DataRightsHandler
from learnhub.timeutil import iso, parse_iso, utcnow
from learnhub.uploads import UploadError, check_upload

from .grading_stats import grading_stats
from .helpdesk import HelpDeskError
from .models import GradingRegrade
from .regrades import create_regrade, gradings_of, latest_autograded, list_submissions, regrade_payload
from .workers import flatten_tests

ANY_ROLE = ROLES
GRADING_READ_SCOPE = "custom:learnhub:grading:read"
STREAMED_TEST_KEYS = ("notebook", "grade_id", "points", "max_points", "passed", "hidden")


#: what a learner reads when grading failed for a reason of ours (the details, with server paths and
#: the engine's words, are for staff)
GRADING_FAILED = "The grader could not grade this submission; your instructor can see why. It is recorded."


def submission_payload(job: GradingJob, staff: bool = False) -> dict:
    """A grading job as its learner (or, with ``staff``, the course's staff) may read it: hidden tests
    give pass/fail and points only (the engine leaves their errors out), and what the grader saw of
    tampering, or why it failed, is for staff."""
    result = job.result or {}
    notebooks = result.get("notebooks", [])
    tampered = sorted(set(result.get("tampered") or []))
    payload = {
        "id": job.id, "kind": "check" if job.mode == "check" else "submission",
        "course": job.course_id, "assignment": job.assignment_id, "learner": job.learner_id,
        "status": job.status, "score": job.score, "max_score": job.max_score,
        "submitted_at": iso(job.created_at), "graded_at": iso(job.finished_at),
        "error": (job.error if staff else GRADING_FAILED) if job.error else None,
        "needs_review": bool(tampered),
        "needs_manual_grade": any(nb.get("needs_manual_grade") for nb in notebooks),
        "limits_hit": sorted({hit for nb in notebooks for hit in nb.get("limits_hit", [])}),
        "limit_messages": [msg for nb in notebooks for msg in nb.get("limit_messages", [])],
        "tests": [{key: test.get(key) for key in ("notebook", "grade_id", "points", "max_points", "passed",
                                                   "hidden", "message", "error", "explanation", "hint")}
                  for test in flatten_tests(result)],
    }
    if staff:
        payload["tampered"] = tampered
        for entry, test in zip(payload["tests"], flatten_tests(result)):
            entry["hidden_error"] = test.get("hidden_error")
    return payload


class JobAccessMixin:
    """Load a grading job the caller may see: their own, or any in a course they teach."""

    mode = "grade"

    def initialize(self, mode: str = "grade"):
        self.mode = mode

    def _load(self, job_id: str) -> GradingJob | None:
        with self.service.session_factory() as session:
            job = session.get(GradingJob, job_id)
            if job is None and self.mode == "grade":
                # Recorded by the courses service, not queued here yet (the intake queues it
                # within a moment): it is a queued submission already.
                return self.service.intake.pending_job(session, job_id)
            return job

    async def visible_job(self, job_id: str) -> GradingJob:
        job = await IOLoop.current().run_in_executor(None, self._load, job_id)
        if job is None or job.mode != self.mode:
            raise APIError(404, f"No such {'check' if self.mode == 'check' else 'submission'}: {job_id}")
        self.staff = await self.course_role(job.course_id) in STAFF
        if job.learner_id != self.current_user_name and not self.staff:
            # Someone else's work: indistinguishable from one that does not exist.
            raise APIError(404, f"No such {'check' if self.mode == 'check' else 'submission'}: {job_id}")
        return job


class SubmitMixin:
    """Accept a multipart upload of notebooks for a course's assignment.

    A check (visible tests only, not an attempt) is queued here. A graded submission is first
    recorded by the courses service — which owns the assignment's rules (release, deadline, archived
    course, attempt limit) and the submission — with this service's token for the learner, then
    queued under the id the courses service gave it; nothing is queued that was not recorded.
    """

    async def accept(self, mode: str) -> str:
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
            upload = check_upload(uploads, service.max_upload_bytes, require_notebook=True)
        except UploadError as exc:
            raise APIError(exc.status, exc.message, exc.details)
        learner = self.current_user_name
        job_id = None
        if mode == "grade":
            job_id = (await self.record_at_courses(course, assignment, learner, upload))["id"]

        def enqueue() -> str:
            # The files are durable (in the job row) before the learner hears they were accepted.
            try:
                return service.queue.enqueue(course_id=course, assignment_id=assignment, learner_id=learner,
                                             source_path=str(source), submission_blob=upload.to_zip(),
                                             mode=mode, job_id=job_id, submission_id=job_id)
            except JobExists:  # the grading intake saw the submission first: it is queued
                return job_id

        return await IOLoop.current().run_in_executor(None, enqueue)

    async def record_at_courses(self, course: str, assignment: str, learner: str, upload) -> dict:
        """The submission as the courses service recorded it, or its refusal relayed."""
        body, content_type = multipart({"user": learner},
                                       [("files", name, data) for name, data in sorted(upload.files.items())])
        path = f"courses/{quote(course, safe='')}/assignments/{quote(assignment, safe='')}/submissions"
        try:
            return await self.service.courses.request("POST", path, raw_body=body, content_type=content_type)
        except APIClientError as exc:
            # The course's rules said no (not released, past a hard deadline, archived, no attempts
            # left, ...): the learner gets the courses service's own answer.
            headers = None
            if exc.status == 429:  # the learner's submission rate limit: when to try again, as courses said
                headers = {"Retry-After": str(exc.details.get("retry_after") or 1)}
            raise APIError(exc.status if 400 <= exc.status < 500 else 502, exc.message, exc.details,
                           headers=headers)
        except PeerUnavailable:
            raise APIError(503, "The courses service is not answering, so the submission was not recorded; "
                                "try again in a moment.", {"service": "courses"}, headers={"Retry-After": "5"})


class SubmissionsHandler(SubmitMixin, APIHandler):
    async def post(self):
        job_id = await self.accept("grade")
        self.set_header("Location", f"{self.service.prefix}api/submissions/{job_id}")
        self.write_json({"id": job_id, "status": "queued"}, 202)


class ChecksHandler(SubmitMixin, APIHandler):
    async def post(self):
        wait = await IOLoop.current().run_in_executor(None, self.service.check_limiter.retry_after,
                                                      self.current_user_name)
        if wait:
            raise APIError(429, f"Too many checks; try again in {wait:.0f} s.",
                           {"retry_after_seconds": round(wait, 1)}, headers={"Retry-After": str(int(wait) + 1)})
        job_id = await self.accept("check")
        self.set_header("Location", f"{self.service.prefix}api/checks/{job_id}")
        self.write_json({"id": job_id, "status": "queued"}, 202)


class SubmissionHandler(JobAccessMixin, APIHandler):
    async def get(self, submission_id):
        job = await self.visible_job(submission_id)
        self.write_json(submission_payload(job, staff=self.staff))


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
                self.send({"type": "done", **submission_payload(job, staff=self.staff)})
                self.close()
                return
            await asyncio.sleep(self.poll_seconds)


class HelpRequestsHandler(APIHandler):
    async def get(self):
        course = self.get_argument("course", None)
        status = self.get_argument("status", None)
        try:
            limit = int(self.get_argument("limit", "50"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 200:
            raise APIError(400, "limit must be a whole number from 1 to 200.", {"parameter": "limit"})
        before = self.get_argument("before", None) or None
        if before is not None and parse_iso(before) is None:
            raise APIError(400, "before must be an ISO 8601 time with a zone (the 'next' of the page before).",
                           {"parameter": "before"})
        desk = self.service.helpdesk
        if course and await self.course_role(course) in STAFF:
            items = desk.list(course=course, status=status, limit=limit + 1, before=before)
        else:
            items = desk.list(learner=self.current_user_name, course=course, status=status, limit=limit + 1,
                              before=before)
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


class GradingStatsHandler(APIHandler):
    """``GET api/grading/stats?hours=``: the queue's depth and latency, for admins and the analytics service."""

    async def get(self):
        if not (self.is_admin or self.has_scope(GRADING_READ_SCOPE)):
            raise APIError(403, f"The grading queue's statistics need {GRADING_READ_SCOPE} (or an admin).")
        try:
            hours = float(self.get_argument("hours", "24"))
        except ValueError:
            hours = -1.0
        if not 0.01 <= hours <= 8760:
            raise APIError(400, "hours must be a number from 0.01 to 8760.", {"parameter": "hours"})

        def read():
            with lhdb.session_scope(self.service.session_factory) as session:
                return grading_stats(session, utcnow() - timedelta(hours=hours))

        stats = await IOLoop.current().run_in_executor(None, read)
        self.write_json({**stats, "window_hours": hours})


# -- regrades (course staff) ------------------------------------------------------------------


class RegradesHandler(APIHandler):
    """``POST api/courses/{course}/assignments/{assignment}/regrades``: grade every learner's latest
    autograded submission again (after a test fix); ``GET``: the assignment's regrades, newest first."""

    async def post(self, course_id, assignment_id):
        await self.require_course_role(course_id, *STAFF)
        try:
            if self.service.sources.find(course_id, assignment_id) is None:
                raise APIError(404, f"Course {course_id!r} has no assignment {assignment_id!r} with an instructor "
                                    "source to grade against.")
        except UploadError as exc:
            raise APIError(exc.status, exc.message, exc.details)
        try:
            submissions = await list_submissions(self.service.courses, course_id, assignment_id)
        except APIClientError as exc:
            raise APIError(exc.status if 400 <= exc.status < 500 else 502, exc.message, exc.details)
        except PeerUnavailable:
            raise APIError(503, "The courses service is not answering, so the submissions to regrade are not "
                                "known; try again in a moment.", {"service": "courses"}, headers={"Retry-After": "5"})

        def store() -> tuple[str, list, list]:
            with self.service.session_factory() as session:
                gradings = gradings_of(session, [sub["id"] for sub in submissions])
            targets, skipped = latest_autograded(submissions, gradings)
            return create_regrade(self.service.session_factory, course_id, assignment_id, self.current_user_name,
                                  targets, skipped), targets, skipped

        regrade_id, targets, skipped = await IOLoop.current().run_in_executor(None, store)
        await self.audit("regrade-requested", course_id=course_id,
                         details={"assignment_id": assignment_id, "regrade_id": regrade_id, "submissions": len(targets)})
        self.set_header("Location", f"{self.service.prefix}api/courses/{quote(course_id, safe='')}/assignments/"
                                    f"{quote(assignment_id, safe='')}/regrades/{regrade_id}")
        self.write_json({"id": regrade_id, "status": "queueing" if targets else "done", "total": len(targets),
                         "skipped": len(skipped)}, 202)

    async def get(self, course_id, assignment_id):
        from sqlalchemy import select

        await self.require_course_role(course_id, *STAFF)
        try:
            limit = int(self.get_argument("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise APIError(400, "limit must be a whole number from 1 to 100.", {"parameter": "limit"})

        def read():
            with self.service.session_factory() as session:
                rows = session.scalars(select(GradingRegrade).where(
                    GradingRegrade.course_id == course_id, GradingRegrade.assignment_id == assignment_id)
                    .order_by(GradingRegrade.created_at.desc()).limit(limit))
                return [regrade_payload(session, row) for row in rows]

        self.write_json({"items": await IOLoop.current().run_in_executor(None, read)})


class RegradeHandler(APIHandler):
    """``GET .../regrades/{id}``: progress (total, done, failed) and the score changes."""

    async def get(self, course_id, assignment_id, regrade_id):
        await self.require_course_role(course_id, *STAFF)

        def read():
            with self.service.session_factory() as session:
                row = session.get(GradingRegrade, regrade_id)
                if row is None or row.course_id != course_id or row.assignment_id != assignment_id:
                    return None
                return regrade_payload(session, row)

        payload = await IOLoop.current().run_in_executor(None, read)
        if payload is None:
            raise APIError(404, f"No regrade {regrade_id} of {course_id}/{assignment_id}.")
        self.write_json(payload)


# -- executions for nbgrader's autograde in an instructor's server ------------------------------


def execution_payload(job: GradingJob) -> dict:
    result = job.result or {}
    payload = {"id": job.id, "course": job.course_id, "assignment": job.assignment_id, "status": job.status,
               "error": job.error, "created_at": iso(job.created_at), "finished_at": iso(job.finished_at)}
    if job.status == GRADED:
        payload.update(cells=result.get("cells", []), limits_hit=result.get("limits_hit", []),
                       limit_messages=result.get("limit_messages", []))
    return payload


class ExecutionsHandler(APIHandler):
    """``POST api/courses/{course}/assignments/{assignment}/executions`` (course staff): run one
    notebook in a grading sandbox for nbgrader's autograde in the caller's own server; multipart
    ``files``: the notebook (exactly one) and its data files. 202 ``{id, status}``; the outputs at
    ``GET api/executions/{id}``. nbgrader scores them where it runs, with its own code."""

    async def post(self, course_id, assignment_id):
        service = self.service
        length = int(self.request.headers.get("Content-Length") or len(self.request.body or b""))
        if length > service.max_upload_bytes:
            raise APIError(413, f"The upload is larger than the limit of {service.max_upload_bytes} bytes.",
                           {"limit_bytes": service.max_upload_bytes})
        # Only the people who autograde a course may have code run on its grading workers; a learner
        # checks their own work with POST api/checks.
        await self.require_course_role(course_id, *STAFF)
        try:
            uploads = [(f.filename, f.body) for field in self.request.files.values() for f in field]
            upload = check_upload(uploads, service.max_upload_bytes, require_notebook=True)
            service.sources.find(course_id, assignment_id)  # refuses ids that are not one folder name
        except UploadError as exc:
            raise APIError(exc.status, exc.message, exc.details)
        if len(upload.notebooks()) != 1:
            raise APIError(422, "Send exactly one notebook to execute (and its data files).",
                           {"notebooks": upload.notebooks()})

        def enqueue() -> str:
            return service.queue.enqueue(course_id=course_id, assignment_id=assignment_id,
                                         learner_id=self.current_user_name, source_path="",
                                         submission_blob=upload.to_zip(), mode="execute", max_attempts=2)

        job_id = await IOLoop.current().run_in_executor(None, enqueue)
        self.set_header("Location", f"{service.prefix}api/executions/{job_id}")
        self.write_json({"id": job_id, "status": "queued"}, 202)


class ExecutionHandler(APIHandler):
    """``GET api/executions/{id}``: the execution's status and, when done, the executed cells' outputs.
    Seen by whoever asked for it and the course's staff; anyone else gets 404."""

    async def get(self, execution_id):
        def load():
            with self.service.session_factory() as session:
                return session.get(GradingJob, execution_id)

        job = await IOLoop.current().run_in_executor(None, load)
        if job is None or job.mode != "execute" or (
                job.learner_id != self.current_user_name and await self.course_role(job.course_id) not in STAFF):
            raise APIError(404, f"No such execution: {execution_id}")
        self.write_json(execution_payload(job))


class RetentionHandler(DataRightsHandler):
    """``POST api/data/retention`` ``{"courses": [ids]}``: delete the grading jobs, help requests and
    regrades of these courses. The courses service's retention job calls it with the courses archived
    long enough (it alone knows a course's status); admins and ``custom:learnhub:data:admin`` only."""

    async def post(self):
        self.prepare_data_rights()
        body = self.get_json_body()
        courses = body.get("courses") if isinstance(body, dict) else None
        if not isinstance(courses, list) or not all(isinstance(c, str) and 0 < len(c) <= 128 for c in courses):
            raise APIError(400, "send {\"courses\": [course ids]}", {"field": "courses"})
        result = await IOLoop.current().run_in_executor(None, self.service.apply_retention, sorted(set(courses)))
        self.write_json({"service": self.service.service_name, "courses": sorted(set(courses)), **result})
