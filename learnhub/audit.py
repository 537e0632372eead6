"""The audit log: what staff and admins did, who, when and from where — append-only.

Services write entries with :func:`record` (grade overrides, enrollment and role changes, extensions,
regrades, announcements, data export and erasure); admins read them with :func:`entries` (the courses
service's ``GET api/audit``, ``learnhub audit``). No function here changes or deletes an entry, and the
database refuses both (the triggers of migration 0014).

Entries name people only through random ids (:class:`~learnhub.models.AuditSubject`): erasing a
person (:func:`forget`) deletes the one row that says who an id is, so the history of what was done
stays whole while it names nobody any more.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import AuditEntry, AuditSubject
from .timeutil import iso

#: what is audited; a new kind of staff action gets a name here
ACTIONS = ("enrollment-changed", "unenrolled", "grade-overridden", "extension-granted", "extension-withdrawn",
           "regrade-requested", "announcement-sent", "data-exported", "data-erased", "course-updated",
           "course-deleted", "retention-applied")
ERASED = "(erased)"


def _subject_id(session: Session, name: str, kind: str = "user") -> str:
    existing = session.scalar(select(AuditSubject.id).where(AuditSubject.kind == kind, AuditSubject.name == name))
    if existing:
        return existing
    subject = AuditSubject(kind=kind, name=name)
    try:
        with session.begin_nested():  # two writers naming one new person at once: one row wins
            session.add(subject)
    except IntegrityError:
        return session.scalar(select(AuditSubject.id).where(AuditSubject.kind == kind, AuditSubject.name == name))
    return subject.id


def record(session: Session, actor: str, action: str, *, target: str | None = None, course_id: str | None = None,
           details: dict | None = None, ip: str | None = None, source: str, actor_kind: str = "user") -> AuditEntry:
    """Append one entry (in the caller's transaction). ``actor``/``target``: names (stored as ids)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; known: {', '.join(ACTIONS)}")
    entry = AuditEntry(actor_id=_subject_id(session, actor, actor_kind), action=action,
                       target_id=_subject_id(session, target) if target else None, course_id=course_id,
                       details=details or None, ip=ip, source=source)
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, *, actor: str | None = None, target: str | None = None, action: str | None = None,
            course_id: str | None = None, since: datetime | None = None, after_id: int = 0,
            limit: int = 100) -> list[dict]:
    """Entries, oldest first, names resolved (``(erased)`` for a person who was erased)."""
    query = select(AuditEntry).where(AuditEntry.id > after_id)
    for name, column in ((actor, AuditEntry.actor_id), (target, AuditEntry.target_id)):
        if name is not None:
            ids = select(AuditSubject.id).where(AuditSubject.name == name).scalar_subquery()
            query = query.where(column.in_(ids))
    if action:
        query = query.where(AuditEntry.action == action)
    if course_id:
        query = query.where(AuditEntry.course_id == course_id)
    if since is not None:
        query = query.where(AuditEntry.time >= since)
    return _as_dicts(session, session.scalars(query.order_by(AuditEntry.id).limit(limit)).all())


def _as_dicts(session: Session, rows: list[AuditEntry]) -> list[dict]:
    ids = {i for row in rows for i in (row.actor_id, row.target_id) if i}
    names = dict(session.execute(select(AuditSubject.id, AuditSubject.name).where(AuditSubject.id.in_(ids))).all()) \
        if ids else {}
    return [{"id": row.id, "time": iso(row.time), "actor": names.get(row.actor_id, ERASED), "action": row.action,
             "target": names.get(row.target_id, ERASED) if row.target_id else None, "course_id": row.course_id,
             "details": row.details or {}, "ip": row.ip, "source": row.source} for row in rows]


def about(session: Session, name: str) -> list[dict]:
    """Every entry naming ``name`` as actor or target (for their data export)."""
    ids = select(AuditSubject.id).where(AuditSubject.kind == "user", AuditSubject.name == name).scalar_subquery()
    rows = session.scalars(select(AuditEntry).where(AuditEntry.actor_id.in_(ids) | AuditEntry.target_id.in_(ids))
                           .order_by(AuditEntry.id)).all()
    return _as_dicts(session, rows)


def forget(session: Session, name: str) -> int:
    """Erase who ``name`` is from the audit log (their entries stay, naming nobody). Returns rows deleted."""
    rows = session.scalars(select(AuditSubject).where(AuditSubject.kind == "user", AuditSubject.name == name)).all()
    for row in rows:
        session.delete(row)
    return len(rows)
