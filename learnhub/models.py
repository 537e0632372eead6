"""Tables of the learnhub core, shared by every component."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base
from .timeutil import utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class Event(Base):
    """One xAPI-shaped event of the event log: who did what to which object, with what result.

    ``id`` is chosen by the producer, so that sending an event twice stores it once.
    """

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    verb: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(512))
    course_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    context: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    source: Mapped[str] = mapped_column(String(64))
    schema_version: Mapped[int] = mapped_column(default=1)
    stored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_events_course_time", "course_id", "time"),
        Index("ix_events_actor_time", "actor", "time"),
    )


class EventCursor(Base):
    """How far one consumer has read the event log (:class:`learnhub.event_feed.EventFeed`):
    the ``(stored_at, id)`` of the last event it handled, moved in the transaction that handled it."""

    __tablename__ = "event_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_stored_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_event_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditSubject(Base):
    """Who an audit entry names: a person (or service) behind the random ``id`` the entries hold.

    The audit log itself never stores a name: erasing a person deletes their row here, and the
    entries about them stay, unchanged, naming nobody (``docs/data-rights.md``)."""

    __tablename__ = "audit_subjects"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16), default="user")
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_audit_subjects_kind_name", "kind", "name", unique=True),)


class AuditEntry(Base):
    """One thing staff or an admin did: who (``actor_id``), what (``action`` on ``target_id`` in
    ``course_id``, with ``details``), when, and from where (``ip``). Append-only: learnhub has no
    code that changes or deletes an entry, and the database refuses it (triggers of migration 0014)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor_id: Mapped[str] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    course_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    details: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_audit_log_time", "time"), Index("ix_audit_log_actor", "actor_id"),
                      Index("ix_audit_log_target", "target_id"))


class ErasedName(Base):
    """A person erased a moment ago (:mod:`learnhub.erasures`): events naming them that are still
    appended until ``hold_until`` (work that was in flight during the erasure) get ``pseudonym``.

    The name itself is not stored — only its salted SHA-256 — and the row goes once ``hold_until``
    has passed, so the table does not become a list of who asked to be forgotten."""

    __tablename__ = "erased_names"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    salt: Mapped[str] = mapped_column(String(32))
    digest: Mapped[str] = mapped_column(String(64))
    pseudonym: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    hold_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
