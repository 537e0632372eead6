"""Mirror course membership into JupyterHub groups, with the service's own hub token.

``course-<id>-learners``, ``-tas`` and ``-instructors``: the hub's admin panel and RBAC see who
is in which course. The learnhub database is the source of truth; the hub groups follow it.
Each enrollment change is mirrored at once; if the hub does not answer, the enrollment still
stands and :meth:`CourseGroupMirror.reconcile` (run when the service starts and then periodically)
brings every course's groups back in line, removals included.
"""
from __future__ import annotations

import logging

from learnhub.course_roles import ROLES, group_name
from learnhub.hubapi import APIClientError, HubAPI, PeerUnavailable

log = logging.getLogger("learnhub.courses.groups")


class CourseGroupMirror:
    """Keeps the hub's course groups equal to the enrollments, through the hub's API."""

    def __init__(self, hub_api: HubAPI):
        self.hub = hub_api

    async def set_role(self, course_id: str, user: str, role: str | None) -> None:
        """Put ``user`` in the group of ``role`` (None: in none) of the course, out of the others."""
        for each in ROLES:
            name = group_name(course_id, each)
            members = await self.hub.ensure_group(name)
            if each == role and user not in members:
                await self.hub.add_group_members(name, [user])
            elif each != role and user in members:
                await self.hub.remove_group_members(name, [user])

    async def reconcile(self, wanted: dict[str, dict[str, str]]) -> int:
        """``wanted``: course id -> {user: role}. Returns how many memberships were changed."""
        changes = 0
        for course_id, members in wanted.items():
            for role in ROLES:
                name = group_name(course_id, role)
                current = set(await self.hub.ensure_group(name))
                should = {u for u, r in members.items() if r == role}
                add, remove = sorted(should - current), sorted(current - should)
                if add:
                    await self.hub.add_group_members(name, add)
                if remove:
                    await self.hub.remove_group_members(name, remove)
                changes += len(add) + len(remove)
        return changes

    async def user_exists(self, user: str) -> bool | None:
        """True/False from the hub; None when the hub cannot say (then we do not block)."""
        try:
            return await self.hub.user(user) is not None
        except (APIClientError, PeerUnavailable):
            return None
