"""The feedback service application: submissions, live grading feedback, checks and help."""
from __future__ import annotations

import os

import asyncio

from traitlets import Bool, Float, Integer, List, Unicode, default

from learnhub.course_sources import SourceLocator, default_source_roots
from learnhub.graders.queue import JobQueue
from learnhub.service import DATA_SCOPE, ServiceApp

from . import handlers
from .grading_stats import GradingCollector
from .helpdesk import HelpDesk
from .intake import GradingIntake
from .live import Broadcaster, CheckRateLimiter
from .regrades import RegradeIntake
from .workers import CompletionRecorder, WorkerSupervisor

ID = r"(?P<{}>[A-Za-z0-9-]+)"
ASSIGNMENT = r"api/courses/(?P<course_id>[^/]+)/assignments/(?P<assignment_id>[^/]+)"


def _env_int(name: str, fallback: int) -> int:
    return int(os.environ.get(name, fallback))


class FeedbackService(ServiceApp):
    """Submissions, live autograding feedback and help requests."""

    service_name = "feedback"
    description = __doc__

    worker_processes = Integer(
        help="Grading worker processes started with the service (0: none; run them elsewhere with "
        "`python -m learnhub.graders.worker`). Env: LEARNHUB_GRADER_WORKERS."
    ).tag(config=True)

    @default("worker_processes")
    def _default_workers(self):
        return _env_int("LEARNHUB_GRADER_WORKERS", 2)

    pool_size = Integer(
        help="Warm sandboxes each worker keeps ready. Env: LEARNHUB_GRADER_POOL_SIZE."
    ).tag(config=True)

    @default("pool_size")
    def _default_pool(self):
        return _env_int("LEARNHUB_GRADER_POOL_SIZE", 1)

    sandbox = Unicode(
        help="Sandbox backend for the workers (bubblewrap, docker, local or a class); empty: the "
        "engine's default. Env: LEARNHUB_GRADER_SANDBOX."
    ).tag(config=True)

    @default("sandbox")
    def _default_sandbox(self):
        return os.environ.get("LEARNHUB_GRADER_SANDBOX", "")

    allow_unsafe_local = Bool(False, help="Let workers use the unsandboxed local backend.").tag(config=True)

    checks_per_minute = Integer(
        help="How many checks (visible tests only) one learner may run per checks_window seconds, counted "
        "from the grading_jobs table (so across processes and restarts); more get 429 with Retry-After. "
        "0: no limit. Env: LEARNHUB_CHECKS_PER_MINUTE."
    ).tag(config=True)

    checks_window = Float(
        help="Seconds of the sliding window of checks_per_minute (a minute unless changed). "
        "Env: LEARNHUB_CHECKS_WINDOW_SECONDS."
    ).tag(config=True)

    @default("checks_window")
    def _default_checks_window(self):
        return float(os.environ.get("LEARNHUB_CHECKS_WINDOW_SECONDS", 60.0))

    @default("checks_per_minute")
    def _default_checks(self):
        return _env_int("LEARNHUB_CHECKS_PER_MINUTE", 20)

    max_upload_bytes = Integer(
        help="Largest submission accepted (all files together). Env: LEARNHUB_MAX_UPLOAD_BYTES."
    ).tag(config=True)

    @default("max_upload_bytes")
    def _default_upload(self):
        return _env_int("LEARNHUB_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)

    source_roots = List(
        Unicode(),
        help="Folders holding course sources as <root>/<course>/source/<assignment> (the instructor's "
        "notebooks, never shown to learners). Default: <data dir>/courses, then the checkout's courses/.",
    ).tag(config=True)

    @default("source_roots")
    def _default_roots(self):
        return default_source_roots(self.data_dir)

    intake_interval = Float(
        0.1, help="Seconds between looks for submissions the courses service recorded for autograding.",
    ).tag(config=True)

    def initialize(self, argv=None):
        super().initialize(argv)
        self.queue = JobQueue(self.engine)
        self.sources = SourceLocator(self.source_roots)
        self.courses = self.service_api("courses")
        self.intake = GradingIntake(self.session_factory, self.queue, self.sources, self.courses,
                                    self.max_upload_bytes)
        self.regrades = RegradeIntake(self.session_factory, self.queue, self.sources, self.courses,
                                      self.max_upload_bytes)
        self.metrics_registry.register(GradingCollector(self))
        self.helpdesk = HelpDesk(self.session_factory)
        self.live = Broadcaster()
        self.check_limiter = CheckRateLimiter(self.session_factory, self.checks_per_minute, self.checks_window)
        self.supervisor = WorkerSupervisor(self.db_url, self.worker_processes, self.pool_size,
                                           self.sandbox, self.allow_unsafe_local)
        self.recorder = CompletionRecorder(self.session_factory)

    def data_export(self, user: str) -> dict:
        from learnhub.db import session_scope

        from .data import FeedbackData

        with session_scope(self.session_factory) as session:
            return FeedbackData(session).export(user)

    def data_erase(self, user: str, pseudonym: str) -> dict:
        from learnhub.db import session_scope

        from .data import FeedbackData

        with session_scope(self.session_factory) as session:
            return FeedbackData(session).erase(user, pseudonym)

    def apply_retention(self, course_ids: list[str]) -> dict:
        from learnhub.db import session_scope

        from .data import FeedbackData

        with session_scope(self.session_factory) as session:
            return FeedbackData(session).apply_retention(course_ids)

    async def _take_in_forever(self):
        while True:
            try:
                await self.intake.run_once()
            except Exception:
                self.log.exception("the grading intake failed (will retry)")
            try:
                await self.regrades.run_once()
            except Exception:
                self.log.exception("queueing regrades failed (will retry)")
            await asyncio.sleep(self.intake_interval)

    async def on_start(self):
        if self.worker_processes:
            await self.supervisor.start()
        self.recorder.start()
        self._intake_task = asyncio.create_task(self._take_in_forever())

    async def on_stop(self):
        if getattr(self, "_intake_task", None):
            self._intake_task.cancel()
        await self.recorder.stop()
        await self.supervisor.stop()

    def api_handlers(self):
        sid, rid = ID.format("submission_id"), ID.format("request_id")
        return [
            (r"api/submissions", handlers.SubmissionsHandler),
            (rf"api/submissions/{sid}", handlers.SubmissionHandler, {"mode": "grade"}),
            (rf"api/submissions/{sid}/events", handlers.SubmissionEventsHandler, {"mode": "grade"}),
            (r"api/checks", handlers.ChecksHandler),
            (rf"api/checks/{sid}", handlers.SubmissionHandler, {"mode": "check"}),
            (rf"api/checks/{sid}/events", handlers.SubmissionEventsHandler, {"mode": "check"}),
            (r"api/grading/stats", handlers.GradingStatsHandler),
            (r"api/help-requests", handlers.HelpRequestsHandler),
            (r"api/help-requests/events", handlers.HelpEventsHandler),
            (rf"api/help-requests/{rid}", handlers.HelpRequestHandler),
            (rf"api/help-requests/{rid}/answers", handlers.HelpAnswersHandler),
            (ASSIGNMENT + r"/regrades", handlers.RegradesHandler),
            (ASSIGNMENT + rf"/regrades/{ID.format('regrade_id')}", handlers.RegradeHandler),
            (ASSIGNMENT + r"/executions", handlers.ExecutionsHandler),
            (rf"api/executions/{ID.format('execution_id')}", handlers.ExecutionHandler),
            (r"api/data/retention", handlers.RetentionHandler),
        ]

    def openapi_paths(self):
        err = {"$ref": "#/components/responses/Error"}
        upload = {"requestBody": {"content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["course", "assignment", "files"],
            "properties": {"course": {"type": "string"}, "assignment": {"type": "string"},
                           "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
        job = {"200": {"description": "status, score, max_score and per-test results"}, "401": err, "404": err}
        ws = {"101": {"description": "WebSocket: queued, started, one test event per test, done"},
              "401": err, "404": err}
        sid = [{"name": "submission_id", "in": "path", "required": True, "schema": {"type": "string"}}]
        rid = [{"name": "request_id", "in": "path", "required": True, "schema": {"type": "string"}}]
        course_assignment = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                             for name in ("course_id", "assignment_id")]
        return {
            "/api/submissions": {"post": {"summary": "Submit notebooks for grading (recorded as an attempt)",
                                          **upload, "responses": {"202": {"description": "queued"}, "400": err,
                                                                  "401": err, "403": err, "404": err,
                                                                  "413": err, "422": err}}},
            "/api/submissions/{submission_id}": {"get": {"summary": "A submission's status and results",
                                                         "parameters": sid, "responses": job}},
            "/api/submissions/{submission_id}/events": {"get": {"summary": "Live grading events (WebSocket)",
                                                                "parameters": sid, "responses": ws}},
            "/api/checks": {"post": {"summary": "Run the visible tests only; not an attempt; rate-limited",
                                     **upload, "responses": {"202": {"description": "queued"}, "401": err,
                                                             "403": err, "404": err, "422": err, "429": err}}},
            "/api/checks/{submission_id}": {"get": {"summary": "A check's status and results",
                                                    "parameters": sid, "responses": job}},
            "/api/checks/{submission_id}/events": {"get": {"summary": "Live check events (WebSocket)",
                                                           "parameters": sid, "responses": ws}},
            "/api/grading/stats": {"get": {
                "summary": "The grading queue: depth, running jobs, submit-to-graded latency percentiles "
                           "(admins, custom:learnhub:grading:read)",
                "parameters": [{"name": "hours", "in": "query", "schema": {"type": "number", "minimum": 0.01,
                                                                          "maximum": 8760}}],
                "responses": {"200": {"description": "{queue_depth, running, latency_seconds: {count, p50, p90, "
                                                     "p99, max}, window_hours}"},
                              "400": err, "401": err, "403": err}}},
            "/api/help-requests": {
                "get": {"summary": "My help requests, or a course's (?course=, staff) with ?status=",
                        "parameters": [
                            {"name": "course", "in": "query", "schema": {"type": "string"}},
                            {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["open", "answered", "closed"]}},
                            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
                            {"name": "before", "in": "query", "description": "the previous page's next",
                             "schema": {"type": "string", "format": "date-time"}}],
                        "responses": {"200": {"description": "{items, next}"}, "400": err, "401": err}},
                "post": {"summary": "Ask for help on an assignment (optionally a cell and its code)",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["course", "assignment", "question"],
                             "properties": {"course": {"type": "string"}, "assignment": {"type": "string"},
                                            "question": {"type": "string"}, "cell_id": {"type": "string"},
                                            "code": {"type": "string"}}}}}},
                         "responses": {"201": {"description": "the request"}, "400": err, "401": err, "403": err,
                                       "422": err}}},
            "/api/help-requests/events": {"get": {
                "summary": "Live help (WebSocket): answers to my requests, or with ?course= a course's queue",
                "responses": {"101": {"description": "WebSocket"}, "401": err, "403": err}}},
            "/api/help-requests/{request_id}": {"get": {"summary": "One help request", "parameters": rid,
                                                        "responses": {"200": {"description": "the request"},
                                                                      "401": err, "404": err}}},
            "/api/courses/{course_id}/assignments/{assignment_id}/regrades": {
                "post": {"summary": "Grade every learner's latest autograded submission of the assignment again "
                                    "(after a test fix), on the grading workers, in parallel (course instructors "
                                    "and TAs, admins)",
                         "parameters": course_assignment,
                         "responses": {"202": {"description": "{id, status, total, skipped}; Location: the regrade"},
                                       "401": err, "403": err, "404": err, "502": err, "503": err}},
                "get": {"summary": "The assignment's regrades, newest first (course staff)",
                        "parameters": course_assignment + [{"name": "limit", "in": "query",
                                                            "schema": {"type": "integer", "minimum": 1,
                                                                       "maximum": 100}}],
                        "responses": {"200": {"description": "{items: [regrade]}"}, "400": err, "401": err,
                                      "403": err}}},
            "/api/courses/{course_id}/assignments/{assignment_id}/regrades/{regrade_id}": {"get": {
                "summary": "A regrade's progress and changes (course staff)",
                "parameters": course_assignment + [{"name": "regrade_id", "in": "path", "required": True,
                                                    "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{id, status: queueing|running|done, total, done, failed, "
                                                     "running, changes: [{learner, submission, job, before: "
                                                     "{score, max_score}, after: {score, max_score}}], unchanged, "
                                                     "failures: [{learner, submission, job, error}], skipped}"},
                              "401": err, "403": err, "404": err}}},
            "/api/courses/{course_id}/assignments/{assignment_id}/executions": {"post": {
                "summary": "Execute one notebook in a grading sandbox with the assignment's limits, for nbgrader's "
                           "autograde in the caller's own server (course instructors and TAs, admins); nothing is "
                           "scored here",
                "parameters": course_assignment,
                "requestBody": {"content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["files"],
                    "properties": {"files": {"type": "array", "description": "exactly one notebook and its data files",
                                             "items": {"type": "string", "format": "binary"}}}}}}},
                "responses": {"202": {"description": "{id, status: queued}; Location: the execution"},
                              "400": err, "401": err, "403": err, "413": err, "422": err}}},
            "/api/executions/{execution_id}": {"get": {
                "summary": "An execution's status and, when done, the executed cells' outputs (its requester and "
                           "the course's staff)",
                "parameters": [{"name": "execution_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{id, status, error, cells: [{index, execution_count, outputs}], "
                                                     "limits_hit, limit_messages}"},
                              "401": err, "404": err}}},
            "/api/help-requests/{request_id}/answers": {"post": {
                "summary": "Answer a help request (course instructors and TAs)", "parameters": rid,
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["answer"], "properties": {"answer": {"type": "string"}}}}}},
                "responses": {"201": {"description": "the answered request"}, "401": err, "403": err,
                              "404": err, "422": err}}},
            "/api/data/retention": {"post": {
                "summary": f"Retention: delete the grading jobs, help requests and regrades of these (archived) "
                           f"courses; the courses service's retention job calls it (needs {DATA_SCOPE})",
                "x-learnhub-scopes": [DATA_SCOPE],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["courses"],
                    "properties": {"courses": {"type": "array", "items": {"type": "string"}}}}}}},
                "responses": {"200": {"description": "{service, courses, grading_jobs, help_requests, "
                                                     "grading_regrades} (rows deleted)"},
                              "400": err, "401": err, "403": err}}},
        }
