"""LTI 1.3 Advantage in the courses service: the platforms' admin API, linked LMS courses, roster sync
(NRPS) and the grade passback outbox (AGS). Thin handlers over :mod:`learnhub.lti`."""
from __future__ import annotations

import asyncio
import os
import logging

from sqlalchemy import func, or_, select

from learnhub.db import session_scope
from learnhub.lti import models as lm
from learnhub.lti.engine import LaunchEngine, LtiError
from learnhub.lti.keys import ToolKeys
from learnhub.lti.services import (GradePassback, PlatformClient, PlatformUnavailable, RosterSync, context_dict,
                                   score_dict)
from learnhub.lti.settings import LtiSettings
from learnhub.service import APIError

from . import models as m
from .catalog import CourseError, cursor_at, get_course, is_instructor, is_staff, parse_cursor, parse_limit
from .handlers import CoursesHandler

log = logging.getLogger("learnhub.courses.lti")


class LtiRunner:
    """The LTI engines of the courses service and its background loop: graded events into the score
    outbox, due scores to the LMSs, LTI enrollments into hub groups, and scheduled roster syncs."""

    def __init__(self, service):
        self.service = service
        self.settings = LtiSettings(parent=service)
        self.keys = ToolKeys(service.data_dir)
        self.client = PlatformClient(self.keys, timeout=self.settings.http_timeout)
        public = os.environ.get("LEARNHUB_PUBLIC_URL", "").rstrip("/")
        self.launch = LaunchEngine(service.session_factory, self.keys, launch_url=f"{public}/hub/lti/launch",
                                   settings=self.settings)
        self.roster = RosterSync(service.session_factory, self.client, self.settings.extra_roles,
                                 user_name=self._member_name)
        self.passback = GradePassback(service.session_factory, self.client, self.settings)
        self._last_roster = 0.0
        self._not_yet: dict[str, float] = {}
        self.user_recheck_seconds = 30.0

    def _member_name(self, platform: dict, member: dict) -> str:
        # NRPS members carry the same user id (``user_id`` = the launch's ``sub``) and often email/name
        claims = {"sub": member.get("user_id"), "email": member.get("email"), "name": member.get("name"),
                  "given_name": member.get("given_name"), "family_name": member.get("family_name"),
                  "preferred_username": member.get("preferred_username") or member.get("user_id")}
        return self.launch.user_name(platform, claims)

    def run_once(self) -> dict:
        collected = self.passback.collect()
        delivered = self.passback.deliver()
        return {"collected": collected, **delivered}

    def pending_mirrors(self) -> list[tuple[str, str, str]]:
        with session_scope(self.service.session_factory) as session:
            rows = session.scalars(select(m.Enrollment).where(or_(m.Enrollment.mirrored_role.is_(None),
                                                                  m.Enrollment.mirrored_role != m.Enrollment.role))
                                   .limit(200)).all()
            return [(r.course_id, r.user_name, r.role) for r in rows]

    async def mirror_pending(self) -> None:
        """Mirror enrollments not yet in hub groups. Members a roster sync enrolled before their first launch
        have no hub account yet: they are looked at again every ``user_recheck_seconds``, not every tick."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for course_id, user, role in await loop.run_in_executor(None, self.pending_mirrors):
            if self._not_yet.get(user, 0) > now:
                continue
            if await self.service.groups.user_exists(user) is False:
                self._not_yet[user] = now + self.user_recheck_seconds
                continue
            if not await self.service.mirror(course_id, user, role):
                return  # the hub does not answer: the next tick (or the reconciliation) tries again

    def linked_contexts(self) -> list[tuple[str, str]]:
        """(context, course) of every LMS course that offers its roster."""
        with session_scope(self.service.session_factory) as session:
            return [tuple(r) for r in session.execute(select(lm.LtiContext.id, lm.LtiContext.course_id)
                                                       .where(lm.LtiContext.memberships_url != ""))]

    async def sync_roster(self, context_pk: str, course_id: str) -> dict:
        """One roster sync, then the hub groups of those it enrolled and of those it dropped."""
        result = await asyncio.get_running_loop().run_in_executor(None, self.roster.sync, context_pk)
        for user in result["dropped"]:
            await self.service.mirror(course_id, user, None)  # not answered: the reconciliation removes them
        await self.mirror_pending()
        return result

    async def forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.run_once)
                # enrollments the hub made at launch (it cannot reach the hub's group API itself) and the
                # roster syncs made: into the course groups now, not at the next reconciliation
                await self.mirror_pending()
                if self.settings.roster_sync_interval > 0 and loop.time() - self._last_roster >= self.settings.roster_sync_interval:
                    self._last_roster = loop.time()
                    for context_pk, course_id in await loop.run_in_executor(None, self.linked_contexts):
                        try:
                            await self.sync_roster(context_pk, course_id)
                        except (LtiError, PlatformUnavailable) as exc:
                            log.warning("scheduled roster sync of %s failed: %s", context_pk, exc)
            except Exception:
                log.exception("the LTI loop failed (will retry)")
            await asyncio.sleep(self.settings.outbox_interval)


class LtiHandler(CoursesHandler):
    @property
    def lti(self) -> LtiRunner:
        return self.service.lti

    async def lti_run(self, work):
        async def wrapped():
            try:
                return await self.run(work)
            except LtiError as exc:
                raise APIError(exc.status, exc.message)
        return await wrapped()

    def _need_manager(self, caller):
        if not caller.manager:
            raise APIError(403, "registering LMSs needs the learnhub-admin role (custom:learnhub:courses:manage)")

    @staticmethod
    def _course_role(session, caller, course_id, staff_only=True, instructor=False):
        _course, role = get_course(session, caller, course_id)
        if instructor and not is_instructor(caller, role):
            raise CourseError(403, "only the course's instructors and admins may do this")
        if staff_only and not is_staff(caller, role):
            raise CourseError(403, "only the course's instructors, TAs and admins may see this")
        return role


class PlatformsHandler(LtiHandler):
    async def get(self):
        self._need_manager(self.caller)
        self.write_json({"items": await self.lti_run(lambda s, c: self.lti.launch.list_platforms(s))})

    async def post(self):
        self._need_manager(self.caller)
        body = self.get_json_body()
        self.write_json(await self.lti_run(lambda s, c: self.lti.launch.add_platform(s, body)), 201)


class PlatformHandler(LtiHandler):
    async def patch(self, platform_id):
        self._need_manager(self.caller)
        body = self.get_json_body()
        self.write_json(await self.lti_run(lambda s, c: self.lti.launch.update_platform(s, platform_id, body)))

    async def delete(self, platform_id):
        self._need_manager(self.caller)
        await self.lti_run(lambda s, c: self.lti.launch.delete_platform(s, platform_id))
        self.set_status(204)
        self.finish()


class CourseLtiHandler(LtiHandler):
    """``GET``: the LMS courses linked to this course (staff)."""

    async def get(self, course_id):
        def work(session, caller):
            self._course_role(session, caller, course_id)
            rows = session.scalars(select(lm.LtiContext).where(lm.LtiContext.course_id == course_id)).all()
            return [context_dict(r) for r in rows]
        self.write_json({"items": await self.lti_run(work)})


class ContextHandler(LtiHandler):
    """``PATCH``: an instructor sets ``score_policy`` (latest|best); an admin may relink ``course_id``."""

    async def patch(self, context_pk):
        body = self.get_json_body()
        if not isinstance(body, dict) or not set(body) <= {"score_policy", "course_id"} or not body:
            raise APIError(422, "send {\"score_policy\": \"latest\"|\"best\"} and/or {\"course_id\": ...}")

        def work(session, caller):
            row = session.get(lm.LtiContext, context_pk)
            if row is None:
                raise CourseError(404, f"no linked LMS course {context_pk}")
            self._course_role(session, caller, row.course_id, instructor=True)
            if "score_policy" in body:
                if body["score_policy"] not in ("latest", "best"):
                    raise CourseError(422, "score_policy must be latest or best", {"field": "score_policy"})
                row.score_policy = body["score_policy"]
            if "course_id" in body:
                if not caller.manager:
                    raise CourseError(403, "relinking an LMS course needs an admin")
                if session.get(m.Course, body["course_id"]) is None:
                    raise CourseError(404, f"no course {body['course_id']!r}")
                row.course_id = body["course_id"]
            return context_dict(row)
        self.write_json(await self.lti_run(work))


class RosterSyncHandler(LtiHandler):
    """``POST``: sync the roster of every LMS course linked to this course now (instructors)."""

    async def post(self, course_id):
        def contexts(session, caller):
            self._course_role(session, caller, course_id, instructor=True)
            return [r.id for r in session.scalars(select(lm.LtiContext).where(lm.LtiContext.course_id == course_id,
                                                                           lm.LtiContext.memberships_url != ""))]
        ids = await self.lti_run(contexts)
        if not ids:
            raise APIError(409, "no LMS course linked to this course offers its roster (NRPS)")
        results = {}
        for context_pk in ids:
            try:
                results[context_pk] = await self.lti.sync_roster(context_pk, course_id)
            except LtiError as exc:
                raise APIError(exc.status, exc.message)
            except PlatformUnavailable as exc:
                raise APIError(502, f"the LMS did not answer the roster request: {exc}")
        self.write_json({"contexts": results})


class ScoresHandler(LtiHandler):
    """``GET``: the grade passback outbox of a course (staff): ``?status=pending|sent|failed``, in
    pages (``limit``, ``cursor``: the answer's ``next``); the answer's ``counts`` are the whole
    course's, whatever the filter and the page (what the Instructor panel shows)."""

    async def get(self, course_id):
        status = self.get_argument("status", "")
        if status and status not in ("pending", "sent", "failed"):
            raise APIError(422, "status must be pending, sent or failed")
        try:
            limit = parse_limit(self.get_argument("limit", None))
            offset = parse_cursor(self.get_argument("cursor", None))
        except CourseError as exc:
            raise APIError(exc.status, exc.message)

        def work(session, caller):
            self._course_role(session, caller, course_id)
            query = select(lm.LtiScore).where(lm.LtiScore.course_id == course_id)
            if status:
                query = query.where(lm.LtiScore.status == status)
            counts = dict(session.execute(select(lm.LtiScore.status, func.count()).where(
                lm.LtiScore.course_id == course_id).group_by(lm.LtiScore.status)).all())
            rows = session.scalars(query.order_by(lm.LtiScore.graded_at, lm.LtiScore.id)
                                   .offset(offset).limit(limit + 1)).all()
            following = cursor_at(offset + limit) if len(rows) > limit else None
            return ([score_dict(r) for r in rows[:limit]], following,
                    {s: counts.get(s, 0) for s in ("pending", "sent", "failed")})
        items, following, counts = await self.lti_run(work)
        self.write_json({"items": items, "next": following,
                         "failed": sum(1 for i in items if i["status"] == "failed"), "counts": counts})


class ScoresRetryHandler(LtiHandler):
    """``POST``: put the failed scores (or ``{"id": ...}``) back in the outbox (instructors)."""

    async def post(self, course_id):
        body = self.get_json_body() if self.request.body else {}
        score_id = body.get("id") if isinstance(body, dict) else None

        def work(session, caller):
            self._course_role(session, caller, course_id, instructor=True)
            return self.lti.passback.retry(session, course_id, score_id)
        self.write_json({"requeued": await self.lti_run(work)})


def handlers(course: str) -> list[tuple]:
    return [
        (r"api/lti/platforms", PlatformsHandler),
        (r"api/lti/platforms/(?P<platform_id>[^/]+)", PlatformHandler),
        (r"api/lti/contexts/(?P<context_pk>[^/]+)", ContextHandler),
        (course + r"/lti", CourseLtiHandler),
        (course + r"/lti/roster-sync", RosterSyncHandler),
        (course + r"/lti/scores", ScoresHandler),
        (course + r"/lti/scores/retry", ScoresRetryHandler),
    ]
