"""``recommended`` events: a learner's top next step changed after new grades — once, with its reason —
and the notifications service's real trigger turns one into a notification.
Runs on SQLite and on PostgreSQL (LEARNHUB_TEST_DB_URL)."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import delete, select

from learnhub.course_content import load_course
from learnhub.db import session_scope
from learnhub.event_schemas import Verb
from learnhub.events import to_wire, validate_event
from learnhub.extensions.notifications.channels.inapp import InAppChannel
from learnhub.extensions.notifications.crypto import ContactCipher
from learnhub.extensions.notifications.models import Notification
from learnhub.extensions.notifications.outbox import Outbox
from learnhub.extensions.notifications.preferences import PreferenceStore
from learnhub.extensions.notifications.triggers import EventTriggers, StaticRecipients
from learnhub.extensions.recommender.announcements import RecommendationAnnouncer
from learnhub.extensions.recommender.engine import CourseLibrary, RecommenderEngine
from learnhub.extensions.recommender.reasons import ReasonRenderer
from learnhub.models import Event, EventCursor
from learnhub.timeutil import utcnow
from rec_events import COURSE, add, graded, minutes_ago

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def library():
    return CourseLibrary(courses=[load_course(REPO / "courses" / COURSE)])


@pytest.fixture
def engine(db_session_factory, library):
    return RecommenderEngine(db_session_factory, library)


def announcer_for(db_session_factory, engine, interval=0.0):
    return RecommendationAnnouncer(db_session_factory, engine, ReasonRenderer(engine.library), interval=interval,
                                   settle_seconds=0)


def recommended(session_factory, learner=None):
    with session_scope(session_factory) as session:
        query = select(Event).where(Event.verb == Verb.RECOMMENDED).order_by(Event.time, Event.stored_at)
        if learner:
            query = query.where(Event.actor == learner)
        events = session.scalars(query).all()
        session.expunge_all()
        return events


def top(engine, learner):
    return engine.recommend(learner, "exercise", course=COURSE, limit=1)["items"][0]


def test_a_graded_learner_gets_one_recommended_event_with_its_reason(db_session_factory, engine):
    announcer = announcer_for(db_session_factory, engine)
    add(db_session_factory, graded("ana", "01-basics", {"variables": True, "shout": False}, when=minutes_ago(1)))
    assert announcer.run_once() == 1
    [event] = recommended(db_session_factory)
    expected = top(engine, "ana")
    assert expected["item"] == "01-basics/shout"  # strings failed: practise them
    assert (event.actor, event.source, event.course_id, event.object_type) == ("ana", "recommender", COURSE,
                                                                                "recommendation")
    assert event.object_id == f"{COURSE}/01-basics/shout"
    result = event.result
    assert {k: result[k] for k in ("kind", "item", "title")} == {"kind": "exercise", "item": "01-basics/shout",
                                                                  "title": "Shouting"}
    assert result["reason"] == {"code": "practice", "params": expected["reason_params"]}
    assert result["reason"]["params"]["skill"] == "strings"
    assert result["reason_text"].startswith("you are at 25% on Working with strings; this exercise practises it")
    assert validate_event(to_wire(event)) == []  # the shape VERB_SPECS[Verb.RECOMMENDED] defines
    assert announcer.run_once() == 0  # that grade was looked at: nothing more


def test_no_repeat_when_the_top_item_is_unchanged_and_a_new_one_when_it_changes(db_session_factory, engine):
    announcer = announcer_for(db_session_factory, engine)
    add(db_session_factory, graded("bo", "01-basics", {"variables": True, "shout": False}, when=minutes_ago(3)))
    assert announcer.run_once() == 1
    before = top(engine, "bo")["item"]
    add(db_session_factory, graded("bo", "01-basics", {"variables": True}, when=minutes_ago(2)))
    assert top(engine, "bo")["item"] == before  # the premise: this grade does not change the top step
    assert announcer.run_once() == 0
    # passing it does: the next step is new, and announced (no interval here)
    add(db_session_factory, graded("bo", "01-basics", {"shout": True}, when=minutes_ago(1)))
    after = top(engine, "bo")["item"]
    assert after != before
    assert announcer.run_once() == 1
    assert [e.result["item"] for e in recommended(db_session_factory, "bo")] == [before, after]


def test_at_most_one_per_learner_and_course_within_the_interval(db_session_factory, engine):
    announcer = announcer_for(db_session_factory, engine, interval=3600)
    add(db_session_factory, graded("cy", "01-basics", {"variables": True, "shout": False}, when=minutes_ago(3)))
    assert announcer.run_once() == 1
    add(db_session_factory, graded("cy", "01-basics", {"shout": True}, when=minutes_ago(2)))
    assert top(engine, "cy")["item"] != "01-basics/shout"  # a change ...
    assert announcer.run_once() == 0  # ... inside the hour: not announced
    # another learner is not held back by cy's interval
    add(db_session_factory, graded("di", "01-basics", {"variables": True}, when=minutes_ago(1)))
    assert announcer.run_once() == 1
    # once the hour has passed, the next grade announces cy's changed step
    add(db_session_factory, graded("cy", "01-basics", {"initials": True}))
    assert announcer.run_once(utcnow() + timedelta(hours=1, minutes=1)) == 1
    assert [e.result["item"] for e in recommended(db_session_factory, "cy")][0] == "01-basics/shout"
    assert len(recommended(db_session_factory, "cy")) == 2


def test_checks_unknown_courses_and_a_reread_batch_announce_nothing(db_session_factory, engine):
    announcer = announcer_for(db_session_factory, engine)
    check = graded("ed", "01-basics", {"variables": True})
    check.context = {**check.context, "mode": "check"}  # visible tests only: no evidence of mastery
    add(db_session_factory, check, graded("ed", "01-basics", {"variables": True}, course="not-a-course"))
    assert announcer.run_once() == 0
    add(db_session_factory, graded("ed", "01-basics", {"variables": True}))
    assert announcer.run_once() == 1
    # a crash before the cursor moved reads the batch again: still one event
    with session_scope(db_session_factory) as session:
        session.execute(delete(EventCursor).where(EventCursor.name == announcer.cursor_name))
    announcer.run_once()
    assert len(recommended(db_session_factory, "ed")) == 1


def test_the_notifications_trigger_turns_it_into_a_notification(db_session_factory, engine):
    add(db_session_factory, graded("fa", "01-basics", {"variables": True, "shout": False}, when=minutes_ago(1)))
    assert announcer_for(db_session_factory, engine).run_once() == 1
    [event] = recommended(db_session_factory, "fa")
    outbox = Outbox(PreferenceStore(ContactCipher(Fernet.generate_key())), {"in_app": InAppChannel()})
    triggers = EventTriggers(db_session_factory, outbox, StaticRecipients({}), settle_seconds=0)
    triggers.run_once()
    with session_scope(db_session_factory) as session:
        rows = session.execute(select(Notification.user_name, Notification.type, Notification.title,
                                      Notification.body, Notification.course_id)
                               .where(Notification.type == "recommendations")).all()
    assert rows == [("fa", "recommendations", "Recommended next: Shouting", event.result["reason_text"], COURSE)]
