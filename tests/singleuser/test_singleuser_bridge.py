"""The single-user server extension as the frontend meets it: a real platform (``learnhub up`` with the demo
course), a learner's real sandboxed server spawned by the hub, every call through the proxy with the
learner's own token, as JupyterLab makes them (it sends the cookie and XSRF token instead).

One platform for the module (recommender left out: it shows what "a service that is not there" looks like).
"""
from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from hubtools import LearnhubProcess, module_platform, start_server

pytestmark = pytest.mark.hub

COURSE = "intro-python"
ASSIGNMENT = "01-basics"
NOTEBOOK = f"{COURSE}/{ASSIGNMENT}/basics.ipynb"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # No recommender: the bridge's 502 for a service that is not there is tested with it.
    yield from module_platform(tmp_path_factory, "singleuser",
                               services=["courses", "feedback", "analytics", "notifications"], demo=True,
                               extra_env={"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"})


class Person:
    """A hub user with a token; ``lab`` calls their server's ``learnhub/api/``."""

    def __init__(self, hub: LearnhubProcess, name: str):
        response = hub.hub_api("POST", f"/users/{name}")
        assert response.status_code in (201, 409), response.text
        self.hub, self.name, self.token = hub, name, hub.user_token(name)
        self.server = f"{hub.url}/user/{name}/"

    @property
    def home(self):
        return self.hub.data_dir / "users" / self.name

    def lab(self, method: str, path: str, server: str | None = None, **kwargs) -> requests.Response:
        url = (server or self.server) + "learnhub/api/" + path
        headers = {**kwargs.pop("headers", {}), "Authorization": f"token {self.token}"}
        return requests.request(method, url, headers=headers, timeout=180, **kwargs)

    def service(self, method: str, path: str, **kwargs) -> requests.Response:
        """The same call straight to a service, for comparison."""
        return self.hub.api(method, "/services/" + path, token=self.token, **kwargs)

    async def stream(self, server: str | None = None):
        url = (server or self.server).replace("http", "ws", 1) + "learnhub/api/stream"
        return await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {self.token}"}))


@pytest.fixture(scope="module")
def ada(hub):
    person = Person(hub, "ada")
    start_server(hub, "ada")
    return person


def enroll(person: Person) -> None:
    response = person.lab("POST", f"services/courses/courses/{COURSE}/enrollments", json={})
    assert response.status_code in (200, 201), response.text
    assert response.json()["user"] == person.name and response.json()["role"] == "learner"


def fetched(person: Person, assignment: str = ASSIGNMENT) -> None:
    enroll(person)
    response = person.lab("POST", f"assignments/{COURSE}/{assignment}/fetch")
    assert response.status_code in (200, 409), response.text


async def read_until(connection, predicate, timeout: float = 180) -> list[dict]:
    """Messages from the browser socket up to and including the first that satisfies ``predicate``."""
    messages = []
    deadline = time.monotonic() + timeout
    while True:
        raw = await asyncio.wait_for(connection.read_message(), max(0.1, deadline - time.monotonic()))
        assert raw is not None, f"the stream closed; got {messages}"
        messages.append(json.loads(raw))
        if predicate(messages[-1]):
            return messages


def server_token(username: str) -> str:
    """The token the hub gave ``username``'s server (read from the server process, as root can)."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = dict(item.split(b"=", 1) for item in (entry / "environ").read_bytes().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if cmdline[1:3] == [b"-m", b"jupyterhub.singleuser"] and environ.get(b"JUPYTERHUB_USER") == username.encode():
            return environ[b"JUPYTERHUB_API_TOKEN"].decode()
    raise LookupError(f"no server process for {username}")


def test_context_shows_the_course_roles_of_the_servers_user(hub, ada):
    def groups():
        return hub.hub_api("GET", "/users/ada").json()["groups"]

    context = ada.lab("GET", "context")
    assert context.status_code == 200, context.text
    body = context.json()
    assert set(body) == {"user", "admin", "courses", "hub_prefix", "services_prefix", "server_root"}
    assert body["user"] == "ada" and body["admin"] is False
    assert body["hub_prefix"] == "/hub/" and body["services_prefix"] == "/services/" and body["server_root"] == ""
    assert (COURSE in body["courses"]) == (f"course-{COURSE}-learners" in groups())

    enroll(ada)  # through the bridge; the courses service mirrors it into the hub group
    assert ada.lab("GET", "context").json()["courses"][COURSE] == "learner"

    # Several roles in one course: the strongest wins (instructor > ta > learner).
    for group in ("course-su-demo-learners", "course-su-demo-instructors", "course-su-demo-tas"):
        hub.hub_api("POST", f"/groups/{group}")
        assert hub.hub_api("POST", f"/groups/{group}/users", json={"users": ["ada"]}).ok
    # (Other tests of the module may have given ada roles in courses of their own: only these two count.)
    courses = ada.lab("GET", "context").json()["courses"]
    assert (courses[COURSE], courses["su-demo"]) == ("learner", "instructor")
    assert hub.hub_api("DELETE", "/groups/course-su-demo-instructors/users", json={"users": ["ada"]}).ok
    assert ada.lab("GET", "context").json()["courses"]["su-demo"] == "ta"


def test_forwarding_relays_the_services_answers(hub, ada):
    enroll(ada)
    catalogue = ada.lab("GET", "services/courses/courses", params={"q": "python", "limit": "5"})
    assert catalogue.status_code == 200
    assert catalogue.json() == ada.service("GET", "courses/api/courses", params={"q": "python", "limit": "5"}).json()
    assert COURSE in [c["id"] for c in catalogue.json()["items"]]
    nothing = ada.lab("GET", "services/courses/courses", params={"q": "no such words anywhere"})
    assert nothing.json()["items"] == []  # the query string reached the service

    # Errors: the service's status and body, verbatim (the request id is the service's own).
    missing = ada.lab("GET", "services/courses/courses/no-such-course")
    direct = ada.service("GET", "courses/api/courses/no-such-course")
    assert missing.status_code == direct.status_code == 404
    assert dict(missing.json()["error"], request_id=None) == dict(direct.json()["error"], request_id=None)
    assert missing.headers["X-Request-Id"] == missing.json()["error"]["request_id"]
    forbidden = ada.lab("PATCH", f"services/courses/courses/{COURSE}", json={"title": "mine now"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["status"] == 403
    assert ada.lab("DELETE", f"services/courses/courses/{COURSE}/enrollments/admin").status_code == 403
    profile = ada.lab("PUT", "services/courses/profile", json={"goals": "Automate my spreadsheets"})
    assert profile.status_code == 200 and profile.json()["goals"] == "Automate my spreadsheets"
    assert ada.service("GET", "courses/api/profile").json()["goals"] == "Automate my spreadsheets"
    # An empty answer stays empty: ada leaves the course (204), which the context shows, and comes back.
    left = ada.lab("DELETE", f"services/courses/courses/{COURSE}/enrollments/ada")
    assert left.status_code == 204 and left.content == b""
    assert COURSE not in ada.lab("GET", "context").json()["courses"]
    enroll(ada)
    assert ada.lab("GET", "context").json()["courses"][COURSE] == "learner"
    # The feedback, analytics and notifications services answer as ada (the server's token is hers).
    assert ada.lab("GET", "services/notifications/preferences").status_code == 200
    assert ada.lab("GET", "services/feedback/whoami").json()["name"] == "ada"
    assert ada.lab("GET", "services/analytics/platform/report").status_code == 403

    # What the bridge itself refuses.
    unknown = ada.lab("GET", "services/hub/api/users")
    assert unknown.status_code == 404 and unknown.json()["error"]["details"] == {"service": "hub"}
    escape = ada.lab("GET", "services/courses/..%2F..%2F..%2Fhub%2Fapi%2Fuser")
    assert escape.status_code == 400, escape.text
    bad_json = ada.lab("POST", f"services/courses/courses/{COURSE}/enrollments", data="{nope",
                       headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["status"] == 400
    # A service that is not there (not deployed here): 502, and the rest still works.
    absent = ada.lab("GET", "services/recommender/recommendations")
    assert absent.status_code == 502
    assert absent.json() == {"error": {"status": 502, "details": {"service": "recommender"},
                                       "message": "The recommender service is not answering; the rest of learnhub "
                                                  "still works."}}
    assert ada.lab("GET", "context").status_code == 200

    # The server's token never reaches the browser, whatever the answer.
    token = server_token("ada")
    assert token and token != ada.token
    for answer in (catalogue, missing, forbidden, profile, unknown, escape, bad_json, absent, left,
                   ada.lab("GET", "context"), ada.lab("GET", "services/feedback/whoami")):
        assert token not in answer.text and token not in str(answer.headers)


def test_fetch_and_submit_with_nbgrader_in_the_learners_home(hub, ada):
    enroll(ada)
    # This test fetches a first copy: one that another test of the module fetched is taken away first.
    shutil.rmtree(ada.home / COURSE / ASSIGNMENT, ignore_errors=True)
    response = ada.lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/fetch")
    assert response.status_code == 200, response.text
    assert response.json() == {"path": f"{COURSE}/{ASSIGNMENT}", "notebooks": [NOTEBOOK]}
    notebook = ada.home / NOTEBOOK
    nb = nbformat.read(notebook, as_version=4)  # the student version: solutions replaced
    assert "### BEGIN SOLUTION" not in notebook.read_text()
    assert any(cell.metadata.get("nbgrader", {}).get("solution") for cell in nb.cells)
    # The server sees it where JupyterLab's file browser will show it.
    listing = ada.hub.api("GET", f"/user/ada/api/contents/{COURSE}/{ASSIGNMENT}", token=ada.token).json()
    assert [item["path"] for item in listing["content"]] == [NOTEBOOK]

    before = notebook.read_bytes()
    again = ada.lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/fetch")
    assert again.status_code == 409
    assert again.json()["error"]["details"]["path"] == f"{COURSE}/{ASSIGNMENT}"
    assert notebook.read_bytes() == before  # nothing overwritten
    unknown = ada.lab("POST", f"assignments/{COURSE}/no-such-assignment/fetch")
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == 404
    assert not (ada.home / COURSE / "no-such-assignment").exists()
    # An encoded "/" reaches the handler as part of one name, which is not a valid assignment id.
    escape = ada.lab("POST", f"assignments/{COURSE}/..%2F..%2Fescape/fetch")
    assert escape.status_code == 422, escape.text
    assert escape.json()["error"]["details"] == {"field": "assignment"}
    assert not (ada.home.parent / "escape").exists() and not (ada.home / "escape").exists()

    # Submit: nbgrader's file selection (checkpoints stay home), the courses service's answer.
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = "# ada's answer\n" + cell.source
    nbformat.write(nb, notebook)
    checkpoints = ada.home / COURSE / ASSIGNMENT / ".ipynb_checkpoints"
    checkpoints.mkdir(exist_ok=True)
    (checkpoints / "basics-checkpoint.ipynb").write_text(nbformat.writes(nb))
    submitted = ada.lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/submit")
    assert submitted.status_code == 201, submitted.text
    body = submitted.json()
    assert body["user"] == "ada" and body["course_id"] == COURSE and body["assignment_id"] == ASSIGNMENT
    assert [f["path"] for f in body["files"]] == ["basics.ipynb"]
    mine = ada.service("GET", f"courses/api/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions").json()["items"]
    assert body["id"] in [s["id"] for s in mine]
    files = ada.service("GET", f"courses/api/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions/{body['id']}"
                               "/files").json()["files"]
    assert [f["path"] for f in files] == ["basics.ipynb"]
    assert b"# ada's answer" in base64.b64decode(files[0]["content_b64"])

    not_fetched = ada.lab("POST", f"assignments/{COURSE}/02-control-flow/submit")
    assert not_fetched.status_code == 404 and not_fetched.json()["error"]["details"]["path"] == \
        f"{COURSE}/02-control-flow"


def test_check_streams_its_events_to_done(hub, ada):
    fetched(ada)
    accepted = ada.lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/check", json={"path": NOTEBOOK})
    assert accepted.status_code == 202, accepted.text
    assert set(accepted.json()) == {"id", "status"} and accepted.json()["status"] == "queued"
    job = accepted.json()["id"]

    async def follow():
        connection = await ada.stream()
        connection.write_message(json.dumps({"subscribe": "check", "id": job}))
        try:
            return await read_until(connection, lambda m: m.get("closed"))
        finally:
            connection.close()

    messages = asyncio.run(follow())
    assert all(m["topic"] == f"check:{job}" for m in messages), messages
    assert messages[-1] == {"topic": f"check:{job}", "closed": True}
    types = [m["event"]["type"] for m in messages[:-1]]
    assert types[0] == "queued" and types[-1] == "done" and "test" in types, types
    done = messages[-2]["event"]
    assert done["id"] == job and done["kind"] == "check" and done["status"] == "graded" and done["learner"] == "ada"

    # Only notebooks inside the server root; nothing of the sandbox outside it.
    (ada.home / "escape.ipynb").unlink(missing_ok=True)
    os.symlink("/etc/passwd", ada.home / "escape.ipynb")
    for path in ("../../etc/passwd", "/etc/passwd", f"{COURSE}/../../x.ipynb", "escape.ipynb", "", None, 3):
        refused = ada.lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/check", json={"path": path})
        assert refused.status_code == 422, (path, refused.status_code, refused.text)
        assert refused.json()["error"]["status"] == 422
    missing = ada.lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/check", json={"path": f"{COURSE}/nope.ipynb"})
    assert missing.status_code == 404


def test_notifications_and_help_reach_the_learner_through_the_stream(hub, ada):
    enroll(ada)
    ivy = Person(hub, "ivy")
    # The admin makes ivy an instructor of the course, through the courses service.
    made = hub.api("POST", f"/services/courses/api/courses/{COURSE}/enrollments", token=hub.admin_token,
                   json={"user": "ivy", "role": "instructor"})
    assert made.status_code in (200, 201), made.text
    assert "ivy" in hub.hub_api("GET", f"/groups/course-{COURSE}-instructors").json()["users"]

    async def scenario():
        connection = await ada.stream()
        try:
            connection.write_message(json.dumps({"subscribe": "notifications"}))
            connection.write_message(json.dumps({"subscribe": "help"}))
            # Both upstreams are open once each has greeted (notifications: hello, help: subscribed).
            greetings = set()
            await read_until(connection, lambda m: greetings.add(m.get("event", {}).get("type"))
                             or {"hello", "subscribed"} <= greetings, 60)

            announced = ivy.service("POST", f"notifications/api/courses/{COURSE}/announcements",
                                    json={"title": "Welcome to week 1", "body": "Loops start on Monday."})
            assert announced.status_code == 202 and announced.json()["recipients"] >= 1, announced.text
            # (the demo course's release notifications may still be on their way to ada: the
            # notifications service reads the release events on its own schedule; wait for this one)
            notification = (await read_until(connection, lambda m: m.get("topic") == "notifications"
                                             and m.get("event", {}).get("type") == "notification"
                                             and m["event"]["notification"]["type"] == "announcement", 120))[-1]
            assert notification["event"]["notification"]["title"] == "Welcome to week 1"
            assert notification["event"]["notification"]["type"] == "announcement"
            # The same notification is in ada's list, read through the bridge.
            listed = ada.lab("GET", "services/notifications/notifications").json()["items"]
            assert notification["event"]["notification"]["id"] in [n["id"] for n in listed]

            asked = ada.lab("POST", "services/feedback/help-requests",
                            json={"course": COURSE, "assignment": ASSIGNMENT, "question": "Why is x None?"})
            assert asked.status_code == 201, asked.text
            answer = ivy.service("POST", f"feedback/api/help-requests/{asked.json()['id']}/answers",
                                 json={"answer": "Your function has no return."})
            assert answer.status_code == 201, answer.text
            heard = (await read_until(connection, lambda m: m.get("topic") == "help"
                                      and m.get("event", {}).get("type") == "help-answer", 60))[-1]
            assert heard["event"]["request"]["id"] == asked.json()["id"]

            connection.write_message(json.dumps({"unsubscribe": "notifications"}))
            await read_until(connection, lambda m: m == {"topic": "notifications", "closed": True}, 30)
            connection.write_message(json.dumps({"subscribe": "submission", "id": "not-a-job"}))
            refused = await read_until(connection, lambda m: m.get("closed"), 30)
            assert refused[-2]["error"]["status"] == 404 and refused[-1] == {"topic": "submission:not-a-job",
                                                                           "closed": True}
        finally:
            connection.close()

    asyncio.run(scenario())


def test_saving_a_notebook_records_analytics_events(hub, ada):
    fetched(ada)
    path = f"/user/ada/api/contents/{NOTEBOOK}"
    model = ada.hub.api("GET", path, token=ada.token).json()  # opened
    saved = ada.hub.api("PUT", path, token=ada.token, json={"type": "notebook", "format": "json",
                                                            "content": model["content"]})
    assert saved.status_code == 200, saved.text

    deadline = time.monotonic() + 90  # the server sends every 10 s
    verbs = set()
    while time.monotonic() < deadline:
        export = hub.api("GET", f"/services/analytics/api/courses/{COURSE}/export?format=csv", token=hub.admin_token)
        assert export.status_code == 200, export.text
        rows = [row for row in csv.DictReader(io.StringIO(export.text))
                if row["actor"] == "ada" and row["object_id"] == NOTEBOOK]
        verbs = {row["verb"] for row in rows}
        if {"opened", "saved"} <= verbs:
            break
        time.sleep(1)
    assert {"opened", "saved"} <= verbs, (verbs, hub.log_tail())
    context = json.loads(next(row for row in rows if row["verb"] == "saved")["context"])
    assert context["source"] == "singleuser" and context["assignment_id"] == ASSIGNMENT


def test_only_the_servers_owner_gets_in(hub, ada):
    bob = Person(hub, "bob")
    for method, path in (("GET", "context"), ("POST", f"assignments/{COURSE}/{ASSIGNMENT}/fetch"),
                         ("GET", "services/courses/courses"), ("GET", "limits")):
        refused = bob.lab(method, path, server=ada.server)
        assert refused.status_code == 403, (path, refused.status_code)
    anonymous = requests.get(ada.server + "learnhub/api/context", timeout=30, allow_redirects=False)
    # jupyter_server's API handlers refuse an unauthenticated request (403), never redirect to a login.
    assert anonymous.status_code == 403
    # The context names its user as a JSON field; an anonymous answer must carry neither.
    assert '"user"' not in anonymous.text and '"courses"' not in anonymous.text
    # The server's memory limit and OOM-kill count (learnhub/api/limits) are its owner's business too.
    assert ada.lab("GET", "limits").status_code == 200
    anonymous = requests.get(ada.server + "learnhub/api/limits", timeout=30, allow_redirects=False)
    assert anonymous.status_code == 403 and "oom_kills" not in anonymous.text

    async def connect():
        await bob.stream(server=ada.server)

    with pytest.raises(HTTPClientError) as refused:
        asyncio.run(connect())
    assert refused.value.code == 403


def test_arriving_at_a_course_opens_jupyterlab_in_its_folder(hub):
    """``learnhub/open/<course>[/<assignment>]``, where an LMS launch sends a person: the folder is
    made (or the assignment fetched) in their home, then JupyterLab opens there."""
    cy, bob = Person(hub, "cy"), Person(hub, "bob")
    start_server(hub, "cy")
    enroll(cy)

    def arrive(path: str, who: Person | None = cy) -> requests.Response:
        headers = {"Authorization": f"token {who.token}"} if who else {}
        return requests.get(f"{cy.server}learnhub/open/{path}", headers=headers, timeout=180, allow_redirects=False)

    # a new home has no course folder: the arrival makes it
    assert not (cy.home / COURSE).exists()
    landed = arrive(COURSE)
    assert landed.status_code == 302 and landed.headers["Location"] == f"/user/cy/lab/tree/{COURSE}", landed.text
    assert (cy.home / COURSE).is_dir()
    # a released assignment not here yet is fetched, and JupyterLab opens in it
    landed = arrive(f"{COURSE}/02-control-flow")
    assert landed.headers["Location"] == f"/user/cy/lab/tree/{COURSE}/02-control-flow", landed.text
    notebook = cy.home / COURSE / "02-control-flow" / "control_flow.ipynb"
    assert notebook.is_file()
    # arriving again leaves the learner's work as it is
    notebook.write_text(notebook.read_text().replace('"cells": [', '"cells": [ ', 1))
    mine = notebook.read_text()
    assert arrive(f"{COURSE}/02-control-flow").headers["Location"].endswith(f"{COURSE}/02-control-flow")
    assert notebook.read_text() == mine
    # an assignment the course does not have: its course's folder, nothing made for it
    landed = arrive(f"{COURSE}/99-nope")
    assert landed.headers["Location"] == f"/user/cy/lab/tree/{COURSE}" and not (cy.home / COURSE / "99-nope").exists()
    # not a folder name
    assert arrive(".ssh").status_code == 422 and not (cy.home / ".ssh").exists()
    # someone else may not; a stranger is sent to log in first
    assert arrive(COURSE, who=bob).status_code == 403
    anonymous = arrive(COURSE, who=None)
    assert anonymous.status_code == 302 and "/hub/api/oauth2/authorize" in anonymous.headers["Location"]


def test_nbgraders_own_assignments_panel_works_over_the_http_exchange(hub):
    """What nbgrader's JupyterLab Assignments panel calls (its assignment_list server extension, in the
    learner's sandboxed server) lists and fetches through learnhub's exchange, with no shared directory."""
    bea = Person(hub, "bea")
    start_server(hub, "bea")
    enroll(bea)
    headers = {"Authorization": f"token {bea.token}"}
    panel = f"{bea.server}assignments"
    listed = requests.get(panel, params={"course_id": COURSE}, headers=headers, timeout=180)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["success"], body
    released = {a["assignment_id"]: a for a in body["value"]}
    assert released["02-control-flow"]["status"] == "released", released

    fetched_list = requests.post(f"{panel}/fetch", params={"course_id": COURSE, "assignment_id": "02-control-flow"},
                                 headers=headers, timeout=180)
    assert fetched_list.status_code == 200, fetched_list.text
    statuses = {a["assignment_id"]: a["status"] for a in fetched_list.json()["value"]}
    assert statuses["02-control-flow"] == "fetched", statuses
    assert (bea.home / COURSE / "02-control-flow" / "control_flow.ipynb").is_file()
    courses = requests.get(f"{bea.server}courses", headers=headers, timeout=180).json()
    assert courses["success"] and COURSE in courses["value"], courses


def test_nbgraders_formgrader_runs_a_course_over_the_http_exchange(hub, ada):
    """nbgrader's Formgrader in an instructor's own sandboxed server, driven through the HTTP API its
    pages call (``formgrader/api/...``): generate and release an assignment, collect a learner's
    submission, autograde it, generate and release feedback — all through learnhub's exchange, with the
    course directory in the instructor's home and nothing shared on disk with the learner."""
    course = "fg-python"
    created = hub.api("POST", "/services/courses/api/courses", token=hub.admin_token, json={
        "id": course, "title": "Formgrader course", "status": "published", "open_enrollment": True})
    assert created.status_code == 201, created.text
    ivan = Person(hub, "ivan")
    enrolled = hub.api("POST", f"/services/courses/api/courses/{course}/enrollments", token=hub.admin_token,
                       json={"user": "ivan", "role": "instructor"})
    assert enrolled.status_code in (200, 201), enrolled.text
    start_server(hub, "ivan")
    headers = {"Authorization": f"token {ivan.token}"}

    # The instructor lays out an nbgrader course in their home, through Jupyter's contents API.
    def put(path: str, model: dict) -> None:
        response = requests.put(f"{ivan.server}api/contents/{path}", json=model, headers=headers, timeout=60)
        assert response.status_code in (200, 201), (path, response.text)

    put("nbgrader_config.py", {"type": "file", "format": "text",
                               "content": f"c = get_config()\nc.CourseDirectory.course_id = {course!r}\n"})
    for folder in ("source", f"source/{ASSIGNMENT}"):
        put(folder, {"type": "directory"})
    source = nbformat.read(REPO / "courses" / COURSE / "source" / ASSIGNMENT / "basics.ipynb", as_version=4)
    put(f"source/{ASSIGNMENT}/basics.ipynb", {"type": "notebook", "format": "json", "content": source})

    def formgrader(method: str, path: str) -> dict:
        response = requests.request(method, f"{ivan.server}formgrader/api/{path}", headers=headers, timeout=300)
        assert response.status_code == 200, (path, response.status_code, response.text[:2000])
        return response.json()

    def succeeded(method: str, path: str) -> dict:
        result = formgrader(method, path)
        assert result["success"], (path, result.get("error"), result.get("log"))
        return result

    page = requests.get(f"{ivan.server}formgrader", headers=headers, timeout=60)
    assert page.status_code == 200 and "formgrader" in page.text.lower()
    assert ASSIGNMENT in {a["name"] for a in formgrader("GET", "assignments")}
    succeeded("POST", f"assignment/{ASSIGNMENT}/assign")
    succeeded("POST", f"assignment/{ASSIGNMENT}/release")

    # A learner fetches and submits from their own server (the learnhub bridge runs nbgrader's exchange).
    joined = ada.lab("POST", f"services/courses/courses/{course}/enrollments", json={})
    assert joined.status_code in (200, 201), joined.text
    listed = hub.api("GET", f"/services/courses/api/courses/{course}/assignments", token=ada.token)
    assert ASSIGNMENT in {a["id"] for a in listed.json()["items"]}, listed.text
    assert ada.lab("POST", f"assignments/{course}/{ASSIGNMENT}/fetch").status_code == 200
    submitted = ada.lab("POST", f"assignments/{course}/{ASSIGNMENT}/submit")
    assert submitted.status_code == 201 and submitted.json()["attempt"] == 1, submitted.text

    # The instructor collects, autogrades, generates and releases feedback, from the Formgrader.
    succeeded("POST", f"assignment/{ASSIGNMENT}/collect")
    submissions = {s["student"]: s for s in formgrader("GET", f"submissions/{ASSIGNMENT}")}
    assert "ada" in submissions, submissions
    succeeded("POST", f"submission/{ASSIGNMENT}/ada/autograde")
    graded = formgrader("GET", f"submission/{ASSIGNMENT}/ada")
    assert graded["autograded"] and graded["max_score"] > 0, graded
    assert graded["score"] == 0  # the blank release, submitted as fetched
    succeeded("POST", f"assignment/{ASSIGNMENT}/generate_feedback")
    succeeded("POST", f"assignment/{ASSIGNMENT}/release_feedback")

    # The learner fetches their feedback with nbgrader's Assignments panel (its server extension).
    fetched_feedback = requests.post(f"{ada.server}assignments/fetch_feedback",
                                     params={"course_id": course, "assignment_id": ASSIGNMENT},
                                     headers={"Authorization": f"token {ada.token}"}, timeout=180)
    assert fetched_feedback.status_code == 200 and fetched_feedback.json()["success"], fetched_feedback.text
    feedback = list((ada.home / course / ASSIGNMENT / "feedback").glob("*/basics.html"))
    assert len(feedback) == 1, feedback
    assert "basics" in feedback[0].read_text()
    # The course directory, with its gradebook and the learner's collected work, stayed in ivan's home.
    assert (ivan.home / "submitted" / "ada" / ASSIGNMENT / "basics.ipynb").is_file()
    assert not (ada.home / "submitted").exists() and not (ada.home / "gradebook.db").exists()


HOSTILE = '''import json, os
report = {"token": os.environ.get("JUPYTERHUB_API_TOKEN"), "environment": sorted(os.environ)}
for name, path in (("secret", "/home/iris/secret.txt"), ("config", "/home/iris/nbgrader_config.py"),
                   ("gradebook", "/home/iris/gradebook.db"), ("environ", "/proc/self/environ")):
    try:
        with open(path, "rb") as handle:
            report[name] = handle.read(20000).decode("latin-1")
    except Exception as exc:
        report[name] = "refused: " + type(exc).__name__
try:
    with open("/home/iris/pwned.txt", "w") as handle:
        handle.write("written by a learner's notebook")
    report["write"] = "written"
except Exception as exc:
    report["write"] = "refused: " + type(exc).__name__
try:
    report["home"] = os.listdir("/home")
except Exception as exc:
    report["home"] = "refused: " + type(exc).__name__
print("HOSTILE-REPORT " + json.dumps(report))
'''


def test_formgraders_autograde_runs_learner_code_in_a_grading_sandbox(hub, ada, tmp_path):
    """An instructor autograding from Formgrader (nbgrader's autograde in their own server) never runs a
    learner's code in their server: with learnhub's nbgrader config, each notebook is executed by the
    feedback service's grading sandbox and only scored here. A submission that reaches for the
    instructor's token, home files and environment gets none of them and writes nothing into the
    instructor's home; an honest submission scores exactly what nbgrader's own autograde gives it."""
    from learnhub.graders.testing import BASICS_ANSWERS, BASICS_EXPLANATION, nbgrader_autograde, nbgrader_course, \
        nbgrader_scores

    course = "fg-sandbox"
    created = hub.api("POST", "/services/courses/api/courses", token=hub.admin_token, json={
        "id": course, "title": "Sandboxed autograding", "status": "published", "open_enrollment": True})
    assert created.status_code == 201, created.text
    iris = Person(hub, "iris")
    made = hub.api("POST", f"/services/courses/api/courses/{course}/enrollments", token=hub.admin_token,
                   json={"user": "iris", "role": "instructor"})
    assert made.status_code in (200, 201), made.text
    start_server(hub, "iris")
    headers = {"Authorization": f"token {iris.token}"}
    secret = f"iris-private-{os.urandom(8).hex()}"

    def put(path: str, model: dict) -> None:
        response = requests.put(f"{iris.server}api/contents/{path}", json=model, headers=headers, timeout=60)
        assert response.status_code in (200, 201), (path, response.text)

    put("nbgrader_config.py", {"type": "file", "format": "text",
                               "content": f"c = get_config()\nc.CourseDirectory.course_id = {course!r}\n"})
    put("secret.txt", {"type": "file", "format": "text", "content": secret})
    for folder in ("source", f"source/{ASSIGNMENT}"):
        put(folder, {"type": "directory"})
    source = REPO / "courses" / COURSE / "source" / ASSIGNMENT
    put(f"source/{ASSIGNMENT}/basics.ipynb", {"type": "notebook", "format": "json",
                                             "content": nbformat.read(source / "basics.ipynb", as_version=4)})

    def formgrader(method: str, path: str) -> dict:
        response = requests.request(method, f"{iris.server}formgrader/api/{path}", headers=headers, timeout=600)
        assert response.status_code == 200, (path, response.status_code, response.text[:2000])
        return response.json()

    def succeeded(method: str, path: str) -> dict:
        result = formgrader(method, path)
        assert result["success"], (path, result.get("error"), result.get("log"))
        return result

    succeeded("POST", f"assignment/{ASSIGNMENT}/assign")
    succeeded("POST", f"assignment/{ASSIGNMENT}/release")

    def hand_in(person: Person, answers: dict) -> None:
        joined = person.lab("POST", f"services/courses/courses/{course}/enrollments", json={})
        assert joined.status_code in (200, 201), joined.text
        assert person.lab("POST", f"assignments/{course}/{ASSIGNMENT}/fetch").status_code == 200
        path = person.home / course / ASSIGNMENT / "basics.ipynb"
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if gid in answers:
                cell.source = answers[gid]
        nbformat.write(nb, path)
        assert person.lab("POST", f"assignments/{course}/{ASSIGNMENT}/submit").status_code == 201

    right = {gid: answer["right"] for gid, answer in BASICS_ANSWERS.items()}
    right["explain-types"] = BASICS_EXPLANATION
    hand_in(ada, {**right, "variables-code": HOSTILE + right["variables-code"]})
    hal = Person(hub, "hal")
    start_server(hub, "hal")
    hand_in(hal, right)

    succeeded("POST", f"assignment/{ASSIGNMENT}/collect")
    for student in ("ada", "hal"):
        succeeded("POST", f"submission/{ASSIGNMENT}/{student}/autograde")

    # What the learner's code found, from the notebook as nbgrader autograded it (in the instructor's home).
    autograded = nbformat.read(iris.home / "autograded" / "ada" / ASSIGNMENT / "basics.ipynb", as_version=4)
    texts = [out.get("text", "") for cell in autograded.cells for out in cell.get("outputs", [])
             if out.get("output_type") == "stream"]
    reports = [line for text in texts for line in text.splitlines() if line.startswith("HOSTILE-REPORT ")]
    assert len(reports) == 1, texts  # the code ran, once, and said what it saw
    found = json.loads(reports[0][len("HOSTILE-REPORT "):])
    token = server_token("iris")
    assert found["token"] is None and not any(name.startswith("JUPYTERHUB") for name in found["environment"])
    for name in ("secret", "config", "gradebook"):
        assert found[name].startswith("refused: "), (name, found[name][:200])
    assert "JUPYTERHUB" not in found["environ"] and token not in found["environ"]  # the sandbox's own, empty of it
    assert found["write"].startswith("refused: ") and found["home"].startswith("refused: ")
    assert not (iris.home / "pwned.txt").exists()
    everything = json.dumps(autograded)
    assert token not in everything and secret not in everything and iris.token not in everything
    ada_grade = formgrader("GET", f"submission/{ASSIGNMENT}/ada")
    assert ada_grade["autograded"] and ada_grade["score"] == 7.0  # the answers were right after all
    # Each notebook was an execution of the feedback service's grading workers, asked by iris's server.
    from sqlalchemy import select

    from learnhub import db
    from learnhub.graders.models import GradingJob

    engine = db.make_engine(hub.db_url)
    try:
        with db.make_session_factory(engine)() as session:
            executions = session.scalars(select(GradingJob).where(GradingJob.mode == "execute",
                                                                  GradingJob.course_id == course)).all()
    finally:
        engine.dispose()
    assert [(job.learner_id, job.status) for job in executions] == [("iris", "graded")] * 2

    # The honest submission scores what nbgrader itself gives it (a kernel of nbgrader's own, here).
    shown = formgrader("GET", f"submission/{ASSIGNMENT}/hal")
    root = nbgrader_course(tmp_path / "nbgrader", source, ASSIGNMENT)
    (root / "submitted" / "hal" / ASSIGNMENT).mkdir(parents=True)
    (root / "submitted" / "hal" / ASSIGNMENT / "basics.ipynb").write_bytes(
        (iris.home / "submitted" / "hal" / ASSIGNMENT / "basics.ipynb").read_bytes())
    assert nbgrader_autograde(root, ["hal"], ASSIGNMENT)["hal"]["success"]
    expected = sum(notebook["score"] for notebook in nbgrader_scores(root, ASSIGNMENT)["hal"].values())
    assert shown["autograded"] and shown["score"] == expected == 7.0
