"""Reading the event log as a consumer: the events of some verbs, in order, each handled once.

A component that reacts to what others did — notifications to a release, the courses service to
a grade — subscribes by verb::

    feed = EventFeed(session_factory, "notifications-triggers", [Verb.RELEASED, Verb.GRADED])
    feed.poll(handle)          # handle(session, event) for each new event, in one transaction

The feed keeps a cursor (``event_cursors``: the ``(stored_at, id)`` of the last event handled) and
moves it in the same transaction as what the handler wrote, so a crash repeats at most the work
of one batch, which handlers make harmless with idempotency keys (event ids, dedupe keys).

It reads only events stored at least ``settle_seconds`` ago: a producer's transaction may commit
after another that stored a later ``stored_at``, and a cursor that had already passed that time
would never see the late event.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable, Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .db import session_scope
from .event_schemas import Verb
from .models import Event, EventCursor
from .timeutil import as_utc, utcnow

log = logging.getLogger("learnhub.event_feed")


class RetryLater(Exception):
    """Raised by a handler that cannot handle an event now (a peer is down): the feed stops before
    that event, its cursor stays, and the next poll starts with it again."""


class EventFeed:
    """The events of ``verbs`` not yet handled by the consumer called ``name``.

    ``first_run_lookback``: on the very first poll (no cursor yet) only this much history is read —
    a consumer deployed on a platform with years of events must not act on years of events.
    """

    def __init__(self, session_factory, name: str, verbs: Iterable[Verb], *, settle_seconds: float = 2.0,
                 batch_size: int = 500, first_run_lookback: timedelta = timedelta(hours=1)):
        self.session_factory = session_factory
        self.name = name
        self.verbs = sorted({Verb(v).value for v in verbs})
        self.settle_seconds = settle_seconds
        self.batch_size = batch_size
        self.first_run_lookback = first_run_lookback

    def poll(self, handle: Callable[[Session, Event], None], now: datetime | None = None) -> int:
        """Handle one batch of settled events; returns how many were handled."""
        now = now or utcnow()
        horizon = now - timedelta(seconds=self.settle_seconds)
        handled = 0
        with session_scope(self.session_factory) as session:
            cursor = session.get(EventCursor, self.name)
            if cursor is None:
                cursor = EventCursor(name=self.name)
                session.add(cursor)
            query = select(Event).where(Event.stored_at <= horizon, Event.verb.in_(self.verbs))
            if cursor.last_stored_at is None:
                query = query.where(Event.stored_at >= now - self.first_run_lookback)
            else:
                last = as_utc(cursor.last_stored_at)
                query = query.where(or_(Event.stored_at > last,
                                        and_(Event.stored_at == last, Event.id > cursor.last_event_id)))
            events = session.scalars(query.order_by(Event.stored_at, Event.id).limit(self.batch_size)).all()
            for event in events:
                try:
                    handle(session, event)
                except RetryLater as exc:
                    log.warning("%s: event %s will be handled later: %s", self.name, event.id, exc)
                    break
                cursor.last_stored_at, cursor.last_event_id = event.stored_at, event.id
                handled += 1
            cursor.updated_at = now
        return handled
