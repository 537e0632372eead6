"""Course roles and the hub groups that mirror them: ``course-<id>-learners|-tas|-instructors``.

The courses service keeps who has which role in which course and mirrors it into these JupyterHub
groups, so that the hub's admin panel and RBAC see course membership and every other service can
read a caller's course roles from the groups in its hub user model. This module is the only place
the group names are built or parsed.
"""
from __future__ import annotations

import re
from typing import Iterable

LEARNER, TA, INSTRUCTOR = "learner", "ta", "instructor"

#: strongest first: someone in two groups of one course holds the stronger role
ROLES = (INSTRUCTOR, TA, LEARNER)
STAFF = (INSTRUCTOR, TA)

_PLURAL = {LEARNER: "learners", TA: "tas", INSTRUCTOR: "instructors"}
_SINGULAR = {plural: role for role, plural in _PLURAL.items()}
_GROUP = re.compile(r"^course-(?P<course>.+)-(?P<plural>learners|tas|instructors)$")


def group_name(course_id: str, role: str) -> str:
    """The hub group of ``role`` in ``course_id``, e.g. ``course-intro-python-learners``."""
    return f"course-{course_id}-{_PLURAL[role]}"


def parse_group(name: str) -> tuple[str, str] | None:
    """``(course id, role)`` of a course group's name, or None for any other group."""
    match = _GROUP.match(name or "")
    if match is None:
        return None
    return match.group("course"), _SINGULAR[match.group("plural")]


def role_in(groups: Iterable[str], course_id: str) -> str | None:
    """The strongest role the hub groups ``groups`` give in ``course_id``, or None."""
    names = set(groups or ())
    for role in ROLES:
        if group_name(course_id, role) in names:
            return role
    return None


def roles_from_groups(groups: Iterable[str]) -> dict[str, str]:
    """``{course id: strongest role}`` from hub group names (other groups are ignored)."""
    roles: dict[str, str] = {}
    for name in groups or ():
        parsed = parse_group(name)
        if parsed is None:
            continue
        course, role = parsed
        if course not in roles or ROLES.index(role) < ROLES.index(roles[course]):
            roles[course] = role
    return roles
