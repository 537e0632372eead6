"""The analytics API in-process (no hub): ingestion, bad input, permissions, exports, OpenAPI.

The hub's token check is replaced by a table of tokens → user models shaped like the hub's, so the
permission rules are tested quickly here; test_hub.py checks the same with a real hub.
"""
from __future__ import annotations

import csv
import io
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from learnhub.events import Verb
from learnhub.extensions.analytics import AnalyticsService

from analytics_helpers import at

ACCESS = "access:services!service=analytics"
USERS = {
    "learner": {"kind": "user", "name": "lena", "admin": False, "groups": ["course-c1-learners"], "scopes": [ACCESS]},
    "instructor": {"kind": "user", "name": "ines", "admin": False, "groups": ["course-c1-instructors"],
                   "scopes": [ACCESS]},
    "ta": {"kind": "user", "name": "tom", "admin": False, "groups": ["course-c1-tas"], "scopes": [ACCESS]},
    "other": {"kind": "user", "name": "otto", "admin": False, "groups": ["course-c2-instructors"], "scopes": [ACCESS]},
    "admin": {"kind": "user", "name": "root", "admin": True, "groups": [], "scopes": [ACCESS]},
    "reader": {"kind": "user", "name": "rita", "admin": False, "groups": [],
               "scopes": [ACCESS, "custom:learnhub:analytics:read"]},
    "service": {"kind": "service", "name": "courses", "admin": False, "scopes": [ACCESS]},
    "noaccess": {"kind": "user", "name": "nina", "admin": False, "groups": [], "scopes": []},
}


@pytest.fixture
async def api(db_url):
    service = AnalyticsService(db_url=db_url, api_token="unused", hub_api_url="http://127.0.0.1:9/hub/api",
                               risk_model_enabled=False)
    service.initialize([])

    async def fake_get_user(handler, sync=True):
        token = handler.request.headers.get("Authorization", "").removeprefix("token ")
        if token in USERS:
            handler._token_authenticated = True
            return dict(USERS[token])
        return None

    service.hub_auth.get_user = fake_get_user
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(service.make_app())
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/services/analytics"

    async def call(method, path, who=None, body=None, raw=False):
        headers = {"Authorization": f"token {who}"} if who else {}
        try:
            response = await AsyncHTTPClient().fetch(
                base + path, method=method, headers=headers, raise_error=True,
                body=None if body is None else json.dumps(body), allow_nonstandard_methods=True)
        except HTTPClientError as error:
            response = error.response
        if raw:
            return response.code, response
        return response.code, json.loads(response.body) if response.body else None

    call.base = base
    yield call
    server.stop()
    service.engine.dispose()


def ev(actor, verb, object_type, object_id, n, **extra):
    """An event in course c1 as its producer writes it (schema 2): one about an assignment names it in
    ``context.assignment_id``, an enrollment says the role."""
    from learnhub.events import make_event

    if object_type == "assignment":
        extra["context"] = {"assignment_id": object_id, **(extra.get("context") or {})}
    if verb == Verb.ENROLLED and "result" not in extra:
        extra["result"] = {"role": "learner"}
    return make_event(actor, verb, object_type, object_id, course_id="c1", time=at(0, n), id=f"e-{actor}-{n}", **extra)


async def test_post_events_partial_success_and_idempotency(api):
    good = [ev("lena", Verb.ENROLLED, "course", "c1", 1), ev("lena", Verb.FETCHED, "assignment", "a1", 2)]
    bad = dict(ev("lena", Verb.GRADED, "assignment", "a1", 3))  # graded needs a score
    status, body = await api("POST", "/api/events", "learner", {"events": [good[0], bad, good[1], "nonsense"]})
    assert status == 422
    error = body["error"]
    assert "2 of 4 events are invalid" in error["message"]
    assert error["details"]["stored"] == 2 and error["details"]["stored_ids"] == [good[0]["id"], good[1]["id"]]
    rejected = {r["index"]: r for r in error["details"]["rejected"]}
    assert set(rejected) == {1, 3}
    assert any("result" in reason for reason in rejected[1]["reasons"])
    assert rejected[1]["id"] == bad["id"]
    # Sent again: nothing new, and no error.
    status, body = await api("POST", "/api/events", "learner", good)
    assert status == 200 and body["stored"] == 0 and body["duplicates"] == 2


async def test_people_post_only_their_own_events(api):
    status, body = await api("POST", "/api/events", "learner", [ev("lena", Verb.ENROLLED, "course", "c1", 1),
                                                                ev("ines", Verb.ENROLLED, "course", "c1", 2)])
    assert status == 403 and body["error"]["details"]["indices"] == [1]
    assert "actor must be 'lena'" in body["error"]["message"]
    # Nothing of that batch was stored.
    status, body = await api("POST", "/api/events", "learner", [ev("lena", Verb.ENROLLED, "course", "c1", 1)])
    assert status == 200 and body["stored"] == 1
    # Services (and admins) record events about anyone: a grade is about the learner.
    graded = ev("lena", Verb.GRADED, "assignment", "a1", 5, result={"score": 3, "max_score": 4})
    status, body = await api("POST", "/api/events", "service", [graded])
    assert status == 200 and body["stored"] == 1
    status, _ = await api("POST", "/api/events", "admin", [ev("someone", Verb.ENROLLED, "course", "c1", 9)])
    assert status == 200


async def test_bad_requests(api):
    assert (await api("POST", "/api/events", None, []))[0] == 401
    assert (await api("POST", "/api/events", "noaccess", []))[0] == 403
    status, body = await api("POST", "/api/events", "learner", {"events": "no"})
    assert status == 400 and "list of events" in body["error"]["message"]
    status, body = await api("POST", "/api/events", "admin", [{}] * 5001)
    assert status == 413
    status, body = await api("POST", "/api/events", "learner", [])
    assert status == 200 and body["stored"] == 0


async def test_course_report_permissions(api):
    await api("POST", "/api/events", "service", [ev("lena", Verb.ENROLLED, "course", "c1", 1),
                                                 ev("lena", Verb.FETCHED, "assignment", "a1", 2)])
    for who in ("instructor", "ta", "admin", "reader"):
        status, report = await api("GET", "/api/courses/c1/report", who)
        assert status == 200, who
        assert report["learners"] == 1 and report["assignments"][0]["funnel"]["fetched"] == 1
    for who in ("learner", "other"):
        status, body = await api("GET", "/api/courses/c1/report", who)
        assert status == 403, who
        assert set(body) == {"error"} and "lena" not in json.dumps(body)
    assert (await api("GET", "/api/courses/c1/report"))[0] == 401


async def test_export_csv(api):
    events = [ev("lena", Verb.ENROLLED, "course", "c1", 1),
              ev("lena", Verb.ATTEMPTED, "exercise", "a1/x", 2, result={"success": False, "error_type": "KeyError"})]
    await api("POST", "/api/events", "service", events)
    status, response = await api("GET", "/api/courses/c1/export?format=csv", "instructor", raw=True)
    assert status == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert [r["id"] for r in rows] == [e["id"] for e in events]
    assert json.loads(rows[1]["result"])["error_type"] == "KeyError"
    assert (await api("GET", "/api/courses/c1/export?format=xlsx", "instructor"))[0] == 400
    assert (await api("GET", "/api/courses/c1/export", "learner"))[0] == 403
    status, response = await api("GET", "/api/courses/c1/export?format=parquet", "admin", raw=True)
    assert status == 200 and response.headers["Content-Type"] == "application/vnd.apache.parquet"
    import pandas as pd

    table = pd.read_parquet(io.BytesIO(response.body))
    assert list(table["id"]) == [e["id"] for e in events]
    assert json.loads(table["result"][1])["error_type"] == "KeyError"


async def test_platform_report_is_for_admins(api):
    assert (await api("GET", "/api/platform/report", "instructor"))[0] == 403
    status, body = await api("GET", "/api/platform/report", "admin")
    assert status == 200 and "active_users" in body and "grading" in body
    assert (await api("GET", "/api/platform/report", "reader"))[0] == 200


async def test_metrics_count_ingestion(api):
    await api("POST", "/api/events", "learner", [ev("lena", Verb.ENROLLED, "course", "c1", 1), {"bad": 1}])
    status, response = await api("GET", "/metrics", "admin", raw=True)
    text = response.body.decode()
    assert 'learnhub_analytics_events_total{outcome="stored"} 1.0' in text
    assert 'learnhub_analytics_events_total{outcome="rejected"} 1.0' in text


async def test_notebook_client_gives_dataframes(api):
    import asyncio

    from learnhub.analytics import AnalyticsError, Client

    await api("POST", "/api/events", "service", [
        ev("lena", Verb.ENROLLED, "course", "c1", 1), ev("lena", "submitted", "assignment", "a1", 2),
        ev("lena", Verb.GRADED, "assignment", "a1", 3, result={"score": 3, "max_score": 4, "success": True}),
        ev("lena", Verb.ATTEMPTED, "exercise", "a1/x", 4, result={"success": False, "error_type": "KeyError"},
           context={"assignment_id": "a1"}),
        ev("max", Verb.ENROLLED, "course", "c1", 5)])
    client = Client(api.base, token="instructor")
    events = await asyncio.to_thread(client.events, "c1")
    assert len(events) == 5 and str(events.time.dt.tz) == "UTC"
    assert events.loc[events.verb == "graded", "score"].iloc[0] == 3
    assert events.loc[events.verb == "attempted", "error_type"].iloc[0] == "KeyError"
    learners = await asyncio.to_thread(client.learners, "c1")
    assert learners.loc["lena", "submissions"] == 1 and learners.loc["lena", "mean_score_pct"] == 75
    exercises = await asyncio.to_thread(client.exercises, "c1")
    assert exercises.loc["a1/x", "learners_attempted"] == 1
    assignments = await asyncio.to_thread(client.assignments, "c1")
    assert assignments.loc["a1", "funnel.submitted"] == 1
    assert not (await asyncio.to_thread(client.weekly_activity, "c1")).empty
    with pytest.raises(AnalyticsError) as caught:
        await asyncio.to_thread(Client(api.base, token="learner").report, "c1")
    assert caught.value.status == 403
    # A learner posts their own activity through the same client.
    mine = await asyncio.to_thread(Client(api.base, token="learner").post_events,
                                   [ev("lena", "opened", "notebook", "a1.ipynb", 9)])
    assert mine["stored"] == 1
