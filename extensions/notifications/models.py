"""Tables of the notifications service (migration ``0004_notifications``).

A :class:`Notification` is the fact "tell this person this"; each channel it should go out on
gets a :class:`Delivery` row, written in the same transaction (the outbox). The sender works
only from :class:`Delivery` rows, so nothing is sent that was not first stored.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text)
from sqlalchemy.orm import Mapped, mapped_column

from learnhub.db import Base
from learnhub.models import new_id, utcnow

TZ = DateTime(timezone=True)

#: Delivery states. ``sending`` carries a lease: a sender that dies leaves it to expire.
PENDING, SENDING, SENT, DEAD, SKIPPED = "pending", "sending", "sent", "dead", "skipped"


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    course_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    #: what produced it (event id, announcement id, due date...): a trigger that runs twice
    #: over the same cause hits this unique key instead of notifying twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    #: set (with the in-app delivery's "sent") when it became visible in the user's in-app list
    in_app_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)

    __table_args__ = (Index("ix_notifications_user_in_app", "user_name", "in_app_at"),)


class Delivery(Base):
    """One notification on one channel: the unit the sender claims, retries and dead-letters."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("notifications.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    #: "<notification id>:<channel>", unique: one delivery per pair, and the key providers see
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: held for the user's daily digest email rather than sent on its own
    digest: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)

    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),
                      Index("ix_notification_deliveries_notification", "notification_id"))


class Preference(Base):
    """A user's choices. Contact details only as ciphertext (see :mod:`.crypto`)."""

    __tablename__ = "notification_preferences"

    user_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    email_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    phone_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow, onupdate=utcnow)
