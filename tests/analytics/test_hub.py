"""The analytics service behind a real hub (``learnhub up``): tokens, course groups, HubOAuth pages,
the platform report after a submission the real grader graded.

One platform for the module; everything else is tested in-process (test_analytics_service.py,
test_dashboards.py); the dashboards in a real browser: tests/e2e/test_dashboards_e2e.py.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from hubtools import log_in, module_platform, sign_up
from learnhub.events import Verb, make_event

pytestmark = pytest.mark.hub

API = "/services/analytics/api"
PASSWORD = "analytics-pass-123"


REPO = Path(__file__).resolve().parents[2]
#: One grading worker and one warm sandbox are plenty for one submission, on a 2-core machine.
GRADER_ENV = {"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"}
DATA_BLOCK = 'id="learnhub-dashboard-data"'  # the charts' data, which only a dashboard page carries


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from module_platform(tmp_path_factory, "analytics", demo=True, extra_env=GRADER_ENV)


def person(hub, name: str, group: str | None = None, password: bool = False) -> str:
    if password:  # a person with a browser: signs up and logs in (which creates the hub user)
        assert sign_up(hub, name, PASSWORD).status_code == 200
        log_in(hub, name, PASSWORD)
    else:
        assert hub.hub_api("POST", f"/users/{name}").status_code in (201, 409)
    if group:
        hub.hub_api("POST", f"/groups/{group}")  # 201, or 409 if it exists
        hub.hub_api("POST", f"/groups/{group}/users", json={"users": [name]}).raise_for_status()
    return hub.user_token(name)


@pytest.fixture(scope="module")
def demo_activity(hub):
    """Activity in course demo for the tests that read its report and dashboards: act, a learner of it,
    enrolled and opened a notebook. Recorded through the analytics API with the admin's token (which may
    record events about anyone), so that no test depends on what another one posted."""
    person(hub, "act", "course-demo-learners")
    events = [make_event("act", Verb.ENROLLED, "course", "demo", course_id="demo", result={"role": "learner"}),
              make_event("act", Verb.OPENED, "notebook", "demo/a1/intro.ipynb", course_id="demo",
                         context={"assignment_id": "a1"})]
    response = hub.api("POST", f"{API}/events", token=hub.admin_token, json=events)
    assert response.status_code == 200 and response.json()["stored"] == 2, response.text
    return "demo"


def test_learners_post_their_own_events_and_read_no_report(hub):
    token = person(hub, "lea", "course-demo-learners")
    mine = [make_event("lea", Verb.OPENED, "notebook", "demo/a1/intro.ipynb", course_id="demo",
                       context={"assignment_id": "a1"}),
            make_event("lea", Verb.EXECUTED, "cell", "demo/a1/intro.ipynb#c1", course_id="demo",
                       result={"success": True})]
    response = hub.api("POST", f"{API}/events", token=token, json=mine)
    assert response.status_code == 200 and response.json()["stored"] == 2
    assert hub.api("POST", f"{API}/events", token=token, json=mine).json()["duplicates"] == 2
    other = [make_event("someone-else", Verb.OPENED, "notebook", "x.ipynb", course_id="demo")]
    assert hub.api("POST", f"{API}/events", token=token, json=other).status_code == 403
    bad = hub.api("POST", f"{API}/events", token=token, json=[{"id": "x"}])
    assert bad.status_code == 422 and bad.json()["error"]["details"]["rejected"][0]["reasons"]
    assert hub.api("GET", f"{API}/courses/demo/report", token=token).status_code == 403
    assert hub.api("GET", f"{API}/platform/report", token=token).status_code == 403
    assert hub.api("GET", f"{API}/courses/demo/report").status_code == 401


def test_instructors_read_only_their_courses(hub, demo_activity):
    ivy = person(hub, "ivy", "course-demo-instructors")
    report = hub.api("GET", f"{API}/courses/demo/report", token=ivy)
    assert report.status_code == 200, report.text
    assert report.json()["learners"] >= 1 and report.json()["enrollment"]["enrolled"] >= 1
    assert hub.api("GET", f"{API}/courses/demo/export?format=csv", token=ivy).text.startswith("id,time,actor")
    olaf = person(hub, "olaf", "course-other-instructors")
    assert hub.api("GET", f"{API}/courses/demo/report", token=olaf).status_code == 403
    admin = hub.api("GET", f"{API}/platform/report", token=hub.admin_token)
    assert admin.status_code == 200 and admin.json()["active_users"]["month"] >= 1


def test_dashboards_through_hub_oauth(hub, demo_activity):
    person(hub, "tess", "course-demo-tas", password=True)
    browser = log_in(hub, "tess", PASSWORD)
    page = browser.get(f"{hub.url}/services/analytics/courses/demo/dashboard", timeout=60)
    assert page.status_code == 200, page.text[:500]
    assert DATA_BLOCK in page.text and 'id="course">demo<' in page.text and "Weekly active learners" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    # The charts' library comes from the analytics service, through the hub's proxy, without a login.
    script = re.search(r'<script defer src="(/services/analytics/static/plotly\.min\.js\?v=\w+)"', page.text)
    assert script, page.text[:1000]
    library = requests.get(f"{hub.url}{script.group(1)}", timeout=60)
    assert library.status_code == 200 and b"plotly.js" in library.content[:200]
    assert "immutable" in library.headers["Cache-Control"]
    denied = browser.get(f"{hub.url}/services/analytics/courses/other/dashboard", timeout=60)
    assert denied.status_code == 403 and DATA_BLOCK not in denied.text
    assert browser.get(f"{hub.url}/services/analytics/platform/dashboard", timeout=60).status_code == 403

    credentials = hub.credentials
    admin = log_in(hub, credentials["username"], credentials["password"])
    platform = admin.get(f"{hub.url}/services/analytics/platform/dashboard", timeout=60)
    assert platform.status_code == 200 and "Daily active users" in platform.text


def test_the_hub_home_page_links_to_the_dashboards_a_person_may_open(hub, demo_activity):
    person(hub, "tom", "course-demo-tas", password=True)
    browser = log_in(hub, "tom", PASSWORD)
    home = browser.get(f"{hub.url}/hub/home", timeout=60)
    assert home.status_code == 200 and 'id="start"' in home.text  # still JupyterHub's own home page
    link = re.search(r'id="learnhub-dashboards"[^>]*href="([^"]+)"', home.text, re.S)
    assert link, home.text[-2000:]
    index = browser.get(f"{hub.url}{link.group(1)}", timeout=60)
    assert index.status_code == 200
    assert 'href="courses/demo/dashboard"' in index.text and "platform/dashboard" not in index.text
    # The link goes where it says: the course's dashboard.
    assert DATA_BLOCK in browser.get(f"{hub.url}/services/analytics/courses/demo/dashboard", timeout=60).text

    # A learner has no course dashboards; an admin sees every course with activity, and the platform.
    person(hub, "lou", "course-demo-learners", password=True)
    learner = log_in(hub, "lou", PASSWORD).get(f"{hub.url}{link.group(1)}", timeout=60)
    assert learner.status_code == 200 and "courses/demo/dashboard" not in learner.text
    admin = hub.credentials
    staff = log_in(hub, admin["username"], admin["password"]).get(f"{hub.url}{link.group(1)}", timeout=60)
    assert 'href="courses/demo/dashboard"' in staff.text and 'id="platform-dashboard"' in staff.text


def test_the_platform_report_after_a_submission_the_grader_graded(hub):
    """A learner submits the demo course's first assignment through the feedback service and the real
    grader grades it; then the platform report (which asks the feedback service for the grading queue's
    statistics) and the dashboard show it. (On SQLite both once answered 500 after the first graded
    submission: the job's timestamps came back from raw SQL as strings.)"""
    course, assignment = "intro-python", "01-basics"
    token = person(hub, "gus")
    enrolled = hub.api("POST", f"/services/courses/api/courses/{course}/enrollments", token=token)
    assert enrolled.status_code == 201, enrolled.text
    notebook = (REPO / "courses" / course / "source" / assignment / "basics.ipynb").read_bytes()
    accepted = requests.post(f"{hub.url}/services/feedback/api/submissions", timeout=60,
                             headers={"Authorization": f"token {token}"},
                             data={"course": course, "assignment": assignment},
                             files=[("files", ("basics.ipynb", notebook, "application/x-ipynb+json"))])
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["id"]
    deadline = time.monotonic() + 180
    while True:
        state = hub.api("GET", f"/services/feedback/api/submissions/{job}", token=token).json()
        if state["status"] in ("graded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert state["status"] == "graded" and state["score"] > 0, state

    report = hub.api("GET", f"{API}/platform/report", token=hub.admin_token)
    assert report.status_code == 200, report.text
    grading = report.json()["grading"]
    assert grading["latency_seconds"]["count"] >= 1 and grading["latency_seconds"]["p50"] >= 0, grading
    assert grading["queue_depth"] == 0
    admin = hub.credentials
    page = log_in(hub, admin["username"], admin["password"]).get(
        f"{hub.url}/services/analytics/platform/dashboard", timeout=60)
    assert page.status_code == 200, page.text[:500]
    assert 'id="chart-latency"' in page.text and 'id="table-latency"' in page.text
