"""The service kit: what every learnhub hub service is made of.

A learnhub service is a tornado application behind the hub's proxy at
``/services/<name>/``. This module gives each one, in small mixins in the
manner of ``jupyterhub.services.auth``:

* :class:`RequestIdMixin` – a request id per request (``X-Request-Id``), in every log line;
* :class:`JSONErrorMixin` – errors as ``{"error": {"status", "message", "details"}}``;
* :class:`APIHandler` – HubAuth/HubOAuth authentication (token or browser cookie)
  required before any handler method runs: 401 without credentials, 403 without
  access to the service; JSON in and out;
* :class:`HealthHandler`, :class:`MetricsHandler`, :class:`OpenAPIHandler`,
  :class:`WhoAmIHandler` – the endpoints every service has;
* :class:`ServiceApp` – a traitlets ``Application`` that builds and runs the
  tornado application from the environment JupyterHub gives a managed service
  (``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_API_TOKEN``, ...) or from flags when
  the service runs on its own.

Services declare their routes with :meth:`ServiceApp.api_handlers` and describe
them in :meth:`ServiceApp.openapi_paths`; a test checks both agree.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import uuid
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
    UserNotAllowed,
)
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy.engine import Engine
from tornado import web, websocket
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from traitlets import Dict, Integer, Unicode, default
from traitlets.config import Application

from . import __version__, course_roles
from . import db as lhdb
from .hubapi import APIClientError, HubAPI, PeerUnavailable, ServiceAPI, default_services_url

JSON_TYPE = "application/json; charset=UTF-8"


class APIError(web.HTTPError):
    """An error for the caller: status, a message saying what to fix, and details."""

    def __init__(self, status: int, message: str, details: dict | None = None, headers: dict | None = None):
        super().__init__(status, message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class RequestIdMixin:
    """Tag each request with an id: the caller's ``X-Request-Id`` if sane, else a new one."""

    _request_id_pattern = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

    @property
    def request_id(self) -> str:
        if not hasattr(self, "_request_id"):
            given = self.request.headers.get("X-Request-Id", "")
            self._request_id = given if self._request_id_pattern.match(given) else uuid.uuid4().hex
        return self._request_id

    def set_default_headers(self):
        super().set_default_headers()
        self.set_header("X-Request-Id", self.request_id)


class JSONErrorMixin:
    """Write every error as the JSON body the API conventions define."""

    def write_error(self, status_code: int, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._reason
        details: dict = {}
        if isinstance(exc, APIError):
            message, details = exc.message, exc.details
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        if status_code >= 500 and not isinstance(exc, APIError):
            # Never leak internals: the log has the traceback, the caller gets the request id.
            message = "Internal error; quote the request id when reporting it."
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps({"error": {"status": status_code, "message": message,
                                          "details": details, "request_id": self.request_id}}))


class BaseHandler(RequestIdMixin, JSONErrorMixin, web.RequestHandler):
    """Base of every learnhub handler: request ids and JSON errors, nothing else."""

    @property
    def service(self) -> "ServiceApp":
        return self.settings["learnhub_service"]

    @property
    def engine(self) -> Engine:
        return self.service.engine

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", JSON_TYPE)
        self.finish(json.dumps(payload, default=str))


class ServiceHubAuth(HubOAuthenticated):
    """Use the service's own HubOAuth (``settings["hub_auth"]``), not the process-wide singleton.

    The singleton is configured from ``JUPYTERHUB_*`` environment variables only, so a service
    given its hub URL and token on the command line would ask the wrong hub.
    """

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @hub_auth.setter
    def hub_auth(self, _value):
        raise AttributeError("hub_auth comes from the application settings")


class OAuthCallbackHandler(ServiceHubAuth, HubOAuthCallbackHandler):
    """HubOAuth's login callback, with the service's own HubOAuth."""


class NotFoundHandler(BaseHandler):
    """Any path the service does not know: a JSON 404, like every other error."""

    def prepare(self):
        raise APIError(404, f"No such resource: {self.request.path}")


class AuthenticatedMixin(ServiceHubAuth):
    """Requests that only run for an authenticated user of the hub.

    Authentication happens in :meth:`prepare`, asynchronously, for every method:
    a request without valid credentials gets 401, one whose token may not use this
    service (``access:services!service=<name>``) gets 403, and neither sees data.
    """

    def check_xsrf_cookie(self):
        # Token-authenticated requests need no XSRF check; cookie ones get HubOAuth's.
        if getattr(self, "_token_authenticated", False):
            return
        return super().check_xsrf_cookie()

    async def prepare(self):
        model = await self.hub_auth.get_user(self, sync=False)
        if not model:
            raise APIError(401, "Authentication required: send 'Authorization: token <JupyterHub token>' "
                                "or log in to the hub.")
        try:
            self._hub_auth_user_cache = self.check_hub_user(model)
        except UserNotAllowed:
            raise APIError(403, f"{model.get('kind', 'user')} {model.get('name')} may not use the "
                                f"{self.service.service_name} service.")
        if self.request.method not in ("GET", "HEAD", "OPTIONS"):
            self.check_xsrf_cookie()

    def get_login_url(self):
        raise APIError(401, "Authentication required.")

    @property
    def current_user_name(self) -> str:
        return self.current_user["name"]

    def has_scope(self, scope: str) -> bool:
        return self.hub_auth.check_scopes({scope}, self.current_user) != set()

    @property
    def is_admin(self) -> bool:
        return bool(self.current_user.get("admin"))

    async def course_role(self, course_id: str) -> str | None:
        """The caller's role in a course — "instructor", "ta", "learner" or None — from the
        hub groups ``course-<id>-instructors|-tas|-learners`` (admins count as instructors).

        The user model HubAuth caches may predate an enrollment, so when it shows no role
        the hub is asked again with the service's own token before access is refused.
        """
        if self.is_admin:
            return course_roles.INSTRUCTOR
        role = course_roles.role_in(self.current_user.get("groups", []), course_id)
        if role is None and self.current_user.get("kind", "user") == "user":
            groups = await self.service.fetch_user_groups(self.current_user_name)
            role = course_roles.role_in(groups, course_id)
        return role

    async def require_course_role(self, course_id: str, *roles: str) -> str:
        role = await self.course_role(course_id)
        if role not in roles:
            raise APIError(403, f"This needs the role {' or '.join(roles)} in course {course_id!r}.",
                           {"course": course_id, "your_role": role})
        return role



class APIHandler(AuthenticatedMixin, BaseHandler):
    """A JSON API handler: authenticated (see :class:`AuthenticatedMixin`), JSON in and out."""

    async def audit(self, action: str, *, target: str | None = None, course_id: str | None = None,
                    details: dict | None = None) -> None:
        """Append to the audit log (:mod:`learnhub.audit`) what the caller just did, with the address
        it came from (the proxy's X-Forwarded-For: services run with ``xheaders``). Called after the
        action succeeded, so that a refused request leaves no entry."""
        from . import audit

        actor = self.current_user_name
        kind = self.current_user.get("kind", "user")
        kind = "service" if kind == "service" else "user"
        ip, source = self.request.remote_ip, self.service.service_name

        def write():
            with lhdb.session_scope(self.service.session_factory) as session:
                audit.record(session, actor, action, target=target, course_id=course_id, details=details,
                             ip=ip, source=source, actor_kind=kind)

        await IOLoop.current().run_in_executor(None, write)

    def get_json_body(self) -> Any:
        if not self.request.body:
            raise APIError(400, "Request body is empty; send a JSON document.")
        try:
            return json.loads(self.request.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise APIError(400, f"Request body is not valid JSON: {exc}")


class HealthHandler(BaseHandler):
    """``GET api/health``: open to all, answers 503 when the database does not."""

    async def get(self):
        payload = {"status": "ok", "service": self.service.service_name, "version": __version__,
                   "database": "ok"}
        try:
            await asyncio.wait_for(IOLoop.current().run_in_executor(None, lhdb.ping, self.engine), 5)
        except Exception as exc:  # any failure to answer means unhealthy
            self.service.log.warning("health: database check failed: %s", exc)
            payload.update(status="unavailable", database="unreachable")
            return self.write_json(payload, 503)
        self.write_json(payload)


class APIWebSocketHandler(AuthenticatedMixin, RequestIdMixin, JSONErrorMixin, websocket.WebSocketHandler):
    """A WebSocket under the service's prefix, authenticated like the REST API before the upgrade.

    Messages are JSON objects with a ``type`` field (:meth:`send`).
    """

    @property
    def service(self) -> "ServiceApp":
        return self.settings["learnhub_service"]

    def check_xsrf_cookie(self):
        # A WebSocket upgrade is a GET; cross-site use is stopped by check_origin instead.
        return None

    def send(self, message: dict) -> None:
        try:
            self.write_message(json.dumps(message, default=str))
        except websocket.WebSocketClosedError:
            pass


class MetricsHandler(APIHandler):
    """``GET metrics``: Prometheus text, for tokens holding ``read:metrics`` (as the hub's own)."""

    def get(self):
        if not (self.is_admin or self.has_scope("read:metrics")):
            raise APIError(403, "Reading metrics needs the read:metrics scope.")
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.service.metrics_registry))


class OpenAPIHandler(BaseHandler):
    """``GET api/openapi.json``: the service's API description (public, as the API itself is not)."""

    def get(self):
        self.write_json(self.service.openapi())


class WhoAmIHandler(APIHandler):
    """``GET api/whoami``: who the service thinks is asking."""

    def get(self):
        user = self.current_user
        self.write_json({"name": user["name"], "kind": user.get("kind", "user"),
                         "admin": bool(user.get("admin")), "groups": user.get("groups", []),
                         "scopes": sorted(user.get("scopes", []))})


DATA_SCOPE = "custom:learnhub:data:admin"


class DataRightsHandler(APIHandler):
    """The kit's GDPR endpoints, on every service: what the service holds about one person, and their
    erasure. Only for ``custom:learnhub:data:admin`` (admins, and the courses service's coordinator,
    which gathers every service's answer: ``learnhub.data_rights``). The work is the service's own
    :meth:`ServiceApp.data_export` / :meth:`ServiceApp.data_erase`, in a worker thread."""

    def prepare_data_rights(self) -> None:
        if not (self.is_admin or self.has_scope(DATA_SCOPE)):
            raise APIError(403, f"Exporting or erasing a person's data needs the {DATA_SCOPE} scope.")

    @staticmethod
    def checked_user(value) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > 255:
            raise APIError(400, "'user' must name one person (a hub user name).", {"field": "user"})
        return value


class DataExportHandler(DataRightsHandler):
    """``GET api/data/export?user=NAME``."""

    async def get(self):
        self.prepare_data_rights()
        user = self.checked_user(self.get_argument("user", ""))
        result = await IOLoop.current().run_in_executor(None, self.service.data_export, user)
        self.write_json({"service": self.service.service_name, "user": user, "data": result.get("data", {}),
                         "files": result.get("files", [])})


class DataEraseHandler(DataRightsHandler):
    """``POST api/data/erase`` ``{"user": NAME, "pseudonym": "erased-..."}``."""

    async def post(self):
        self.prepare_data_rights()
        body = self.get_json_body()
        if not isinstance(body, dict):
            raise APIError(400, "send {\"user\": NAME, \"pseudonym\": ...}")
        user = self.checked_user(body.get("user"))
        pseudonym = body.get("pseudonym")
        if not isinstance(pseudonym, str) or not re.fullmatch(r"erased-[0-9a-f]{8,32}", pseudonym):
            raise APIError(400, "'pseudonym' must be 'erased-' and 8-32 hex digits (what stays for course "
                                "statistics is kept under it)", {"field": "pseudonym"})
        result = await IOLoop.current().run_in_executor(None, self.service.data_erase, user, pseudonym)
        self.write_json({"service": self.service.service_name, "user": user, **result})


class ServiceHomeHandler(ServiceHubAuth, BaseHandler):
    """``GET /services/<name>/``: a page for people; logs in through the hub (HubOAuth) first."""

    @web.authenticated
    def get(self):
        from html import escape

        name, user = self.service.service_name, self.current_user["name"]
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>learnhub {escape(name)}</title>"
            f"</head><body><main><h1>learnhub {escape(name)} service</h1>"
            f"<p>Signed in as <strong id='user'>{escape(user)}</strong>.</p>"
            f"<p>API description: <a href='api/openapi.json'>api/openapi.json</a></p></main></body></html>"
        )


class ServiceMetrics:
    """Request counters and latencies, in a registry of the service's own."""

    def __init__(self, service_name: str):
        self.registry = CollectorRegistry()
        labels = ["handler", "method", "code"]
        self.requests = Counter("learnhub_requests", "HTTP requests answered", labels,
                                registry=self.registry, namespace="", subsystem="")
        self.latency = Histogram("learnhub_request_duration_seconds", "HTTP request latency",
                                 ["handler", "method"], registry=self.registry)
        self.service_name = service_name

    def observe(self, handler: web.RequestHandler) -> None:
        name = type(handler).__name__
        self.requests.labels(name, handler.request.method, str(handler.get_status())).inc()
        self.latency.labels(name, handler.request.method).observe(handler.request.request_time())


class JSONLogFormatter(logging.Formatter):
    """One JSON object per line, so logs from all services can be searched together."""

    def __init__(self, service_name: str):
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname,
                 "service": self.service_name, "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "learnhub", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class ServiceApp(Application):
    """One learnhub hub service. Subclasses set ``service_name`` and add their handlers."""

    service_name = "service"
    description = "A learnhub hub service"
    version = __version__

    db_url = Unicode(help="learnhub database URL. Env: LEARNHUB_DB_URL.").tag(config=True)

    @default("db_url")
    def _default_db_url(self):
        if os.environ.get("LEARNHUB_DB_URL"):
            return os.environ["LEARNHUB_DB_URL"]
        data_dir = os.environ.get("LEARNHUB_DATA_DIR", "learnhub-data")
        return f"sqlite:///{os.path.abspath(os.path.join(data_dir, 'learnhub.sqlite'))}"

    data_dir = Unicode(help="learnhub data dir. Env: LEARNHUB_DATA_DIR.").tag(config=True)

    @default("data_dir")
    def _default_data_dir(self):
        return os.path.abspath(os.environ.get("LEARNHUB_DATA_DIR", "learnhub-data"))

    url = Unicode(
        help="""Where this service listens, e.g. http://127.0.0.1:10101 (the service's ``url`` in the
        hub's configuration). Env: JUPYTERHUB_SERVICE_URL."""
    ).tag(config=True)

    @default("url")
    def _default_url(self):
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10100")

    prefix = Unicode(help="URL prefix behind the proxy. Env: JUPYTERHUB_SERVICE_PREFIX.").tag(config=True)

    @default("prefix")
    def _default_prefix(self):
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.service_name}/")

    api_token = Unicode(
        help="The service's hub API token (JUPYTERHUB_API_TOKEN, given by the hub for managed services)."
    ).tag(config=True)

    @default("api_token")
    def _default_api_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    hub_api_url = Unicode(help="The hub's API URL. Env: JUPYTERHUB_API_URL.").tag(config=True)

    @default("hub_api_url")
    def _default_hub_api_url(self):
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    services_url = Unicode(
        help="""Where the other learnhub services are, each at <services_url><name>/ (this service calls
        them over HTTP with its own token). Env: LEARNHUB_SERVICES_URL; default: the public URL's
        /services/ (through the hub's proxy)."""
    ).tag(config=True)

    @default("services_url")
    def _default_services_url(self):
        return default_services_url()

    tornado_settings = Dict(help="Extra tornado Application settings.").tag(config=True)

    shutdown_grace_seconds = Integer(5, help="How long open requests get to finish on SIGTERM.").tag(config=True)

    aliases = {"url": "ServiceApp.url", "api-token": "ServiceApp.api_token",
               "hub-api-url": "ServiceApp.hub_api_url", "db-url": "ServiceApp.db_url",
               "prefix": "ServiceApp.prefix"}

    # -- what subclasses provide -------------------------------------------------------------

    def api_handlers(self) -> list[tuple]:
        """The service's own routes, relative to the prefix: ``[(r"api/things", Handler, kwargs?)]``."""
        return []

    def openapi_paths(self) -> dict:
        """OpenAPI ``paths`` for :meth:`api_handlers`, keyed like ``/api/things``."""
        return {}

    def data_export(self, user: str) -> dict:
        """Everything this service holds about ``user`` (blocking; a worker thread runs it):
        ``{"data": {name: rows}, "files": [{"path", "content_b64"}]}``. Services that hold personal
        data override it (``GET api/data/export``)."""
        return {"data": {}, "files": []}

    def data_erase(self, user: str, pseudonym: str) -> dict:
        """Erase ``user`` from this service; what must stay for course statistics is kept under
        ``pseudonym``. Returns ``{"erased": {table: rows}, "pseudonymised": {table: rows}}``;
        idempotent (a second call finds nothing)."""
        return {"erased": {}, "pseudonymised": {}}

    # -- the common parts --------------------------------------------------------------------

    def common_handlers(self) -> list[tuple]:
        return [
            (r"", ServiceHomeHandler),
            (r"api/health", HealthHandler),
            (r"api/openapi.json", OpenAPIHandler),
            (r"api/whoami", WhoAmIHandler),
            (r"metrics", MetricsHandler),
            (r"oauth_callback", OAuthCallbackHandler),
            (r"api/data/export", DataExportHandler),
            (r"api/data/erase", DataEraseHandler),
        ]

    def common_openapi_paths(self) -> dict:
        error = {"$ref": "#/components/responses/Error"}
        return {
            "/": {"get": {"summary": "A page for people (HubOAuth browser login)",
                          "responses": {"200": {"description": "HTML"},
                                        "302": {"description": "to the hub's login"}}}},
            "/api/health": {"get": {"summary": "Liveness and database check", "security": [],
                                    "responses": {"200": {"description": "healthy"},
                                                  "503": {"description": "database unreachable"}}}},
            "/api/openapi.json": {"get": {"summary": "This description", "security": [],
                                          "responses": {"200": {"description": "OpenAPI 3 document"}}}},
            "/api/whoami": {"get": {"summary": "The authenticated caller",
                                    "responses": {"200": {"description": "name, admin, groups, scopes"},
                                                  "401": error, "403": error}}},
            "/metrics": {"get": {"summary": "Prometheus metrics (needs read:metrics)",
                                 "responses": {"200": {"description": "Prometheus text format"},
                                               "401": error, "403": error}}},
            "/oauth_callback": {"get": {"summary": "HubOAuth login callback", "security": [],
                                        "responses": {"302": {"description": "back to the page"}}}},
            "/api/data/export": {"get": {
                "summary": f"Everything this service holds about one person (GDPR; needs {DATA_SCOPE})",
                "x-learnhub-scopes": [DATA_SCOPE],
                "parameters": [{"name": "user", "in": "query", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{service, user, data: {name: rows}, files: [{path, content_b64}]}"},
                              "400": error, "401": error, "403": error}}},
            "/api/data/erase": {"post": {
                "summary": f"Erase one person from this service, pseudonymising what course statistics keep "
                           f"(GDPR; needs {DATA_SCOPE})",
                "x-learnhub-scopes": [DATA_SCOPE],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["user", "pseudonym"],
                    "properties": {"user": {"type": "string"},
                                   "pseudonym": {"type": "string", "pattern": "^erased-[0-9a-f]{8,32}$"}}}}}},
                "responses": {"200": {"description": "{service, user, erased: {table: rows}, pseudonymised: {...}}"},
                              "400": error, "401": error, "403": error}}},
        }

    def openapi(self) -> dict:
        return {
            "openapi": "3.0.3",
            "info": {"title": f"learnhub {self.service_name} service", "version": __version__},
            "servers": [{"url": self.prefix.rstrip("/")}],
            "security": [{"token": []}, {"hubCookie": []}],
            "components": {
                "securitySchemes": {
                    "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                              "description": "'token <JupyterHub API token>'"},
                    "hubCookie": {"type": "apiKey", "in": "cookie",
                                  "name": f"jupyterhub-services-{self.service_name}"},
                },
                "responses": {"Error": {"description": "error", "content": {"application/json": {
                    "schema": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                        "status": {"type": "integer"}, "message": {"type": "string"},
                        "details": {"type": "object"}}}}}}}}},
            },
            "paths": {**self.common_openapi_paths(), **self.openapi_paths()},
        }

    def routes(self) -> list[tuple]:
        prefix = "/" + self.prefix.strip("/") + "/"
        routes = []
        for spec in self.common_handlers() + self.api_handlers():
            pattern, handler, *rest = spec
            routes.append((prefix + pattern, handler, *rest))
        return routes

    def init_logging(self) -> None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JSONLogFormatter(self.service_name))
        for name in ("learnhub", "tornado.access", "tornado.application", "tornado.general", "JupyterHub"):
            logger = logging.getLogger(name)
            logger.handlers[:] = [handler]
            logger.setLevel(logging.INFO)
            logger.propagate = False
        self.log = logging.getLogger(f"learnhub.{self.service_name}")

    def log_request(self, handler: web.RequestHandler) -> None:
        self.metrics.observe(handler)
        status = handler.get_status()
        user = getattr(handler, "_hub_auth_user_cache", None) or {}
        level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
        self.log.log(level, "%s %s %s", handler.request.method, handler.request.path, status, extra={
            "learnhub": {"request_id": getattr(handler, "request_id", None),
                         "method": handler.request.method, "path": handler.request.path,
                         "status": status, "duration_ms": round(1000 * handler.request.request_time(), 2),
                         "user": user.get("name")}})

    async def fetch_user_groups(self, username: str) -> list[str]:
        """A user's hub groups, fresh from the hub API (the service holds read:users:groups);
        [] when the hub cannot say (the caller then sees no course role: refused, never let in)."""
        try:
            user = await self.hub_api.user(username)
        except (PeerUnavailable, APIClientError) as exc:
            self.log.warning("could not read %s's groups from the hub: %s", username, exc)
            return []
        return list((user or {}).get("groups", []))

    def init_db(self) -> None:
        self.engine = lhdb.make_engine(self.db_url)
        self.session_factory = lhdb.make_session_factory(self.engine)

    def init_hub_auth(self) -> None:
        self.hub_api = HubAPI(self.hub_api_url, self.api_token)
        self.hub_auth = HubOAuth(
            api_token=self.api_token,
            api_url=self.hub_api_url,
            base_url=self.prefix,
            oauth_client_id=os.environ.get("JUPYTERHUB_CLIENT_ID", f"service-{self.service_name}"),
            # Explicit, so that a service run on its own checks the same scope as a hub-managed one.
            access_scopes={f"access:services!service={self.service_name}"},
            cache_max_age=60,
        )

    def make_app(self) -> web.Application:
        settings = dict(
            learnhub_service=self,
            hub_auth=self.hub_auth,
            cookie_secret=os.urandom(32),
            log_function=self.log_request,
            xsrf_cookies=False,
            default_handler_class=NotFoundHandler,
        )
        if os.environ.get("LEARNHUB_PUBLIC_URL", "").startswith("https://"):
            # HubOAuth marks its own cookies Secure on HTTPS; the _xsrf cookie it sets takes these.
            settings["xsrf_cookie_kwargs"] = {"secure": True}
        settings.update(self.tornado_settings)
        return web.Application(self.routes(), **settings)

    def load_learnhub_config(self) -> None:
        """Load ``learnhub_config.py`` as the hub does (the data dir, the working directory, or
        ``$LEARNHUB_CONFIG``), so that one file configures the hub and every service
        (``c.NotificationsService.channel_classes``, ``c.SMTPChannel.host``, ...). Options given on
        the command line still win."""
        from .config import config_search_path

        for path in config_search_path(self.data_dir):
            if path.is_file():
                self.load_config_file(path.name, path=str(path.parent))
                self.config_file_loaded = str(path)
                return
        self.config_file_loaded = None

    def service_api(self, name: str) -> ServiceAPI:
        """A client of another learnhub service, with this service's own token."""
        return ServiceAPI(name, self.api_token, self.services_url)

    def initialize(self, argv=None):
        super().initialize(argv)
        self.load_learnhub_config()
        self.init_logging()
        if self.config_file_loaded:
            self.log.info("loaded %s", self.config_file_loaded)
        self.metrics = ServiceMetrics(self.service_name)
        self.metrics_registry = self.metrics.registry
        self.init_db()
        self.init_hub_auth()

    async def serve(self) -> None:
        parsed = urlparse(self.url)
        app = self.make_app()
        server = HTTPServer(app, xheaders=True)
        server.listen(parsed.port or 80, parsed.hostname or "127.0.0.1")
        self.log.info("learnhub %s service listening on %s at %s", self.service_name, self.url, self.prefix)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.on_start()
        watchdog = asyncio.create_task(self._stop_when_orphaned(stop))
        await stop.wait()
        watchdog.cancel()
        self.log.info("stopping")
        server.stop()
        await self.on_stop()
        try:
            await asyncio.wait_for(server.close_all_connections(), self.shutdown_grace_seconds)
        except asyncio.TimeoutError:
            pass
        self.engine.dispose()

    async def _stop_when_orphaned(self, stop: asyncio.Event) -> None:
        # A hub that dies without stopping its managed services (it does when it fails to
        # start) leaves them to init: a service whose parent changed stops itself.
        parent = os.getppid()
        if parent <= 1:
            return
        while not stop.is_set():
            await asyncio.sleep(2)
            if os.getppid() != parent:
                self.log.warning("the process that started this service is gone; stopping")
                stop.set()

    async def on_start(self) -> None:
        """Background work a service starts with its server (workers, schedulers)."""

    async def on_stop(self) -> None:
        """Stop what :meth:`on_start` started."""

    def start(self):
        asyncio.run(self.serve())


def load_service_class(name: str) -> type[ServiceApp]:
    """The service class registered under ``name`` in the ``learnhub.services`` entry points."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="learnhub.services"):
        if entry.name == name:
            return entry.load()
    known = sorted(entry.name for entry in entry_points(group="learnhub.services"))
    raise KeyError(f"unknown learnhub service {name!r}; known: {', '.join(known)}")
