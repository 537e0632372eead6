"""The courses service application."""
from __future__ import annotations

import asyncio
import os

from sqlalchemy import select
from traitlets import Float, Integer, List, Unicode, default

from learnhub.course_sources import SourceLocator, default_source_roots
from learnhub.data_rights import SERVICES as DATA_SERVICES
from learnhub.data_rights import CoreData, DataRetention, DataRightsCoordinator, ErasureRefused
from learnhub.db import session_scope
from learnhub.event_feed import EventFeed, RetryLater
from learnhub.event_schemas import Verb
from learnhub.hubapi import APIClientError, PeerUnavailable
from learnhub.service import ServiceApp

from . import data_handlers as dh
from . import handlers as h
from . import lti
from . import models as m
from . import openapi
from .catalog import Enrollments
from .data import CoursesData
from .grades import GradeRecorder
from .hubgroups import CourseGroupMirror
from .store import FileStore

COURSE = r"api/courses/(?P<course_id>[^/]+)"
#: the hub's deletions of users, read by the erasure feed (learnhub.data_rights)
DELETION_VERBS = (Verb.USER_DELETED,)
ASSIGNMENT = COURSE + r"/assignments/(?P<assignment_id>[^/]+)"


class CoursesService(ServiceApp):
    """Course catalogue, enrollment, learner profiles and the HTTP exchange for nbgrader."""

    service_name = "courses"
    description = __doc__

    max_upload_bytes = Integer(
        50 * 1024 * 1024,
        help="""Largest upload (release, submission or feedback, all files together) in bytes; larger ones
        get 413. Must stay below tornado's max_body_size (100 MB by default). Env: LEARNHUB_COURSES_MAX_UPLOAD_BYTES.""",
    ).tag(config=True)

    @default("max_upload_bytes")
    def _default_max_upload(self):
        return int(os.environ.get("LEARNHUB_COURSES_MAX_UPLOAD_BYTES", 50 * 1024 * 1024))

    submissions_per_minute = Integer(
        10,
        help="""Graded submissions one learner may make per submissions_window seconds, across every course and
        every path (exchange, feedback service, JupyterLab's Submit); more get 429 with Retry-After. Counted from
        the submissions table, so the limit holds across processes and restarts. 0: no limit.
        Env: LEARNHUB_SUBMISSIONS_PER_MINUTE.""",
    ).tag(config=True)

    @default("submissions_per_minute")
    def _default_submissions_per_minute(self):
        return int(os.environ.get("LEARNHUB_SUBMISSIONS_PER_MINUTE", 10))

    submissions_window = Float(
        60.0,
        help="""Seconds of the sliding window of submissions_per_minute (a minute unless changed).
        Env: LEARNHUB_SUBMISSIONS_WINDOW_SECONDS.""",
    ).tag(config=True)

    @default("submissions_window")
    def _default_submissions_window(self):
        return float(os.environ.get("LEARNHUB_SUBMISSIONS_WINDOW_SECONDS", 60.0))

    store_path = Unicode(help="Folder of the content-addressed file store (default: <data dir>/store).").tag(config=True)

    @default("store_path")
    def _default_store_path(self):
        return os.path.join(self.data_dir, "store")

    source_roots = List(
        Unicode(),
        help="""Folders holding instructors' sources as <root>/<course>/source/<assignment>: a submission to an
        assignment found there is recorded for autograding (the feedback service grades it). Default, as
        the feedback service's: <data dir>/courses, then the checkout's courses/.""",
    ).tag(config=True)

    @default("source_roots")
    def _default_source_roots(self):
        return default_source_roots(self.data_dir)

    group_reconcile_interval = Float(
        300.0,
        help="""Seconds between two reconciliations of hub groups with enrollments (also done at start).
        Enrollment changes are mirrored at once; this repairs what failed while the hub was away. 0: only at start.""",
    ).tag(config=True)

    grade_poll_interval = Float(
        0.5, help="Seconds between reads of the event log for the feedback service's grading results.",
    ).tag(config=True)

    erasure_poll_interval = Float(
        2.0, help="""Seconds between reads of the event log for users the hub deleted (their data is then
        erased in every service, learnhub.data_rights).""",
    ).tag(config=True)

    def initialize(self, argv=None):
        super().initialize(argv)
        self.store = FileStore(self.store_path)
        self.retention = DataRetention(parent=self)
        self.data_rights = DataRightsCoordinator(
            {name: self.service_api(name) for name in DATA_SERVICES},
            CoreData(self.session_factory, self.data_dir, hold_hours=self.retention.erased_names_hold_hours,
                     docker_homes=self.docker_homes()))
        # One deletion a batch: the feed's transaction holds SQLite's write lock from the first audit entry
        # it records, and the next person's erasure (other sessions) would wait for it until it timed out.
        self.deleted_users = EventFeed(self.session_factory, "courses-user-deletions", DELETION_VERBS,
                                       settle_seconds=0.0, batch_size=1)
        self._loop = None
        self.groups = CourseGroupMirror(self.hub_api)
        self.sources = SourceLocator(self.source_roots)
        self.grades = GradeRecorder(self.session_factory)
        self.lti = lti.LtiRunner(self)
        self._tasks: list[asyncio.Task] = []

    def docker_homes(self):
        """With DockerSpawner (LEARNHUB_SPAWNER, as the hub has it) learners' homes are Docker volumes,
        which their export reads and their erasure removes; None otherwise."""
        from learnhub.config import LearnhubSettings

        settings = LearnhubSettings()
        if not settings.docker_spawner:
            return None
        from learnhub.docker_spawner import DockerHomes

        return DockerHomes(settings.singleuser_image)

    def api_handlers(self) -> list[tuple]:
        return [
            (r"api/courses", h.CoursesListHandler),
            (COURSE, h.CourseHandler),
            (COURSE + r"/enrollments", h.EnrollmentsHandler),
            (COURSE + r"/enrollments/(?P<user>[^/]+)", h.EnrollmentHandler),
            (COURSE + r"/assignments", h.AssignmentsHandler),
            (COURSE + r"/progress", h.ProgressHandler),
            (r"api/profile", h.ProfileHandler),
            (r"api/profiles/(?P<user>[^/]+)", h.UserProfileHandler),
            (r"api/schedule", h.ScheduleHandler),
            (ASSIGNMENT + r"/release", h.ReleaseHandler),
            (ASSIGNMENT + r"/download", h.DownloadHandler),
            (ASSIGNMENT + r"/submissions", h.SubmissionsHandler),
            (ASSIGNMENT + r"/submissions/(?P<submission_id>[^/]+)/files", h.SubmissionFilesHandler),
            (ASSIGNMENT + r"/feedback", h.FeedbackHandler),
            (ASSIGNMENT + r"/extensions", h.ExtensionsHandler),
            (ASSIGNMENT + r"/extensions/(?P<user>[^/]+)", h.ExtensionHandler),
            (r"api/data/archives", dh.ArchivesHandler),
            (r"api/data/erasures", dh.ErasuresHandler),
            (r"api/data/retention", dh.RetentionHandler),
            (r"api/audit", dh.AuditHandler),
        ] + lti.handlers(COURSE)

    def openapi_paths(self) -> dict:
        return {**openapi.paths(), **dh.openapi_paths()}

    # -- data rights (learnhub.data_rights) -------------------------------------------------------

    def data_export(self, user: str) -> dict:
        with session_scope(self.session_factory) as session:
            return CoursesData(session, self.store).export(user)

    def data_erase(self, user: str, pseudonym: str) -> dict:
        with session_scope(self.session_factory) as session:
            result = CoursesData(session, self.store).erase(user, pseudonym)
        if self._loop is not None and result["erased"].get("enrollments"):
            # Their hub groups go with their enrollments (the hub may still have the account).
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.reconcile_groups()))
        return result

    def apply_retention(self) -> dict:
        """Retention of archived courses (c.DataRetention): their learners' work, then their events."""
        cutoff = self.retention.cutoff()
        self.data_rights.core.purge_erased_names()  # the erasures' tombstones, once their hold is over
        if self.retention.archived_course_days <= 0:
            return {"courses": [], "submissions": 0, "store_files": 0, "events": 0, "enabled": False}
        with session_scope(self.session_factory) as session:
            result = CoursesData(session, self.store).apply_retention(cutoff)
        result["events"] = self.data_rights.core.purge_course_events(result["courses"], cutoff)
        if result["courses"]:
            # The feedback service's tables are its own (services talk over HTTP); a feedback service that
            # does not answer fails this run, and the next one (the same courses: still archived) completes it.
            answer = self.data_rights.services["feedback"].request_sync(
                "POST", "data/retention", {"courses": result["courses"]})
            result["feedback"] = {k: answer.get(k, 0) for k in ("grading_jobs", "help_requests", "grading_regrades")}
        result["enabled"] = True
        return result

    def erase_deleted_users(self) -> int:
        """Erase the people the hub deleted (``user-deleted`` events, learnhub.hub_events); a service
        that does not answer leaves the event for the next poll."""
        from learnhub import audit

        def handle(session, event):
            try:
                self.data_rights.erase(event.actor)
            except (PeerUnavailable, APIClientError, ErasureRefused) as exc:
                raise RetryLater(str(exc))  # (a container of theirs still stopping: the next poll)
            audit.record(session, "hub", "data-erased", details={"reason": "the hub deleted the account"},
                         source="courses", actor_kind="service")

        erased = 0
        while handled := self.deleted_users.poll(handle):  # every deletion there is, one a transaction
            erased += handled
        return erased

    async def _erase_deleted_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.erase_deleted_users)
            except Exception:
                self.log.exception("erasing deleted users failed (will retry)")
            await asyncio.sleep(self.erasure_poll_interval)

    async def _retention_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while self.retention.interval_hours > 0:
            try:
                result = await loop.run_in_executor(None, self.apply_retention)
                if result["courses"]:
                    self.log.info("retention: %s", result)
            except Exception:
                self.log.exception("retention failed (will retry)")
            await asyncio.sleep(self.retention.interval_hours * 3600)

    # -- hub group mirroring ------------------------------------------------------------------

    async def mirror(self, course_id: str, user: str, role: str | None) -> bool:
        """Mirror one membership now; False (and a log line) when the hub does not answer —
        the periodic reconciliation will do it later."""
        try:
            await self.groups.set_role(course_id, user, role)
        except Exception as exc:
            self.log.warning("could not mirror %s in %s as %s into hub groups (will reconcile): %s",
                             user, course_id, role, exc)
            return False
        if role is not None:
            def mark():
                with session_scope(self.session_factory) as session:
                    Enrollments(session).mark_mirrored(course_id, user, role)
            await asyncio.get_running_loop().run_in_executor(None, mark)
        return True

    def _wanted_groups(self) -> dict[str, dict[str, str]]:
        with session_scope(self.session_factory) as session:
            wanted: dict[str, dict[str, str]] = {cid: {} for cid in session.scalars(select(m.Course.id))}
            for row in session.scalars(select(m.Enrollment)):
                wanted.setdefault(row.course_id, {})[row.user_name] = row.role
            return wanted

    def _mark_all_mirrored(self, wanted: dict[str, dict[str, str]]) -> None:
        with session_scope(self.session_factory) as session:
            for row in session.scalars(select(m.Enrollment)):
                if wanted.get(row.course_id, {}).get(row.user_name) == row.role:
                    row.mirrored_role = row.role

    async def reconcile_groups(self) -> None:
        loop = asyncio.get_running_loop()
        wanted = await loop.run_in_executor(None, self._wanted_groups)
        changes = await self.groups.reconcile(wanted)
        await loop.run_in_executor(None, self._mark_all_mirrored, wanted)
        self.log.info("hub groups reconciled for %d course(s): %d change(s)", len(wanted), changes)

    async def _reconcile_forever(self) -> None:
        while True:
            try:
                await self.reconcile_groups()
            except Exception as exc:
                self.log.warning("hub group reconciliation failed (will retry): %s", exc)
            if self.group_reconcile_interval <= 0:
                return
            await asyncio.sleep(self.group_reconcile_interval)

    async def _record_grades_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.grades.run_once)
            except Exception:
                self.log.exception("recording grading results failed (will retry)")
            await asyncio.sleep(self.grade_poll_interval)

    async def on_start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._reconcile_forever()),
                       asyncio.create_task(self._record_grades_forever()),
                       asyncio.create_task(self.lti.forever()),
                       asyncio.create_task(self._erase_deleted_forever()),
                       asyncio.create_task(self._retention_forever())]

    async def on_stop(self) -> None:
        for task in self._tasks:
            task.cancel()
