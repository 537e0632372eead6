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
