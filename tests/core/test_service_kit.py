"""The service kit in-process: routes, OpenAPI, errors, health. No hub is started here;
authentication against a real hub is covered in test_platform.py."""
from __future__ import annotations

import json
import re

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

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
    assert json.loads(health.body)["database"] == "ok"
    assert health.headers["X-Request-Id"]
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
    assert body == {"status": "unavailable", "service": "feedback", "version": body["version"],
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
        await client.fetch(f"{base}/api/no-such-thing")
    assert caught.value.code == 404
    assert json.loads(caught.value.response.body)["error"]["status"] == 404


async def test_a_hub_that_is_down_is_not_a_login(serve, db_url):
    """With a token but no hub to check it against, the caller gets an error, not access."""
    base = await serve(make_service("notifications", db_url))
    # Not hex, so it cannot turn up by chance in the answer's random request id.
    token = "never-echo-this-token-xyz"
    with pytest.raises(HTTPClientError) as caught:
        await AsyncHTTPClient().fetch(f"{base}/api/whoami", headers={"Authorization": f"token {token}"})
    assert caught.value.code in (401, 500, 502, 503)
    assert token not in caught.value.response.body.decode()
