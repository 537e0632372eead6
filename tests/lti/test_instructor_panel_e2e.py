"""An instructor who arrives from the LMS regrades, sees the LMS gradebook's deliveries and syncs the
roster, all from JupyterLab's Instructor panel, in a real browser.

Everything is real: ``learnhub up`` with the ``lti`` authenticator and the demo course (JupyterHub,
the proxy, the courses and feedback services, a grading worker with its bubblewrap sandbox), the
instructor's server spawned by the hub with JupyterLab and the learnhub extension as installed from
this checkout, Debian's Chromium driven by Playwright, and the test LMS (tests/lti/lms_platform.py),
whose launch page the browser opens and from where it follows the whole LTI 1.3 launch by itself. A
learner's graded submissions reach the LMS gradebook; the LMS goes down, a score fails, the panel says
so, and its button sends it once the LMS is back; a regrade after a test fix, started from the panel,
changes the learner's score and the new score reaches the LMS.

It runs on both databases (its platform's databases are made on the backend under test), as
tests/lti/test_hub_lti.py and tests/feedback/test_regrades.py do.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests
from lms_platform import Platform
from playwright.sync_api import expect

from demo_course import ASSIGNMENT, COURSE, COURSE_DIR, NOTEBOOK, fixed_test_source, wrong_test_source
from ltitools import lti_platform, wait

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from labtools import LAB_READY, LAB_TIMEOUT_MS, browser, screenshot  # noqa: E402,F401 (browser: a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.hub]

COURSES = "/services/courses/api"
RESULT_MS = 120_000


@pytest.fixture(scope="module")
def lms():
    platform = Platform().start()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, lms):
    # Two tries a score, quickly: a score the LMS does not take fails within seconds.
    for running in lti_platform(tmp_path_factory, lms, "lti-panel", retry_seconds=0.3, retry_max_seconds=0.5,
                                max_attempts=2):
        # The instructor's copy of the source (where the feedback service looks first) has a wrong test.
        wrong_test_source(running.data_dir / "courses" / COURSE / "source" / ASSIGNMENT)
        yield running


def submit_solution(hub, token: str) -> dict:
    """The instructor's solution handed in by the learner through the courses service; its grading."""
    solved = (COURSE_DIR / "source" / ASSIGNMENT / NOTEBOOK).read_bytes()
    submitted = hub.api("POST", f"{COURSES}/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions", token=token,
                        files=[("files", (NOTEBOOK, solved, "application/x-ipynb+json"))])
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()["grading"]["id"]
    return wait(lambda: (r := hub.api("GET", f"/services/feedback/api/submissions/{job}", token=token).json())
                ["status"] in ("graded", "failed") and r, 300, "not graded")


def scores_of(lms, user: str) -> list[dict]:
    return [s for s in lms.scores if s["userId"] == user]


def test_an_instructor_from_the_lms_regrades_and_follows_the_gradebook_in_jupyterlab(hub, lms, browser, tmp_path):
    # The instructor teaches the demo course (the admin enrolled them) and opens learnhub from the
    # LMS course: the launch links the two, and their browser lands in JupyterLab at the course.
    assert hub.hub_api("POST", "/users/prof").status_code in (201, 409)
    enrolled = hub.api("POST", f"{COURSES}/courses/{COURSE}/enrollments", token=hub.admin_token,
                       json={"user": "prof", "role": "instructor"})
    assert enrolled.status_code in (200, 201), enrolled.text
    wait(lambda: f"course-{COURSE}-instructors" in hub.hub_api("GET", "/users/prof").json()["groups"], 60,
         "the enrollment was not mirrored into the course's hub group")  # (JupyterLab's panels follow it)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(lms.launch_page(f"{hub.url}/hub/lti/login",
                              lms.claims("prof", "instructor", custom={"learnhub_course": COURSE})))
    page.wait_for_url(f"**/user/prof/lab/tree/{COURSE}**", timeout=LAB_TIMEOUT_MS)
    page.wait_for_selector(LAB_READY, timeout=LAB_TIMEOUT_MS)
    # at the course's folder, which the arrival made in the instructor's new home (no error dialog)
    expect(page.locator(".jp-FileBrowser .jp-BreadCrumbs")).to_contain_text(COURSE)
    expect(page.locator(".jp-Dialog")).to_have_count(0)

    # A learner arrives from the LMS too and hands in the solution: the wrong test costs a point,
    # and the score reaches the LMS gradebook.
    assert lms.launch(requests.Session(), f"{hub.url}/hub/lti/login", lms.claims("bea", "learner")).status_code == 302
    bea = hub.user_token("bea")
    first = submit_solution(hub, bea)
    assert (first["status"], first["score"], first["max_score"]) == ("graded", 6.0, 10.0), first
    wait(lambda: scores_of(lms, "bea"), 60, "the first score did not reach the LMS")

    # The LMS goes down; her second submission's score fails after its two tries.
    lms.down = True
    try:
        assert submit_solution(hub, bea)["score"] == 6.0
        prof = hub.user_token("prof")
        wait(lambda: hub.api("GET", f"{COURSES}/courses/{COURSE}/lti/scores?status=failed", token=prof)
             .json()["items"], 120, "the score did not fail")
    finally:
        lms.down = False

    # The Instructor panel says so: what reached the gradebook, what failed and why.
    panel = page.locator("#learnhub-instructor-panel")
    if not panel.is_visible():
        page.locator(".lm-TabBar-tab[data-id='learnhub-instructor-panel']").click()
    panel.wait_for(state="visible")
    section = panel.get_by_test_id(f"learnhub-lms-{COURSE}")
    expect(section.get_by_test_id(f"learnhub-lms-link-{COURSE}-course-101")).to_contain_text("Data Science 101")
    summary = section.get_by_test_id(f"learnhub-lms-summary-{COURSE}")

    def refreshed_to(text: str) -> None:
        """The section, refreshed (as its button does) until it says ``text``."""
        wait(lambda: section.get_by_test_id(f"learnhub-lms-refresh-{COURSE}").click() or
             summary.inner_text() == text, 60, f"{summary.inner_text()!r}, not {text!r}")

    refreshed_to("1 sent to the LMS gradebook, 1 failed.")
    failed = section.get_by_test_id(f"learnhub-lms-failed-{COURSE}-bea")
    expect(failed).to_contain_text(f"bea, {ASSIGNMENT}: 6 / 10 (2 tries)")
    expect(failed).to_contain_text("answered 503 Service Unavailable")
    expect(failed).not_to_contain_text("<html")
    screenshot(page, "instructor-lms-failed", tmp_path)

    # The LMS is back: the instructor sends the failed score again; it arrives once.
    section.get_by_test_id(f"learnhub-lms-retry-{COURSE}").click()
    message = section.get_by_test_id(f"learnhub-lms-message-{COURSE}")
    expect(message).to_have_text("1 score is on its way again.", timeout=RESULT_MS)
    wait(lambda: len(scores_of(lms, "bea")) == 2, 60, "the score sent again did not reach the LMS")
    refreshed_to("2 sent to the LMS gradebook.")
    expect(section.get_by_test_id(f"learnhub-lms-retry-{COURSE}")).to_have_count(0)
    assert [s["scoreGiven"] for s in scores_of(lms, "bea")] == [6.0, 6.0]

    # The instructor fixes the test and regrades the assignment from the panel: bea's score goes up,
    # the panel shows the change, and the new score reaches the LMS gradebook.
    fixed_test_source(hub.data_dir / "courses" / COURSE / "source" / ASSIGNMENT)
    item = panel.get_by_test_id(f"learnhub-regrade-{COURSE}-{ASSIGNMENT}")
    item.get_by_test_id(f"learnhub-regrade-start-{COURSE}-{ASSIGNMENT}").click()
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Regrade")
    dialog.get_by_role("button", name="Regrade").click()
    progress = item.get_by_test_id(f"learnhub-regrade-progress-{COURSE}-{ASSIGNMENT}")
    expect(progress).to_have_text("Regraded 1 of 1: 1 score changed.", timeout=RESULT_MS)
    change = item.get_by_test_id(f"learnhub-regrade-change-{COURSE}-{ASSIGNMENT}-bea")
    expect(change).to_contain_text("6 → 7 / 10", timeout=RESULT_MS)
    expect(change).to_contain_text("+1")
    screenshot(page, "instructor-regraded", tmp_path)
    wait(lambda: [s["scoreGiven"] for s in scores_of(lms, "bea")] == [6.0, 6.0, 7.0], 60,
         f"the regrade's score did not reach the LMS: {scores_of(lms, 'bea')}")

    # The LMS's roster lists a newcomer and no longer bea: the sync, from the panel, says so.
    lms.rosters["course-101"] = [lms.roster_member("prof", "instructor"), lms.roster_member("newbie", "learner")]
    section.get_by_test_id(f"learnhub-lms-roster-sync-{COURSE}").click()
    expect(message).to_have_text("Roster synced: 1 enrolled, 1 no longer listed (bea).", timeout=RESULT_MS)
    members = hub.api("GET", f"{COURSES}/courses/{COURSE}/enrollments", token=hub.admin_token).json()["items"]
    assert {m["user"]: m["role"] for m in members}.get("newbie") == "learner"
    assert "bea" not in {m["user"] for m in members}
    context.close()
