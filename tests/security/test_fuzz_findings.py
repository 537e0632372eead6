"""What the fuzzer (test_service_fuzzing.py) found, each kept as a regression test (the platform report
the issue saw fail is read over real graded data in test_permission_matrix.py).

The service-level tests run each service in-process (no hub): the hub's token check is replaced by a
table of tokens → user models shaped like the hub's, as tests/analytics/test_analytics_service.py does,
because what is tested is the handler's answer to bad input; the fuzzer itself runs against a real hub.
"""
from __future__ import annotations

import json

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from learnhub.service import load_service_class

ADMIN = {"kind": "user", "name": "root", "admin": True, "groups": [], "scopes": []}
LEARNER = {"kind": "user", "name": "lena", "admin": False, "groups": ["course-c1-learners"], "scopes": []}


@pytest.fixture
async def service_api(db_url):
    """``await service_api("analytics")`` -> call(method, path, who) against the service in-process."""
    started = []

    async def make(name: str):
        service = load_service_class(name)(db_url=db_url, api_token="unused",
                                           hub_api_url="http://127.0.0.1:9/hub/api")
        service.initialize([])
        users = {"admin": ADMIN, "learner": LEARNER}

        async def get_user(handler, sync=True):
            token = handler.request.headers.get("Authorization", "").removeprefix("token ")
            if token in users:
                handler._token_authenticated = True
                return {**users[token], "scopes": [f"access:services!service={name}"]}
            return None

        service.hub_auth.get_user = get_user
        sockets = bind_sockets(0, "127.0.0.1")
        server = HTTPServer(service.make_app())
        server.add_sockets(sockets)
        started.append((server, service))
        base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/services/{name}"

        async def call(method, path, who="admin", body=None):
            return await AsyncHTTPClient().fetch(base + path, method=method, raise_error=False,
                                                 headers={"Authorization": f"token {who}"},
                                                 body=None if body is None else json.dumps(body))
        return call

    yield make
    for server, service in started:
        server.stop()
        service.engine.dispose()


async def test_an_export_named_with_any_text_is_a_safe_download(service_api):
    """Found: a course id with a quote, a control character or non-Latin-1 text made the export's
    ``Content-Disposition`` an unsafe header (500). The name is now plain ASCII plus RFC 6266's
    ``filename*``, so the header can never be broken out of."""
    call = await service_api("analytics")
    response = await call("GET", "/api/courses/%21%03%F2%9A%B5%A3%27%22x/export")
    assert response.code == 200, response.body
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="_____x-events.csv"; filename*=UTF-8\'\'')
    assert "%22" in disposition and "%03" in disposition  # the real name, percent-encoded
    ordinary = await call("GET", "/api/courses/intro-python/export")
    assert 'filename="intro-python-events.csv"' in ordinary.headers["Content-Disposition"]


@pytest.mark.parametrize("query,parameter", [("limit=abc", "limit"), ("limit=0", "limit"), ("limit=201", "limit"),
                                             ("before=yesterday", "before"), ("before=2026-13-40T00:00:00Z", "before")])
async def test_help_requests_refuse_a_bad_page(service_api, query, parameter):
    """Found: ``limit`` that is not a number and ``before`` that is not a time were 500s."""
    call = await service_api("feedback")
    response = await call("GET", f"/api/help-requests?{query}", who="learner")
    assert response.code == 400, response.body
    assert json.loads(response.body)["error"]["details"] == {"parameter": parameter}
    fine = await call("GET", "/api/help-requests?limit=5&before=2026-01-01T00:00:00Z", who="learner")
    assert fine.code == 200 and json.loads(fine.body) == {"items": [], "next": None}


@pytest.mark.parametrize("text", ["%C2%B2", "9" * 30])
async def test_dead_letter_ids_that_are_no_numbers_are_not_found(service_api, text):
    """Found: "²" passed ``str.isdigit`` and then failed ``int`` (500); a 30-digit id overflowed the
    database's BIGINT. Both are no dead letter: 404 to retry, 422 as a page cursor."""
    call = await service_api("notifications")
    retry = await call("POST", f"/api/dead-letters/{text}/retry", body={})
    assert retry.code == 404, retry.body
    page = await call("GET", f"/api/dead-letters?cursor={text}")
    assert page.code == 422, page.body
    assert (await call("POST", "/api/dead-letters/12/retry", body={})).code == 404  # a number, but none such


@pytest.mark.parametrize("user", [0.333, ["ada"], {"name": "ada"}, True])
async def test_an_enrollment_for_a_user_that_is_no_name_is_refused(service_api, user):
    """Found (on PostgreSQL's run, the same on both): ``{"user": 0.33}`` reached the hub lookup of the
    user, which could not put a number into a URL (500). It is the caller's mistake: 422 naming the field."""
    call = await service_api("courses")
    response = await call("POST", "/api/courses/c1/enrollments", body={"user": user, "role": "learner"})
    assert response.code == 422, response.body
    assert json.loads(response.body)["error"]["details"] == {"field": "user"}
