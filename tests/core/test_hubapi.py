"""The clients of the hub's and the services' APIs (learnhub/hubapi.py), against a real local tornado
app: what an answer becomes (data, ``APIClientError`` with the status and message, ``PeerUnavailable``),
in the async form (tornado's client) and the blocking one (``requests``), and ``multipart()`` read back
by tornado's own parser."""
from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from learnhub.hubapi import APIClientError, HubAPI, PeerUnavailable, ServiceAPI, multipart


class Echo(web.RequestHandler):
    """200 with what was asked: method, token, query, JSON body."""

    def _echo(self):
        body = json.loads(self.request.body) if self.request.body else None
        self.set_header("Content-Type", "application/json")
        self.finish({"method": self.request.method, "authorization": self.request.headers.get("Authorization"),
                     "query": {k: self.get_query_arguments(k) for k in self.request.query_arguments},
                     "body": body})

    get = post = put = delete = _echo


class Upload(web.RequestHandler):
    """A multipart upload as tornado parsed it."""

    def post(self):
        self.set_header("Content-Type", "application/json")
        self.finish({"fields": {k: [v.decode() for v in values] for k, values in self.request.body_arguments.items()},
                     "files": {field: [[f.filename, f.body.decode()] for f in files]
                               for field, files in self.request.files.items()}})


class LearnhubRefusal(web.RequestHandler):
    def get(self):
        self.set_status(409)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish({"error": {"status": 409, "message": "You have used your 3 attempts.",
                               "details": {"reason": "attempt_limit"}, "request_id": "r1"}})


class HubRefusal(web.RequestHandler):
    """JupyterHub's own error shape."""

    def get(self, name=None):
        self.set_status(404)
        self.set_header("Content-Type", "application/json")
        self.finish({"status": 404, "message": "No such user"})


class HubForbidden(web.RequestHandler):
    def get(self, name=None):
        self.set_status(403)
        self.set_header("Content-Type", "application/json")
        self.finish({"status": 403, "message": "Action is not authorized with current scopes"})


class HTMLPage(web.RequestHandler):
    """What the hub's proxy answers for a service that is not running: an HTML page."""

    def initialize(self, status):
        self.status = status

    def get(self):
        self.set_status(self.status)
        self.set_header("Content-Type", "text/html")
        self.finish("<html><body>Service Unavailable</body></html>")


class ToLogin(web.RequestHandler):
    def get(self):
        self.redirect("/hub/login?next=/services/courses/api/x")


class Empty(web.RequestHandler):
    def delete(self):
        self.set_status(204)
        self.finish()


def make_app() -> web.Application:
    return web.Application([
        (r"/api/echo", Echo),
        (r"/api/upload", Upload),
        (r"/api/refused", LearnhubRefusal),
        (r"/hub/api/users/(.*)", HubRefusal),
        (r"/forbidden/hub/api/users/(.*)", HubForbidden),
        (r"/api/proxy-503", HTMLPage, {"status": 503}),
        (r"/api/html-404", HTMLPage, {"status": 404}),
        (r"/api/html-200", HTMLPage, {"status": 200}),
        (r"/api/to-login", ToLogin),
        (r"/api/empty", Empty),
    ])


@pytest.fixture(scope="module")
def peer():
    """The app on a loop of its own in a thread, so that both the async and the blocking client
    (which blocks the test's own loop) can call it."""
    ready, state = threading.Event(), {}

    def serve():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)

        async def start():
            sockets = bind_sockets(0, "127.0.0.1")
            state["server"] = HTTPServer(make_app())
            state["server"].add_sockets(sockets)
            state["port"] = sockets[0].getsockname()[1]

        loop.run_until_complete(start())
        state["loop"] = loop
        ready.set()
        loop.run_forever()
        state["server"].stop()
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(30), "the local app did not start"
    yield f"http://127.0.0.1:{state['port']}"
    state["loop"].call_soon_threadsafe(state["loop"].stop)
    thread.join(30)


@pytest.fixture(params=["async", "blocking"])
def call(request):
    """``await call(client, method, path, body=..., params=...)`` in the form under test."""
    async def do(client, method, path, body=None, params=None):
        if request.param == "async":
            return await client.request(method, path, body, params=params)
        return await asyncio.to_thread(client.request_sync, method, path, body, params=params)
    return do


def refused_port() -> int:
    """A port on which nothing listens (bound, so nobody else takes it meanwhile, but not listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    refused_port.keep.append(sock)
    return sock.getsockname()[1]


refused_port.keep = []


async def test_an_answer_is_its_json_and_the_token_is_sent(peer, call):
    api = ServiceAPI("courses", "service-token", services_url=f"{peer}/services-are-here/")
    assert api.base_url == f"{peer}/services-are-here/courses/api"
    client = HubAPI(f"{peer}/api", "service-token")
    answer = await call(client, "POST", "echo", {"a": [1, 2]}, params={"user": "ann", "tag": ["x", "y"]})
    assert answer == {"method": "POST", "authorization": "token service-token",
                      "query": {"user": ["ann"], "tag": ["x", "y"]}, "body": {"a": [1, 2]}}


async def test_no_content_is_none(peer, call):
    assert await call(HubAPI(f"{peer}/api", "t"), "DELETE", "empty") is None


async def test_a_learnhub_error_is_an_api_client_error_with_status_message_and_details(peer, call):
    with pytest.raises(APIClientError) as caught:
        await call(HubAPI(f"{peer}/api", "t"), "GET", "refused")
    error = caught.value
    assert (error.status, error.message, error.details) == (409, "You have used your 3 attempts.",
                                                            {"reason": "attempt_limit"})
    assert error.url == f"{peer}/api/refused"


async def test_a_hub_error_is_an_api_client_error_with_the_hubs_message(peer, call):
    with pytest.raises(APIClientError) as caught:
        await call(HubAPI(f"{peer}/forbidden/hub/api", "t"), "GET", "users/ann")
    assert (caught.value.status, caught.value.message) == (403, "Action is not authorized with current scopes")


async def test_a_missing_user_is_none_but_a_refusal_is_raised(peer):
    assert await HubAPI(f"{peer}/hub/api", "t").user("nobody") is None
    with pytest.raises(APIClientError) as caught:
        await HubAPI(f"{peer}/forbidden/hub/api", "t").user("ann")
    assert caught.value.status == 403


@pytest.mark.parametrize("path", ["proxy-503", "html-404"])
async def test_an_html_error_page_is_a_peer_that_is_not_there(peer, call, path):
    # The proxy's or the hub's own page, not the API's answer: a 404 here is not "no such thing".
    with pytest.raises(PeerUnavailable) as caught:
        await call(HubAPI(f"{peer}/api", "t"), "GET", path)
    assert caught.value.url == f"{peer}/api/{path}" and "not the API" in caught.value.reason


async def test_an_html_page_instead_of_json_is_a_peer_that_is_not_there(peer, call):
    with pytest.raises(PeerUnavailable) as caught:
        await call(HubAPI(f"{peer}/api", "t"), "GET", "html-200")
    assert "text/html" in caught.value.reason


async def test_a_redirect_to_a_login_page_is_a_peer_that_is_not_there(peer, call):
    # Not followed (it would lead to a login form), and not taken for an empty answer either.
    with pytest.raises(PeerUnavailable) as caught:
        await call(HubAPI(f"{peer}/api", "t"), "GET", "to-login")
    assert "302" in caught.value.reason


async def test_a_refused_connection_is_a_peer_that_is_not_there(call):
    url = f"http://127.0.0.1:{refused_port()}/api"
    with pytest.raises(PeerUnavailable) as caught:
        await call(HubAPI(url, "t"), "GET", "users/ann")
    assert caught.value.url == f"{url}/users/ann"


async def test_a_peer_that_does_not_answer_in_time_is_not_there(call):
    # It accepts the connection (the kernel does, for a listening socket) and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        with pytest.raises(PeerUnavailable):
            await call(HubAPI(f"http://127.0.0.1:{silent.getsockname()[1]}/api", "t", timeout=0.5), "GET", "x")
    finally:
        silent.close()


async def test_multipart_round_trips_through_tornados_parser(peer):
    # Names with quotes and backslashes come back as they were: one that would close the quoted name
    # early and add a filename of its own, one whose backslash the parser would otherwise eat.
    names = ['my "best" notebook.ipynb', 'a.ipynb"; filename="evil.ipynb', 'q\\"uote.ipynb', "data\\input.csv"]
    files = [("files", name, f"content of {index}".encode()) for index, name in enumerate(names)]
    files.append(("extra", "ünïcode.txt", "héllo\r\n--not-a-boundary\r\n".encode()))
    body, content_type = multipart({"user": "ann", 'odd "field"': 'says "hi"'}, files)
    assert content_type.startswith("multipart/form-data; boundary=")
    parsed = await HubAPI(f"{peer}/api", "t").request("POST", "upload", raw_body=body, content_type=content_type)
    assert parsed == {"fields": {"user": ["ann"], 'odd "field"': ['says "hi"']},
                      "files": {"files": [[name, f"content of {index}"] for index, name in enumerate(names)],
                                "extra": [["ünïcode.txt", "héllo\r\n--not-a-boundary\r\n"]]}}


@pytest.mark.parametrize("where", ["field", "file"])
def test_multipart_refuses_a_name_with_a_line_break(where):
    # A line break would end the part's header: the rest of the name would become a header of its own.
    bad = "x\r\nContent-Type: text/html"
    with pytest.raises(ValueError, match="line break"):
        if where == "field":
            multipart({bad: "v"}, [])
        else:
            multipart({}, [("files", bad, b"")])
