"""Mirror course membership into JupyterHub groups, with the service's own hub token.

``course-<id>-learners``, ``-tas`` and ``-instructors``: the hub's admin panel and RBAC see who
is in which course. The learnhub database is the source of truth; the hub groups follow it.
Each enrollment change is mirrored at once; if the hub does not answer, the enrollment still
stands and :meth:`HubGroups.reconcile` (run when the service starts and then periodically)
brings every course's groups back in line, removals included.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

log = logging.getLogger("learnhub.courses.groups")

GROUP_SUFFIX = {"learner": "learners", "ta": "tas", "instructor": "instructors"}


def group_name(course_id: str, role: str) -> str:
    return f"course-{course_id}-{GROUP_SUFFIX[role]}"


class HubGroups:
    def __init__(self, hub_api_url: str, api_token: str, timeout: float = 10):
        self.hub_api_url = hub_api_url.rstrip("/")
        self.api_token = api_token
        self.timeout = timeout

    async def _call(self, method: str, path: str, body: dict | None = None):
        request = HTTPRequest(self.hub_api_url + path, method=method,
                              headers={"Authorization": f"token {self.api_token}",
                                       "Content-Type": "application/json"},
                              body=json.dumps(body) if body is not None else None,
                              allow_nonstandard_methods=True, request_timeout=self.timeout,
                              connect_timeout=self.timeout)
        response = await AsyncHTTPClient().fetch(request)
        return json.loads(response.body) if response.body else None

    async def ensure_group(self, name: str) -> list[str]:
        """The group's members, creating the group when it is missing."""
        try:
            group = await self._call("GET", f"/groups/{quote(name)}")
        except HTTPClientError as exc:
            if exc.code != 404:
                raise
            try:
                await self._call("POST", f"/groups/{quote(name)}", {})
            except HTTPClientError as create_exc:
                if create_exc.code != 409:  # created meanwhile by someone else: fine
                    raise
            return []
        return list(group.get("users", []))

    async def set_role(self, course_id: str, user: str, role: str | None) -> None:
        """Put ``user`` in the group of ``role`` (None: in none) of the course, out of the others."""
        for each in GROUP_SUFFIX:
            name = group_name(course_id, each)
            members = await self.ensure_group(name)
            if each == role and user not in members:
                await self._call("POST", f"/groups/{quote(name)}/users", {"users": [user]})
            elif each != role and user in members:
                await self._call("DELETE", f"/groups/{quote(name)}/users", {"users": [user]})

    async def reconcile(self, wanted: dict[str, dict[str, str]]) -> int:
        """``wanted``: course id -> {user: role}. Returns how many memberships were changed."""
        changes = 0
        for course_id, members in wanted.items():
            for role in GROUP_SUFFIX:
                name = group_name(course_id, role)
                current = set(await self.ensure_group(name))
                should = {u for u, r in members.items() if r == role}
                add, remove = sorted(should - current), sorted(current - should)
                if add:
                    await self._call("POST", f"/groups/{quote(name)}/users", {"users": add})
                if remove:
                    await self._call("DELETE", f"/groups/{quote(name)}/users", {"users": remove})
                changes += len(add) + len(remove)
        return changes

    async def user_exists(self, user: str) -> bool | None:
        """True/False from the hub; None when the hub cannot say (then we do not block)."""
        try:
            await self._call("GET", f"/users/{quote(user)}")
            return True
        except HTTPClientError as exc:
            if exc.code == 404:
                return False
            return None
        except Exception:
            return None
