"""What people do, and the notifications it causes, end to end on a real platform.

``learnhub up`` with the demo course and every service; the notifications service sends email to a
real local SMTP server (aiosmtpd) and SMS through the Twilio SDK to a local HTTP peer that answers as
Twilio does (no provider is reachable from here; that peer is the one stand-in). Nothing writes an
event by hand: an instructor releases an assignment, a learner submits and is graded by the real
grader, an instructor releases feedback, answers a question; the recommender announces new
recommendations — and each enrolled learner gets what concerns them, in-app, and by email and SMS
where they opted in.
"""
from __future__ import annotations

import email
import time
from pathlib import Path

import nbformat
import pytest

from hubtools import module_platform
from notifications_peers import RecordingServer, SMTPRecorder

pytestmark = [pytest.mark.hub, pytest.mark.db]

REPO = Path(__file__).resolve().parents[2]
COURSE, ASSIGNMENT = "intro-python", "01-basics"
SOURCE = REPO / "courses" / COURSE / "source" / ASSIGNMENT / "basics.ipynb"
COURSES = f"/services/courses/api/courses/{COURSE}"
NOTIFY = "/services/notifications/api"
ADA_EMAIL, ADA_PHONE = "ada@example.org", "+447700900123"
TYPES = ("assignment_released", "feedback_ready", "help_answered", "recommendations")


@pytest.fixture(scope="module")
def peers():
    from aiosmtpd.controller import Controller

    from hubtools import free_port

    smtp = SMTPRecorder()
    smtp.port = free_port()
    controller = Controller(smtp, hostname="127.0.0.1", port=smtp.port)
    controller.start()
    twilio = RecordingServer("twilio", "I-Twilio-Idempotency-Token")
    yield smtp, twilio
    twilio.stop()
    controller.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, peers):
    smtp, twilio = peers
    config = (
        'c.NotificationsService.channel_classes = {"in_app": "in-app", "email": "smtp", "sms": "twilio"}\n'
        f'c.SMTPChannel.host = "127.0.0.1"\nc.SMTPChannel.port = {smtp.port}\n'
        f'c.TwilioChannel.account_sid = "AC{"1" * 32}"\nc.TwilioChannel.auth_token = "secret"\n'
        f'c.TwilioChannel.from_number = "+15550001111"\nc.TwilioChannel.base_url = "{twilio.url}"\n'
        "c.NotificationsService.trigger_interval = 0.5\nc.NotificationsService.event_settle_seconds = 0.5\n"
    )
    env = {"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"}
    for hub in module_platform(tmp_path_factory, "notify-flow", demo=True, extra_env=env, config=config):
        tokens = {}
        for name in ("nt-ada", "nt-bob", "nt-prof"):
            hub.hub_api("POST", f"/users/{name}").raise_for_status()
            tokens[name] = hub.user_token(name)
        for learner in ("nt-ada", "nt-bob"):  # the demo course is open for self-enrollment
            assert hub.api("POST", f"{COURSES}/enrollments", token=tokens[learner]).status_code == 201
        staff = hub.api("POST", f"{COURSES}/enrollments", token=hub.admin_token,
                        json={"user": "nt-prof", "role": "instructor"})
        assert staff.status_code == 201, staff.text
        opted_in = {t: {"in_app": True, "email": True, "sms": True} for t in TYPES}
        prefs = hub.api("PUT", f"{NOTIFY}/preferences", token=tokens["nt-ada"],
                        json={"email": ADA_EMAIL, "phone": ADA_PHONE, "channels": opted_in})
        assert prefs.status_code == 200, prefs.text
        hub.tokens = tokens
        yield hub


def wait_for(check, timeout=90, what="it"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def in_app(platform, who, type_, about: str | None = None):
    """``who``'s in-app notifications of ``type_`` (about one assignment or item, if given)."""
    response = platform.api("GET", f"{NOTIFY}/notifications", token=platform.tokens[who])
    assert response.status_code == 200, response.text
    return [n for n in response.json()["items"] if n["type"] == type_
            and (about is None or about in (n["data"].get("assignment_id"), n["data"].get("item")))]


def emails_to(smtp, address, subject_fragment):
    return [m for m in smtp.messages if address in m.rcpt_tos
            and subject_fragment in email.message_from_bytes(m.content)["Subject"]]


def texts_to(twilio, phone):
    return [r for r in twilio.requests if f"To={phone.replace('+', '%2B')}" in r["body"]]


def notebook(source: Path = SOURCE) -> bytes:
    return source.read_bytes()


def submit(platform, who):
    response = platform.api("POST", f"{COURSES}/assignments/{ASSIGNMENT}/submissions", token=platform.tokens[who],
                            files=[("files", ("basics.ipynb", notebook(), "application/x-ipynb+json"))])
    assert response.status_code == 201, response.text
    return response.json()


def test_a_released_assignment_reaches_every_enrolled_learner(platform, peers):
    smtp, twilio = peers
    blank = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("Read me")])).encode()
    released = platform.api("POST", f"{COURSES}/assignments/nt-extra/release", token=platform.tokens["nt-prof"],
                            files=[("files", ("extra.ipynb", blank, "application/x-ipynb+json"))])
    assert released.status_code == 201, released.text
    for learner in ("nt-ada", "nt-bob"):
        (note,) = wait_for(lambda: in_app(platform, learner, "assignment_released", "nt-extra"),
                           what=f"{learner}'s notification")
        assert note["title"] == "New assignment: nt-extra" and note["course_id"] == COURSE
    # ada opted in to email and SMS; bob gave no address and stays in-app only
    wait_for(lambda: emails_to(smtp, ADA_EMAIL, "New assignment: nt-extra"), what="ada's email")
    wait_for(lambda: texts_to(twilio, ADA_PHONE), what="ada's SMS")
    assert not in_app(platform, "nt-prof", "assignment_released")  # staff are not told their own release
    assert len(emails_to(smtp, ADA_EMAIL, "New assignment: nt-extra")) == 1  # once, however often triggers run
    assert len([m for m in smtp.messages if "nt-extra" in email.message_from_bytes(m.content)["Subject"]]) == 1


def test_grading_and_released_feedback_reach_the_learner_only(platform, peers):
    smtp, _twilio = peers
    submission = submit(platform, "nt-ada")
    assert submission["grading"]["status"] == "queued"
    (graded,) = wait_for(lambda: in_app(platform, "nt-ada", "feedback_ready"), timeout=180, what="feedback ready")
    assert graded["title"] == f"Feedback ready: {ASSIGNMENT}" and graded["data"]["submission_id"] == submission["id"]
    result = platform.api("GET", f"/services/feedback/api/submissions/{submission['id']}",
                          token=platform.tokens["nt-ada"]).json()
    assert result["status"] == "graded" and graded["data"]["score"] == result["score"] > 0
    wait_for(lambda: emails_to(smtp, ADA_EMAIL, f"Feedback ready: {ASSIGNMENT}"), what="the feedback email")
    # The courses service has the autograded score on the submission now (from the graded event).
    mine = wait_for(lambda: [a for a in platform.api("GET", f"{COURSES}/assignments",
                                                     token=platform.tokens["nt-ada"]).json()["items"]
                             if a["id"] == ASSIGNMENT and a["status"] == "graded"], what="the graded status")
    assert mine[0]["score"] == graded["data"]["score"]

    html = b"<html><body>Well done.</body></html>"
    released = platform.api("POST", f"{COURSES}/assignments/{ASSIGNMENT}/feedback", token=platform.tokens["nt-prof"],
                            data={"submission": submission["id"], "score": "9", "max_score": "10"},
                            files=[("files", ("basics.html", html, "text/html"))])
    assert released.status_code == 201, released.text
    wait_for(lambda: [n for n in in_app(platform, "nt-ada", "feedback_ready") if n["title"].startswith("Feedback released")],
             what="the feedback release")
    assert in_app(platform, "nt-bob", "feedback_ready") == []  # nobody hears of someone else's grades


def test_an_answered_question_reaches_the_asker(platform):
    asked = platform.api("POST", "/services/feedback/api/help-requests", token=platform.tokens["nt-ada"],
                         json={"course": COURSE, "assignment": ASSIGNMENT, "question": "What is a loop?"})
    assert asked.status_code == 201, asked.text
    answered = platform.api("POST", f"/services/feedback/api/help-requests/{asked.json()['id']}/answers",
                            token=platform.tokens["nt-prof"], json={"answer": "Something that repeats."})
    assert answered.status_code == 201, answered.text
    (note,) = wait_for(lambda: in_app(platform, "nt-ada", "help_answered"), what="the answer notification")
    assert note["data"]["answered_by"] == "nt-prof" and note["data"]["question_id"] == asked.json()["id"]
    assert in_app(platform, "nt-bob", "help_answered") == []


def test_new_recommendations_reach_the_learner(platform):
    """After a grade the recommender recomputes the learner's next step and announces it once."""
    if not in_app(platform, "nt-bob", "recommendations"):
        submit(platform, "nt-bob")
    (note,) = wait_for(lambda: in_app(platform, "nt-bob", "recommendations"), timeout=180,
                       what="the recommendations notification")
    assert note["title"].startswith("Recommended next: ") and note["body"]
    assert note["data"]["item"]
