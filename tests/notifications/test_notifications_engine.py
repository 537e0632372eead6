"""The engine in-process (no hub): outbox, sender, channels against real local peers, triggers."""
from __future__ import annotations

import email
import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from learnhub.db import session_scope
from learnhub.extensions.notifications.models import Delivery, Notification, Preference
from learnhub.extensions.notifications.outbox import NewNotification
from learnhub.extensions.notifications.preferences import PreferenceError
from learnhub.extensions.notifications.sender import list_dead_letters, retry_dead_letter
from learnhub.extensions.notifications.triggers import (DueItem, DueSoonScheduler, EventTriggers,
                                                        StaticDueDates, StaticRecipients)
from learnhub.events import EventLog, Verb, make_event
from learnhub.models import Event


def append(session, *events):
    """Append as producers do (validated): a test event the schema refuses is a broken test."""
    outcome = EventLog().append(session, events)
    assert outcome.rejected == []
from notifications_peers import make_engine, sendgrid_server, smtp_server, twilio_server  # noqa: F401  (fixtures)

ADDRESS = "ada.lovelace@example.org"
PHONE = "+447700900123"


def our_logs(caplog) -> str:
    """Everything logged in-process except by the SMTP peer (aiosmtpd logs its envelopes)."""
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))


def feedback(user="ada", title="Loops", key=None):
    return NewNotification(user, "feedback_ready", f"Feedback ready: {title}", "graded", "py101",
                           {"assignment_title": title, "score": 8, "max_score": 10}, dedupe_key=key)


def deliveries(engine, **where):
    with session_scope(engine.session_factory) as session:
        query = select(Delivery)
        for name, value in where.items():
            query = query.where(getattr(Delivery, name) == value)
        return session.scalars(query.order_by(Delivery.id)).all()


def later(seconds):
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def test_smtp_email_and_in_app_never_log_the_address(make_engine, smtp_server, caplog):
    engine = make_engine(smtp=smtp_server)
    caplog.set_level(logging.DEBUG)
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": True}}})
    [n] = engine.notify(feedback())
    assert engine.sender.run_once() == 2
    [message] = smtp_server.messages
    assert message.rcpt_tos == [ADDRESS]
    parsed = email.message_from_bytes(message.content)
    assert parsed["Subject"] == "Feedback ready: Loops"
    assert parsed["Message-ID"] == f"<{n.id}.email@learnhub>"
    parts = {part.get_content_type(): part.get_payload(decode=True).decode() for part in parsed.walk()
             if not part.is_multipart()}
    assert "Score: 8 / 10" in parts["text/plain"] and "<strong>Loops</strong>" in parts["text/html"]
    assert {d.status for d in deliveries(engine)} == {"sent"}
    with session_scope(engine.session_factory) as session:
        assert session.get(Notification, n.id).in_app_at is not None
        row = session.get(Preference, "ada")
        assert ADDRESS not in (row.email_ciphertext or "") and row.email_ciphertext
    assert ADDRESS not in our_logs(caplog) and our_logs(caplog)
    assert engine.sender.run_once() == 0  # nothing is sent twice


def test_graded_event_gives_one_in_app_one_email_one_sms_through_the_sdks(
        make_engine, sendgrid_server, twilio_server, db_session_factory, caplog):
    caplog.set_level(logging.DEBUG)
    engine = make_engine(email="sendgrid", sendgrid=sendgrid_server, twilio=twilio_server)
    engine.set_prefs("ada", {"email": ADDRESS, "phone": PHONE,
                             "channels": {"feedback_ready": {"email": True, "sms": True}}})
    engine.set_prefs("bob", {})  # in-app only (the default)
    with session_scope(db_session_factory) as session:
        append(session, *[make_event(user, Verb.GRADED, "submission", sub, course_id="py101", id=f"ev-{sub}",
                                     result={"score": 7, "max_score": 10, "title": "Loops"},
                                     context={"assignment_id": "a1"}, source="feedback")
                          for user, sub in (("ada", "sub-1"), ("bob", "sub-2"))])
        # events the triggers do not handle notify nobody
        append(session, make_event("ada", Verb.FETCHED, "assignment", "a1", course_id="py101",
                                   context={"assignment_id": "a1"}, source="courses"))
    triggers = EventTriggers(db_session_factory, engine.outbox, StaticRecipients({}), settle_seconds=0)
    assert triggers.run_once() == 2
    assert triggers.run_once() == 0  # the cursor moved
    while engine.sender.run_once():
        pass
    assert len(sendgrid_server.requests) == 1 and len(twilio_server.requests) == 1
    sg = sendgrid_server.requests[0]
    assert sg["path"] == "/v3/mail/send" and ADDRESS in sg["body"] and "Feedback ready: Loops" in sg["body"]
    assert sg["headers"]["Authorization"] == "Bearer SG.test"
    tw = twilio_server.requests[0]
    assert tw["path"].endswith("/Messages.json") and "To=%2B447700900123" in tw["body"]
    assert tw["headers"]["I-Twilio-Idempotency-Token"].endswith(":sms")
    with session_scope(db_session_factory) as session:
        rows = session.execute(select(Notification.user_name, Delivery.channel, Delivery.status)
                               .join(Delivery)).all()
    assert sorted(rows) == [("ada", "email", "sent"), ("ada", "in_app", "sent"), ("ada", "sms", "sent"),
                            ("bob", "in_app", "sent")]
    assert ADDRESS not in our_logs(caplog) and PHONE not in our_logs(caplog)


def test_provider_down_is_retried_later_and_delivered_once(make_engine, sendgrid_server):
    engine = make_engine(email="sendgrid", sendgrid=sendgrid_server)
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": True, "in_app": False}}})
    engine.notify(feedback())
    sendgrid_server.fail_next = 2
    assert engine.sender.run_once() == 1
    [d] = deliveries(engine)
    assert d.status == "pending" and d.attempts == 1 and "500" in d.last_error
    assert engine.sender.run_once() == 0  # backing off: not due yet
    engine.sender.run_once(later(5))
    assert deliveries(engine)[0].attempts == 2
    engine.sender.run_once(later(60))
    [d] = deliveries(engine)
    assert d.status == "sent" and d.attempts == 3
    assert len(sendgrid_server.requests) == 3 and len(sendgrid_server.accepted) == 1
    assert engine.sender.run_once(later(3600)) == 0


def test_permanent_failure_is_dead_lettered_and_can_be_retried(make_engine, twilio_server):
    engine = make_engine(twilio=twilio_server)
    engine.set_prefs("ada", {"phone": PHONE, "channels": {"announcement": {"sms": True}}})
    engine.notify(NewNotification("ada", "announcement", "Exam moved", "to Friday", "py101", {"author": "t"}))
    twilio_server.status = 400
    engine.sender.run_once()
    with session_scope(engine.session_factory) as session:
        items, _ = list_dead_letters(session)
    assert len(items) == 1 and items[0]["channel"] == "sms" and "400" in items[0]["error"]
    twilio_server.status = None
    with session_scope(engine.session_factory) as session:
        assert retry_dead_letter(session, items[0]["id"]) is not None
    engine.sender.run_once()
    assert {d.channel: d.status for d in deliveries(engine)} == {"in_app": "sent", "sms": "sent"}
    assert len(twilio_server.accepted) == 1


def test_retries_exhausted_go_to_dead_letters(make_engine, sendgrid_server):
    engine = make_engine(email="sendgrid", sendgrid=sendgrid_server, max_attempts=2)
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": True, "in_app": False}}})
    engine.notify(feedback())
    sendgrid_server.fail_next = 10
    engine.sender.run_once()
    engine.sender.run_once(later(3600))
    [d] = deliveries(engine)
    assert d.status == "dead" and d.attempts == 2


def test_template_error_dead_letters_that_notification_only(make_engine, smtp_server):
    engine = make_engine(smtp=smtp_server)
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": True}}})
    broken = NewNotification("ada", "feedback_ready", "Feedback", "", "py101", {"score": 1})  # no assignment_title
    engine.notify(broken, feedback(title="Strings"))
    while engine.sender.run_once():
        pass
    email_rows = deliveries(engine, channel="email")
    assert sorted(d.status for d in email_rows) == ["dead", "sent"]
    dead = next(d for d in email_rows if d.status == "dead")
    assert "feedback_ready.subject.txt" in dead.last_error and "assignment_title" in dead.last_error
    assert len(smtp_server.messages) == 1
    assert {d.status for d in deliveries(engine, channel="in_app")} == {"sent"}


def test_preference_off_sends_nothing_on_that_channel(make_engine, smtp_server):
    engine = make_engine(smtp=smtp_server)
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": False}}})
    engine.set_prefs("cy", {"email": "cy@example.org", "channels": {"feedback_ready": {"email": True}}})
    engine.notify(feedback("ada"), feedback("cy"))
    # cy turns email off while the message waits in the outbox: the sender honours it
    engine.set_prefs("cy", {"channels": {"feedback_ready": {"email": False}}})
    while engine.sender.run_once():
        pass
    assert smtp_server.messages == []
    assert [(d.channel, d.status) for d in deliveries(engine, channel="email")] == [("email", "skipped")]


def test_quiet_hours_hold_email_but_not_in_app(make_engine, smtp_server):
    engine = make_engine(smtp=smtp_server)
    now = datetime.now(timezone.utc)
    start = (now - timedelta(hours=1)).strftime("%H:%M")
    end = (now + timedelta(hours=2)).strftime("%H:%M")
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": True}},
                             "quiet_hours": {"start": start, "end": end, "timezone": "UTC"}})
    engine.notify(feedback())
    engine.sender.run_once()
    [email_delivery] = deliveries(engine, channel="email")
    assert email_delivery.status == "pending" and smtp_server.messages == []
    assert deliveries(engine, channel="in_app")[0].status == "sent"
    assert email_delivery.next_attempt_at.replace(tzinfo=timezone.utc) > now + timedelta(hours=1)
    engine.sender.run_once(now + timedelta(hours=2, minutes=2))
    assert len(smtp_server.messages) == 1


def test_daily_digest_sends_one_email_for_many(make_engine, smtp_server):
    engine = make_engine(smtp=smtp_server)
    engine.set_prefs("ada", {"email": ADDRESS, "digest": {"enabled": True, "hour": 7},
                             "channels": {"feedback_ready": {"email": True}}})
    engine.notify(feedback(title="A"), feedback(title="B"), feedback(title="C"))
    engine.sender.run_once()
    assert smtp_server.messages == []
    engine.sender.run_once(later(25 * 3600))
    [message] = smtp_server.messages
    text = message.content.decode()
    assert "3 updates" in text and "Feedback ready: B" in text
    assert {d.status for d in deliveries(engine, channel="email")} == {"sent"}


def test_invalid_contact_details_name_the_field(make_engine):
    engine = make_engine()
    for update, field in (({"email": "not-an-address"}, "email"), ({"phone": "12345"}, "phone"),
                          ({"quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours.start"),
                          ({"quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Mars/Base"}},
                           "quiet_hours.timezone"),
                          ({"channels": {"feedback_ready": {"pigeon": True}}}, "channels.feedback_ready.pigeon")):
        with pytest.raises(PreferenceError) as caught:
            engine.set_prefs("ada", update)
        assert caught.value.field == field
    prefs = engine.set_prefs("ada", {"phone": "+44 7700 900123"})
    assert prefs.phone == PHONE and prefs.public()["phone"] == "+44***23"


def test_due_soon_reminds_each_learner_once(make_engine, db_session_factory):
    engine = make_engine()
    now = datetime.now(timezone.utc)
    source = StaticDueDates([DueItem("py101", "a1", "Loops", now + timedelta(hours=5)),
                             DueItem("py101", "a2", "Later", now + timedelta(days=5))])
    scheduler = DueSoonScheduler(db_session_factory, engine.outbox, source,
                                 StaticRecipients({"py101": ["ada", "bob"]}))
    assert scheduler.run_once(now) == 2
    assert scheduler.run_once(now + timedelta(minutes=5)) == 0
    engine.sender.run_once()
    with session_scope(db_session_factory) as session:
        titles = session.execute(select(Notification.user_name, Notification.title)).all()
    assert sorted(titles) == [("ada", "Due soon: Loops"), ("bob", "Due soon: Loops")]


def test_generated_key_file_is_private_and_outside_the_data_dir(tmp_path, monkeypatch):
    from learnhub.extensions.notifications.crypto import load_or_create_key

    for name in ("LEARNHUB_NOTIFICATIONS_KEY", "LEARNHUB_SECRET_KEYS", "LEARNHUB_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    key = load_or_create_key("", data)
    assert load_or_create_key("", data) == key
    key_file = tmp_path / "data-keys" / "contacts.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and list(data.iterdir()) == []


def test_other_triggers_release_answer_recommend_and_feedback_release(make_engine, db_session_factory):
    """Events as their producers write them (the verbs and fields of :mod:`learnhub.event_schemas`)."""
    engine = make_engine()
    with session_scope(db_session_factory) as session:
        append(session,
               make_event("prof", Verb.RELEASED, "assignment", "a1", course_id="py101", id="e1",
                          result={"title": "Loops"}, context={"assignment_id": "a1", "role": "instructor"},
                          source="courses"),
               make_event("ta", Verb.ANSWERED_HELP, "help-request", "q7", course_id="py101", id="e2",
                          context={"assignment_id": "a1", "learner": "ada", "role": "ta"}, source="feedback"),
               make_event("bob", Verb.RECOMMENDED, "recommendation", "py101/a2", course_id="py101", id="e3",
                          result={"kind": "exercise", "item": "a2/ex1", "title": "Sums",
                                  "reason": {"code": "practice", "params": {"skill": "loops", "mastery": 0.4}},
                                  "reason_text": "you are at 40% on loops"}, source="recommender"),
               make_event("ada", Verb.FEEDBACK_RELEASED, "submission", "sub-9", course_id="py101", id="e4",
                          result={"score": 8, "max_score": 10, "title": "Loops"},
                          context={"assignment_id": "a1", "by": "prof"}, source="courses"),
               make_event("ada", Verb.ENROLLED, "course", "py101", course_id="py101", id="e5",
                          result={"role": "learner"}, source="courses"))
    triggers = EventTriggers(db_session_factory, engine.outbox, StaticRecipients({"py101": ["ada", "bob"]}),
                             settle_seconds=0)
    assert triggers.run_once() == 5
    with session_scope(db_session_factory) as session:
        rows = sorted(session.execute(select(Notification.user_name, Notification.type, Notification.title,
                                             Notification.body)).all())
    assert rows == [
        ("ada", "assignment_released", "New assignment: Loops", "Loops was released in py101."),
        ("ada", "feedback_ready", "Feedback released: Loops",
         "Your instructor released feedback on your submission; fetch it in JupyterLab."),
        ("ada", "help_answered", "Your question was answered", "ta answered your question."),
        ("bob", "assignment_released", "New assignment: Loops", "Loops was released in py101."),
        ("bob", "recommendations", "Recommended next: Sums", "you are at 40% on loops")]


def test_at_most_once_mode_dead_letters_an_interrupted_attempt(make_engine, sendgrid_server):
    engine = make_engine(email="sendgrid", sendgrid=sendgrid_server, resend_uncertain=False)
    engine.set_prefs("ada", {"email": ADDRESS, "channels": {"feedback_ready": {"email": True, "in_app": False}}})
    engine.notify(feedback())
    now = datetime.now(timezone.utc)
    assert engine.sender.claim(now)  # a sender claims it ... and dies before recording anything
    engine.sender.run_once(now + timedelta(seconds=engine.sender.lease_seconds + 1))
    [d] = deliveries(engine)
    assert d.status == "dead" and "outcome unknown" in d.last_error
    assert sendgrid_server.requests == []


def test_service_reads_learnhub_config_and_writes_no_key_until_needed(tmp_path, db_url, monkeypatch):
    """The service loads the data dir's learnhub_config.py, as the hub does; channels are named by
    entry point (``sendgrid``) or by import path, as JupyterHub names spawners."""
    from learnhub.extensions.notifications import NotificationsService

    (tmp_path / "learnhub_config.py").write_text(
        "c.NotificationsService.channel_classes = {'in_app': "
        "'learnhub.extensions.notifications.channels.inapp.InAppChannel', 'email': 'sendgrid'}\n"
        "c.SendGridChannel.api_key = 'SG.x'\nc.Sender.max_attempts = 3\n")
    for name in ("LEARNHUB_NOTIFICATIONS_KEY", "LEARNHUB_SECRET_KEYS", "LEARNHUB_KEY_FILE", "LEARNHUB_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    service = NotificationsService(db_url=db_url, data_dir=str(tmp_path), api_token="unused")
    service.initialize([])
    try:
        assert type(service.channels["email"]).__name__ == "SendGridChannel" and service.channels["email"].configured
        assert service.sender.max_attempts == 3 and "sms" not in service.channels
        key_file = tmp_path.parent / f"{tmp_path.name}-keys" / "contacts.key"
        assert not key_file.exists()
        with session_scope(service.session_factory) as session:
            service.preference_store.update(session, "ada", {"email": ADDRESS})
        assert key_file.stat().st_mode & 0o777 == 0o600 and not (tmp_path / "notifications.key").exists()
    finally:
        service.engine.dispose()


def test_first_run_skips_old_history(make_engine, db_session_factory):
    engine = make_engine()
    old = datetime.now(timezone.utc) - timedelta(days=30)
    graded = dict(course_id="py101", context={"assignment_id": "a1"}, source="feedback")
    with session_scope(db_session_factory) as session:
        append(session, make_event("ada", Verb.GRADED, "submission", "s-old", id="old", time=old,
                                   result={"score": 1, "title": "Old"}, **graded))
        session.query(Event).filter(Event.id == "old").update({"stored_at": old})
        append(session, make_event("ada", Verb.GRADED, "submission", "s-new", id="new",
                                   result={"score": 1, "title": "New"}, **graded))
    triggers = EventTriggers(db_session_factory, engine.outbox, StaticRecipients({}), settle_seconds=0)
    assert triggers.run_once() == 1
    with session_scope(db_session_factory) as session:
        assert session.scalars(select(Notification.title)).all() == ["Feedback ready: New"]


def test_the_feedback_services_graded_event_names_the_assignment(make_engine, db_session_factory):
    """The event exactly as the feedback service's workers write it (graded_event of a real job row)."""
    from learnhub.extensions.feedback.workers import graded_event
    from learnhub.graders.models import GRADED, GradingJob

    engine = make_engine()
    now = datetime.now(timezone.utc)
    job = GradingJob(id="job-1", course_id="py101", assignment_id="01-basics", learner_id="ada", source_path="/x",
                     mode="grade", status=GRADED, score=4.0, max_score=10.0, result={"notebooks": []},
                     created_at=now, finished_at=now)
    with session_scope(db_session_factory) as session:
        append(session, graded_event(job))
    triggers = EventTriggers(db_session_factory, engine.outbox, StaticRecipients({}), settle_seconds=0)
    assert triggers.run_once() == 1
    with session_scope(db_session_factory) as session:
        (note,) = session.scalars(select(Notification)).all()
        assert (note.user_name, note.title) == ("ada", "Feedback ready: 01-basics")
        assert note.data["submission_id"] == "job-1" and note.data["score"] == 4.0
