"""The analytics dashboards in a real browser, over real grading data.

Everything is real: ``learnhub up`` with the demo course (the hub, its proxy, the five services, the
grading worker in its bubblewrap sandbox); learners enrolled through the courses service; their
notebooks submitted to the feedback service and graded by the real grader; Debian's Chromium, driven
by Playwright, opening the course dashboard as the course's instructor and the platform dashboard as
the admin, each logging in through the hub's own login page on the way (HubOAuth). plotly.js comes from the analytics
service, and the pages' Content-Security-Policy would stop anything else.

Checked: the charts are drawn (plotly's SVG is there), the assignment filter changes what the
per-exercise chart and the tables show, hovering a bar shows its value, a time chart zooms on time,
and no script was refused or failed. Screenshots of both dashboards go to ``$LEARNHUB_SCREENSHOTS``
(the README's come from a run with ``LEARNHUB_SCREENSHOTS=docs/screenshots``), else to the test's
temporary folder.

SQLite only, like the lab's browser test: the reports' database behaviour is covered on both
databases by tests/analytics.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from hubtools import LearnhubProcess
from labtools import browser  # noqa: F401 (a fixture)
from learnhub.course_content import generate_release, load_course

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
COURSE = "intro-python"
COURSE_DIR = REPO / "courses" / COURSE
NOTEBOOKS = {"01-basics": "basics.ipynb", "02-control-flow": "control_flow.ipynb"}
PASSWORD = "e2e-passw0rd-long"
GRADED_S = 240
PAGE_MS = 120_000
# Who submits what: full solutions and blank notebooks, so that pass rates lie between 0 and 100%.
SUBMISSIONS = [("ada", "01-basics", "solution"), ("ben", "01-basics", "blank"),
               ("ada", "02-control-flow", "solution"), ("cy", "02-control-flow", "blank")]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboards-e2e")
    hub = LearnhubProcess(folder / "data", f"sqlite:///{folder / 'learnhub.sqlite'}",
                          f"sqlite:///{folder / 'hub.sqlite'}", demo=True,
                          extra_env={"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"}).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("LEARNHUB_SCREENSHOTS")
    return Path(target).resolve() if target else tmp_path_factory.mktemp("screenshots")


def sign_up(page, hub_url: str, username: str, password: str) -> None:
    """The hub's sign-up page, filled in as a person would (logging in comes with the first dashboard)."""
    page.goto(f"{hub_url}/hub/signup")
    page.fill("input[name=username]", username)
    page.fill("input[name=signup_password]", password)
    page.fill("input[name=signup_password_confirmation]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_selector("text=The signup was successful")


def enroll(hub, user: str, role: str) -> None:
    response = hub.api("POST", f"/services/courses/api/courses/{COURSE}/enrollments", token=hub.admin_token,
                       json={"user": user, "role": role})
    assert response.status_code in (200, 201), response.text


def graded_work(hub, folder: Path) -> dict:
    """The learners enroll and submit (SUBMISSIONS); returns each submission's grading once all are graded."""
    notebooks = {}
    for assignment, name in NOTEBOOKS.items():
        release = generate_release(load_course(COURSE_DIR), assignment, folder / "release")
        notebooks[assignment, "blank"] = Path(release.notebooks[0]).read_bytes()
        notebooks[assignment, "solution"] = (COURSE_DIR / "source" / assignment / name).read_bytes()
    tokens = {}
    for learner in sorted({who for who, _, _ in SUBMISSIONS}):
        assert hub.hub_api("POST", f"/users/{learner}").status_code in (201, 409)
        enroll(hub, learner, "learner")
        tokens[learner] = hub.user_token(learner)
    jobs = []
    for learner, assignment, kind in SUBMISSIONS:
        accepted = requests.post(f"{hub.url}/services/feedback/api/submissions", timeout=60,
                                 headers={"Authorization": f"token {tokens[learner]}"},
                                 data={"course": COURSE, "assignment": assignment},
                                 files=[("files", (NOTEBOOKS[assignment], notebooks[assignment, kind],
                                                   "application/x-ipynb+json"))])
        assert accepted.status_code == 202, accepted.text
        jobs.append((learner, assignment, kind, accepted.json()["id"]))
    results = {}
    deadline = time.monotonic() + GRADED_S
    for learner, assignment, kind, job in jobs:
        while True:
            state = hub.api("GET", f"/services/feedback/api/submissions/{job}", token=tokens[learner]).json()
            if state["status"] in ("graded", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert state["status"] == "graded", (learner, assignment, state)
        results[learner, assignment] = state
    return results


def watch_page(page) -> list[str]:
    """Collect what went wrong on the page: script errors, refused resources (CSP), failed requests."""
    problems: list[str] = []
    page.add_init_script("""document.addEventListener('securitypolicyviolation',
        e => console.error('CSP refused ' + e.violatedDirective + ' ' + e.blockedURI));""")
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # "Failed to load resource" names no URL: the responses below say which (and skip the favicon).
    page.on("console", lambda message: message.type == "error" and "Failed to load resource" not in message.text
            and problems.append(f"console: {message.text}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    # Chromium asks every site for /favicon.ico; the proxy has none to give. Not the dashboards' doing.
    page.on("response", lambda response: response.status >= 400 and not response.url.endswith("/favicon.ico")
            and problems.append(f"{response.status}: {response.url}"))
    page.on("request", lambda request: not request.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            and problems.append(f"left the platform: {request.url}"))
    return problems


def open_dashboard(page, url: str, username: str | None = None, password: str | None = None) -> None:
    """Open a dashboard as a person does from a link; with a username, through the hub's login form
    it sends them to first (HubOAuth), which brings them back."""
    page.goto(url, timeout=PAGE_MS)
    if username:
        page.wait_for_url("**/hub/login**")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("#login_submit, input[type=submit], button[type=submit]")
        page.wait_for_url(url.split("?")[0] + "**", timeout=PAGE_MS)
    page.wait_for_selector("body[data-charts-ready='true']", timeout=PAGE_MS)


def tick_labels(page, chart_id: str, axis: str = "y") -> list[str]:
    return [text.strip() for text in page.locator(f"#{chart_id} .{axis}tick text").all_text_contents()]


def hover_first_bar(page, chart_id: str) -> str:
    """Move the mouse onto the chart's first bar, as a person would, and return the hover label's text."""
    page.locator(f"#{chart_id}").scroll_into_view_if_needed()  # the mouse reaches only what is on screen
    bar = page.locator(f"#{chart_id} .trace.bars .point path").first
    box = bar.bounding_box()
    assert box and box["width"] > 0 and box["height"] > 0, chart_id
    # plotly.js listens on a layer above the bars: move there, not onto the bar element.
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    label = page.locator(f"#{chart_id} .hoverlayer .hovertext").first
    label.wait_for(state="visible", timeout=30_000)
    return label.text_content()


def test_the_dashboards_draw_filter_and_hover_over_real_grading(platform, browser, shots, tmp_path):
    hub = platform
    results = graded_work(hub, tmp_path)
    assert results["ada", "01-basics"]["score"] > results["ben", "01-basics"]["score"]

    # -- The instructor signs up and logs in through the hub's pages, then becomes the course's instructor.
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_up(page, hub.url, "ivan", PASSWORD)
    # The hub makes its user at the first login; the course needs one now.
    assert hub.hub_api("POST", "/users/ivan").status_code in (201, 409)
    enroll(hub, "ivan", "instructor")
    problems = watch_page(page)
    open_dashboard(page, f"{hub.url}/services/analytics/courses/{COURSE}/dashboard", "ivan", PASSWORD)

    # -- The charts are drawn by plotly.js, each in its place, each with its text alternative.
    for chart in ("chart-weekly-active", "chart-daily-events", "chart-enrollment", "chart-funnel", "chart-scores",
                  "chart-pass-rates"):
        node = page.locator(f"#{chart}")
        expect(node.locator("svg.main-svg").first).to_be_attached()
        assert node.get_attribute("role") == "img" and node.get_attribute("aria-label"), chart
        assert node.locator(".gtitle").first.text_content().strip(), chart  # the title, drawn
    assert page.locator(".plot-fallback").count() == 0  # the "needs JavaScript" notes gave way to charts
    exercises = tick_labels(page, "chart-pass-rates")
    assert any(e.startswith("01-basics/") for e in exercises) and any(e.startswith("02-control-flow/") for e in exercises)
    assert page.locator("#chart-funnel .trace.bars").count() == 2  # one per assignment with submissions
    options = page.locator("#assignment-filter option").all_inner_texts()
    assert options[0] == "All assignments" and {"01-basics", "02-control-flow"} <= set(options)

    # -- Hover: a bar tells its value.
    text = hover_first_bar(page, "chart-pass-rates")
    assert re.search(r"\d+(\.\d+)?% passed \(\d+ of \d+ learners\)", text), text
    text = hover_first_bar(page, "chart-funnel")
    assert re.search(r"enrolled: \d+ learners", text), text
    page.screenshot(path=str(shots / "dashboard-course.png"), full_page=True)  # with the funnel's hover label

    # -- The filter: one assignment only, in the charts and in the tables, without a reload.
    page.select_option("#assignment-filter", "02-control-flow")
    page.wait_for_selector("#chart-pass-rates[data-assignment='02-control-flow'][data-drawn='true']")
    expect(page.locator("#filter-status")).to_have_text("Showing assignment 02-control-flow only.")
    filtered = tick_labels(page, "chart-pass-rates")
    assert filtered and all(e.startswith("02-control-flow/") for e in filtered), filtered
    assert set(filtered) < set(exercises)
    assert page.locator("#chart-funnel .trace.bars").count() == 1
    expect(page.locator("#table-exercises tr[data-assignment='01-basics']").first).to_be_hidden()
    expect(page.locator("#table-exercises tr[data-assignment='02-control-flow']").first).to_be_visible()
    assert "assignment=02-control-flow" in page.url
    # Back to everything.
    page.select_option("#assignment-filter", "")
    page.wait_for_selector("#chart-pass-rates[data-assignment=''][data-drawn='true']")
    assert sorted(tick_labels(page, "chart-pass-rates")) == sorted(exercises)

    # -- Zoom on time: the "1 week" button narrows the date axis of the daily chart.
    def x_range():
        return page.evaluate("() => document.getElementById('chart-daily-events')._fullLayout.xaxis.range.slice()")
    before = x_range()
    page.locator("#chart-daily-events .rangeselector .button", has_text="1 week").click()
    page.wait_for_function(f"() => document.getElementById('chart-daily-events')._fullLayout.xaxis.range[0] !== {before[0]!r}")
    after = x_range()
    assert after != before and page.evaluate(
        "([a, b]) => (new Date(b[1]) - new Date(b[0])) < (new Date(a[1]) - new Date(a[0]))", [before, after])
    context.close()

    # -- The admin's platform dashboard.
    admin = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = admin.new_page()
    page.set_default_timeout(60_000)
    admin_problems = watch_page(page)
    credentials = hub.credentials
    open_dashboard(page, f"{hub.url}/services/analytics/platform/dashboard", credentials["username"],
                   credentials["password"])
    for chart in ("chart-daily-active", "chart-load", "chart-courses", "chart-latency"):
        expect(page.locator(f"#{chart} svg.main-svg").first).to_be_attached()
    assert COURSE in tick_labels(page, "chart-courses")
    text = hover_first_bar(page, "chart-latency")
    assert re.search(r"p50: \d+(\.\d+)? s", text), text
    assert int(page.locator("#table-latency td").first.inner_text()) >= len(SUBMISSIONS)
    page.mouse.move(0, 0)
    page.screenshot(path=str(shots / "dashboard-platform.png"), full_page=True)
    admin.close()

    assert problems + admin_problems == []
