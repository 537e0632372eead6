"""The rules a graded submission must pass, in one place: release, archived course, deadline
(with the assignment's late policy), attempts, per-learner extensions and a per-learner rate limit.

Late policy: an assignment's ``due`` is soft unless ``hard_deadline`` is set. After a soft deadline a
submission is accepted and recorded late (minutes late); after a hard one it is refused (409,
reason ``hard_deadline``). An instructor may give one learner a later due date and/or more attempts
(:class:`Extensions`); the rules then use that learner's effective due date and attempt limit.

The rate limit counts the learner's submissions (every course) recorded in the last ``window``
seconds, in the database, so it holds across processes and restarts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnhub.timeutil import as_utc, iso, parse_iso, utcnow

from . import models as m
from .catalog import Caller, CourseError, get_course, is_staff, role_of

#: most extra attempts one extension may give
MAX_EXTRA_ATTEMPTS = 1000


@dataclass(frozen=True)
class Standing:
    """One learner's position on one assignment: effective due date and attempt limit."""

    due: datetime | None
    hard_deadline: bool
    max_attempts: int | None
    attempts_used: int
    extended: bool

    @property
    def attempts_left(self) -> int | None:
        return None if self.max_attempts is None else max(0, self.max_attempts - self.attempts_used)

    def minutes_late(self, now: datetime) -> int | None:
        """None when on time; otherwise whole minutes past the effective due date (at least 1)."""
        if self.due is None or now <= self.due:
            return None
        return max(1, math.ceil((now - self.due).total_seconds() / 60))

    def as_dict(self) -> dict:
        return {"due": iso(self.due), "hard_deadline": self.hard_deadline, "max_attempts": self.max_attempts,
                "attempts_used": self.attempts_used, "attempts_left": self.attempts_left,
                "extended": self.extended}


class SubmissionPolicy:
    """Decides whether ``user`` may submit to an assignment now; knows nothing of the web.

    ``per_minute``: graded submissions one learner may make per ``window`` seconds (0: no limit)."""

    def __init__(self, session: Session, per_minute: int = 0, window: float = 60.0):
        self.session = session
        self.per_minute = per_minute
        self.window = window

    def extension(self, course_id: str, assignment_id: str, user: str) -> m.Extension | None:
        return self.session.get(m.Extension, (course_id, assignment_id, user))

    def attempts_used(self, course_id: str, assignment_id: str, user: str) -> int:
        return self.session.scalar(select(func.count()).select_from(m.Submission).where(
            m.Submission.course_id == course_id, m.Submission.assignment_id == assignment_id,
            m.Submission.user_name == user)) or 0

    def standing(self, assignment: m.Assignment, user: str, *, attempts_used: int | None = None,
                 extension: m.Extension | None | bool = False) -> Standing:
        """``extension``: the learner's row if already read (None: none), else it is looked up."""
        if extension is False:
            extension = self.extension(assignment.course_id, assignment.id, user)
        if attempts_used is None:
            attempts_used = self.attempts_used(assignment.course_id, assignment.id, user)
        due, max_attempts = as_utc(assignment.due), assignment.max_attempts
        if extension is not None:
            if extension.due is not None:
                due = as_utc(extension.due)
            if max_attempts is not None and extension.extra_attempts:
                max_attempts += extension.extra_attempts
        return Standing(due=due, hard_deadline=bool(assignment.hard_deadline), max_attempts=max_attempts,
                        attempts_used=attempts_used, extended=extension is not None)

    def retry_after(self, user: str, now: datetime) -> int:
        """0 when ``user`` may submit now; otherwise whole seconds until the oldest counted one leaves
        the window."""
        if self.per_minute <= 0:
            return 0
        since = now - timedelta(seconds=self.window)
        recent = select(m.Submission.submitted_at).where(m.Submission.user_name == user,
                                                         m.Submission.submitted_at > since)
        count = self.session.scalar(select(func.count()).select_from(recent.subquery())) or 0
        if count < self.per_minute:
            return 0
        oldest = self.session.scalar(select(func.min(m.Submission.submitted_at)).where(
            m.Submission.user_name == user, m.Submission.submitted_at > since))
        left = (as_utc(oldest) + timedelta(seconds=self.window) - now).total_seconds()
        return max(1, math.ceil(left))

    def check(self, course: m.Course, assignment: m.Assignment, user: str,
              now: datetime | None = None) -> Standing:
        """The learner's standing if they may submit now, else a CourseError (404, 409 or 429)."""
        now = now or utcnow()
        where = {"course_id": course.id, "assignment_id": assignment.id}
        if not assignment.released:
            raise CourseError(404, f"{assignment.id} of {course.id} is not released",
                              {**where, "reason": "not_released"})
        if course.status == "archived":
            raise CourseError(409, f"course {course.id} is archived and takes no more submissions",
                              {"reason": "archived"})
        standing = self.standing(assignment, user)
        if standing.hard_deadline and standing.minutes_late(now) is not None:
            raise CourseError(409, f"the hard deadline of {assignment.id} ({iso(standing.due)}) has passed",
                              {"reason": "hard_deadline", "due": iso(standing.due), "extended": standing.extended})
        if standing.attempts_left == 0:
            raise CourseError(409, f"all {standing.max_attempts} attempts at {assignment.id} are used",
                              {"reason": "attempt_limit", "max_attempts": standing.max_attempts,
                               "attempts_used": standing.attempts_used, "extended": standing.extended})
        wait = self.retry_after(user, now)
        if wait:
            raise CourseError(429, f"too many submissions; try again in {wait} s",
                              {"reason": "rate_limit", "retry_after": wait, "limit": self.per_minute,
                               "window_seconds": self.window})
        return standing


class Extensions:
    """Per-learner extensions of one assignment, granted by the course's staff."""

    def __init__(self, session: Session):
        self.session = session

    def _staff_assignment(self, caller: Caller, course_id: str, assignment_id: str) -> m.Assignment:
        _course, role = get_course(self.session, caller, course_id)
        if not is_staff(caller, role):
            raise CourseError(403, "only the course's instructors, TAs and admins may manage extensions")
        assignment = self.session.get(m.Assignment, (course_id, assignment_id))
        if assignment is None:
            raise CourseError(404, f"course {course_id!r} has no assignment {assignment_id!r}",
                              {"course_id": course_id, "assignment_id": assignment_id})
        return assignment

    @staticmethod
    def as_dict(row: m.Extension, assignment: m.Assignment) -> dict:
        return {"course_id": row.course_id, "assignment_id": row.assignment_id, "user": row.user_name,
                "due": iso(row.due), "extra_attempts": row.extra_attempts, "assignment_due": iso(assignment.due),
                "granted_by": row.granted_by, "granted_at": iso(row.granted_at)}

    def list(self, caller: Caller, course_id: str, assignment_id: str) -> list[dict]:
        assignment = self._staff_assignment(caller, course_id, assignment_id)
        rows = self.session.scalars(select(m.Extension).where(
            m.Extension.course_id == course_id, m.Extension.assignment_id == assignment_id)
            .order_by(m.Extension.user_name))
        return [self.as_dict(row, assignment) for row in rows]

    def put(self, caller: Caller, course_id: str, assignment_id: str, user: str, body: dict) -> tuple[dict, bool]:
        """Grant or replace ``user``'s extension: body ``{"due": ISO time | null, "extra_attempts": n}``."""
        assignment = self._staff_assignment(caller, course_id, assignment_id)
        if role_of(self.session, course_id, user) is None:
            raise CourseError(404, f"{user} is not enrolled in {course_id}", {"user": user})
        if not isinstance(body, dict) or not set(body) <= {"due", "extra_attempts"}:
            raise CourseError(422, "send a JSON object with 'due' (ISO 8601 time with a zone) and/or "
                                   "'extra_attempts' (a whole number)", {"fields": ["due", "extra_attempts"]})
        due = None
        if body.get("due") is not None:
            due = parse_iso(body["due"]) if isinstance(body["due"], str) else None
            if due is None:
                raise CourseError(422, "due must be an ISO 8601 time with a zone, e.g. 2026-11-26T10:00:00Z",
                                  {"field": "due"})
        extra = body.get("extra_attempts", 0)
        if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= MAX_EXTRA_ATTEMPTS:
            raise CourseError(422, f"extra_attempts must be a whole number from 0 to {MAX_EXTRA_ATTEMPTS}",
                              {"field": "extra_attempts"})
        if due is None and extra == 0:
            raise CourseError(422, "an extension gives a later 'due' and/or 'extra_attempts' > 0",
                              {"fields": ["due", "extra_attempts"]})
        row = self.session.get(m.Extension, (course_id, assignment_id, user))
        created = row is None
        if created:
            row = m.Extension(course_id=course_id, assignment_id=assignment_id, user_name=user)
            self.session.add(row)
        row.due, row.extra_attempts, row.granted_by, row.granted_at = due, extra, caller.name, utcnow()
        self.session.flush()
        return self.as_dict(row, assignment), created

    def delete(self, caller: Caller, course_id: str, assignment_id: str, user: str) -> None:
        self._staff_assignment(caller, course_id, assignment_id)
        row = self.session.get(m.Extension, (course_id, assignment_id, user))
        if row is None:
            raise CourseError(404, f"{user} has no extension of {assignment_id}", {"user": user})
        self.session.delete(row)
