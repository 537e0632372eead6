"""The analytics service application."""
from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from tornado.ioloop import IOLoop
from traitlets import Bool, Integer, Unicode

from learnhub import db as lhdb
from learnhub.events import EventLog
from learnhub.service import ServiceApp

from . import handlers, reports

ERROR = {"$ref": "#/components/responses/Error"}
COURSE_ID = {"name": "course_id", "in": "path", "required": True, "schema": {"type": "string"}}


class AnalyticsService(ServiceApp):
    """The event log, course and platform reports, dashboards."""

    service_name = "analytics"
    description = __doc__

    risk_model_enabled = Bool(
        True, help="""Rank learners by risk in course reports with the model fitted on OULAD
        (data/oulad in the repository). Off: reports have an empty at-risk list.""").tag(config=True)

    oulad_dir = Unicode(
        "", help="Folder of the OULAD CSV files the at-risk model is fitted on (default: the repository's data/oulad)."
    ).tag(config=True)

    at_risk_limit = Integer(50, help="How many learners the at-risk list of a course report shows.").tag(config=True)

    report_cache_size = Integer(
        200, help="How many course reports to keep in memory (each is exact until the course's next event)."
    ).tag(config=True)

    def initialize(self, argv=None):
        super().initialize(argv)
        self._report_cache: dict[str, tuple] = {}
        registry = self.metrics_registry
        self.events_ingested = Counter("learnhub_analytics_events", "Events posted, by outcome", ["outcome"],
                                       registry=registry)
        self.ingest_seconds = Histogram("learnhub_analytics_ingest_seconds", "Time to store one batch",
                                        registry=registry)
        self.report_seconds = Histogram("learnhub_analytics_report_seconds", "Time to build a course report",
                                        registry=registry)
        self.feedback = self.service_api("feedback")

    def data_export(self, user: str) -> dict:
        from .data import AnalyticsData

        with lhdb.session_scope(self.session_factory) as session:
            return AnalyticsData(session).export(user)

    def data_erase(self, user: str, pseudonym: str) -> dict:
        from .data import AnalyticsData

        with lhdb.session_scope(self.session_factory) as session:
            return AnalyticsData(session).erase(user, pseudonym)

    def event_log(self, source: str) -> EventLog:
        return EventLog(default_source=source)

    def observe_ingest(self, outcome, seconds: float) -> None:
        self.events_ingested.labels("stored").inc(len(outcome.stored))
        self.events_ingested.labels("duplicate").inc(len(outcome.duplicates))
        self.events_ingested.labels("rejected").inc(len(outcome.rejected))
        self.ingest_seconds.observe(seconds)

    def risk_model(self):
        if not self.risk_model_enabled:
            return None
        from . import oulad

        return oulad.platform_model(self.oulad_dir or str(oulad.DEFAULT_DATA_DIR))

    async def course_report(self, course_id: str) -> dict:
        """The course report, rebuilt only when an event for the course was stored since the last one
        (:func:`reports.course_version`), so dashboards polled by many instructors cost one query."""
        loop = IOLoop.current()
        model = await loop.run_in_executor(None, self.risk_model)

        def build():
            started = time.perf_counter()
            with lhdb.session_scope(self.session_factory) as session:
                version = reports.course_version(session, course_id)
                cached = self._report_cache.get(course_id)
                if cached and cached[0] == (version, model is not None):
                    return cached[1]
                report = reports.course_report(session, course_id, model, at_risk_limit=self.at_risk_limit)
            self.report_seconds.observe(time.perf_counter() - started)
            if len(self._report_cache) >= self.report_cache_size:
                self._report_cache.pop(next(iter(self._report_cache)))
            self._report_cache[course_id] = ((version, model is not None), report)
            return report

        return await loop.run_in_executor(None, build)

    async def on_start(self) -> None:
        # Fit the at-risk model in the background so the first report does not wait for it.
        IOLoop.current().run_in_executor(None, self.risk_model)

    def api_handlers(self) -> list[tuple]:
        return [
            (r"api/events", handlers.EventsHandler),
            (r"api/courses/(?P<course_id>[^/]+)/report", handlers.CourseReportHandler),
            (r"api/courses/(?P<course_id>[^/]+)/export", handlers.CourseExportHandler),
            (r"api/platform/report", handlers.PlatformReportHandler),
            (r"dashboards", handlers.DashboardIndexHandler),
            (r"courses/(?P<course_id>[^/]+)/dashboard", handlers.CourseDashboardHandler),
            (r"platform/dashboard", handlers.PlatformDashboardHandler),
            (r"static/(?P<path>[A-Za-z0-9._-]+)", handlers.AssetHandler),
        ]

    def make_app(self):
        from tornado.web import GZipContentEncoding

        app = super().make_app()
        # plotly.min.js is 4.8 MB, 1.4 MB compressed; the reports and pages shrink alike.
        app.add_transform(GZipContentEncoding)
        return app

    def openapi_paths(self) -> dict:
        from learnhub.events import SCHEMA_V1, SCHEMA_V2

        event = {"anyOf": [SCHEMA_V2, SCHEMA_V1]}

        page = {"200": {"description": "HTML with charts"}, "302": {"description": "to the hub's login"},
                "403": {"description": "HTML: not an instructor/TA of this course"}}
        return {
            "/api/events": {"post": {
                "summary": "Append a batch of events (idempotent by id; invalid ones rejected with reasons)",
                "description": "Body: a list of events or {\"events\": [...]}, at most 5000. People may post "
                               "only events whose actor is themselves; services and admins any.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "oneOf": [{"type": "array", "items": event},
                              {"type": "object", "properties": {"events": {"type": "array", "items": event}}}]}}}},
                "responses": {"200": {"description": "all stored or duplicates: stored, duplicates, ids"},
                              "400": ERROR, "401": ERROR, "403": ERROR, "413": ERROR,
                              # 422: error.details.rejected lists index, id and reasons; the valid
                              # events of the batch were stored (details.stored_ids).
                              "422": ERROR}}},
            "/api/courses/{course_id}/report": {"get": {
                "summary": "Course report: enrollment, weekly activity, funnel, scores, exercises, at-risk",
                "parameters": [COURSE_ID],
                "responses": {"200": {"description": "the report"}, "401": ERROR, "403": ERROR}}},
            "/api/courses/{course_id}/export": {"get": {
                "summary": "The course's raw events as CSV or Parquet",
                "parameters": [COURSE_ID, {"name": "format", "in": "query",
                                           "schema": {"enum": ["csv", "parquet"], "default": "csv"}}],
                "responses": {"200": {"description": "text/csv or Parquet"}, "400": ERROR, "401": ERROR,
                              "403": ERROR, "501": ERROR}}},
            "/api/platform/report": {"get": {
                "summary": "Platform report: active users, servers, submissions, grading latency, queue",
                "responses": {"200": {"description": "the report"}, "401": ERROR, "403": ERROR}}},
            "/dashboards": {"get": {
                "summary": "The dashboards the caller may open (HTML, HubOAuth); linked from the hub's home page",
                "responses": {"200": {"description": "HTML list of links"}, "302": {"description": "to the hub's login"}}}},
            "/courses/{course_id}/dashboard": {"get": {
                "summary": "Course dashboard for instructors and TAs (HTML, HubOAuth)",
                "parameters": [COURSE_ID, {"name": "assignment", "in": "query", "schema": {"type": "string"},
                                           "description": "show this assignment only"}],
                "responses": page}},
            "/platform/dashboard": {"get": {
                "summary": "Platform dashboard for admins (HTML, HubOAuth)", "responses": page}},
            "/static/{path}": {"get": {
                "summary": "The dashboards' scripts (plotly.min.js, dashboards.js); no data, no login",
                "security": [],
                "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "v", "in": "query", "schema": {"type": "string"},
                                "description": "the content's version: with it the answer is cached for good"}],
                "responses": {"200": {"description": "JavaScript"}, "304": {"description": "not modified"},
                              "404": ERROR}}},
        }
