"""The outbox: a notification and its per-channel deliveries are written in one transaction.

Nothing is ever sent that was not stored first; the sender (:mod:`.sender`) only reads
deliveries. Which channels get a delivery is decided here from the user's preferences and
the channels the service has configured; quiet hours and the daily digest only move a
delivery's ``next_attempt_at``. The sender checks preferences again just before sending,
so turning a channel off also stops what is already queued.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnhub import erasures
from learnhub.models import new_id
from learnhub.timeutil import utcnow

from .models import Delivery, Notification
from .preferences import TYPES, PreferenceStore, next_digest_time, quiet_until


class _Erased(Exception):
    """The recipient was just erased: the savepoint is rolled back, nothing is queued."""


@dataclass
class NewNotification:
    user_name: str
    type: str
    title: str
    body: str = ""
    course_id: str | None = None
    data: dict = field(default_factory=dict)
    #: what caused it, unique: the same cause never notifies twice
    dedupe_key: str | None = None


class Outbox:
    """Write notifications with their deliveries. ``channels`` maps channel name → channel object."""

    def __init__(self, preferences: PreferenceStore, channels: dict, on_enqueued=None):
        self.preferences = preferences
        self.channels = channels
        #: called (no arguments) after a commit that queued deliveries: wakes the sender
        self.on_enqueued = on_enqueued

    def channels_for(self, prefs, type_: str) -> list[str]:
        chosen = []
        for name, channel in self.channels.items():
            if not channel.configured or not prefs.wants(type_, name):
                continue
            if channel.contact and not prefs.contact(channel.contact):
                continue  # asked for email/SMS but gave no address: nothing to send to
            chosen.append(name)
        return chosen

    def add(self, session: Session, item: NewNotification, now: datetime | None = None) -> Notification | None:
        """Queue ``item`` in ``session`` (the caller commits). None if its dedupe key was seen before."""
        if item.type not in TYPES:
            raise ValueError(f"unknown notification type {item.type!r}")
        now = now or utcnow()
        if item.dedupe_key and session.scalar(
                select(Notification.id).where(Notification.dedupe_key == item.dedupe_key)):
            return None
        prefs = self.preferences.load(session, item.user_name)
        notification = Notification(id=new_id(), user_name=item.user_name, type=item.type,
                                    course_id=item.course_id, title=item.title[:300], body=item.body,
                                    data=item.data or {}, dedupe_key=item.dedupe_key, created_at=now)
        try:
            # A savepoint: a concurrent writer of the same dedupe key loses only this item.
            with session.begin_nested():
                session.add(notification)
                session.flush()
                if erasures.is_erased(session, item.user_name):
                    # Erased a moment ago (work in flight: an event read before their erasure). Asked
                    # after the insert: an erasure running now waits for this row, or has committed and
                    # its tombstone is seen (learnhub.erasures).
                    raise _Erased
                for channel in self.channels_for(prefs, item.type):
                    due, digest = now, False
                    if channel != "in_app":
                        if channel == "email" and prefs.settings["digest"]["enabled"] and item.type != "announcement":
                            due, digest = next_digest_time(prefs.settings, now), True
                        due = quiet_until(prefs.settings, due) or due
                    session.add(Delivery(notification_id=notification.id, channel=channel,
                                         idempotency_key=f"{notification.id}:{channel}", status="pending",
                                         attempts=0, next_attempt_at=due, digest=digest,
                                         created_at=now, updated_at=now))
                session.flush()
        except (IntegrityError, _Erased):
            return None
        return notification

    def add_many(self, session_factory, items: list[NewNotification]) -> list[Notification]:
        """Queue ``items`` in one transaction and commit; returns those newly queued."""
        from learnhub.db import session_scope

        with session_scope(session_factory) as session:
            added = [n for n in (self.add(session, item) for item in items) if n is not None]
        if added and self.on_enqueued:
            self.on_enqueued()
        return added
