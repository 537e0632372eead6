"""Thin tornado handlers over the notifications engine (outbox, preferences, sender)."""
from __future__ import annotations

import asyncio
import re
import json

from sqlalchemy import func, select
from tornado import websocket

from learnhub.course_roles import INSTRUCTOR
from learnhub.db import session_scope
from learnhub.events import Verb, record
from learnhub.models import new_id
from learnhub.service import APIError, APIHandler, APIWebSocketHandler

from .models import Notification
from .outbox import NewNotification
from .preferences import PreferenceError
from .sender import list_dead_letters, notification_json, retry_dead_letter

ADMIN_SCOPE = "custom:learnhub:notifications:admin"


def dead_letter_id(text: str) -> int | None:
    """A delivery id from the URL, or None. ASCII digits only (``str.isdigit`` also takes "²", which
    ``int`` refuses) and at most 18 of them (a larger number overflows the database's BIGINT)."""
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


def _limit(handler, default=50, maximum=200) -> int:
    raw = handler.get_query_argument("limit", str(default))
    try:
        value = int(raw)
    except ValueError:
        raise APIError(422, "limit must be an integer", {"field": "limit"})
    if not 1 <= value <= maximum:
        raise APIError(422, f"limit must be between 1 and {maximum}", {"field": "limit"})
    return value


class NotificationsHandler(APIHandler):
    """``GET api/notifications``: the caller's in-app notifications, newest first."""

    async def get(self):
        unread = self.get_query_argument("unread", "0").lower() in ("1", "true", "yes")
        limit = _limit(self)
        before = self.get_query_argument("cursor", None)
        user = self.current_user_name

        def work():
            with session_scope(self.service.session_factory) as session:
                query = select(Notification).where(Notification.user_name == user, Notification.in_app_at.is_not(None))
                if unread:
                    query = query.where(Notification.read_at.is_(None))
                if before:
                    ref = session.get(Notification, before)
                    if ref is None or ref.user_name != user:
                        raise APIError(422, "Unknown cursor.", {"field": "cursor"})
                    query = query.where((Notification.in_app_at < ref.in_app_at) |
                                        ((Notification.in_app_at == ref.in_app_at) & (Notification.id < ref.id)))
                rows = session.scalars(query.order_by(Notification.in_app_at.desc(), Notification.id.desc())
                                       .limit(limit + 1)).all()
                unread_count = session.scalar(select(func.count()).select_from(Notification).where(
                    Notification.user_name == user, Notification.in_app_at.is_not(None),
                    Notification.read_at.is_(None)))
                items = [notification_json(n) for n in rows[:limit]]
                return {"items": items, "next": rows[limit - 1].id if len(rows) > limit else None,
                        "unread": unread_count}

        self.write_json(await asyncio.get_running_loop().run_in_executor(None, work))


class ReadHandler(APIHandler):
    """``POST api/notifications/{id}/read``: mark one of the caller's notifications read."""

    async def post(self, notification_id):
        user = self.current_user_name

        def work():
            with session_scope(self.service.session_factory) as session:
                n = session.get(Notification, notification_id)
                # Someone else's id answers exactly like an unknown one: no probing.
                if n is None or n.user_name != user or n.in_app_at is None:
                    raise APIError(404, "No such notification.")
                if n.read_at is None:
                    n.read_at = self.service.now()
                    record(session, user, Verb.NOTIFICATION_READ, "notification", n.id, source="notifications",
                           result={"type": n.type}, id=f"read:{n.id}")
                return notification_json(n)

        self.write_json(await asyncio.get_running_loop().run_in_executor(None, work))


class PreferencesHandler(APIHandler):
    """``GET|PUT api/preferences``."""

    async def get(self):
        user = self.current_user_name

        def work():
            with session_scope(self.service.session_factory) as session:
                return self.service.preference_store.load(session, user).public()

        self.write_json(await asyncio.get_running_loop().run_in_executor(None, work))

    async def put(self):
        body = self.get_json_body()
        user = self.current_user_name

        def work():
            with session_scope(self.service.session_factory) as session:
                return self.service.preference_store.update(session, user, body).public()

        try:
            result = await asyncio.get_running_loop().run_in_executor(None, work)
        except PreferenceError as exc:
            raise APIError(422, exc.message, {"field": exc.field})
        self.write_json(result)


class AnnouncementsHandler(APIHandler):
    """``POST api/courses/{course_id}/announcements``: instructors of the course (or admins) only."""

    async def post(self, course_id):
        await self.require_course_role(course_id, INSTRUCTOR)  # admins count as instructors
        body = self.get_json_body()
        if not isinstance(body, dict):
            raise APIError(422, "Send {\"title\": ..., \"body\": ...}.", {"field": "body"})
        title, text = body.get("title"), body.get("body", "")
        if not isinstance(title, str) or not title.strip() or len(title) > 300:
            raise APIError(422, "title is required (1-300 characters).", {"field": "title"})
        if not isinstance(text, str) or len(text) > 20000:
            raise APIError(422, "body must be text (at most 20000 characters).", {"field": "body"})
        author = self.current_user_name
        announcement_id = new_id()

        def work():
            recipients = self.service.recipients.learners(course_id)
            items = [NewNotification(user, "announcement", title.strip(), text, course_id,
                                     {"announcement_id": announcement_id, "author": author},
                                     dedupe_key=f"announcement:{announcement_id}:{user}") for user in recipients]
            return len(self.service.outbox.add_many(self.service.session_factory, items))

        try:
            count = await asyncio.get_running_loop().run_in_executor(None, work)
        except Exception as exc:
            if "requests" in type(exc).__module__:
                raise APIError(503, "Cannot list the course's learners right now; try again.")
            raise
        await self.audit("announcement-sent", course_id=course_id,
                         details={"announcement_id": announcement_id, "recipients": count})
        self.write_json({"id": announcement_id, "course_id": course_id, "recipients": count}, 202)


class DeadLettersHandler(APIHandler):
    """``GET api/dead-letters``: deliveries that failed for good (admins)."""

    def check_admin(self):
        if not (self.is_admin or self.has_scope(ADMIN_SCOPE)):
            raise APIError(403, f"Needs admin or the {ADMIN_SCOPE} scope.")

    async def get(self):
        self.check_admin()
        limit = _limit(self)
        after = self.get_query_argument("cursor", None)
        if after is not None and dead_letter_id(after) is None:
            raise APIError(422, "cursor must be a dead letter id", {"field": "cursor"})

        def work():
            with session_scope(self.service.session_factory) as session:
                return list_dead_letters(session, limit, int(after) if after else None)

        items, next_ = await asyncio.get_running_loop().run_in_executor(None, work)
        self.write_json({"items": items, "next": next_})


class DeadLetterRetryHandler(DeadLettersHandler):
    """``POST api/dead-letters/{id}/retry``: queue a dead delivery again with fresh attempts."""

    async def get(self, *args):
        raise APIError(405, "Use POST.")

    async def post(self, delivery_id):
        self.check_admin()
        if dead_letter_id(delivery_id) is None:
            raise APIError(404, "No such dead letter.")

        def work():
            with session_scope(self.service.session_factory) as session:
                return retry_dead_letter(session, int(delivery_id)) is not None

        if not await asyncio.get_running_loop().run_in_executor(None, work):
            raise APIError(404, "No such dead letter (already retried, or never dead).")
        self.service.wake_sender()
        self.write_json({"id": int(delivery_id), "status": "pending"}, 202)


class StreamHandler(APIWebSocketHandler):
    """``GET api/notifications/stream`` (WebSocket): the caller's new in-app notifications, live.

    Authenticated before the upgrade like the REST API (401/403 as JSON, no socket). Messages:
    ``{"type": "hello", "unread": n}`` on connect, then ``{"type": "notification", "notification": {...}}``
    for each one delivered in-app.
    """

    async def open(self):
        self.user_name = self.current_user["name"]
        self.service.broker.subscribe(self.user_name, self)
        user = self.user_name

        def count():
            with session_scope(self.service.session_factory) as session:
                return session.scalar(select(func.count()).select_from(Notification).where(
                    Notification.user_name == user, Notification.in_app_at.is_not(None),
                    Notification.read_at.is_(None)))

        unread = await asyncio.get_running_loop().run_in_executor(None, count)
        self.send({"type": "hello", "unread": unread})

    def on_message(self, message):
        if message == "ping":
            self.send({"type": "pong"})

    def on_close(self):
        self.service.broker.unsubscribe(getattr(self, "user_name", None), self)


class InAppBroker:
    """Fans in-app deliveries out to the user's open streams. ``publish`` may be called from the
    sender's thread; it hops onto the event loop."""

    def __init__(self, loop=None):
        self.loop = loop
        self.subscribers: dict[str, set] = {}

    def subscribe(self, user, handler):
        self.subscribers.setdefault(user, set()).add(handler)

    def unsubscribe(self, user, handler):
        self.subscribers.get(user, set()).discard(handler)

    def publish(self, user, payload):
        if self.loop is None:
            return
        self.loop.call_soon_threadsafe(self._deliver, user, payload)

    def _deliver(self, user, payload):
        for handler in list(self.subscribers.get(user, ())):
            try:
                handler.write_message(json.dumps({"type": "notification", "notification": payload}))
            except websocket.WebSocketClosedError:
                self.unsubscribe(user, handler)
