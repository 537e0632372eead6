"""The feedback service through a real hub: submit, live per-test events, checks, help.

Real parts throughout: JupyterHub and its proxy, the courses service with the demo course (which
records every graded submission under the course's rules), the feedback service with its grading
worker processes and bubblewrap sandboxes, nbgrader's generate_assignment for the blank notebook.
People enroll as they do in JupyterLab, through the courses service.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import requests
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from hubtools import feedback_events, log_in, module_platform, sign_up
from learnhub.course_content import generate_release, load_course

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parents[2]
COURSE_DIR = REPO / "courses" / "intro-python"
COURSE = "intro-python"
ASSIGNMENT = "01-basics"
NOTEBOOK = "basics.ipynb"
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    env = {"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1", "LEARNHUB_CHECKS_PER_MINUTE": "3"}
    for hub in module_platform(tmp_path_factory, "feedback", demo=True, extra_env=env):  # stopped after the module
        yield _with_people(hub, tmp_path_factory.mktemp("feedback-release"))


def _with_people(hub, folder: Path) -> dict:
    tokens = {}
    for name in ("lena", "leo", "ian", "otto"):
        sign_up(hub, name, PASSWORD)
        log_in(hub, name, PASSWORD)
        tokens[name] = hub.user_token(name)
    courses = f"/services/courses/api/courses/{COURSE}/enrollments"
    for learner in ("lena", "leo"):
        assert hub.api("POST", courses, token=tokens[learner]).status_code == 201
    assert hub.api("POST", courses, token=hub.admin_token, json={"user": "ian", "role": "instructor"}).status_code == 201
    release = generate_release(load_course(COURSE_DIR), ASSIGNMENT, folder / "release")
    return {"hub": hub, "tokens": tokens, "blank": Path(release.notebooks[0]).read_bytes(),
            "solution": (COURSE_DIR / "source" / ASSIGNMENT / NOTEBOOK).read_bytes()}


def submit(platform, who, notebook: bytes, *, kind="submissions", course=COURSE, assignment=ASSIGNMENT,
           name=NOTEBOOK):
    hub = platform["hub"]
    return requests.post(f"{hub.url}/services/feedback/api/{kind}",
                         headers={"Authorization": f"token {platform['tokens'][who]}"},
                         data={"course": course, "assignment": assignment},
                         files=[("files", (name, notebook, "application/x-ipynb+json"))], timeout=60)


def get(platform, who, path):
    return platform["hub"].api("GET", f"/services/feedback/api/{path}", token=platform["tokens"][who])


def wait_graded(platform, who, path, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = get(platform, who, path).json()
        if body["status"] in ("graded", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"{path} not graded: {body}")


async def collect_events(platform, who, path, timeout=120):
    return await feedback_events(platform["hub"].url, platform["tokens"][who], path, timeout)


def test_correct_submission_streams_every_test_and_scores_full_marks(platform):
    accepted = submit(platform, "lena", platform["solution"])
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()
    assert job["status"] == "queued"
    events = asyncio.run(collect_events(platform, "lena", f"submissions/{job['id']}/events"))
    types = [event["type"] for event in events]
    assert types[0] == "queued" and types[1] == "started" and types[-1] == "done"
    tests = [event for event in events if event["type"] == "test"]
    done = events[-1]
    assert done["status"] == "graded"
    assert len(tests) == len(done["tests"]) >= 5
    assert {t["grade_id"] for t in tests} == {t["grade_id"] for t in done["tests"]}
    assert done["max_score"] > 0
    assert all(t["passed"] for t in done["tests"])
    assert sum(t["points"] for t in done["tests"]) == sum(t["max_points"] for t in done["tests"]) == done["score"]
    # The same result over REST.
    assert get(platform, "lena", f"submissions/{job['id']}").json()["score"] == done["score"]
    # And once in the event log, for analytics, the recommender and notifications.
    from sqlalchemy import select

    from learnhub import db
    from learnhub.events import Verb
    from learnhub.models import Event

    engine = db.make_engine(platform["hub"].db_url)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with db.make_session_factory(engine)() as session:
                event = session.get(Event, f"graded:{job['id']}")
                submitted = session.scalars(select(Event).where(Event.object_id == job["id"],
                                                                Event.verb == Verb.SUBMITTED)).all()
            if event is not None:
                break
            time.sleep(0.2)
        # One submission, recorded by the courses service (the course's rules), graded once.
        assert event is not None and [(e.source, e.actor) for e in submitted] == [("courses", "lena")]
        assert (event.actor, event.verb, event.course_id) == ("lena", Verb.GRADED, COURSE)
        assert event.result["score"] == done["score"] and event.result["success"] is True
    finally:
        engine.dispose()


def test_blank_submission_scores_zero_and_hides_hidden_tests(platform):
    job = submit(platform, "leo", platform["blank"]).json()
    result = wait_graded(platform, "leo", f"submissions/{job['id']}")
    assert result["status"] == "graded"
    assert result["score"] == 0
    assert result["tests"] and not any(t["passed"] for t in result["tests"])
    source = platform["solution"].decode()
    for test in result["tests"]:
        if test["hidden"]:
            # pass/fail only: no hidden assertion text, no traceback
            assert "Traceback" not in (test["message"] or "")
            assert "HIDDEN" not in (test["message"] or "")
    assert any(t["hint"] for t in result["tests"]), "instructor hints are shown on failure"
    assert "BEGIN HIDDEN TESTS" in source  # the fixture really has hidden tests
    hidden = [t for t in result["tests"] if t["hidden"]]
    assert hidden and all(t["error"] is None and t["explanation"] is None for t in hidden)
    assert "hidden_error" not in json.dumps(result) and "tampered" not in result
    # The course's staff read why a hidden test failed (the error's kind, never shown to learners).
    staff = get(platform, "ian", f"submissions/{job['id']}").json()
    assert {t["grade_id"] for t in staff["tests"] if t["hidden"] and t["hidden_error"]} == {t["grade_id"] for t in hidden}
    assert staff["tampered"] == []


def with_cell_first(notebook: bytes, source: str) -> bytes:
    """The notebook with a cell of the learner's own at the top (nbgrader keeps added cells)."""
    import nbformat

    nb = nbformat.reads(notebook.decode(), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(source))
    return nbformat.writes(nb).encode()


NO_ASSERTS = ("import ast\nclass NoAsserts(ast.NodeTransformer):\n"
              "    def visit_Assert(self, node):\n        return ast.Pass()\n"
              "get_ipython().ast_transformers.append(NoAsserts())\n")


def test_tampering_through_the_service_scores_nothing_and_asks_staff_to_review(platform):
    """A blank answer whose first cell removes every assert from later cells (which makes nbgrader's
    own autograde pass them all): the learner reads a neutral message and a submission that needs
    review, the same over REST and the WebSocket; the instructor reads what was seen."""
    from learnhub.graders.engine import TAMPERED_MESSAGE

    accepted = submit(platform, "leo", with_cell_first(platform["blank"], NO_ASSERTS))
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["id"]
    events = asyncio.run(collect_events(platform, "leo", f"submissions/{job}/events"))
    done = events[-1]
    rest = get(platform, "leo", f"submissions/{job}").json()
    for view in (done, rest):
        assert view["status"] == "graded" and view["score"] == 0 and view["needs_review"] is True
        assert not any(t["passed"] for t in view["tests"])
        assert "tampered" not in view and "ast_transformers" not in json.dumps(view)
        assert all(t["message"] == TAMPERED_MESSAGE and t["error"] is None and t["hint"] is None
                   for t in view["tests"])
    assert all(not e.get("passed") for e in events if e["type"] == "test")
    staff = get(platform, "ian", f"submissions/{job}").json()
    assert staff["needs_review"] is True and "ipython.ast_transformers" in staff["tampered"]


def test_the_instructors_course_report_shows_the_graded_work(platform):
    """A full-marks and a blank submission, graded through the service, are in the analytics service's
    course report that the instructor's dashboard draws: the assignment's funnel and score histogram, and
    each exercise's pass rate and most common errors."""
    for who, notebook in (("lena", platform["solution"]), ("leo", platform["blank"])):
        job = submit(platform, who, notebook)
        assert job.status_code == 202, job.text
        wait_graded(platform, who, f"submissions/{job.json()['id']}")
    ian = platform["tokens"]["ian"]
    deadline = time.monotonic() + 30
    while True:
        response = platform["hub"].api("GET", f"/services/analytics/api/courses/{COURSE}/report", token=ian)
        assert response.status_code == 200, response.text
        report = response.json()
        assignment = next((a for a in report["assignments"] if a["assignment_id"] == ASSIGNMENT), None)
        if (assignment and assignment["funnel"]["graded"] >= 2) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert assignment is not None, report["assignments"]
    assert assignment["funnel"]["submitted"] >= 2 and assignment["funnel"]["graded"] >= 2, assignment
    assert assignment["funnel"]["passed"] >= 1 and sum(assignment["scores"]["counts"]) >= 2
    exercises = {e["exercise_id"]: e for e in report["exercises"]}
    variables = exercises[f"{ASSIGNMENT}/variables"]
    assert variables["learners_attempted"] >= 2 and 0 < variables["pass_rate"] < 1, variables
    assert variables["common_errors"], variables  # leo's blank answer raised an error there
    # A learner reads no report.
    refused = platform["hub"].api("GET", f"/services/analytics/api/courses/{COURSE}/report",
                                  token=platform["tokens"]["lena"])
    assert refused.status_code == 403


def test_others_see_nothing_of_a_learners_submission(platform):
    job = submit(platform, "lena", platform["blank"]).json()
    assert get(platform, "otto", f"submissions/{job['id']}").status_code == 404
    assert get(platform, "leo", f"submissions/{job['id']}").status_code == 404
    assert get(platform, "ian", f"submissions/{job['id']}").status_code == 200  # the instructor
    assert platform["hub"].api("GET", f"/services/feedback/api/submissions/{job['id']}").status_code == 401


def test_bad_submissions_are_refused_with_reasons(platform):
    outsider = submit(platform, "otto", platform["solution"])
    assert outsider.status_code == 403
    unknown = submit(platform, "lena", platform["solution"], assignment="99-nope")
    assert unknown.status_code == 404
    broken = submit(platform, "lena", b'{"cells": [', name="basics.ipynb")
    assert broken.status_code == 422 and "basics.ipynb" in broken.json()["error"]["message"]
    traversal = submit(platform, "lena", platform["solution"], name="../../etc/basics.ipynb")
    assert traversal.status_code == 400


def test_checks_run_visible_tests_only_and_are_rate_limited(platform):
    accepted = submit(platform, "leo", platform["solution"], kind="checks")
    assert accepted.status_code == 202
    result = wait_graded(platform, "leo", f"checks/{accepted.json()['id']}")
    assert result["kind"] == "check" and result["status"] == "graded"
    # Cells with hidden tests say those were not run; only visible tests ran, so no result is "hidden"
    # (a visible test's failure may be shown in full).
    noted = [t for t in result["tests"] if "Hidden tests are not run" in (t["message"] or "")]
    assert noted and not any(t["hidden"] for t in result["tests"])
    # A check is not a submission.
    assert get(platform, "leo", f"submissions/{accepted.json()['id']}").status_code == 404
    # The limit is three a minute (LEARNHUB_CHECKS_PER_MINUTE=3): two more pass, the next is refused.
    statuses = [submit(platform, "leo", platform["solution"], kind="checks").status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    limited = submit(platform, "leo", platform["solution"], kind="checks")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_help_request_is_answered_live(platform):
    async def scenario():
        hub = platform["hub"]
        ws = hub.url.replace("http", "ws") + "/services/feedback/api/help-requests/events"
        staff = await websocket_connect(HTTPRequest(f"{ws}?course={COURSE}",
                                                    headers={"Authorization": f"token {platform['tokens']['ian']}"}))
        learner = await websocket_connect(HTTPRequest(ws, headers={"Authorization": f"token {platform['tokens']['lena']}"}))
        assert json.loads(await staff.read_message())["type"] == "subscribed"
        assert json.loads(await learner.read_message())["type"] == "subscribed"
        asked = hub.api("POST", "/services/feedback/api/help-requests", token=platform["tokens"]["lena"],
                        json={"course": COURSE, "assignment": ASSIGNMENT, "question": "Why NameError?",
                              "cell_id": "variables", "code": "print(x)"})
        assert asked.status_code == 201, asked.text
        seen = json.loads(await asyncio.wait_for(staff.read_message(), 10))
        assert seen["type"] == "help-request" and seen["request"]["code"] == "print(x)"
        request_id = asked.json()["id"]
        assert hub.api("POST", f"/services/feedback/api/help-requests/{request_id}/answers",
                       token=platform["tokens"]["leo"], json={"answer": "no"}).status_code == 404
        answered = hub.api("POST", f"/services/feedback/api/help-requests/{request_id}/answers",
                           token=platform["tokens"]["ian"], json={"answer": "Define x first."})
        assert answered.status_code == 201
        pushed = json.loads(await asyncio.wait_for(learner.read_message(), 10))
        assert pushed["type"] == "help-answer" and pushed["request"]["answer"] == "Define x first."
        mine = hub.api("GET", "/services/feedback/api/help-requests", token=platform["tokens"]["lena"]).json()
        assert [item["id"] for item in mine["items"]] == [request_id]
        assert hub.api("GET", "/services/feedback/api/help-requests", token=platform["tokens"]["otto"]).json()["items"] == []
        # Only a course's staff may listen to its queue.
        with pytest.raises(HTTPClientError) as refused:
            await websocket_connect(HTTPRequest(f"{ws}?course={COURSE}",
                                                headers={"Authorization": f"token {platform['tokens']['otto']}"}))
        assert refused.value.code == 403
        staff.close()
        learner.close()

    asyncio.run(scenario())
