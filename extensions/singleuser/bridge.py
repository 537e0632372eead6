"""The single-user server's way to learnhub's hub services: its own token, no web framework.

:class:`HubBridge` knows where the hub and the services are and calls them with the server's
``JUPYTERHUB_API_TOKEN`` (scopes ``SERVER_TOKEN_SCOPES`` in ``learnhub/hub.py``: the services
authenticate it as the server's user). The tornado handlers in :mod:`.handlers` only turn HTTP
requests into calls of this class and its answers (:class:`Relayed`, :class:`BridgeError`) into
responses. Nothing the browser sent is passed on but the method, path, query and JSON body: no
cookies, no credentials; the token never leaves this process.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from traitlets import Dict, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from learnhub.course_roles import roles_from_groups

#: The learnhub services the frontend may reach through this server.
SERVICES = ("courses", "feedback", "recommender", "notifications", "analytics")


#: Response headers of a service that mean something to the browser.
RELAYED_HEADERS = ("Retry-After", "X-Request-Id", "Content-Disposition")


class BridgeError(Exception):
    """An answer for the browser that no service gave: status, message, details."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}

    def body(self) -> dict:
        return {"error": {"status": self.status, "message": self.message, "details": self.details}}


class ServiceUnavailable(BridgeError):
    """The service did not answer (refused, timed out, or something that is not the service answered)."""

    def __init__(self, service: str):
        super().__init__(502, f"The {service} service is not answering; the rest of learnhub still works.",
                         {"service": service})


@dataclass
class Relayed:
    """A service's answer, to be passed on verbatim."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)

    def json(self):
        return json.loads(self.body) if self.body else None


def course_roles(groups) -> dict[str, str]:
    """``{course id: role}`` from the user's hub course groups; strongest role wins."""
    return dict(sorted(roles_from_groups(groups).items()))


def relayed_or_unavailable(service: str, status: int, body: bytes, content_type: str,
                           headers: dict | None = None) -> Relayed:
    """What a service answered, or :class:`ServiceUnavailable` when it was not the service answering.

    learnhub services answer JSON (errors included). A non-JSON answer that is not a success — the
    proxy's or the hub's error page, a redirect to the hub because the service is not registered —
    means the service is not there.
    """
    is_json = "json" in (content_type or "").lower()
    if not is_json and not 200 <= status < 300:
        raise ServiceUnavailable(service)
    return Relayed(status, body or b"", content_type or "application/json", dict(headers or {}))


def safe_api_path(path: str) -> str:
    """``path`` (already URL-decoded by the router) re-encoded for the service; refuses dot segments."""
    parts = (path or "").split("/")
    if any(part in (".", "..") for part in parts) or "\\" in path or "\x00" in path:
        raise BridgeError(400, f"The path {path!r} is not allowed (no '.' or '..' segments).", {"path": path})
    return "/".join(quote(part, safe="") for part in parts)


class HubBridge(LoggingConfigurable):
    """Calls the hub and learnhub's services as the server's user."""

    public_url = Unicode(help="The platform's public URL, through which the services are reached. "
                              "Default: $LEARNHUB_PUBLIC_URL, else http://127.0.0.1:8000.").tag(config=True)

    @default("public_url")
    def _default_public_url(self):
        return os.environ.get("LEARNHUB_PUBLIC_URL", "http://127.0.0.1:8000")

    services_url = Unicode(help="Where the services are, each at <services_url><name>/. Default: "
                                "$LEARNHUB_SERVICES_URL, else <public_url>/services/.").tag(config=True)

    @default("services_url")
    def _default_services_url(self):
        return os.environ.get("LEARNHUB_SERVICES_URL") or self.public_url.rstrip("/") + "/services/"

    service_urls = Dict(
        Unicode(),
        help="""Per service, a URL that replaces <services_url><name>/ (e.g. a service run in a container of
        its own). Default: {"courses": $LEARNHUB_COURSES_URL} when that is set, as nbgrader's exchange uses it.""",
    ).tag(config=True)

    @default("service_urls")
    def _default_service_urls(self):
        courses = os.environ.get("LEARNHUB_COURSES_URL")
        return {"courses": courses} if courses else {}

    services = List(Unicode(), list(SERVICES),
                    help="The services the frontend may call through this server; any other name is a 404."
                    ).tag(config=True)

    hub_api_url = Unicode(help="The hub's REST API (for the server's own user model). "
                               "Default: $JUPYTERHUB_API_URL.").tag(config=True)

    @default("hub_api_url")
    def _default_hub_api_url(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    api_token = Unicode(help="The token sent to the hub and the services: the server's own. "
                             "Default: $JUPYTERHUB_API_TOKEN.").tag(config=True)

    @default("api_token")
    def _default_api_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    base_url = Unicode(help="The hub's base URL, for the hub and services prefixes the frontend links to. "
                            "Default: $JUPYTERHUB_BASE_URL, else /.").tag(config=True)

    @default("base_url")
    def _default_base_url(self):
        return os.environ.get("JUPYTERHUB_BASE_URL", "/")

    connect_timeout = Float(10.0, help="Seconds to wait for a connection to the hub or a service.").tag(config=True)
    request_timeout = Float(60.0, help="Seconds to wait for a service's answer to a forwarded request.").tag(config=True)
    upload_timeout = Float(180.0, help="Seconds to wait for fetch, submit and check (files go both ways)."
                           ).tag(config=True)
    reconnect_initial_seconds = Float(1.0, help="First wait before a failed upstream WebSocket is opened again."
                                      ).tag(config=True)
    reconnect_max_seconds = Float(30.0, help="Longest wait between attempts (the wait doubles each time)."
                                  ).tag(config=True)
    websocket_ping_seconds = Float(30.0, help="Ping interval of upstream WebSockets, and how long a pong may take "
                                              "(0: no pings); a service that stops answering is noticed and "
                                              "reconnected.").tag(config=True)
    max_subscriptions = Integer(50, help="At most this many topics on one browser WebSocket.").tag(config=True)

    # -- where things are ---------------------------------------------------------------------

    @property
    def hub_prefix(self) -> str:
        return "/" + (self.base_url.strip("/") + "/hub/").lstrip("/")

    @property
    def services_prefix(self) -> str:
        return "/" + (self.base_url.strip("/") + "/services/").lstrip("/")

    def check_service(self, service: str) -> None:
        if service not in self.services:
            raise BridgeError(404, f"No learnhub service {service!r}; use one of {', '.join(self.services)}.",
                              {"service": service})

    def service_url(self, service: str) -> str:
        url = self.service_urls.get(service) or self.services_url.rstrip("/") + "/" + service + "/"
        return url.rstrip("/") + "/"

    def api_url(self, service: str, path: str, query: str = "") -> str:
        self.check_service(service)
        url = self.service_url(service) + "api/" + safe_api_path(path)
        return f"{url}?{query}" if query else url

    def websocket_url(self, service: str, path: str, query: str = "") -> str:
        url = self.api_url(service, path, query)
        return "ws" + url[len("http"):] if url.startswith("http") else url

    def auth_headers(self) -> dict:
        if not self.api_token:
            raise BridgeError(500, "This server has no hub token (JUPYTERHUB_API_TOKEN); it cannot reach learnhub.")
        return {"Authorization": f"token {self.api_token}"}

    # -- calls -------------------------------------------------------------------------------

    async def _fetch(self, who: str, request: HTTPRequest):
        try:
            return await AsyncHTTPClient().fetch(request, raise_error=False)
        except Exception as exc:  # refused, reset, timed out, DNS: not answering
            self.log.warning("learnhub: %s did not answer %s %s: %s", who, request.method,
                             request.url.split("?")[0], exc)
            raise ServiceUnavailable(who) from exc

    async def request(self, service: str, method: str, path: str, query: str = "", body: bytes | None = None,
                      content_type: str | None = None, timeout: float | None = None) -> Relayed:
        """Forward one request to ``<service>/api/<path>``; the service's answer, verbatim."""
        url = self.api_url(service, path, query)
        headers = {**self.auth_headers(), "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        request = HTTPRequest(url, method=method, headers=headers, body=body, follow_redirects=False,
                              allow_nonstandard_methods=True, connect_timeout=self.connect_timeout,
                              request_timeout=timeout or self.request_timeout)
        response = await self._fetch(service, request)
        if response.code == 599:
            raise ServiceUnavailable(service)
        relayed = {name: response.headers[name] for name in RELAYED_HEADERS if name in response.headers}
        return relayed_or_unavailable(service, response.code, response.body,
                                      response.headers.get("Content-Type", ""), relayed)

    async def upload(self, service: str, path: str, fields: dict[str, str],
                     files: list[tuple[str, bytes]]) -> Relayed:
        """``POST`` a multipart form (``fields`` and ``files`` as the field ``files``), as nbgrader's exchange does."""
        from urllib3 import encode_multipart_formdata

        parts = list(fields.items()) + [("files", (name, data, "application/octet-stream")) for name, data in files]
        body, content_type = encode_multipart_formdata(parts)
        return await self.request(service, "POST", path, body=body, content_type=content_type,
                                  timeout=self.upload_timeout)

    async def hub_user(self) -> dict:
        """The server's user as the hub describes it to the server's token (name, admin, groups)."""
        request = HTTPRequest(self.hub_api_url.rstrip("/") + "/user", headers=self.auth_headers(),
                              connect_timeout=self.connect_timeout, request_timeout=self.request_timeout)
        response = await self._fetch("hub", request)
        if response.code != 200:
            self.log.warning("learnhub: the hub answered %s to GET /user", response.code)
            raise BridgeError(502, f"The hub did not describe this server's user (status {response.code}).",
                              {"service": "hub", "status": response.code})
        return json.loads(response.body)

    async def context(self) -> dict:
        """Who the server's user is and what they are in which course, for the frontend."""
        model = await self.hub_user()
        return {
            "user": model["name"],
            "admin": bool(model.get("admin")),
            "courses": course_roles(model.get("groups")),
            "hub_prefix": self.hub_prefix,
            "services_prefix": self.services_prefix,
            # nbgrader's exchange and the bridge fetch into <course>/<assignment>/ of the contents root.
            "server_root": "",
        }

    def websocket_request(self, service: str, path: str, query: str = "") -> HTTPRequest:
        return HTTPRequest(self.websocket_url(service, path, query), headers=self.auth_headers(),
                           connect_timeout=self.connect_timeout, request_timeout=self.request_timeout)
