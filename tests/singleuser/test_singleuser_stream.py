"""The stream multiplexer (extensions/singleuser/stream.py) and the bridge's forwarding against a stand-in
service in this process: real WebSockets and HTTP over loopback, so that what a hub cannot easily show
— a service that is down and comes back, every upstream closing with the browser's socket — is seen.

The real platform (hub, proxy, services, spawned servers) is in test_singleuser_bridge.py.
"""
from __future__ import annotations

import asyncio
import json
import logging

from tornado import web, websocket
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from learnhub.extensions.singleuser.bridge import BridgeError, HubBridge, ServiceUnavailable, course_roles
from learnhub.extensions.singleuser.stream import StreamMux

log = logging.getLogger("test")
TOKEN = "server-token"


class Upstream:
    """What the stand-in service saw and how it behaves."""

    def __init__(self):
        self.open_sockets = 0
        self.handshakes = 0
        self.refuse_next = 0  # answer this many handshakes with 503 (as the proxy does for a dead service)
        self.sockets: list = []
        self.requests: list = []


class StreamSocket(websocket.WebSocketHandler):
    def initialize(self, upstream):
        self.upstream = upstream

    async def get(self, *args, **kwargs):
        self.upstream.handshakes += 1
        if self.request.headers.get("Authorization") != f"token {TOKEN}":
            raise web.HTTPError(401)
        if self.upstream.refuse_next:
            self.upstream.refuse_next -= 1
            raise web.HTTPError(503)
        return await super().get(*args, **kwargs)

    def open(self, *args):
        self.upstream.open_sockets += 1
        self.upstream.sockets.append(self)
        self.write_message(json.dumps({"type": "hello", "path": self.request.path}))

    def on_close(self):
        self.upstream.open_sockets -= 1


class JobSocket(StreamSocket):
    def open(self, job_id):
        super().open(job_id)
        if job_id == "gone":
            return
        for event in ({"type": "queued"}, {"type": "test", "grade_id": "t1"}, {"type": "done", "status": "graded"}):
            self.write_message(json.dumps(event))
        self.close()


class MissingJob(web.RequestHandler):
    def get(self, job_id):
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish({"error": {"status": 404, "message": f"No such check: {job_id}", "details": {}}})


class Echo(web.RequestHandler):
    def initialize(self, upstream):
        self.upstream = upstream

    def prepare(self):
        self.upstream.requests.append({"method": self.request.method, "uri": self.request.uri,
                                       "headers": dict(self.request.headers), "body": self.request.body})

    def get(self, path):
        if path == "broken":
            self.set_status(500)
            self.set_header("Content-Type", "text/html")
            return self.finish("<html>proxy error</html>")
        self.set_status(418 if path == "teapot" else 200)
        self.set_header("Content-Type", "application/json")
        self.set_header("Retry-After", "7")
        self.finish({"path": path, "query": self.request.query})

    def delete(self, path):
        self.set_header("Content-Type", "application/json")
        self.finish({"deleted": path, "body": json.loads(self.request.body or b"null")})


async def start(upstream: Upstream):
    app = web.Application([
        (r"/services/notifications/api/notifications/stream", StreamSocket, {"upstream": upstream}),
        (r"/services/feedback/api/checks/(missing)/events", MissingJob),
        (r"/services/feedback/api/checks/([^/]+)/events", JobSocket, {"upstream": upstream}),
        (r"/services/courses/api/(.*)", Echo, {"upstream": upstream}),
    ])
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    bridge = HubBridge(services_url=f"http://127.0.0.1:{port}/services/", api_token=TOKEN,
                       reconnect_initial_seconds=0.05, reconnect_max_seconds=0.2, log=log)
    return server, bridge, port


class Browser:
    """The messages the mux sends to the browser's socket."""

    def __init__(self):
        self.messages: list[dict] = []
        self.arrived = asyncio.Event()

    def send(self, message: dict) -> None:
        self.messages.append(message)
        self.arrived.set()

    async def wait_for(self, predicate, timeout: float = 10) -> dict:
        async def scan():
            seen = 0
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                self.arrived.clear()
                await self.arrived.wait()
        return await asyncio.wait_for(scan(), timeout)


async def wait_until(condition, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_dead_service_is_reconnected_and_closing_the_browser_closes_every_upstream():
    upstream = Upstream()
    upstream.refuse_next = 2
    server, bridge, _ = await start(upstream)
    browser = Browser()
    mux = StreamMux(bridge, browser.send, log)
    try:
        mux.handle(json.dumps({"subscribe": "notifications"}))
        mux.handle(json.dumps({"subscribe": "notifications"}))  # the same topic twice: one upstream
        hello = await browser.wait_for(lambda m: "event" in m)
        assert hello == {"topic": "notifications", "event": {"type": "hello",
                                                            "path": "/services/notifications/api/notifications/stream"}}
        errors = [m for m in browser.messages if "error" in m]
        assert len(errors) == 2 and all(e["topic"] == "notifications" and e["error"]["status"] == 502 for e in errors)
        assert upstream.handshakes == 3 and upstream.open_sockets == 1

        # The service drops the stream: an error, then the stream is back on its own.
        upstream.sockets[-1].close()
        await browser.wait_for(lambda m: m.get("error", {}).get("message", "").endswith("reconnecting."))
        await wait_until(lambda: upstream.handshakes == 4 and upstream.open_sockets == 1)

        # A second topic, then the browser goes away: no upstream stays open.
        mux.handle(json.dumps({"subscribe": "check", "id": "gone"}))
        await wait_until(lambda: upstream.open_sockets == 2)
        mux.close()
        await wait_until(lambda: upstream.open_sockets == 0)
        assert mux.tasks == {}
    finally:
        mux.close()
        server.stop()


async def test_job_streams_end_and_refusals_are_final():
    upstream = Upstream()
    server, bridge, _ = await start(upstream)
    browser = Browser()
    mux = StreamMux(bridge, browser.send, log)
    try:
        mux.handle(json.dumps({"subscribe": "check", "id": "job-1"}))
        await browser.wait_for(lambda m: m.get("closed"))
        assert [m.get("event", {}).get("type") for m in browser.messages] == ["hello", "queued", "test", "done", None]
        assert all(m["topic"] == "check:job-1" for m in browser.messages)
        assert browser.messages[-1] == {"topic": "check:job-1", "closed": True}

        # Unknown job: the service's own message, and the topic ends (no retrying a 404).
        browser.messages.clear()
        mux.handle(json.dumps({"subscribe": "check", "id": "missing"}))
        await browser.wait_for(lambda m: m.get("closed"))
        assert browser.messages == [
            {"topic": "check:missing", "error": {"status": 404, "message": "No such check: missing"}},
            {"topic": "check:missing", "closed": True}]
        assert "check:missing" not in mux.tasks

        # Unsubscribing closes the upstream and says so.
        mux.handle(json.dumps({"subscribe": "notifications"}))
        await wait_until(lambda: upstream.open_sockets == 1)
        mux.handle(json.dumps({"unsubscribe": "notifications"}))
        await wait_until(lambda: upstream.open_sockets == 0)
        assert browser.messages[-1] == {"topic": "notifications", "closed": True}

        # Messages that are not subscriptions get an error, and nothing is opened.
        browser.messages.clear()
        for bad in ("not json", json.dumps(["subscribe"]), json.dumps({"subscribe": "everything"}),
                    json.dumps({"subscribe": "check", "id": "../../x"})):
            mux.handle(bad)
        assert [m["error"]["status"] for m in browser.messages] == [400, 400, 400, 400]
        assert all(m["topic"] is None for m in browser.messages) and mux.tasks == {}
    finally:
        mux.close()
        server.stop()


async def test_forwarding_relays_verbatim_and_sends_only_the_servers_token():
    upstream = Upstream()
    server, bridge, port = await start(upstream)
    try:
        answer = await bridge.request("courses", "GET", "courses/intro python", "q=a%20b&limit=2")
        assert answer.status == 200 and answer.json() == {"path": "courses/intro python", "query": "q=a%20b&limit=2"}
        assert answer.headers["Retry-After"] == "7"
        seen = upstream.requests[-1]
        assert seen["uri"] == "/services/courses/api/courses/intro%20python?q=a%20b&limit=2"
        assert seen["headers"]["Authorization"] == f"token {TOKEN}" and "Cookie" not in seen["headers"]

        assert (await bridge.request("courses", "GET", "teapot")).status == 418  # errors relayed as they are
        deleted = await bridge.request("courses", "DELETE", "x", body=b'{"a": 1}', content_type="application/json")
        assert deleted.json() == {"deleted": "x", "body": {"a": 1}}

        for path in ("../hub/api/users", "a/./b", "a/../../b"):
            try:
                await bridge.request("courses", "GET", path)
            except BridgeError as exc:
                assert exc.status == 400
            else:
                raise AssertionError(f"{path} was forwarded")
        try:
            await bridge.request("hub", "GET", "users")
        except BridgeError as exc:
            assert exc.status == 404
        else:
            raise AssertionError("an unknown service was forwarded")

        # An HTML error page is not the service answering; nor is a closed port.
        for service_bridge, path in ((bridge, "broken"),
                                     (HubBridge(services_url="http://127.0.0.1:9/services/", api_token=TOKEN,
                                                log=log), "courses")):
            try:
                await service_bridge.request("courses", "GET", path)
            except ServiceUnavailable as exc:
                assert exc.body() == {"error": {"status": 502, "message": "The courses service is not answering; "
                                                "the rest of learnhub still works.", "details": {"service": "courses"}}}
            else:
                raise AssertionError("no 502")
    finally:
        server.stop()


def test_course_roles_take_the_strongest_role():
    groups = ["course-intro-python-learners", "course-intro-python-tas", "course-a-b-instructors",
              "course-a-b-learners", "learnhub-instructors", "course--learners", "other"]
    assert course_roles(groups) == {"a-b": "instructor", "intro-python": "ta"}
    assert course_roles([]) == {} and course_roles(None) == {}
