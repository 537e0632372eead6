"""Clients of JupyterHub's REST API and of learnhub's services, with one token each.

:class:`HubAPI` is how learnhub's services (and the CLI) talk to the hub: users, groups, tokens.
:class:`ServiceAPI` is how one learnhub service calls another — ``/services/<name>/api/<path>``
through the hub's proxy, with the calling service's own token, so the called service checks who is
asking exactly as it checks a person (``docs/architecture.md``: services talk over HTTP or the event
log, never through each other's tables).

Both have an async form (tornado's client: services run on tornado's loop) and a blocking one
(``requests``: engines that run in worker threads). A refusal is :class:`APIClientError` with the
status and the server's message; a peer that does not answer is :class:`PeerUnavailable`.
"""
from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote, urlencode

JSON_TYPE = "application/json"


class PeerUnavailable(Exception):
    """The hub or service did not answer (refused, timed out, DNS, a proxy's error page)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url} is not answering: {reason}")
        self.url, self.reason = url, reason


class APIClientError(Exception):
    """The hub or service answered, and said no: ``status`` and its ``message``."""

    def __init__(self, status: int, message: str, url: str, details: dict | None = None):
        super().__init__(f"{status} from {url}: {message}")
        self.status, self.message, self.url, self.details = status, message, url, details or {}


def _message(body: bytes) -> tuple[str, dict]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return (body or b"")[:300].decode("utf-8", "replace"), {}
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):  # learnhub's services
        return str(error.get("message", "")), error.get("details") or {}
    if isinstance(payload, dict) and "message" in payload:  # JupyterHub
        return str(payload["message"]), {}
    return str(payload)[:300], {}


class _Client:
    """Base URL, token and timeouts; the request in both forms."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def url(self, path: str, params: dict | None = None) -> str:
        url = f"{self.base_url}/{path.lstrip('/')}"
        return f"{url}?{urlencode(params, doseq=True)}" if params else url

    def _headers(self, content_type: str | None = JSON_TYPE) -> dict:
        headers = {"Authorization": f"token {self.token}"}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    @staticmethod
    def _answer(url: str, status: int, body: bytes, content_type: str) -> Any:
        if 300 <= status < 400:
            # Never followed, and not an empty answer either: the APIs do not redirect, the hub does
            # (to its login page, or a path the proxy has no route for yet to /hub/...).
            raise PeerUnavailable(url, f"HTTP {status}, a redirect: not the API's answer")
        if status >= 400:
            if "json" not in (content_type or ""):
                # learnhub's services and the hub answer errors in JSON: an HTML page is the proxy's
                # or the hub's own (a service not started yet, or not deployed), not the API's answer.
                raise PeerUnavailable(url, f"HTTP {status} from something that is not the API")
            message, details = _message(body)
            raise APIClientError(status, message, url, details)
        if not body:
            return None
        if "json" not in (content_type or ""):
            # A redirect to a login page or a proxy's HTML: not the API we meant to call.
            raise PeerUnavailable(url, f"answered {content_type or 'no content type'}, not JSON")
        return json.loads(body)

    async def request(self, method: str, path: str, body: Any = None, *, params: dict | None = None,
                      raw_body: bytes | None = None, content_type: str | None = JSON_TYPE) -> Any:
        """Call the API (async). JSON ``body`` or ``raw_body`` (e.g. multipart, with its content type)."""
        from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

        url = self.url(path, params)
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        request = HTTPRequest(url, method=method, headers=self._headers(content_type if data is not None else None),
                              body=data, allow_nonstandard_methods=True, follow_redirects=False,
                              connect_timeout=self.timeout, request_timeout=self.timeout)
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise PeerUnavailable(url, str(exc)) from exc
        if response.code == 599:  # tornado's "no answer": timeout or connection error
            raise PeerUnavailable(url, str(response.error))
        return self._answer(url, response.code, response.body, response.headers.get("Content-Type", ""))

    def request_sync(self, method: str, path: str, body: Any = None, *, params: dict | None = None,
                     files: list | None = None, data: dict | None = None) -> Any:
        """Call the API (blocking). JSON ``body``, or multipart ``files``/``data`` as ``requests`` takes them."""
        import requests

        url = self.url(path, params)
        kwargs: dict = {"headers": self._headers(None), "timeout": self.timeout, "allow_redirects": False}
        if files is not None or data is not None:
            kwargs.update(files=files, data=data)
        elif body is not None:
            kwargs["json"] = body
        try:
            response = requests.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise PeerUnavailable(url, str(exc)) from exc
        return self._answer(url, response.status_code, response.content, response.headers.get("Content-Type", ""))


class HubAPI(_Client):
    """JupyterHub's REST API (``.../hub/api``). Defaults: ``$JUPYTERHUB_API_URL`` and ``$JUPYTERHUB_API_TOKEN``."""

    def __init__(self, api_url: str | None = None, token: str | None = None, timeout: float = 10.0):
        super().__init__(api_url or os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"),
                         token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", ""), timeout)

    async def user(self, name: str) -> dict | None:
        """A user's model (with ``groups``), or None when there is no such user."""
        try:
            return await self.request("GET", f"users/{quote(name, safe='')}")
        except APIClientError as exc:
            if exc.status == 404:
                return None
            raise

    async def group_members(self, name: str) -> list[str] | None:
        """The members of a group, or None when there is no such group."""
        try:
            group = await self.request("GET", f"groups/{quote(name, safe='')}")
        except APIClientError as exc:
            if exc.status == 404:
                return None
            raise
        return list(group.get("users", []))

    def group_members_sync(self, name: str) -> list[str] | None:
        try:
            group = self.request_sync("GET", f"groups/{quote(name, safe='')}")
        except APIClientError as exc:
            if exc.status == 404:
                return None
            raise
        return list(group.get("users", []))

    async def ensure_group(self, name: str) -> list[str]:
        """The group's members, creating the group when it is missing."""
        members = await self.group_members(name)
        if members is not None:
            return members
        try:
            await self.request("POST", f"groups/{quote(name, safe='')}", {})
        except APIClientError as exc:
            if exc.status != 409:  # created meanwhile by someone else: fine
                raise
        return []

    async def add_group_members(self, name: str, users: list[str]) -> None:
        await self.request("POST", f"groups/{quote(name, safe='')}/users", {"users": users})

    async def remove_group_members(self, name: str, users: list[str]) -> None:
        await self.request("DELETE", f"groups/{quote(name, safe='')}/users", {"users": users})


class ServiceAPI(_Client):
    """One learnhub service's API (``<services_url><name>/api/``), called with a service's own token.

    ``services_url``: where the services are, ``$LEARNHUB_SERVICES_URL``, else
    ``$LEARNHUB_PUBLIC_URL/services/`` (the hub's proxy).
    """

    def __init__(self, name: str, token: str | None = None, services_url: str | None = None,
                 timeout: float = 30.0):
        self.name = name
        base = services_url or default_services_url()
        super().__init__(f"{base.rstrip('/')}/{name}/api",
                         token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", ""), timeout)


def default_services_url() -> str:
    """``$LEARNHUB_SERVICES_URL``, else the public URL's ``/services/``: through the hub's proxy."""
    if os.environ.get("LEARNHUB_SERVICES_URL"):
        return os.environ["LEARNHUB_SERVICES_URL"]
    return os.environ.get("LEARNHUB_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/") + "/services/"


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type: text ``fields`` and ``files`` as
    ``(field name, file name, content)`` — what learnhub's upload endpoints take."""
    import uuid

    boundary = f"learnhub-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"\r\n\r\n'.encode()
                     + str(value).encode() + b"\r\n")
    for field, filename, content in files:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(field)}"; '
                     f'filename="{_quoted(filename)}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
                     + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _quoted(value: str) -> str:
    # Quoted-string escapes, as tornado's parser undoes them; a line break could end the header.
    if "\r" in value or "\n" in value:
        raise ValueError(f"a multipart name cannot hold a line break: {value!r}")
    return value.replace("\\", "\\\\").replace('"', '\\"')
