"""A regrade's ``graded`` event tells the learner their submission was regraded, with the new score, on
the channels they chose for feedback — not a second "your submission was graded". Events as the
feedback service writes them (``graded_event`` of real job rows), real SMTP and Twilio-API peers; on
SQLite and PostgreSQL (LEARNHUB_TEST_DB_URL)."""
from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs

from sqlalchemy import select

from learnhub.db import session_scope
from learnhub.extensions.notifications.models import Notification
from learnhub.extensions.notifications.triggers import EventTriggers, StaticRecipients
from notifications_peers import make_engine, smtp_server, twilio_server  # noqa: F401  (fixtures)
from regrade_events import append, grading_job

ADDRESS = "ada.lovelace@example.org"
PHONE = "+447700900123"


def graded(finished, shout, regrade=None):
    from learnhub.extensions.feedback.workers import graded_event

    return graded_event(grading_job("sub-1", "ada", "py101", "01-basics", {"shout": shout, "initials": True},
                                    finished, regrade=regrade))


def sent_text(smtp_server, twilio_server):
    """(subject, plain text) of the newest email, and the newest SMS's body."""
    parsed = email.message_from_bytes(smtp_server.messages[-1].content)
    plain = next(p.get_payload(decode=True).decode() for p in parsed.walk() if p.get_content_type() == "text/plain")
    return parsed["Subject"], plain, parse_qs(twilio_server.requests[-1]["body"])["Body"][0]


def test_a_regrade_notifies_that_the_submission_was_regraded(make_engine, smtp_server, twilio_server,
                                                             db_session_factory):
    engine = make_engine(smtp=smtp_server, twilio=twilio_server)
    engine.set_prefs("ada", {"email": ADDRESS, "phone": PHONE,
                             "channels": {"feedback_ready": {"email": True, "sms": True}}})
    triggers = EventTriggers(db_session_factory, engine.outbox, StaticRecipients({}), settle_seconds=0)
    now = datetime.now(timezone.utc)

    with session_scope(db_session_factory) as session:
        append(session, [graded(now - timedelta(minutes=10), "AssertionError")])
    assert triggers.run_once() == 1
    while engine.sender.run_once():
        pass
    subject, text, sms = sent_text(smtp_server, twilio_server)
    assert subject == "Feedback ready: 01-basics" and "has been graded" in text and "Score: 1.0 / 2.0" in text
    assert "regraded" not in text + sms

    with session_scope(db_session_factory) as session:
        append(session, [graded(now, True, regrade="r1")])
    assert triggers.run_once() == 1
    while engine.sender.run_once():
        pass
    with session_scope(db_session_factory) as session:
        latest = session.scalars(select(Notification).order_by(Notification.created_at.desc())).first()
        assert (latest.type, latest.title) == ("feedback_ready", "Regraded: 01-basics")
        assert latest.body.startswith("Your submission was regraded") and "2 / 2" in latest.body
        assert latest.data["regrade_id"] == "r1" and latest.data["regraded_submission_id"] == "sub-1"
        assert latest.data["score"] == 2.0
    subject, text, sms = sent_text(smtp_server, twilio_server)
    assert subject == "Regraded: 01-basics"
    for body in (text, sms):
        assert "was regraded" in body and "New score: 2.0 / 2.0" in body and "has been graded" not in body
    assert len(smtp_server.messages) == 2 and len(twilio_server.requests) == 2


def test_a_regrade_that_leaves_the_score_as_it_was_says_nothing(make_engine, smtp_server, twilio_server,
                                                                db_session_factory):
    """A class regrade after a fix that did not change a learner's score is no news to them. The real
    path: job rows in the feedback tables, its ``CompletionRecorder`` (which gives a regrade's event the
    score of the grading it replaces), then the triggers."""
    from learnhub.extensions.feedback.workers import CompletionRecorder
    from learnhub.models import Event

    engine = make_engine(smtp=smtp_server, twilio=twilio_server)
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": True}}})
    triggers = EventTriggers(db_session_factory, engine.outbox, StaticRecipients({}), settle_seconds=0)
    recorder = CompletionRecorder(db_session_factory)
    now = datetime.now(timezone.utc)
    gradings = [(now - timedelta(minutes=10), {"shout": True, "initials": "AssertionError"}, None),
                (now - timedelta(minutes=5), {"shout": True, "initials": "AssertionError"}, "r1"),  # unchanged
                (now - timedelta(minutes=1), {"shout": True, "initials": True}, "r2")]  # the second fix: 2 / 2
    for finished, tests, regrade in gradings:
        with session_scope(db_session_factory) as session:
            session.add(grading_job("sub-1", "ada", "py101", "01-basics", tests, finished, regrade=regrade))
        assert recorder.record_new() >= 1
        triggers.run_once()
    with session_scope(db_session_factory) as session:
        titles = [n.title for n in session.scalars(select(Notification).where(Notification.user_name == "ada")
                                                   .order_by(Notification.created_at))]
        replaced = {e.context.get("regrade_id"): e.context.get("previous_score")
                    for e in session.scalars(select(Event).where(Event.verb == "graded"))}
    assert replaced == {None: None, "r1": 1.0, "r2": 1.0}
    assert titles == ["Feedback ready: 01-basics", "Regraded: 01-basics"]
    while engine.sender.run_once():
        pass
    assert len(smtp_server.messages) == 2 and "New score: 2.0 / 2.0" in sent_text_email(smtp_server)


def sent_text_email(smtp_server) -> str:
    parsed = email.message_from_bytes(smtp_server.messages[-1].content)
    return next(p.get_payload(decode=True).decode() for p in parsed.walk() if p.get_content_type() == "text/plain")
