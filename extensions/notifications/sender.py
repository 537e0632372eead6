"""The sender: claims due deliveries from the outbox, delivers them, records the outcome.

Claiming works like a job queue with leases: a conditional ``UPDATE ... WHERE id = ? AND
(still due)`` moves a row to ``sending`` with ``lease_owner`` and ``lease_expires_at``; of
two senders racing for a row exactly one sees rowcount 1 (the same on SQLite and PostgreSQL,
no ``SKIP LOCKED`` needed). A sender that dies leaves its rows ``sending`` until the lease
expires, when any sender may claim them again.

Delivery guarantee:

* **in-app**: exactly once. Making the notification visible and marking the delivery sent are
  one database transaction.
* **email / SMS**: at least once, with the send-then-record window as small as we can make it
  (the provider call, then one short UPDATE). If the process dies inside that window the lease
  expires and the message is sent again, *with the same idempotency key* (SMTP ``Message-ID``,
  SendGrid ``custom_args`` + ``Idempotency-Key`` header, Twilio ``I-Twilio-Idempotency-Token``
  header), so a receiver or relay that dedupes on it drops the copy. Neither SendGrid's mail
  API nor Twilio's Messages API promise to dedupe today, so a duplicate is possible in that one
  window. Set ``Sender.resend_uncertain = False`` for at-most-once instead: such deliveries then
  go to the dead letters ("outcome unknown") for an admin to retry or drop.
* A retry after an error the provider reported (5xx, 429, connection refused) is not a
  duplicate: the provider said it did not take the message.
"""
from __future__ import annotations

import os
import random
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from traitlets import Bool, Float, Integer
from traitlets.config import LoggingConfigurable

from learnhub.db import session_scope
from learnhub.events import Verb, record
from learnhub.timeutil import as_utc as aware
from learnhub.timeutil import iso, utcnow

from .channels import DeliveryError, OutgoingMessage, PermanentError, TransientError
from .models import DEAD, PENDING, SENDING, SENT, SKIPPED, Delivery, Notification
from .templating import RenderError, Renderer


def notification_json(n: Notification) -> dict:
    return {"id": n.id, "type": n.type, "course_id": n.course_id, "title": n.title, "body": n.body,
            "data": n.data or {}, "created_at": iso(n.created_at), "read": n.read_at is not None,
            "read_at": iso(n.read_at)}


@dataclass
class _Job:
    """What the sender needs outside the database transaction to make one provider call."""
    ids: list
    channel: str
    message: OutgoingMessage
    #: (notification id, its user, its type) of every delivery in the job
    notifications: list = field(default_factory=list)


def record_sent(session, notification_id: str, user: str, type_: str, channel: str, delivery_id) -> None:
    """The ``notification-sent`` event of one delivery (its id from the delivery's: recorded once)."""
    record(session, user, Verb.NOTIFICATION_SENT, "notification", notification_id,
           result={"channel": channel, "type": type_}, source="notifications", id=f"sent:{delivery_id}")


class Sender(LoggingConfigurable):
    batch_size = Integer(50, help="Deliveries claimed per round.").tag(config=True)
    lease_seconds = Float(120.0, help="How long a claim lasts. A sender that dies holds its rows this long; "
                                      "it must exceed the slowest provider call (channel timeout).").tag(config=True)
    max_attempts = Integer(8, help="Attempts before a delivery that keeps failing is dead-lettered.").tag(config=True)
    backoff_base_seconds = Float(10.0, help="First retry delay; doubled after each failed attempt "
                                            "(with +-20% jitter so a recovering provider is not stampeded).").tag(config=True)
    backoff_max_seconds = Float(3600.0, help="Longest retry delay.").tag(config=True)
    poll_interval = Float(2.0, help="Seconds between rounds when nothing wakes the sender.").tag(config=True)
    resend_uncertain = Bool(True, help="""When a sender died during an email/SMS attempt (lease expired), send again
        (at-least-once; the idempotency key goes along) — or, if False, dead-letter it as 'outcome unknown'
        (at-most-once).""").tag(config=True)

    def __init__(self, session_factory, channels: dict, preferences, renderer: Renderer | None = None, **kwargs):
        super().__init__(**kwargs)
        self.session_factory = session_factory
        self.channels = channels
        self.preferences = preferences
        self.renderer = renderer or Renderer()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: called with (user_name, notification json) after an in-app delivery commits
        self.listeners: list = []
        self.wake = threading.Event()

    # -- claiming ---------------------------------------------------------------------------

    def _claimable(self, now: datetime):
        return or_(and_(Delivery.status == PENDING, Delivery.next_attempt_at <= now),
                   and_(Delivery.status == SENDING, Delivery.lease_expires_at < now))

    def claim(self, now: datetime) -> list[int]:
        claimed = []
        with session_scope(self.session_factory) as session:
            rows = session.execute(
                select(Delivery.id, Delivery.status, Delivery.channel).where(self._claimable(now))
                .order_by(Delivery.next_attempt_at, Delivery.id).limit(self.batch_size)).all()
            for id_, status, channel in rows:
                result = session.execute(
                    update(Delivery).where(Delivery.id == id_, self._claimable(now)).values(
                        status=SENDING, lease_owner=self.owner, lease_expires_at=now + timedelta(seconds=self.lease_seconds),
                        attempts=Delivery.attempts + 1, updated_at=now))
                if result.rowcount != 1:
                    continue  # another sender got it first
                uncertain = status == SENDING and not getattr(self.channels.get(channel), "transactional", False)
                if uncertain:
                    self.log.warning("delivery %s: previous sender died mid-attempt; %s", id_,
                                     "sending again with the same idempotency key" if self.resend_uncertain
                                     else "dead-lettering (outcome unknown)")
                    if not self.resend_uncertain:
                        session.execute(update(Delivery).where(Delivery.id == id_).values(
                            status=DEAD, lease_owner=None, lease_expires_at=None, updated_at=now,
                            last_error="outcome unknown: the sender stopped during an attempt"))
                        continue
                claimed.append(id_)
        return claimed

    # -- one round --------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> int:
        """Claim and process one batch; returns how many deliveries were handled."""
        now = now or utcnow()
        ids = self.claim(now)
        if not ids:
            return 0
        for group in self._groups(ids):
            try:
                self._process(group, now)
            except Exception:  # a bug must not take the loop down; the lease returns the rows
                self.log.exception("delivering %s failed unexpectedly", group)
        return len(ids)

    def _groups(self, ids: list[int]) -> list[list[int]]:
        """Singletons, except digest deliveries: one group per (user, channel), sent as one message."""
        with session_scope(self.session_factory) as session:
            rows = session.execute(select(Delivery.id, Delivery.digest, Delivery.channel, Notification.user_name)
                                   .join(Notification, Notification.id == Delivery.notification_id)
                                   .where(Delivery.id.in_(ids)).order_by(Delivery.id)).all()
        groups, digests = [], {}
        for id_, digest, channel, user in rows:
            if digest:
                digests.setdefault((user, channel), []).append(id_)
            else:
                groups.append([id_])
        return groups + list(digests.values())

    def _process(self, ids: list[int], now: datetime) -> None:
        job, delivered_in_app = None, []
        with session_scope(self.session_factory) as session:
            live = []
            for id_ in ids:
                delivery = session.get(Delivery, id_)
                if delivery is None or delivery.status != SENDING or delivery.lease_owner != self.owner:
                    continue
                live.append((delivery, session.get(Notification, delivery.notification_id)))
            if not live:
                return
            user = live[0][1].user_name
            channel_name = live[0][0].channel
            channel = self.channels.get(channel_name)
            prefs = self.preferences.load(session, user)
            if channel is None or not channel.configured:
                for d, _ in live:
                    self._finish(d, DEAD, now, error=f"channel {channel_name!r} is not configured")
                return
            wanted = []
            for d, n in live:
                if prefs.wants(n.type, channel_name):
                    wanted.append((d, n))
                else:  # turned off since it was queued: respect the latest choice
                    self._finish(d, SKIPPED, now, error="preference turned off before sending")
            if not wanted:
                return
            if channel.transactional:
                for d, n in wanted:
                    channel.deliver(session, n, now)
                    self._finish(d, SENT, now)
                    record_sent(session, n.id, n.user_name, n.type, channel_name, d.id)
                    delivered_in_app.append((n.user_name, notification_json(n)))
            else:
                from .preferences import quiet_until

                until = quiet_until(prefs.settings, now)
                if until:
                    for d, _ in wanted:  # not an attempt: hand it back for when quiet hours end
                        d.status, d.next_attempt_at, d.attempts = PENDING, until, d.attempts - 1
                        d.lease_owner = d.lease_expires_at = None
                    return
                to = prefs.contact(channel.contact)
                if not to:
                    for d, _ in wanted:
                        self._finish(d, SKIPPED, now, error=f"no {channel.contact} on file")
                    return
                try:
                    message = self._message(channel_name, to, user, wanted)
                except RenderError as exc:
                    for d, _ in wanted:
                        self._finish(d, DEAD, now, error=str(exc))
                    self.log.error("notification %s dead-lettered: %s", wanted[0][1].id, exc)
                    return
                job = _Job([d.id for d, _ in wanted], channel_name, message,
                           [(n.id, n.user_name, n.type) for _, n in wanted])
        for user, payload in delivered_in_app:
            for listener in self.listeners:
                try:
                    listener(user, payload)
                except Exception:
                    self.log.exception("in-app listener failed")
        if job is not None:
            self._send(job)

    def _message(self, channel_name: str, to: str, user: str, wanted: list) -> OutgoingMessage:
        html = channel_name == "email"
        if len(wanted) == 1 and not wanted[0][0].digest:
            d, n = wanted[0]
            context = {"notification": notification_json(n), "data": n.data or {}, "user": user}
            rendered = self.renderer.render(n.type, context, html=html)
            type_ = n.type
        else:
            items = [notification_json(n) for _, n in wanted]
            rendered = self.renderer.render("digest", {"items": items, "user": user,
                                                       "notification": {"title": "Your learnhub digest"}}, html=html)
            d, n, type_ = wanted[0][0], wanted[0][1], "digest"
        return OutgoingMessage(to=to, subject=rendered.subject, text=rendered.text, html=rendered.html,
                               idempotency_key=d.idempotency_key, notification_id=n.id, type=type_)

    def _send(self, job: _Job) -> None:
        channel = self.channels[job.channel]
        try:
            provider_id = channel.send(job.message)
        except DeliveryError as exc:
            self._record_failure(job.ids, exc)
            return
        except Exception as exc:  # an SDK raising something unexpected: treat as transient
            self.log.exception("channel %s raised", job.channel)
            self._record_failure(job.ids, TransientError(f"{type(exc).__name__} in channel {job.channel}"))
            return
        now = utcnow()
        with session_scope(self.session_factory) as session:
            result = session.execute(update(Delivery).where(
                Delivery.id.in_(job.ids), Delivery.lease_owner == self.owner, Delivery.status == SENDING).values(
                status=SENT, sent_at=now, provider_id=(provider_id or "")[:255] or None, lease_owner=None,
                lease_expires_at=None, last_error=None, updated_at=now))
            if result.rowcount != len(job.ids):
                # Our lease ran out mid-send and someone else took the row: a duplicate is possible.
                self.log.error("deliveries %s: lease lost during send (raise Sender.lease_seconds)", job.ids)
            for delivery_id, (notification_id, user, type_) in zip(job.ids, job.notifications):
                record_sent(session, notification_id, user, type_, job.channel, delivery_id)
        self.log.info("sent %s via %s (%s)", job.message.type, job.channel, job.message.idempotency_key)

    def _record_failure(self, ids: list[int], exc: DeliveryError) -> None:
        now = utcnow()
        with session_scope(self.session_factory) as session:
            for id_ in ids:
                d = session.get(Delivery, id_)
                if d is None or d.lease_owner != self.owner or d.status != SENDING:
                    continue
                if isinstance(exc, PermanentError) or d.attempts >= self.max_attempts:
                    self._finish(d, DEAD, now, error=str(exc))
                    self.log.warning("delivery %s dead-lettered after %d attempt(s): %s", id_, d.attempts, exc)
                else:
                    delay = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (d.attempts - 1))
                    delay *= random.uniform(0.8, 1.2)
                    d.status, d.next_attempt_at, d.last_error = PENDING, now + timedelta(seconds=delay), str(exc)
                    d.lease_owner = d.lease_expires_at = None
                    d.updated_at = now
                    self.log.info("delivery %s failed (%s); retry in %.0f s", id_, exc, delay)

    @staticmethod
    def _finish(d: Delivery, status: str, now: datetime, error: str | None = None) -> None:
        d.status, d.updated_at, d.lease_owner, d.lease_expires_at = status, now, None, None
        if status == SENT:
            d.sent_at, d.last_error = now, None
        elif error:
            d.last_error = error

    # -- looping ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Rounds until ``stop`` is set; a blocking loop for a thread or a separate process."""
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception:
                self.log.exception("sender round failed")
                handled = 0
            if handled == 0:
                self.wake.wait(self.poll_interval)
                self.wake.clear()

    def next_due(self) -> datetime | None:
        with session_scope(self.session_factory) as session:
            return aware(session.scalar(select(func.min(Delivery.next_attempt_at)).where(Delivery.status == PENDING)))


# -- dead letters ---------------------------------------------------------------------------

def dead_letter_json(d: Delivery, n: Notification) -> dict:
    return {"id": d.id, "notification_id": d.notification_id, "channel": d.channel, "user": n.user_name,
            "type": n.type, "title": n.title, "attempts": d.attempts, "error": d.last_error,
            "failed_at": iso(d.updated_at), "created_at": iso(d.created_at)}


def list_dead_letters(session, limit: int = 50, after: int | None = None) -> tuple[list[dict], int | None]:
    query = (select(Delivery, Notification).join(Notification, Notification.id == Delivery.notification_id)
             .where(Delivery.status == DEAD).order_by(Delivery.id).limit(limit + 1))
    if after is not None:
        query = query.where(Delivery.id > after)
    rows = session.execute(query).all()
    items = [dead_letter_json(d, n) for d, n in rows[:limit]]
    return items, (rows[limit - 1][0].id if len(rows) > limit else None)


def retry_dead_letter(session, delivery_id: int, now: datetime | None = None) -> Delivery | None:
    """Give a dead delivery a fresh set of attempts, due now. None if it is not dead (or unknown)."""
    now = now or utcnow()
    d = session.get(Delivery, delivery_id)
    if d is None or d.status != DEAD:
        return None
    d.status, d.attempts, d.next_attempt_at, d.updated_at = PENDING, 0, now, now
    d.lease_owner = d.lease_expires_at = None
    return d
