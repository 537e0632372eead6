"""HTTP handlers of the analytics service: thin, over :mod:`learnhub.events` and :mod:`.reports`."""
from __future__ import annotations

import csv
import io
import json
import re
import time
from urllib.parse import quote

from tornado import web
from tornado.ioloop import IOLoop

from learnhub import course_roles
from learnhub import db as lhdb
from learnhub.hubapi import APIClientError, PeerUnavailable
from learnhub.service import APIError, APIHandler, BaseHandler, JSONErrorMixin, RequestIdMixin, ServiceHubAuth

from . import reports

READ_SCOPE = "custom:learnhub:analytics:read"
MAX_BATCH = 5000


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` naming a download: the name comes from the URL (a course id, any text),
    so the plain ``filename`` keeps only safe ASCII and ``filename*`` (RFC 6266) carries the real one
    percent-encoded — never a quote, control character or non-Latin-1 text in the header."""
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"


class AnalyticsMixin:
    """Permissions shared by the API and the dashboards."""

    def can_read_platform(self) -> bool:
        return bool(self.current_user.get("admin")) or self._has_scope(READ_SCOPE)

    def can_read_course(self, course_id: str) -> bool:
        # Course roles come from the hub groups the courses service mirrors membership into,
        # so analytics needs no access to the courses tables.
        return (self.can_read_platform()
                or course_roles.role_in(self.current_user.get("groups") or (), course_id) in course_roles.STAFF)

    def require_course(self, course_id: str) -> None:
        if not self.can_read_course(course_id):
            raise APIError(403, f"Only the instructors and TAs of course {course_id!r} (or admins) may read "
                                "its analytics.", {"course_id": course_id})

    def _has_scope(self, scope: str) -> bool:
        return self.settings["hub_auth"].check_scopes({scope}, self.current_user) != set()

    async def platform_report(self) -> dict:
        """The platform report, with the grading queue's state from the feedback service (which owns
        the queue); a feedback service that does not answer leaves the queue depth unknown."""
        days = 30
        try:
            grading = await self.service.feedback.request("GET", "grading/stats", params={"hours": days * 24})
        except (APIClientError, PeerUnavailable) as exc:
            self.service.log.warning("grading statistics unavailable from the feedback service: %s", exc)
            grading = None
        return await self.in_db(lambda session: reports.platform_report(session, days=days, grading=grading))

    async def in_db(self, work, *args):
        """Run ``work(session, *args)`` in a thread with a session committed on success."""
        def run():
            with lhdb.session_scope(self.service.session_factory) as session:
                return work(session, *args)
        return await IOLoop.current().run_in_executor(None, run)


class EventsHandler(AnalyticsMixin, APIHandler):
    """``POST api/events``: append a batch; idempotent by event id; partial success with reasons."""

    async def post(self):
        body = self.get_json_body()
        events = body.get("events") if isinstance(body, dict) else body
        if not isinstance(events, list):
            raise APIError(400, "Send a JSON list of events, or {\"events\": [...]}.")
        if len(events) > MAX_BATCH:
            raise APIError(413, f"At most {MAX_BATCH} events per request; split the batch.",
                           {"received": len(events), "max": MAX_BATCH})
        user = self.current_user
        trusted = user.get("kind") == "service" or bool(user.get("admin"))
        if not trusted:
            # A person may only record what they did themselves.
            foreign = [i for i, e in enumerate(events) if isinstance(e, dict) and "actor" in e
                       and e["actor"] != user["name"]]
            if foreign:
                raise APIError(403, f"You may only post your own events (actor must be {user['name']!r}); "
                                    "nothing was stored.", {"indices": foreign[:100]})
        source = user["name"] if user.get("kind") == "service" else "api"
        started = time.perf_counter()
        outcome = await self.in_db(self.service.event_log(source).append, events)
        self.service.observe_ingest(outcome, time.perf_counter() - started)
        payload = outcome.as_dict()
        if outcome.rejected:
            raise APIError(422, f"{len(outcome.rejected)} of {len(events)} events are invalid and were not "
                                f"stored; the other {len(outcome.stored) + len(outcome.duplicates)} were "
                                "accepted. Fix the reasons given per event and resend those.", payload)
        self.write_json(payload)


class CourseReportHandler(AnalyticsMixin, APIHandler):
    """``GET api/courses/{course_id}/report``: the course report (JSON)."""

    async def get(self, course_id):
        self.require_course(course_id)
        self.write_json(await self.service.course_report(course_id))


class CourseExportHandler(AnalyticsMixin, APIHandler):
    """``GET api/courses/{course_id}/export?format=csv|parquet``: the course's raw events."""

    COLUMNS = ["id", "time", "actor", "verb", "object_type", "object_id", "course_id", "result", "context",
               "source", "schema_version"]

    async def get(self, course_id):
        self.require_course(course_id)
        fmt = self.get_argument("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise APIError(400, "format must be csv or parquet.", {"format": fmt})
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise APIError(501, "Parquet export needs pyarrow on the analytics service; use format=csv.")
        rows = await self.in_db(lambda session: [self._flat(r) for r in reports.course_events(session, course_id)])
        if fmt == "csv":
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=self.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
            self.set_header("Content-Type", "text/csv; charset=UTF-8")
            self.set_header("Content-Disposition", attachment(f"{course_id}-events.csv"))
            return self.finish(buffer.getvalue())
        import pandas as pd

        buffer = io.BytesIO()
        pd.DataFrame(rows, columns=self.COLUMNS).to_parquet(buffer, index=False)
        self.set_header("Content-Type", "application/vnd.apache.parquet")
        self.set_header("Content-Disposition", attachment(f"{course_id}-events.parquet"))
        self.finish(buffer.getvalue())

    @staticmethod
    def _flat(row) -> dict:
        flat = dict(row)
        flat["time"] = reports._iso(flat["time"])
        for key in ("result", "context"):
            flat[key] = json.dumps(flat[key]) if flat[key] is not None else ""
        return flat


class PlatformReportHandler(AnalyticsMixin, APIHandler):
    """``GET api/platform/report``: platform health, for admins and holders of the analytics read scope."""

    async def get(self):
        if not self.can_read_platform():
            raise APIError(403, f"The platform report is for admins (or tokens with {READ_SCOPE}).")
        self.write_json(await self.platform_report())


class DashboardHandler(AnalyticsMixin, ServiceHubAuth, BaseHandler):
    """Browser pages behind HubOAuth: log in through the hub first, like the service's home page."""

    def html(self, body: str, status: int = 200) -> None:
        from .dashboards import CONTENT_SECURITY_POLICY

        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        # The pages run only the service's own scripts (plotly.js and dashboards.js, from static/).
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(body)


class AssetHandler(RequestIdMixin, JSONErrorMixin, web.StaticFileHandler):
    """``GET static/{name}``: the dashboards' scripts — plotly.js from the ``plotly`` package, and the
    page script — served by the service itself, so that a dashboard loads nothing from another site.

    Only the files named in :data:`.dashboards.ASSETS` are served. They hold no data, so they need no
    login (the pages that use them do). The pages link them with ``?v=<hash of the content>``:
    such a request may be cached for good (``immutable``); without it, browsers revalidate (ETag).
    """

    def initialize(self, **_kwargs):
        super().initialize(path="/")

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        from .dashboards import asset_path

        found = asset_path(path)
        return str(found) if found else ""

    def validate_absolute_path(self, root: str, absolute_path: str) -> str:
        if not absolute_path:
            raise APIError(404, f"No such file: {self.request.path}")
        return absolute_path

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        if self.get_cache_time(path, self.modified, self.get_content_type()):
            self.set_header("Cache-Control", f"public, max-age={self.CACHE_MAX_AGE}, immutable")


class DashboardIndexHandler(DashboardHandler):
    """``GET dashboards``: the dashboards the caller may open; the hub's home page links here."""

    @web.authenticated
    async def get(self):
        from .dashboards import render_index

        courses = {course for course, role in course_roles.roles_from_groups(self.current_user.get("groups")).items()
                   if role in course_roles.STAFF}
        platform = self.can_read_platform()
        if platform:
            courses.update(await self.in_db(reports.course_ids))
        self.html(render_index(self.current_user["name"], sorted(courses), platform))


class CourseDashboardHandler(DashboardHandler):
    """``GET courses/{course_id}/dashboard``: the instructor's course dashboard with plots."""

    @web.authenticated
    async def get(self, course_id):
        from .dashboards import render_course, render_forbidden

        if not self.can_read_course(course_id):
            return self.html(render_forbidden(self.current_user["name"], course_id), 403)
        report = await self.service.course_report(course_id)
        self.html(render_course(report, self.current_user["name"], self.service.prefix,
                                assignment=self.get_argument("assignment", "")))


class PlatformDashboardHandler(DashboardHandler):
    """``GET platform/dashboard``: the admin dashboard."""

    @web.authenticated
    async def get(self):
        from .dashboards import render_forbidden, render_platform

        if not self.can_read_platform():
            return self.html(render_forbidden(self.current_user["name"], None), 403)
        self.html(render_platform(await self.platform_report(), self.current_user["name"],
                                  self.service.prefix))
