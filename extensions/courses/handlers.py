"""Thin tornado handlers: authenticate (the kit), build a :class:`Caller`, call the engine, answer JSON."""
from __future__ import annotations

import asyncio
import base64
import logging

from sqlalchemy.exc import IntegrityError, OperationalError
from tornado.ioloop import IOLoop

from learnhub.db import session_scope
from learnhub.service import APIError, APIHandler

from learnhub.timeutil import parse_iso

from .catalog import (Caller, CourseCatalog, CourseError, Enrollments, Profiles, Progress, Schedule, page,
                      parse_cursor, parse_limit)
from .policy import Extensions, SubmissionPolicy
from .submissions import AssignmentExchange

log = logging.getLogger("learnhub.courses")

SCOPE_CREATE = "custom:learnhub:courses:create"
SCOPE_MANAGE = "custom:learnhub:courses:manage"
SCOPE_GRADES = "custom:learnhub:grades:read"
SCOPE_READ_ALL = "custom:learnhub:courses:read"
SCOPE_SUBMIT_FOR = "custom:learnhub:submissions:write"


def encode_files(files: list[dict]) -> list[dict]:
    return [{"path": f["path"], "sha256": f["sha256"], "size": f["size"],
             "content_b64": base64.b64encode(f["content"]).decode("ascii")} for f in files]


class CoursesHandler(APIHandler):
    @property
    def caller(self) -> Caller:
        if not hasattr(self, "_caller"):
            self._caller = Caller(name=self.current_user_name, admin=self.is_admin,
                                  can_create=self.has_scope(SCOPE_CREATE), can_manage=self.has_scope(SCOPE_MANAGE),
                                  can_read_grades=self.has_scope(SCOPE_GRADES),
                                  can_read_all=self.has_scope(SCOPE_READ_ALL),
                                  can_submit_for=self.has_scope(SCOPE_SUBMIT_FOR))
        return self._caller

    async def run(self, work, *, retries: int = 0, caller: Caller | None = None):
        """Run ``work(session, caller)`` in a worker thread, in one transaction; engine errors become API
        errors. ``caller``: who the engine sees (default: whoever sent the request)."""
        caller = caller or self.caller  # resolve scopes on the IO loop thread

        def transaction():
            with session_scope(self.service.session_factory) as session:
                return work(session, caller)

        attempt = 0
        while True:
            try:
                return await IOLoop.current().run_in_executor(None, transaction)
            except CourseError as exc:
                headers = {"Retry-After": str(exc.details["retry_after"])} if exc.status == 429 else None
                raise APIError(exc.status, exc.message, exc.details, headers=headers)
            except (IntegrityError, OperationalError) as exc:
                # A lost race (two writers on one unique key, or SQLite's writer lock): try again anew.
                if attempt >= retries:
                    raise
                attempt += 1
                log.info("retrying after a conflicting write (%s): attempt %d", type(exc).__name__, attempt)
                await asyncio.sleep(0.05 * attempt)

    def paged(self, items: list) -> dict:
        try:
            return page(items, parse_cursor(self.get_argument("cursor", None)),
                        parse_limit(self.get_argument("limit", None)))
        except CourseError as exc:
            raise APIError(exc.status, exc.message, exc.details)

    def uploaded_files(self) -> dict[str, bytes]:
        limit = self.service.max_upload_bytes
        # The kit has already read the body; refuse early what cannot fit before parsing it further.
        if len(self.request.body or b"") > limit + 1024 * 1024:
            raise APIError(413, f"upload is {len(self.request.body)} bytes; the limit is {limit}",
                           {"limit": limit})
        files: dict[str, bytes] = {}
        for item in self.request.files.get("files", []):
            if item.filename in files:
                raise APIError(400, f"file {item.filename} is uploaded twice", {"file": item.filename})
            files[item.filename] = item.body
        return files

    def flag(self, name: str) -> bool:
        return self.get_argument(name, "0").lower() in ("1", "true", "yes")

    @property
    def store(self):
        return self.service.store

    def policy(self, session) -> SubmissionPolicy:
        return SubmissionPolicy(session, self.service.submissions_per_minute, self.service.submissions_window)

    def exchange(self, session, max_bytes: int = 0) -> AssignmentExchange:
        return AssignmentExchange(session, self.store, max_bytes, self.service.sources, self.policy(session))


class CoursesListHandler(CoursesHandler):
    async def get(self):
        args = {k: self.get_argument(k, "") for k in ("q", "tag", "level", "skill", "status")}
        mine = self.flag("mine")
        items = await self.run(lambda s, c: CourseCatalog(s).search(c, mine=mine, **args))
        self.write_json(self.paged(items))

    async def post(self):
        body = self.get_json_body()
        course = await self.run(lambda s, c: CourseCatalog(s).create(c, body))
        await self.service.mirror(course["id"], self.current_user_name, "instructor")
        self.write_json(course, 201)


class CourseHandler(CoursesHandler):
    async def get(self, course_id):
        self.write_json(await self.run(lambda s, c: CourseCatalog(s).get(c, course_id)))

    async def patch(self, course_id):
        body = self.get_json_body()
        result = await self.run(lambda s, c: CourseCatalog(s).update(c, course_id, body))
        await self.audit("course-updated", course_id=course_id,
                         details={"fields": sorted(body) if isinstance(body, dict) else []})
        self.write_json(result)

    async def delete(self, course_id):
        await self.run(lambda s, c: CourseCatalog(s).delete(c, course_id))
        await self.audit("course-deleted", course_id=course_id)
        self.set_status(204)
        self.finish()


class EnrollmentsHandler(CoursesHandler):
    async def get(self, course_id):
        role = self.get_argument("role", "")
        items = await self.run(lambda s, c: Enrollments(s).list(c, course_id, role))
        self.write_json(self.paged(items))

    async def post(self, course_id):
        body = self.get_json_body() if self.request.body else {}
        user = body.get("user") if isinstance(body, dict) else None
        if user is not None and not isinstance(user, str):
            # Looked up in the hub below: a number or a list there was a 500, not the caller's mistake.
            raise APIError(422, "user must be a user name (text)", {"field": "user"})
        if user and user != self.current_user_name:
            exists = await self.service.groups.user_exists(user)
            if exists is False:
                raise APIError(422, f"no hub user {user!r}; they must sign up first", {"field": "user"})
        row, previous, created = await self.run(lambda s, c: Enrollments(s).enroll(c, course_id, body))
        if previous != row["role"] or not row["mirrored"]:
            row["mirrored"] = await self.service.mirror(course_id, row["user"], row["role"])
        if previous != row["role"] and (row["user"] != self.current_user_name or previous is not None):
            # Staff enrolling someone or changing a role (joining an open course oneself is not audited).
            await self.audit("enrollment-changed", target=row["user"], course_id=course_id,
                             details={"role": row["role"], "previous_role": previous})
        self.write_json(row, 201 if created else 200)


class EnrollmentHandler(CoursesHandler):
    async def delete(self, course_id, user):
        await self.run(lambda s, c: Enrollments(s).unenroll(c, course_id, user))
        await self.service.mirror(course_id, user, None)
        if user != self.current_user_name:
            await self.audit("unenrolled", target=user, course_id=course_id)
        self.set_status(204)
        self.finish()


class AssignmentsHandler(CoursesHandler):
    async def get(self, course_id):
        user = self.get_argument("user", None)
        items = await self.run(lambda s, c: Progress(s).assignments(c, course_id, user))
        self.write_json(self.paged(items))


class ProgressHandler(CoursesHandler):
    async def get(self, course_id):
        user = self.get_argument("user", None)
        self.write_json(await self.run(lambda s, c: Progress(s).progress(c, course_id, user)))


class ProfileHandler(CoursesHandler):
    async def get(self):
        self.write_json(await self.run(lambda s, c: Profiles(s).get(c)))

    async def put(self):
        body = self.get_json_body()
        self.write_json(await self.run(lambda s, c: Profiles(s).put(c, body)))


class UserProfileHandler(CoursesHandler):
    """``GET api/profiles/{user}``: one person's profile, for themselves and learnhub's services."""

    async def get(self, user):
        self.write_json(await self.run(lambda s, c: Profiles(s).get(c, user)))


class ScheduleHandler(CoursesHandler):
    """``GET api/schedule?course=&due_after=&due_before=``: released assignments and their due dates."""

    async def get(self):
        bounds = {}
        for name in ("due_after", "due_before"):
            value = self.get_argument(name, None)
            if value:
                bounds[name] = parse_iso(value)
                if bounds[name] is None:
                    raise APIError(400, f"{name} must be an ISO 8601 time with a zone, e.g. 2026-11-26T10:00:00Z",
                                   {"parameter": name})
        course = self.get_argument("course", None) or None
        items = await self.run(lambda s, c: Schedule(s).list(c, course=course, **bounds))
        self.write_json(self.paged(items))


class ReleaseHandler(CoursesHandler):
    async def post(self, course_id, assignment_id):
        files, force = self.uploaded_files(), self.flag("force")
        limit = self.service.max_upload_bytes
        result = await self.run(lambda s, c: self.exchange(s, limit).release(
            c, course_id, assignment_id, files, force=force))
        self.write_json(result, 201)

    async def delete(self, course_id, assignment_id):
        self.write_json(await self.run(lambda s, c: self.exchange(s, 0).unrelease(
            c, course_id, assignment_id)))


class DownloadHandler(CoursesHandler):
    async def get(self, course_id, assignment_id):
        result = await self.run(lambda s, c: self.exchange(s, 0).download(c, course_id, assignment_id))
        result["files"] = encode_files(result["files"])
        self.write_json(result)


class SubmissionsHandler(CoursesHandler):
    async def get(self, course_id, assignment_id):
        user = self.get_argument("user", None)
        latest = self.flag("latest") or self.flag("collect")
        items = await self.run(lambda s, c: self.exchange(s, 0).list_submissions(
            c, course_id, assignment_id, user=user, latest=latest))
        self.write_json(self.paged(items))

    async def post(self, course_id, assignment_id):
        """Submit. A learner submits their own work; the feedback service (``submissions:write``)
        submits what a learner handed to it, naming them in the form field ``user`` — either way the
        same rules apply, in :meth:`AssignmentExchange.submit`."""
        limit = self.service.max_upload_bytes
        learner = self.get_body_argument("user", None)
        submitter = self.caller
        if learner and learner != self.current_user_name:
            if not self.caller.can_submit_for:
                raise APIError(403, "only learnhub's feedback service may submit for someone else; "
                                    "submit your own work without 'user'", {"field": "user"})
            submitter = Caller(name=learner)

        # Who may submit is checked before the upload is even looked at (403/404/409 first).
        await self.run(lambda s, c: self.exchange(s, limit).check_can_submit(c, course_id, assignment_id),
                       caller=submitter)
        files = self.uploaded_files()
        # Committed before we answer: a learner told "submitted" has a durable row, and its
        # "submitted" event (same transaction) is what the feedback service grades.
        result = await self.run(lambda s, c: self.exchange(s, limit).submit(c, course_id, assignment_id, files),
                                retries=8, caller=submitter)
        self.write_json(result, 201)


class SubmissionFilesHandler(CoursesHandler):
    async def get(self, course_id, assignment_id, submission_id):
        result = await self.run(lambda s, c: self.exchange(s, 0).submission_files(
            c, course_id, assignment_id, submission_id))
        result["files"] = encode_files(result["files"])
        self.write_json(result)


class FeedbackHandler(CoursesHandler):
    async def get(self, course_id, assignment_id):
        user = self.get_argument("user", None)
        result = await self.run(lambda s, c: self.exchange(s, 0).fetch_feedback(
            c, course_id, assignment_id, user))
        for item in result["items"]:
            item["feedback"] = encode_files(item["feedback"])
        self.write_json(result)

    async def post(self, course_id, assignment_id):
        import json

        files = self.uploaded_files()
        arg = lambda name: self.get_body_argument(name, None)  # noqa: E731
        try:
            score = float(arg("score")) if arg("score") not in (None, "") else None
            max_score = float(arg("max_score")) if arg("max_score") not in (None, "") else None
            cell_scores = json.loads(arg("cell_scores")) if arg("cell_scores") else None
        except ValueError as exc:
            raise APIError(422, f"score, max_score must be numbers and cell_scores a JSON object: {exc}")
        if cell_scores is not None and not isinstance(cell_scores, dict):
            raise APIError(422, "cell_scores must be a JSON object {grade_id: points}")
        limit = self.service.max_upload_bytes
        result = await self.run(lambda s, c: self.exchange(s, limit).release_feedback(
            c, course_id, assignment_id, submission_id=arg("submission"), user=arg("user"),
            timestamp=arg("timestamp"), files=files, score=score, max_score=max_score, cell_scores=cell_scores))
        if score is not None or cell_scores is not None:
            # A grade set by staff, over whatever the autograder said.
            await self.audit("grade-overridden", target=result.get("user") or arg("user"), course_id=course_id,
                             details={"assignment_id": assignment_id, "submission_id": result.get("submission"),
                                      "score": score, "max_score": max_score,
                                      "cells": sorted(cell_scores) if cell_scores else []})
        self.write_json(result, 201)


class ExtensionsHandler(CoursesHandler):
    """``GET .../extensions``: every learner's extension of one assignment (staff)."""

    async def get(self, course_id, assignment_id):
        items = await self.run(lambda s, c: Extensions(s).list(c, course_id, assignment_id))
        self.write_json(self.paged(items))


class ExtensionHandler(CoursesHandler):
    """``PUT/DELETE .../extensions/{user}``: grant, replace or withdraw one learner's extension (staff)."""

    async def put(self, course_id, assignment_id, user):
        body = self.get_json_body()
        row, created = await self.run(lambda s, c: Extensions(s).put(c, course_id, assignment_id, user, body))
        await self.audit("extension-granted", target=user, course_id=course_id,
                         details={"assignment_id": assignment_id, "due": row.get("due"),
                                  "extra_attempts": row.get("extra_attempts")})
        self.write_json(row, 201 if created else 200)

    async def delete(self, course_id, assignment_id, user):
        await self.run(lambda s, c: Extensions(s).delete(c, course_id, assignment_id, user))
        await self.audit("extension-withdrawn", target=user, course_id=course_id, details={"assignment_id": assignment_id})
        self.set_status(204)
        self.finish()
