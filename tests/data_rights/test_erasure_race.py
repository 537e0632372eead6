"""Erasure against writers in flight (learnhub.erasures), on SQLite and on PostgreSQL.

CI once found, after ``learnhub data erase``, a ``recommended`` event naming the erased learner: the
recommender's announcer had read their ``graded`` event, ranked their next step and appended the
event in a transaction that committed just after the erasure had pseudonymised the log. These tests
make both orders of that race happen on purpose, with real databases and real concurrent
transactions, and look at every table afterwards.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import inspect, select, text

from learnhub import db as lhdb
from learnhub import erasures
from learnhub.data_rights import CoreData
from learnhub.events import Verb, record
from learnhub.models import ErasedName, Event
from learnhub.timeutil import utcnow

pytestmark = pytest.mark.db

PSEUDONYM = "erased-00ff00ff00ff00ff"


def rows_naming(engine, name: str) -> dict[str, list[str]]:
    """Every row of every table holding ``name`` in its text (as the platform test scans)."""
    found = {}
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                as_text = " ".join(str(v) for v in row)
                if name in as_text:
                    found.setdefault(table, []).append(as_text[:200])
    return found


def announce(session, learner: str, n: int = 1) -> None:
    """What the recommender's announcer appends (extensions/recommender/announcements.py)."""
    record(session, learner, Verb.RECOMMENDED, "recommendation", "intro-python/02-control-flow/fizzbuzz",
           course_id="intro-python", source="recommender", id=f"recommended:{n}",
           result={"kind": "exercise", "item": "02-control-flow/fizzbuzz", "title": "FizzBuzz",
                   "reason": {"code": "practice", "params": {"learner": learner}}, "reason_text": "practise"})


def erase_everywhere(factory, tmp_path):
    """The coordinator's order for the parts in this database that events feed: the core (the log),
    then the analytics summaries the listeners made from it."""
    from learnhub.extensions.analytics.data import AnalyticsData

    core = CoreData(factory, tmp_path).erase("ann", PSEUDONYM)
    with lhdb.session_scope(factory) as session:
        AnalyticsData(session).erase("ann", PSEUDONYM)
    return core


@pytest.fixture
def engines(db_url):
    made = [lhdb.make_engine(db_url), lhdb.make_engine(db_url)]
    yield made
    for engine in made:
        engine.dispose()


def test_an_event_appended_after_the_erasure_gets_the_pseudonym(engines, tmp_path):
    """The order CI saw: the writer read the person's grade before the erasure, appends after it."""
    writer_factory, eraser_factory = (lhdb.make_session_factory(e) for e in engines)
    with lhdb.session_scope(writer_factory) as session:
        for n, learner in enumerate(("ann", "bob")):
            record(session, learner, Verb.GRADED, "submission", f"s{n}", course_id="intro-python",
                   result={"score": 1, "max_score": 1}, context={"mode": "grade", "assignment_id": "02-control-flow"},
                   source="feedback", id=f"graded-{n}")
    writer = writer_factory()
    try:
        graded = writer.scalars(select(Event).where(Event.verb == "graded").order_by(Event.id)).all()
        assert [e.actor for e in graded] == ["ann", "bob"]
        erase_everywhere(eraser_factory, tmp_path)
        for n, e in enumerate(graded):  # the announcer goes on with what it had read
            announce(writer, e.actor, n)
        writer.commit()
    finally:
        writer.close()
    assert rows_naming(engines[0], "ann") == {}  # events, analytics summaries (the listeners), tombstones
    with lhdb.session_scope(writer_factory) as session:
        actors = sorted(session.scalars(select(Event.actor).where(Event.verb == "recommended")))
        params = [e.result["reason"]["params"]["learner"]
                  for e in session.scalars(select(Event).where(Event.verb == "recommended"))]
    assert actors == sorted(params) == ["bob", PSEUDONYM]  # bob is untouched


def test_an_erasure_waits_for_a_writer_in_flight(engines, tmp_path, db_url):
    """The other order: the writer's row is inserted, not committed, when the erasure starts. The
    erasure must wait for it (and then pseudonymise it) instead of reading the log without it."""
    writer_factory, eraser_factory = (lhdb.make_session_factory(e) for e in engines)
    postgres = not lhdb.is_sqlite(db_url)
    started = threading.Event()

    @sa_event.listens_for(engines[1], "before_cursor_execute")
    def _erasure_begins(conn, cursor, statement, *args):
        if "erased_names" in statement or "LOCK TABLE" in statement:
            started.set()

    writer = writer_factory()
    outcome: dict = {}
    try:
        announce(writer, "ann")
        writer.flush()  # the row is in the table, uncommitted: the writer holds its lock
        eraser = threading.Thread(target=lambda: outcome.update(erase_everywhere(eraser_factory, tmp_path)))
        eraser.start()
        assert started.wait(60), "the erasure did not start"
        if postgres:
            # Wait until PostgreSQL says the erasure waits for the events table's lock: the interleaving
            # under test, made sure of (SQLite cannot show a writer waiting; its erasure's first
            # statement blocks on the write lock the writer holds, the same order).
            deadline = time.monotonic() + 60
            with engines[0].connect() as probe:
                while not probe.execute(text(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass")).scalar():
                    assert time.monotonic() < deadline, "the erasure never waited for the writer"
                    time.sleep(0.05)
        writer.commit()
    finally:
        writer.close()
    eraser.join(120)
    assert not eraser.is_alive() and outcome["pseudonymised"]["events"] == 1
    assert rows_naming(engines[0], "ann") == {}
    with lhdb.session_scope(writer_factory) as session:
        assert session.scalars(select(Event.actor)).all() == [PSEUDONYM]


def test_tombstones_hold_no_name_and_expire(engines, tmp_path):
    """The table of erased names is not a list of who was erased: a salted hash, gone after the hold;
    a later person of the same name is then themselves again."""
    factory = lhdb.make_session_factory(engines[0])
    CoreData(factory, tmp_path, hold_hours=1).erase("ann", PSEUDONYM)
    with lhdb.session_scope(factory) as session:
        (tomb,) = session.scalars(select(ErasedName)).all()
        assert "ann" not in f"{tomb.salt}{tomb.digest}" and tomb.pseudonym == PSEUDONYM
        assert erasures.pseudonyms_for(session, ["ann", "bob"]) == {"ann": PSEUDONYM}
        assert erasures.purge_expired(session, utcnow() + timedelta(hours=2)) == 1
    with lhdb.session_scope(factory) as session:
        announce(session, "ann")
    with lhdb.session_scope(factory) as session:
        assert session.scalars(select(Event.actor)).all() == ["ann"]


def notify(outbox, session, learner: str):
    from learnhub.extensions.notifications.outbox import NewNotification

    return outbox.add(session, NewNotification(learner, "recommendations", "Recommended next: FizzBuzz",
                                               course_id="intro-python", data={"learner": learner}))


@pytest.fixture
def outbox():
    from cryptography.fernet import Fernet

    from learnhub.extensions.notifications.channels.inapp import InAppChannel
    from learnhub.extensions.notifications.crypto import ContactCipher
    from learnhub.extensions.notifications.outbox import Outbox
    from learnhub.extensions.notifications.preferences import PreferenceStore

    return Outbox(PreferenceStore(ContactCipher(Fernet.generate_key())), {"in_app": InAppChannel()})


def erase_with_notifications(factory, tmp_path, outbox):
    """The core, then the notifications service's step (the coordinator's order)."""
    from learnhub.extensions.notifications.data import NotificationsData

    CoreData(factory, tmp_path).erase("ann", PSEUDONYM)
    with lhdb.session_scope(factory) as session:
        return NotificationsData(session, outbox.preferences).erase("ann", PSEUDONYM)


def test_a_notification_for_a_person_erased_meanwhile_is_not_queued(engines, tmp_path, outbox):
    """The notifications service's own table, both orders: its trigger read an event naming the person
    before the erasure and queues their notification after it — or while the erasure runs."""
    writer_factory, eraser_factory = (lhdb.make_session_factory(e) for e in engines)
    erase_with_notifications(eraser_factory, tmp_path, outbox)
    with lhdb.session_scope(writer_factory) as session:
        assert notify(outbox, session, "ann") is None and notify(outbox, session, "bob") is not None
    assert rows_naming(engines[0], "ann") == {} and "notifications" in rows_naming(engines[0], "bob")


def test_an_erasure_waits_for_a_notification_being_queued(db_url, engines, tmp_path, outbox):
    writer_factory, eraser_factory = (lhdb.make_session_factory(e) for e in engines)
    outcome: dict = {}
    writer = writer_factory()
    try:
        assert notify(outbox, writer, "ann") is not None  # inserted, not committed
        writer.flush()
        eraser = threading.Thread(
            target=lambda: outcome.update(erase_with_notifications(eraser_factory, tmp_path, outbox)))
        eraser.start()
        if not lhdb.is_sqlite(db_url):
            # until PostgreSQL shows the notifications step waiting for this writer's table lock (on SQLite
            # the core's first write already waits for the writer's write lock)
            deadline = time.monotonic() + 60
            with engines[0].connect() as probe:
                while not probe.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted AND "
                                             "relation = 'notifications'::regclass")).scalar():
                    assert time.monotonic() < deadline and eraser.is_alive(), "the erasure never waited"
                    time.sleep(0.05)
        writer.commit()
    finally:
        writer.close()
    eraser.join(120)
    assert not eraser.is_alive() and outcome["erased"]["notifications"] == 1
    assert rows_naming(engines[0], "ann") == {}
