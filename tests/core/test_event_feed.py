"""Reading the event log as a consumer (learnhub/event_feed.py): events of the subscribed verbs in
``(stored_at, id)`` order, each handled once, the cursor moved in the handler's own transaction.

Events are stored with chosen ``stored_at`` times and every poll is given its ``now``, so that the
settle time and the first-run lookback are tested without waiting for a clock."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert, select

from learnhub import db as lhdb
from learnhub.event_feed import EventFeed, RetryLater
from learnhub.events import Verb, make_event, to_row
from learnhub.models import Event, EventCursor

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def store(session_factory, *events: tuple[str, Verb, datetime]) -> None:
    """Events ``(id, verb, stored_at)`` in course c1, as valid as producers write them."""
    shapes = {Verb.RELEASED: dict(object_type="assignment", result={"title": "Loops"}),
              Verb.GRADED: dict(object_type="submission", result={"score": 1.0}),
              Verb.ENROLLED: dict(object_type="course", result={"role": "learner"})}
    rows = []
    for event_id, verb, stored_at in events:
        shape = shapes[verb]
        event = make_event("ann", verb, shape["object_type"], event_id, course_id="c1", result=shape["result"],
                           context={"assignment_id": "a1"}, time=stored_at, id=event_id)
        rows.append(to_row(event, "test", stored_at))
    with lhdb.session_scope(session_factory) as session:
        session.execute(insert(Event), rows)


def cursor_of(session_factory, name: str) -> tuple | None:
    with session_factory() as session:
        cursor = session.get(EventCursor, name)
        return None if cursor is None else (cursor.last_event_id, cursor.last_stored_at is not None)


class Recorder:
    """A handler that writes in the feed's session (a row per event, in a core table), as consumers
    write their own work, and remembers what it was given."""

    def __init__(self, fail_on: str | None = None, retry_on: str | None = None, tag: str = "work"):
        self.seen: list[str] = []
        self.fail_on, self.retry_on, self.tag = fail_on, retry_on, tag

    def __call__(self, session, event):
        if event.id == self.retry_on:
            self.retry_on = None  # a peer that is back at the next poll
            raise RetryLater("the peer is down")
        self.seen.append(event.id)
        session.add(EventCursor(name=f"{self.tag}-{event.id}", last_event_id=event.id))
        if event.id == self.fail_on:
            raise ValueError("the handler's bug")


def work_done(session_factory) -> list[str]:
    with session_factory() as session:
        return sorted(c.last_event_id for c in session.scalars(
            select(EventCursor).where(EventCursor.name.like("work-%"))))


def test_events_of_the_subscribed_verbs_in_order_each_once(db_session_factory):
    store(db_session_factory, ("e3", Verb.RELEASED, NOW - timedelta(minutes=3)),
          ("e1", Verb.RELEASED, NOW - timedelta(minutes=10)), ("other", Verb.ENROLLED, NOW - timedelta(minutes=9)),
          ("e2", Verb.GRADED, NOW - timedelta(minutes=5)))
    feed = EventFeed(db_session_factory, "test-order", [Verb.RELEASED, Verb.GRADED])
    handle = Recorder()
    assert feed.poll(handle, now=NOW) == 3
    assert handle.seen == ["e1", "e2", "e3"]
    assert feed.poll(handle, now=NOW + timedelta(minutes=1)) == 0  # nothing twice
    assert handle.seen == ["e1", "e2", "e3"]
    assert cursor_of(db_session_factory, "test-order") == ("e3", True)


def test_events_stored_at_the_same_time_are_ordered_by_id_across_batches(db_session_factory):
    same = NOW - timedelta(minutes=5)
    store(db_session_factory, ("b", Verb.RELEASED, same), ("a", Verb.RELEASED, same), ("c", Verb.RELEASED, same))
    feed = EventFeed(db_session_factory, "test-ties", [Verb.RELEASED], batch_size=2)
    handle = Recorder()
    assert feed.poll(handle, now=NOW) == 2
    assert feed.poll(handle, now=NOW) == 1  # the cursor (same time, id "b") lets "c" through, not "a" again
    assert handle.seen == ["a", "b", "c"]


def test_the_cursor_moves_in_the_handlers_transaction(db_session_factory):
    store(db_session_factory, *[(f"e{i}", Verb.RELEASED, NOW - timedelta(minutes=10 - i)) for i in range(3)])
    feed = EventFeed(db_session_factory, "test-tx", [Verb.RELEASED])
    with pytest.raises(ValueError):
        feed.poll(Recorder(fail_on="e2"), now=NOW)
    # The failure rolled back the handler's work on e0 and e1 together with the cursor's move past them...
    assert work_done(db_session_factory) == []
    assert cursor_of(db_session_factory, "test-tx") is None
    # ...so the next poll does that work again, and this time it stays, with the cursor.
    handle = Recorder()
    assert feed.poll(handle, now=NOW) == 3
    assert handle.seen == ["e0", "e1", "e2"]
    assert work_done(db_session_factory) == ["e0", "e1", "e2"]
    assert cursor_of(db_session_factory, "test-tx") == ("e2", True)


def test_retry_later_stops_before_the_event_and_the_next_poll_starts_with_it(db_session_factory):
    store(db_session_factory, *[(f"e{i}", Verb.GRADED, NOW - timedelta(minutes=10 - i)) for i in range(3)])
    feed = EventFeed(db_session_factory, "test-retry", [Verb.GRADED])
    handle = Recorder(retry_on="e1")
    assert feed.poll(handle, now=NOW) == 1
    assert handle.seen == ["e0"]
    assert cursor_of(db_session_factory, "test-retry") == ("e0", True)
    assert work_done(db_session_factory) == ["e0"]  # the work before the stop is kept
    assert feed.poll(handle, now=NOW) == 2
    assert handle.seen == ["e0", "e1", "e2"]


def test_events_younger_than_the_settle_time_wait(db_session_factory):
    """A producer's transaction may commit after a later one's: the feed leaves the newest events for
    the next poll, so that its cursor does not pass one that is still to commit."""
    stored = NOW - timedelta(seconds=1)
    store(db_session_factory, ("old", Verb.RELEASED, NOW - timedelta(minutes=1)), ("young", Verb.RELEASED, stored))
    feed = EventFeed(db_session_factory, "test-settle", [Verb.RELEASED], settle_seconds=2)
    handle = Recorder()
    assert feed.poll(handle, now=NOW) == 1 and handle.seen == ["old"]
    assert feed.poll(handle, now=stored + timedelta(seconds=1.5)) == 0  # still younger than 2 s
    assert feed.poll(handle, now=stored + timedelta(seconds=2)) == 1
    assert handle.seen == ["old", "young"]


def test_the_first_poll_reads_only_the_lookback(db_session_factory):
    """A consumer deployed on a platform with a long history acts on the last hour, not on years."""
    store(db_session_factory, ("last-year", Verb.RELEASED, NOW - timedelta(days=365)),
          ("yesterday", Verb.RELEASED, NOW - timedelta(days=1)),
          ("recent", Verb.RELEASED, NOW - timedelta(minutes=30)))
    feed = EventFeed(db_session_factory, "test-first", [Verb.RELEASED], first_run_lookback=timedelta(hours=1))
    handle = Recorder()
    assert feed.poll(handle, now=NOW) == 1 and handle.seen == ["recent"]
    # Once it has a cursor, the older events stay behind it.
    assert feed.poll(handle, now=NOW + timedelta(days=2)) == 0


def test_a_first_poll_that_finds_nothing_keeps_looking_back_from_the_next_now(db_session_factory):
    store(db_session_factory, ("later", Verb.RELEASED, NOW + timedelta(minutes=30)))
    feed = EventFeed(db_session_factory, "test-empty-first", [Verb.RELEASED])
    handle = Recorder()
    assert feed.poll(handle, now=NOW) == 0
    assert cursor_of(db_session_factory, "test-empty-first") == (None, False)  # made, but still unset
    assert feed.poll(handle, now=NOW + timedelta(hours=1)) == 1 and handle.seen == ["later"]


def test_each_consumer_has_a_cursor_of_its_own(db_session_factory):
    store(db_session_factory, ("e1", Verb.RELEASED, NOW - timedelta(minutes=5)))
    first, second = Recorder(tag="one"), Recorder(tag="two")
    assert EventFeed(db_session_factory, "test-one", [Verb.RELEASED]).poll(first, now=NOW) == 1
    assert EventFeed(db_session_factory, "test-two", [Verb.RELEASED]).poll(second, now=NOW) == 1
    assert first.seen == second.seen == ["e1"]
