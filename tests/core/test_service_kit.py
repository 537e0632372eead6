"""The service kit in-process: routes, OpenAPI, errors, health. No hub is started here;
authentication against a real hub is covered in tests/core/test_platform.py."""
from __future__ import annotations

import json
import re

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from learnhub import __version__
from learnhub.config import SERVICE_NAMES
from learnhub.service import load_service_class


def make_service(name: str, db_url: str):
    cls = load_service_class(name)
    app = cls(db_url=db_url, api_token="unused-in-these-tests",
              hub_api_url="http://127.0.0.1:9/hub/api")  # nothing listens on port 9
    app.initialize([])
    return app


@pytest.fixture
async def serve():
    servers = []

    async def start(service):
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(service.make_app())
        server.add_sockets(sockets)
        servers.append((server, service))
        return f"http://127.0.0.1:{sockets[0].getsockname()[1]}{service.prefix.rstrip('/')}"

    yield start
    for server, service in servers:
        server.stop()
        service.engine.dispose()


def _openapi_path_of(pattern: str) -> str:
    path = "/" + pattern
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_openapi_describes_exactly_the_routes(name, db_url):
    service = make_service(name, db_url)
    try:
        routes = {_openapi_path_of(spec[0]) for spec in service.common_handlers() + service.api_handlers()}
        spec = service.openapi()
        assert set(spec["paths"]) == routes
        assert spec["openapi"].startswith("3.")
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                assert operation.get("summary"), f"{method.upper()} {path} has no summary"
                assert operation.get("responses"), f"{method.upper()} {path} has no responses"
    finally:
        service.engine.dispose()


async def test_health_ok_and_openapi_served(serve, db_url):
    base = await serve(make_service("courses", db_url))
    client = AsyncHTTPClient()
    health = await client.fetch(f"{base}/api/health")
    assert json.loads(health.body) == {"status": "ok", "service": "courses", "version": __version__,
                                       "database": "ok"}
    assert re.fullmatch(r"[0-9a-f]{32}", health.headers["X-Request-Id"])  # a new id: the caller sent none
    openapi = json.loads((await client.fetch(f"{base}/api/openapi.json")).body)
    assert "/api/health" in openapi["paths"]


async def test_health_is_503_when_the_database_is_unreachable(serve, tmp_path):
    # A PostgreSQL URL on a port where nothing listens: the check must fail, not hang.
    service = make_service("feedback", "postgresql://nobody@127.0.0.1:9/none")
    base = await serve(service)
    with pytest.raises(HTTPClientError) as caught:
        await AsyncHTTPClient().fetch(f"{base}/api/health")
    assert caught.value.code == 503
    body = json.loads(caught.value.response.body)
    assert body == {"status": "unavailable", "service": "feedback", "version": __version__,
                    "database": "unreachable"}


async def test_errors_are_json_with_the_request_id(serve, db_url):
    base = await serve(make_service("analytics", db_url))
    client = AsyncHTTPClient()
    with pytest.raises(HTTPClientError) as caught:
        await client.fetch(f"{base}/api/whoami", headers={"X-Request-Id": "trace-me-42"})
    assert caught.value.code == 401
    error = json.loads(caught.value.response.body)["error"]
    assert error["status"] == 401 and error["request_id"] == "trace-me-42"
    assert "token" in error["message"]
    with pytest.raises(HTTPClientError) as caught:
        await client.fetch(f"{base}/api/no-such-thing", headers={"X-Request-Id": "trace-me-43"})
    assert caught.value.code == 404
    assert json.loads(caught.value.response.body) == {"error": {
        "status": 404, "message": "No such resource: /services/analytics/api/no-such-thing", "details": {},
        "request_id": "trace-me-43"}}


async def test_a_hub_that_is_down_is_not_a_login(serve, db_url):
    """With a token but no hub to check it against, the caller gets an error, not access.

    HubAuth raises a 500 when it cannot reach the hub's API ("Failed to connect to Hub API"); the
    kit answers it as every 5xx it did not raise itself: the JSON error shape, a generic message and
    the request id (the log has the reason). Not 401: the token may well be valid."""
    base = await serve(make_service("notifications", db_url))
    token = "never-echo-this-token-xyz"
    with pytest.raises(HTTPClientError) as caught:
        await AsyncHTTPClient().fetch(f"{base}/api/whoami", headers={"Authorization": f"token {token}",
                                                                     "X-Request-Id": "hub-down-1"})
    assert caught.value.code == 500
    assert caught.value.response.headers["Content-Type"] == "application/json; charset=UTF-8"
    body = caught.value.response.body.decode()
    assert token not in body
    assert json.loads(body) == {"error": {"status": 500, "message": "Internal error; quote the request id when "
                                          "reporting it.", "details": {}, "request_id": "hub-down-1"}}
