"""A learner and an instructor use learnhub inside JupyterLab, in a real browser.

Everything is real: ``learnhub up`` with the demo course (JupyterHub, the proxy, the five services,
grading workers in bubblewrap sandboxes), learners' servers spawned by the hub in their sandboxes
with JupyterLab and the learnhub extensions as installed from this checkout, and Debian's Chromium
driven by Playwright. The story is the one issue 8 tells: sign up, open JupyterLab, enroll, fetch,
answer wrongly, check, fix, check, submit, see per-test results, a recommendation and a notification;
ask for help on a cell, an instructor answers from their own JupyterLab, the learner sees the answer
without reloading.

Screenshots of each panel go to ``$LEARNHUB_SCREENSHOTS`` (the README's come from a run with
``LEARNHUB_SCREENSHOTS=docs/screenshots``), else to the test's temporary folder.

This module uses SQLite only: what it checks is the browser's side; the services' database
behaviour is covered on both databases by their own tests.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from learnhub.analytics import Client

from hubtools import LearnhubProcess
from labtools import LAB_TIMEOUT_MS, browser, open_lab, run_cell, screenshot, sign_up_and_log_in  # noqa: F401 (browser: a fixture)

pytestmark = pytest.mark.e2e

COURSE, ASSIGNMENT = "intro-python", "01-basics"
PASSWORD = "e2e-passw0rd-long"
WRONG = "course_name = 42\nweek = 1\nhours_per_week = 3.5\nis_free = True"
RIGHT = 'course_name = "Introduction to Python"\nweek = 1\nhours_per_week = 3.5\nis_free = True'
RESULT_MS = 120_000


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    hub = LearnhubProcess(folder / "data", f"sqlite:///{folder / 'learnhub.sqlite'}",
                          f"sqlite:///{folder / 'hub.sqlite'}", demo=True).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("LEARNHUB_SCREENSHOTS")
    return Path(target).resolve() if target else tmp_path_factory.mktemp("screenshots")


def person_in_lab(browser, hub, name: str):
    """A person of their own (a browser context: own cookies) who signs up, logs in and opens JupyterLab."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_up_and_log_in(page, hub.url, name, PASSWORD)
    open_lab(page, hub.url, name)
    return context, page


def open_panel(page, panel_id: str):
    """Click the panel's tab in JupyterLab's side bar (as a person would) and return the panel."""
    panel = page.locator(f"#{panel_id}")
    if not panel.is_visible():
        page.locator(f".lm-TabBar-tab[data-id='{panel_id}']").click()
    panel.wait_for(state="visible")
    return panel


def type_into_cell(page, cell, text: str) -> None:
    """Replace a code cell's text by typing, line by line, into its CodeMirror editor."""
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    for index, line in enumerate(text.split("\n")):
        if index:
            page.keyboard.press("Enter")
            page.keyboard.press("Home")  # the editor may have indented the new line
        page.keyboard.type(line)
    page.keyboard.press("Escape")


def test_a_learner_learns_and_an_instructor_helps_without_leaving_jupyterlab(platform, browser, shots):
    hub = platform
    learner_context, page = person_in_lab(browser, hub, "lena")

    # -- Courses: the catalogue, enroll -----------------------------------------------------------
    courses = open_panel(page, "learnhub-courses-panel")
    courses.get_by_test_id(f"learnhub-catalogue-item-{COURSE}").wait_for()
    courses.get_by_test_id("learnhub-catalogue-search").fill("python")
    courses.get_by_test_id("learnhub-catalogue-submit").click()
    courses.get_by_test_id(f"learnhub-enroll-{COURSE}").click()
    courses.get_by_test_id(f"learnhub-my-course-{COURSE}").wait_for()
    status = courses.get_by_test_id(f"learnhub-assignment-status-{COURSE}-{ASSIGNMENT}")
    status.wait_for()
    assert "not fetched" in status.inner_text().lower()
    screenshot(page, "courses-panel", shots)

    # -- Fetch: the notebook opens -----------------------------------------------------------------
    courses.get_by_test_id(f"learnhub-fetch-{COURSE}-{ASSIGNMENT}").click()
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.wait_for(timeout=LAB_TIMEOUT_MS)
    page.locator(".lm-TabBar-tab.lm-mod-current", has_text="basics.ipynb").wait_for()
    answer = notebook.locator(".jp-CodeCell", has_text="raise NotImplementedError").first
    answer.wait_for()

    # -- A wrong answer, run in the notebook's own kernel: the test cell below it fails -----------
    type_into_cell(page, answer, WRONG)
    run_cell(page, notebook, notebook.locator(".jp-CodeCell", has_text="course_name = 42").first, presses=2)
    notebook.locator(".jp-OutputArea-output", has_text="AssertionError").first.wait_for(timeout=RESULT_MS)

    # -- Checked: the test cell is marked failed with its message -----------------------------------
    page.get_by_test_id("learnhub-check-button").first.click()
    marker = notebook.get_by_test_id("learnhub-test-result-variables")
    marker.wait_for(timeout=RESULT_MS)
    # The live event marks the cell at once; the message comes with the run's result right after.
    expect(marker).to_contain_text("course_name should be a str", timeout=RESULT_MS)
    assert marker.get_attribute("data-status") == "failed"
    screenshot(page, "check-failed", shots)

    # -- Fixed, checked again: passed ----------------------------------------------------------
    answer = notebook.locator(".jp-CodeCell", has_text="course_name = 42").first
    type_into_cell(page, answer, RIGHT)
    page.get_by_test_id("learnhub-check-button").first.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"learnhub-test-result-variables\"]')"
        "?.dataset.status === 'passed'", timeout=RESULT_MS)

    # -- Submit: per-test results stream in, with the score ---------------------------------------
    courses = open_panel(page, "learnhub-courses-panel")
    courses.get_by_test_id(f"learnhub-submit-{COURSE}-{ASSIGNMENT}").click()
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    if accept.count():
        accept.click()
    results = courses.get_by_test_id(f"learnhub-submit-results-{COURSE}-{ASSIGNMENT}")
    results.wait_for(timeout=RESULT_MS)
    summary = courses.get_by_test_id(f"learnhub-submit-results-{COURSE}-{ASSIGNMENT}-summary")
    page.wait_for_function(
        f"() => /score/i.test(document.querySelector('[data-testid=\"learnhub-submit-results-{COURSE}-{ASSIGNMENT}-summary\"]')"
        f"?.textContent || '')", timeout=RESULT_MS)
    assert re.search(r"\d", summary.inner_text())
    assert results.get_by_test_id("learnhub-run-test").count() >= 2
    screenshot(page, "submit-results", shots)

    # -- A notification arrives in JupyterLab's notification centre -------------------------------
    toast = page.locator(".jp-Notification-Toast, .Toastify__toast").filter(has_text=re.compile("feedback|graded", re.I))
    toast.first.wait_for(timeout=RESULT_MS)
    page.wait_for_timeout(1000)  # the toast slides in: let the picture show it whole
    screenshot(page, "notification", shots)

    # -- Next for you: a recommendation with its reason, mastery with levels -----------------------
    nxt = open_panel(page, "learnhub-next-panel")
    first = nxt.get_by_test_id("learnhub-recommendation-1")
    first.wait_for(timeout=RESULT_MS)
    assert nxt.get_by_test_id("learnhub-recommendation-reason-1").inner_text().strip()
    nxt.locator("[data-testid^='learnhub-mastery-level-']").first.wait_for()
    screenshot(page, "next-for-you", shots)

    # -- Ask for help on a cell ---------------------------------------------------------------------
    page.locator(".lm-TabBar-tab", has_text="basics.ipynb").first.click()
    notebook.locator(".jp-CodeCell", has_text="course_name").first.locator(".jp-InputArea-prompt").click()
    page.get_by_test_id("learnhub-ask-help-button").first.click()
    page.get_by_test_id("learnhub-help-question").fill("Why does week have to be an int and not a float?")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    help_panel = open_panel(page, "learnhub-help-panel")
    question = help_panel.locator("[data-testid^='learnhub-question-']").first
    question.wait_for(timeout=RESULT_MS)
    assert "week have to be an int" in question.inner_text()

    # -- An instructor answers from their own JupyterLab --------------------------------------------
    assert hub.hub_api("POST", "/users/ivan").status_code in (201, 409)
    enrolled = hub.api("POST", f"/services/courses/api/courses/{COURSE}/enrollments", token=hub.admin_token,
                       json={"user": "ivan", "role": "instructor"})
    assert enrolled.status_code in (200, 201), enrolled.text
    staff_context, staff = person_in_lab(browser, hub, "ivan")
    instructor = open_panel(staff, "learnhub-instructor-panel")
    queue = instructor.get_by_test_id(f"learnhub-help-queue-{COURSE}")
    queue.wait_for(timeout=RESULT_MS)
    request = queue.locator("[data-testid^='learnhub-help-request-']").filter(has_text="week have to be an int")
    request.wait_for(timeout=RESULT_MS)
    request.locator("textarea").fill("Weeks are counted: 1, 2, 3. Counting numbers are ints in Python.")
    screenshot(staff, "instructor-panel", shots)
    request.locator("button", has_text=re.compile("answer|send", re.I)).first.click()

    # -- The learner sees the answer, live, without reloading ----------------------------------------
    answer_node = help_panel.locator("[data-testid^='learnhub-answer-']").filter(has_text="Counting numbers")
    answer_node.wait_for(timeout=RESULT_MS)
    screenshot(page, "help-answered", shots)
    # The Ask form knows the course the learner enrolled in after JupyterLab started.
    assert help_panel.get_by_test_id("learnhub-ask-course").input_value() == COURSE
    # A learner's sandboxed server does not ask about, or fetch, Jupyter's news feed.
    assert page.get_by_text("official Jupyter news").count() == 0

    staff_context.close()
    learner_context.close()

    # -- What the learner did in JupyterLab is in the course's event log -----------------------------
    # The JupyterLab extension reports each cell run to the learner's server (jupyter_events), whose
    # activity recorder batches the events to the analytics service; the notebook client reads them.
    analytics = Client(hub.url + "/services/analytics", token=hub.admin_token)
    deadline = time.monotonic() + 60
    while True:
        events = analytics.events(COURSE)
        mine = events[(events.actor == "lena") & (events.source == "singleuser")]
        failed_runs = mine[(mine.verb == "executed") & (mine.error_type == "AssertionError")]
        opened = mine[(mine.verb == "opened") & mine.object_id.str.endswith("basics.ipynb")]
        if (len(failed_runs) and len(opened)) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert len(opened), mine[["verb", "object_id"]].to_string()
    assert len(failed_runs), mine[["verb", "object_id", "error_type"]].to_string()
    assert (failed_runs.object_type == "cell").all()
    assert failed_runs.object_id.str.startswith(f"{COURSE}/{ASSIGNMENT}/basics.ipynb#").all()
    assert (failed_runs.assignment_id == ASSIGNMENT).all()
    assert (mine[mine.verb == "executed"].success == True).any()  # noqa: E712  (the answer cell ran fine)
