"""The data-rights coordinator's and the audit log's endpoints (admins: ``custom:learnhub:data:admin``).

Thin: the coordinator (:class:`learnhub.data_rights.DataRightsCoordinator`) asks every service over
HTTP, the audit log is :mod:`learnhub.audit`; these check who asks, run them in a worker thread,
audit the export or erasure itself and answer.
"""
from __future__ import annotations

from tornado.ioloop import IOLoop

from learnhub import audit
from learnhub.data_rights import ErasureRefused
from learnhub.db import session_scope
from learnhub.hubapi import APIClientError, PeerUnavailable
from learnhub.service import DATA_SCOPE, APIError, DataRightsHandler
from learnhub.timeutil import parse_iso

ERROR = {"$ref": "#/components/responses/Error"}


class CoordinatorHandler(DataRightsHandler):
    async def work(self, function, *args):
        try:
            return await IOLoop.current().run_in_executor(None, function, *args)
        except ErasureRefused as exc:
            raise APIError(409, str(exc))
        except PeerUnavailable as exc:
            raise APIError(503, f"a service did not answer; nothing is lost, try again: {exc}")
        except APIClientError as exc:
            raise APIError(502, f"a service refused: {exc}", {"status": exc.status, "url": exc.url})

    def user_argument(self) -> str:
        if self.request.method == "GET":
            return self.checked_user(self.get_argument("user", ""))
        body = self.get_json_body()
        return self.checked_user(body.get("user") if isinstance(body, dict) else None)


class ArchivesHandler(CoordinatorHandler):
    """``GET api/data/archives?user=NAME``: the person's data from every service as one zip."""

    async def get(self):
        self.prepare_data_rights()
        user = self.user_argument()
        archive = await self.work(self.service.data_rights.export_archive, user)
        await self.audit("data-exported", target=user, details={"bytes": len(archive)})
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition", f'attachment; filename="learnhub-data-{user}.zip"')
        self.finish(archive)


class ErasuresHandler(CoordinatorHandler):
    """``POST api/data/erasures`` ``{"user": NAME}``: erase the person everywhere."""

    async def post(self):
        self.prepare_data_rights()
        user = self.user_argument()
        if user == self.current_user_name:
            raise APIError(409, "an admin cannot erase themselves through their own token; ask another admin")
        try:
            account = await self.service.hub_api.user(user)
        except (PeerUnavailable, APIClientError):
            account = None  # no hub account any more (or the hub is away): nothing runs for them
        if account and (account.get("server") or account.get("pending")):
            # Their home folder is erased: a running server would write into it again.
            raise APIError(409, f"{user}'s server is running; stop it first (hub admin panel, or "
                                f"DELETE /hub/api/users/{user}/server)", {"user": user})
        # With DockerSpawner: a container of theirs that still runs (409 before anything is audited or erased).
        await self.work(self.service.data_rights.core.check_erasable, user)
        # Audited first: the erasure then removes who the target was from the audit log as well.
        await self.audit("data-erased", target=user)
        report = await self.work(self.service.data_rights.erase, user)
        self.write_json(report)


class RetentionHandler(CoordinatorHandler):
    """``POST api/data/retention``: apply the retention settings now (c.DataRetention)."""

    async def post(self):
        self.prepare_data_rights()
        result = await self.work(self.service.apply_retention)
        if result["courses"]:
            await self.audit("retention-applied", details=result)
        self.write_json(result)


class AuditHandler(DataRightsHandler):
    """``GET api/audit``: the audit log, oldest first, paged by ``after`` (the last id seen)."""

    async def get(self):
        if not (self.is_admin or self.has_scope(DATA_SCOPE)):
            raise APIError(403, f"Reading the audit log is for admins ({DATA_SCOPE}).")
        args = {k: self.get_argument(k, None) or None for k in ("actor", "target", "action")}
        args["course_id"] = self.get_argument("course", None) or None
        try:
            after = int(self.get_argument("after", "0"))
            limit = int(self.get_argument("limit", "100"))
        except ValueError:
            raise APIError(400, "after and limit must be integers")
        if not 1 <= limit <= 1000 or after < 0:
            raise APIError(400, "limit must be 1-1000 and after >= 0")
        since = self.get_argument("since", None)
        if since:
            args["since"] = parse_iso(since)
            if args["since"] is None:
                raise APIError(400, "since must be an ISO 8601 time with a zone", {"parameter": "since"})

        def read():
            with session_scope(self.service.session_factory) as session:
                return audit.entries(session, after_id=after, limit=limit, **args)

        items = await IOLoop.current().run_in_executor(None, read)
        self.write_json({"items": items, "next": items[-1]["id"] if len(items) == limit else None})


def openapi_paths() -> dict:
    scopes = {"x-learnhub-scopes": [DATA_SCOPE]}
    user_body = {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["user"], "properties": {"user": {"type": "string"}}}}}}
    q = lambda name, desc, type_="string": {"name": name, "in": "query", "description": desc,  # noqa: E731
                                            "schema": {"type": type_}}
    return {
        "/api/data/archives": {"get": {
            "summary": f"One person's data from every service, as a zip (JSON per service + files; needs {DATA_SCOPE})",
            **scopes, "parameters": [dict(q("user", "the person (hub user name)"), required=True)],
            "responses": {"200": {"description": "application/zip"}, "400": ERROR, "401": ERROR, "403": ERROR,
                          "502": ERROR, "503": ERROR}}},
        "/api/data/erasures": {"post": {
            "summary": f"Erase one person in every service, pseudonymising what statistics keep (needs {DATA_SCOPE})",
            **scopes, "requestBody": user_body,
            "responses": {"200": {"description": "{user, pseudonym, services: {name: {erased, pseudonymised}}}"},
                          "400": ERROR, "401": ERROR, "403": ERROR, "409": ERROR, "502": ERROR, "503": ERROR}}},
        "/api/data/retention": {"post": {
            "summary": f"Apply the retention settings now (c.DataRetention; needs {DATA_SCOPE})", **scopes,
            "responses": {"200": {"description": "{enabled, courses, submissions, store_files, events, "
                                                 "feedback: {grading_jobs, help_requests, grading_regrades}}"},
                          "401": ERROR, "403": ERROR}}},
        "/api/audit": {"get": {
            "summary": f"The audit log of staff and admin actions, oldest first (admins; {DATA_SCOPE})", **scopes,
            "parameters": [q("actor", "who did it"), q("target", "whom it was done to"), q("action", "e.g. grade-overridden"),
                           q("course", "course id"), q("since", "ISO 8601 time"),
                           q("after", "the last id seen (paging)", "integer"), q("limit", "1-1000", "integer")],
            "responses": {"200": {"description": "{items: [{id, time, actor, action, target, course_id, details, ip, "
                                                 "source}], next: id|null}"},
                          "400": ERROR, "401": ERROR, "403": ERROR}}},
    }
