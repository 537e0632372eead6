"""LTI Advantage services against the test LMS (a real HTTP peer on loopback): the client-credentials JWT
grant, roster sync (NRPS), line items and the score outbox (AGS) fed by ``graded`` events, retries while
the LMS is down, and the signed deep linking response.

The grading itself is not run here (``graded`` events are written as the feedback service writes them);
tests/lti/test_hub_lti.py posts the score of a real graded submission through a real hub."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import jwt
import pytest
import requests
from ltitools import in_process_launch
from sqlalchemy import select

from learnhub.db import session_scope
from learnhub.event_schemas import Verb
from learnhub.events import record
from learnhub.extensions.courses import models as cm
from learnhub.lti import models as lm
from learnhub.lti.services import GradePassback, PlatformClient, RosterSync, assignment_item, deep_linking_response
from learnhub.timeutil import utcnow


@pytest.fixture
def course(launch_engine, lms, db_session_factory):
    """An LMS course launched by its instructor, then by two learners; the learnhub course has an assignment."""
    results = {}
    for sub, role in (("prof", "instructor"), ("ann", "learner"), ("bob", "learner")):
        id_token, state = in_process_launch(launch_engine, lms, lms.claims(sub, role))
        results[sub] = launch_engine.apply_launch(launch_engine.validate_launch(id_token, state))
    course_id = results["prof"].course_id
    with session_scope(db_session_factory) as session:
        session.add(cm.Assignment(course_id=course_id, id="hw1", title="Homework 1", max_score=10))
        session.add(cm.Assignment(course_id=course_id, id="hw2", title="Homework 2", max_score=5))
    return {"id": course_id, "context_pk": results["prof"].context_pk}


@pytest.fixture
def client(tool_keys):
    return PlatformClient(tool_keys, timeout=5)


@pytest.fixture
def passback(db_session_factory, client, lti_settings):
    return GradePassback(db_session_factory, client, lti_settings, settle_seconds=0)


def graded(sessions, learner, course_id, assignment, score, max_score, mode="grade"):
    job = uuid.uuid4().hex
    with session_scope(sessions) as session:
        record(session, learner, Verb.GRADED, "submission", job, course_id=course_id,
               result={"score": score, "max_score": max_score, "success": score == max_score, "duration": 1.0,
                       "tests": []},
               context={"assignment_id": assignment, "mode": mode, "role": "learner", "submission_id": job},
               source="feedback", id=f"graded:{job}")
    return f"graded:{job}"


def test_roster_sync_enrolls_new_members_and_marks_dropped_ones_inactive(course, lms, client, db_session_factory):
    lms.rosters["course-101"] = [lms.roster_member("prof", "instructor"), lms.roster_member("ann", "learner"),
                                 lms.roster_member("cid", "learner"), lms.roster_member("tia", "ta"),
                                 lms.roster_member("dan", "learner", status="Inactive")]
    sync = RosterSync(db_session_factory, client, user_name=lambda platform, member: member["user_id"])
    counts = sync.sync(course["context_pk"])
    # bob is no longer listed, dan is listed as Inactive and never launched: nothing to mark
    assert counts == {"enrolled": 2, "updated": 0, "inactive": 1, "unchanged": 2, "skipped": 0, "dropped": ["bob"]}
    with session_scope(db_session_factory) as session:
        members = {m.sub: (m.role, m.status) for m in session.scalars(select(lm.LtiMember))}
        enrolled = {e.user_name: e.role for e in session.scalars(select(cm.Enrollment)
                                                                   .where(cm.Enrollment.course_id == course["id"]))}
    assert members == {"prof": ("instructor", "active"), "ann": ("learner", "active"), "bob": ("learner", "inactive"),
                       "cid": ("learner", "active"), "tia": ("ta", "active")}
    # bob's membership stays (inactive), his enrollment (the course access) goes
    assert enrolled == {"prof": "instructor", "ann": "learner", "cid": "learner", "tia": "ta"}
    # bob is back, ann dropped: a second sync follows
    lms.rosters["course-101"] = [lms.roster_member(s, r) for s, r in
                                 (("prof", "instructor"), ("bob", "learner"), ("cid", "learner"), ("tia", "ta"))]
    assert sync.sync(course["context_pk"]) == {"enrolled": 0, "updated": 1, "inactive": 1, "unchanged": 3, "skipped": 0,
                                               "dropped": ["ann"]}
    with session_scope(db_session_factory) as session:
        enrolled = {e.user_name: e.role for e in session.scalars(select(cm.Enrollment)
                                                                   .where(cm.Enrollment.course_id == course["id"]))}
    assert enrolled == {"prof": "instructor", "bob": "learner", "cid": "learner", "tia": "ta"}
    assert lms.token_requests == 1  # one access token, cached for both syncs


def test_each_graded_submission_posts_one_score_with_one_line_item_per_assignment(course, lms, passback,
                                                                                    db_session_factory):
    events = [graded(db_session_factory, "ann", course["id"], "hw1", 7, 10),
              graded(db_session_factory, "bob", course["id"], "hw1", 10, 10),
              graded(db_session_factory, "ann", course["id"], "hw1", 9, 10),
              graded(db_session_factory, "ann", course["id"], "hw2", 5, 5),
              graded(db_session_factory, "ann", course["id"], "hw2", 1, 5, mode="check"),  # practice: not posted
              graded(db_session_factory, "zed", course["id"], "hw2", 3, 5)]  # not from the LMS: not posted
    assert passback.collect() == len(events)
    assert passback.collect() == 0  # each event once
    assert passback.deliver() == {"sent": 4, "retry": 0, "failed": 0}
    assert passback.deliver() == {"sent": 0, "retry": 0, "failed": 0}
    assert sorted((i["resourceId"], i["scoreMaximum"], i["label"]) for i in lms.line_items.values()) == [
        ("hw1", 10, "Homework 1"), ("hw2", 5, "Homework 2")]
    by_item = {i["id"]: i["resourceId"] for i in lms.line_items.values()}
    got = [(by_item[s["line_item"]], s["userId"], s["scoreGiven"], s["scoreMaximum"], s["activityProgress"],
            s["gradingProgress"]) for s in lms.scores]
    assert got == [("hw1", "ann", 7, 10, "Completed", "FullyGraded"), ("hw1", "bob", 10, 10, "Completed", "FullyGraded"),
                   ("hw1", "ann", 9, 10, "Completed", "FullyGraded"), ("hw2", "ann", 5, 5, "Completed", "FullyGraded")]
    assert all(s["timestamp"].endswith("Z") for s in lms.scores)


def test_a_lost_line_item_is_found_again_not_duplicated(course, lms, passback, db_session_factory):
    graded(db_session_factory, "ann", course["id"], "hw1", 7, 10)
    passback.collect()
    passback.deliver()
    with session_scope(db_session_factory) as session:  # learnhub forgets the line item it made
        session.query(lm.LtiLineItem).delete()
    graded(db_session_factory, "bob", course["id"], "hw1", 8, 10)
    passback.collect()
    assert passback.deliver()["sent"] == 1
    assert len(lms.line_items) == 1 and len({s["line_item"] for s in lms.scores}) == 1


def test_scores_wait_while_the_lms_is_down_and_are_delivered_once_when_it_returns(course, lms, passback,
                                                                                   db_session_factory, lti_settings):
    lti_settings.score_max_attempts = 50
    graded(db_session_factory, "ann", course["id"], "hw1", 6, 10)
    passback.collect()
    lms.down = True
    for _ in range(3):
        assert passback.deliver() == {"sent": 0, "retry": 1, "failed": 0}
    with session_scope(db_session_factory) as session:
        (row,) = session.scalars(select(lm.LtiScore)).all()
        assert (row.status, row.attempts) == ("pending", 3) and "503 Service Unavailable" in row.last_error
        assert "<" not in row.last_error  # the LMS's HTML error page is not kept, only what it means
    assert lms.scores == []
    lms.down = False
    assert passback.deliver() == {"sent": 1, "retry": 0, "failed": 0}
    assert passback.deliver() == {"sent": 0, "retry": 0, "failed": 0}
    assert [(s["userId"], s["scoreGiven"]) for s in lms.scores] == [("ann", 6)]


def test_backoff_and_giving_up_is_visible_and_retryable(course, lms, passback, db_session_factory, lti_settings):
    lti_settings.score_retry_seconds = 60
    graded(db_session_factory, "ann", course["id"], "hw1", 6, 10)
    passback.collect()
    lms.down = True
    assert passback.deliver()["retry"] == 1
    assert passback.deliver() == {"sent": 0, "retry": 0, "failed": 0}  # not due for a minute
    with session_scope(db_session_factory) as session:
        row = session.scalars(select(lm.LtiScore)).one()
        assert row.next_attempt_at.replace(tzinfo=None) > (utcnow() + timedelta(seconds=50)).replace(tzinfo=None)
        row.next_attempt_at = utcnow()
        row.attempts = lti_settings.score_max_attempts - 1
    assert passback.deliver()["failed"] == 1
    lms.down = False
    assert passback.deliver()["sent"] == 0  # a failed score waits for a person
    with session_scope(db_session_factory) as session:
        assert passback.retry(session, course["id"]) == 1
    assert passback.deliver()["sent"] == 1
    assert len(lms.scores) == 1


def test_best_score_policy(course, lms, passback, db_session_factory):
    with session_scope(db_session_factory) as session:
        session.get(lm.LtiContext, course["context_pk"]).score_policy = "best"
    for score in (8, 5, 9):
        graded(db_session_factory, "ann", course["id"], "hw1", score, 10)
        time.sleep(0.01)
    passback.collect()
    passback.deliver()
    assert [s["scoreGiven"] for s in lms.scores] == [8, 8, 9]


def test_deep_linking_response_is_signed_by_the_tool(tool_keys, lms):
    request = {"issuer": lms.issuer, "client_id": lms.client_id, "deployment_id": lms.deployment_id,
               "return_url": f"{lms.url}/deeplink-return", "data": "opaque-123"}
    token = deep_linking_response(tool_keys, request, [assignment_item("https://hub/lti/launch", "c1", "hw1", "HW 1", 10)])
    key = jwt.PyJWKSet.from_dict(tool_keys.jwks())[jwt.get_unverified_header(token)["kid"]].key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=lms.issuer, issuer=lms.client_id)
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-123"
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["custom"] == {"learnhub_course": "c1", "learnhub_assignment": "hw1"}
    assert item["lineItem"]["resourceId"] == "hw1"


def test_a_repeated_feed_queues_nothing_twice_even_with_two_linked_lms_courses(course, lms, launch_engine, passback,
                                                                                db_session_factory):
    from learnhub.models import EventCursor

    for sub, role in (("prof", "instructor"), ("ann", "learner")):  # a second LMS course, same learnhub course
        claims = lms.claims(sub, role, context_id="course-102", custom={"learnhub_course": course["id"]})
        id_token, state = in_process_launch(launch_engine, lms, claims)
        assert launch_engine.apply_launch(launch_engine.validate_launch(id_token, state)).course_id == course["id"]
    graded(db_session_factory, "ann", course["id"], "hw1", 4, 10)
    passback.collect()
    with session_scope(db_session_factory) as session:  # a crash before the cursor moved: the batch comes again
        session.query(EventCursor).delete()
    passback.collect()
    assert passback.deliver()["sent"] == 2
    assert sorted(s["line_item"].split("/ags/")[1].split("/")[0] for s in lms.scores) == ["course-101", "course-102"]


def test_the_scheduled_roster_sync_follows_the_lms_without_anyone_asking(course, lms, tool_keys, db_url):
    """The courses service's own LTI loop (``roster_sync_interval``), as it runs in the service, against the
    test LMS; the hub is away (its groups follow at the reconciliation), which must not stop the sync."""
    import asyncio

    from traitlets.config import Config

    from learnhub.extensions.courses.app import CoursesService

    lms.rosters["course-101"] = [lms.roster_member("prof", "instructor"), lms.roster_member("ann", "learner"),
                                 lms.roster_member("eve", "learner")]  # bob dropped, eve new
    config = Config({"LtiSettings": {"roster_sync_interval": 0.1, "outbox_interval": 0.1}})
    service = CoursesService(db_url=db_url, api_token="unused", hub_api_url="http://127.0.0.1:9/hub/api",
                             data_dir=str(tool_keys.folder.parent),
                             config=config)
    service.initialize([])

    async def until_synced():
        loop = asyncio.create_task(service.lti.forever())
        try:
            for _ in range(300):
                with session_scope(service.session_factory) as session:
                    context = session.get(lm.LtiContext, course["context_pk"])
                    if context.last_roster_sync is not None:
                        return
                await asyncio.sleep(0.05)
            raise AssertionError("no scheduled roster sync")
        finally:
            loop.cancel()

    try:
        asyncio.run(until_synced())
        with session_scope(service.session_factory) as session:
            enrolled = {e.user_name: e.role for e in session.scalars(
                select(cm.Enrollment).where(cm.Enrollment.course_id == course["id"]))}
    finally:
        service.engine.dispose()
    assert enrolled == {"prof": "instructor", "ann": "learner", "eve": "learner"}


def test_an_lms_error_is_kept_as_text_an_instructor_reads():
    from learnhub.lti.services import answer_text

    def answer(status, reason, content_type, body):
        response = requests.Response()
        response.status_code, response.reason = status, reason
        response.headers["Content-Type"] = content_type
        response._content = body.encode()
        return response

    assert answer_text(answer(400, "Bad Request", "application/json",
                              '{"error": "invalid_scope",\n "error_description": "no score scope"}')) == \
        '400 Bad Request: {"error": "invalid_scope", "error_description": "no score scope"}'
    assert answer_text(answer(502, "Bad Gateway", "text/html", "<html><body>nginx</body></html>")) == "502 Bad Gateway"
    assert answer_text(answer(503, "", "text/plain", "")) == "503"
    assert len(answer_text(answer(500, "Internal Server Error", "text/plain", "x" * 5000))) < 400
