"""The server extension's endpoints under ``<base url>learnhub/api/``: thin tornado handlers.

Authentication and authorisation are jupyter_server's (with JupyterHub: the server's owner, or whoever
the hub lets access the server): ``@web.authenticated`` plus the ``@authorized`` decorator on resource
``learnhub``, XSRF for cookie-authenticated browsers. The work is done by :class:`.bridge.HubBridge`,
:class:`.assignments.Assignments` and :class:`.stream.StreamMux`.

Errors are JSON, as the services': ``{"error": {"status", "message", "details"}}``.
"""
from __future__ import annotations

import json

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import url_escape, url_path_join
from tornado import web, websocket

from .bridge import BridgeError, Relayed
from .limits import memory_status

AUTH_RESOURCE = "learnhub"
JSON_TYPE = "application/json; charset=UTF-8"


class LearnhubHandler(APIHandler):
    """JSON in, JSON out; errors in learnhub's shape."""

    auth_resource = AUTH_RESOURCE

    @property
    def bridge(self):
        return self.settings["learnhub_bridge"]

    @property
    def assignments(self):
        return self.settings["learnhub_assignments"]

    def write_error(self, status_code: int, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        details: dict = {}
        message = self._reason
        if isinstance(exc, BridgeError):
            message, details = exc.message, exc.details
        elif isinstance(exc, web.HTTPError):
            if exc.log_message:
                message = exc.log_message % exc.args if exc.args else exc.log_message
        elif status_code >= 500:
            message = "Internal error of the learnhub server extension; see the server's log."
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps({"error": {"status": status_code, "message": message, "details": details}}))

    def _handle_request_exception(self, e):
        if isinstance(e, BridgeError) and not self._finished:
            # An expected answer (a 502 included), not a server error with a traceback.
            self.log.info("learnhub: %s %s -> %s %s", self.request.method, self.request.path, e.status, e.message)
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def write_json(self, payload, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(payload))

    def relay(self, relayed: Relayed) -> None:
        """A service's answer, verbatim: status, body, content type (and Retry-After, X-Request-Id)."""
        self.set_status(relayed.status)
        for name, value in relayed.headers.items():
            self.set_header(name, value)
        if relayed.status in (204, 304) or not relayed.body:
            self.clear_header("Content-Type")
            return self.finish()  # tornado refuses a body, even an empty one, with 204
        self.set_header("Content-Type", relayed.content_type)
        self.finish(relayed.body)

    def json_body(self):
        if not self.request.body:
            return None
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BridgeError(400, f"The request body is not valid JSON: {exc}")


class ContextHandler(LearnhubHandler):
    """``GET learnhub/api/context``: who the user is and their role in each course."""

    @web.authenticated
    @authorized
    async def get(self):
        self.write_json(await self.bridge.context())


class LimitsHandler(LearnhubHandler):
    """``GET learnhub/api/limits``: this server's memory limit and OOM-kill count (:mod:`.limits`)."""

    @web.authenticated
    @authorized
    def get(self):
        self.write_json({"memory": memory_status()})


class ServiceHandler(LearnhubHandler):
    """``learnhub/api/services/{service}/{path}`` → ``/services/{service}/api/{path}`` with the server's token."""

    async def forward(self, service: str, path: str | None) -> None:
        self.bridge.check_service(service)
        body = self.request.body or None
        content_type = None
        if body is not None:
            given = self.request.headers.get("Content-Type", "application/json")
            if "json" not in given.lower():
                raise BridgeError(415, "Send JSON (Content-Type: application/json).", {"content_type": given})
            self.json_body()  # invalid JSON stops here, not at the service
            content_type = "application/json"
        self.relay(await self.bridge.request(service, self.request.method, path or "", self.request.query,
                                             body, content_type))

    @web.authenticated
    @authorized
    async def get(self, service, path=None):
        await self.forward(service, path)

    @web.authenticated
    @authorized
    async def post(self, service, path=None):
        await self.forward(service, path)

    @web.authenticated
    @authorized
    async def put(self, service, path=None):
        await self.forward(service, path)

    @web.authenticated
    @authorized
    async def patch(self, service, path=None):
        await self.forward(service, path)

    @web.authenticated
    @authorized
    async def delete(self, service, path=None):
        await self.forward(service, path)


class AssignmentHandler(LearnhubHandler):
    """``POST learnhub/api/assignments/{course}/{assignment}/fetch|submit|check``."""

    @web.authenticated
    @authorized
    async def post(self, course, assignment, action):
        if action == "fetch":
            result = await self.assignments.fetch(course, assignment)
            if isinstance(result, Relayed):
                return self.relay(result)
            return self.write_json(result)
        if action == "submit":
            return self.relay(await self.assignments.submit(course, assignment))
        body = self.json_body()
        if not isinstance(body, dict):
            raise BridgeError(422, "Send {\"path\": \"<course>/<assignment>/<notebook>.ipynb\"}.", {"field": "path"})
        self.relay(await self.assignments.check(course, assignment, body.get("path")))


class OpenHandler(JupyterHandler):
    """``GET learnhub/open/{course}[/{assignment}]``: a page address to arrive at (the LTI launch
    sends people here through the hub's ``user-redirect``): the course's folder is made, the
    assignment fetched when it is not here yet, then JupyterLab opens there. A GET that writes
    into the server's files, so the caller must be allowed to write them; what a cross-site link
    can make happen is what the person may do anyway (fetch an assignment released to them)."""

    auth_resource = "contents"

    @web.authenticated
    async def get(self, course, assignment=None):
        if not await ensure_async(self.authorizer.is_authorized(self, self.current_user, "write", "contents")):
            raise web.HTTPError(403)
        assignments = self.settings["learnhub_assignments"]
        try:
            path = await assignments.open(course, assignment)
        except BridgeError as exc:
            raise web.HTTPError(exc.status, exc.message)
        self.redirect(url_path_join(self.base_url, "lab", "tree", url_escape(path)))


class StreamHandler(WebSocketMixin, websocket.WebSocketHandler, JupyterHandler):
    """``WS learnhub/api/stream``: the services' live events, multiplexed (see :mod:`.stream`)."""

    auth_resource = AUTH_RESOURCE
    mux = None

    def set_default_headers(self):
        """No JupyterHandler headers on a WebSocket (as jupyter_server's own WebSocket handlers)."""

    async def pre_get(self):
        if not await ensure_async(self.authorizer.is_authorized(self, self.current_user, "read", AUTH_RESOURCE)):
            raise web.HTTPError(403)

    @ws_authenticated
    async def get(self, *args, **kwargs):
        await self.pre_get()
        await super().get(*args, **kwargs)

    def open(self, *args, **kwargs):
        super().open(*args, **kwargs)  # WebSocketMixin: keep-alive pings
        from .stream import StreamMux

        self.mux = StreamMux(self.settings["learnhub_bridge"], self.send_json, self.log)

    def on_message(self, message):
        self.mux.handle(message)

    def on_close(self):
        if self.mux is not None:
            self.mux.close()

    def send_json(self, payload: dict) -> None:
        try:
            self.write_message(json.dumps(payload))
        except websocket.WebSocketClosedError:
            if self.mux is not None:
                self.mux.close()


def handlers() -> list[tuple]:
    """Routes relative to the server's base URL."""
    names = r"(?P<course>[^/]+)/(?P<assignment>[^/]+)"
    return [
        (r"learnhub/api/context", ContextHandler),
        (r"learnhub/api/limits", LimitsHandler),
        (r"learnhub/api/services/(?P<service>[^/]+)(?:/(?P<path>.*))?", ServiceHandler),
        (rf"learnhub/api/assignments/{names}/(?P<action>fetch|submit|check)", AssignmentHandler),
        (r"learnhub/api/stream", StreamHandler),
        (r"learnhub/open/(?P<course>[^/]+)(?:/(?P<assignment>[^/]+))?", OpenHandler),
    ]
