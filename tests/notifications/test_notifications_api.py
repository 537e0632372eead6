"""The notifications API through a real platform (``learnhub up``): auth, own-only reads,
preferences validation, announcements for instructors, dead letters for admins, the live stream.
One hub for the module; what people do and the notifications it causes: test_notifications_flow.py."""
from __future__ import annotations

import asyncio
import json
import time

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from hubtools import module_platform

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: run on PostgreSQL too
API = "/services/notifications/api"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    for hub in module_platform(tmp_path_factory, "notifications"):  # one platform, stopped after the module
        yield _with_people(hub)


def _with_people(hub):
    for name in ("nf-ada", "nf-bob", "nf-prof"):
        hub.hub_api("POST", f"/users/{name}").raise_for_status()
    hub.hub_api("POST", "/groups/course-py101-learners", json={"users": ["nf-ada", "nf-bob"]}).raise_for_status()
    hub.hub_api("POST", "/groups/course-py101-instructors", json={"users": ["nf-prof"]}).raise_for_status()
    hub.tokens = {name: hub.user_token(name) for name in ("nf-ada", "nf-bob", "nf-prof")}
    return hub


def wait_for(check, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("timed out")


def test_auth_and_preferences(platform):
    assert platform.api("GET", f"{API}/notifications").status_code == 401
    ada = platform.tokens["nf-ada"]
    for body, field in (({"email": "ada@@nowhere"}, "email"), ({"phone": "call me"}, "phone"),
                        ({"channels": {"feedback_ready": {"email": "yes"}}}, "channels.feedback_ready.email")):
        response = platform.api("PUT", f"{API}/preferences", token=ada, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]["field"] == field
    response = platform.api("PUT", f"{API}/preferences", token=ada, json={
        "email": "ada@example.org", "phone": "+447700900123", "channels": {"announcement": {"email": True}},
        "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/London"}})
    assert response.status_code == 200, response.text
    prefs = platform.api("GET", f"{API}/preferences", token=ada).json()
    assert prefs["email"] == "a***@example.org" and "ada@example.org" not in json.dumps(prefs)
    assert prefs["channels"]["announcement"] == {"in_app": True, "email": True, "sms": False}
    assert "ada@example.org" not in platform.log_path.read_text(errors="replace")


async def test_announcement_stream_read_and_dead_letters(platform):
    ada, bob, prof = (platform.tokens[n] for n in ("nf-ada", "nf-bob", "nf-prof"))
    ws_url = platform.url.replace("http", "ws", 1) + f"{API}/notifications/stream"
    with pytest.raises(HTTPClientError) as refused:  # no token: 401 before any upgrade
        await websocket_connect(ws_url)
    assert refused.value.code == 401
    stream = await websocket_connect(HTTPRequest(ws_url, headers={"Authorization": f"token {ada}"}))
    hello = json.loads(await asyncio.wait_for(stream.read_message(), 30))
    assert hello["type"] == "hello"

    announce = {"title": "Exam moved", "body": "to Friday"}
    assert platform.api("POST", f"{API}/courses/py101/announcements", token=bob, json=announce).status_code == 403
    assert platform.api("POST", f"{API}/courses/py101/announcements", token=prof,
                        json={"title": ""}).status_code == 422
    response = platform.api("POST", f"{API}/courses/py101/announcements", token=prof, json=announce)
    assert response.status_code == 202 and response.json()["recipients"] == 2

    pushed = json.loads(await asyncio.wait_for(stream.read_message(), 30))
    assert pushed["type"] == "notification" and pushed["notification"]["title"] == "Exam moved"
    stream.close()

    mine = platform.api("GET", f"{API}/notifications?unread=1", token=ada).json()
    assert [n["title"] for n in mine["items"]] == ["Exam moved"] and mine["next"] is None
    ada_id = mine["items"][0]["id"]
    bobs = wait_for(lambda: platform.api("GET", f"{API}/notifications", token=bob).json()["items"])
    assert bobs[0]["id"] != ada_id
    # Someone else's notification: 404, as if it did not exist.
    assert platform.api("POST", f"{API}/notifications/{ada_id}/read", token=bob).status_code == 404
    assert platform.api("POST", f"{API}/notifications/{ada_id}/read", token=ada).json()["read"] is True
    assert platform.api("GET", f"{API}/notifications?unread=1", token=ada).json()["items"] == []

    assert platform.api("GET", f"{API}/dead-letters", token=ada).status_code == 403
    assert platform.api("POST", f"{API}/dead-letters/1/retry", token=ada).status_code == 403
    dead = platform.api("GET", f"{API}/dead-letters", token=platform.admin_token)
    assert dead.status_code == 200 and dead.json()["items"] == []
    assert platform.api("POST", f"{API}/dead-letters/999/retry", token=platform.admin_token).status_code == 404
