"""A submission through the courses exchange is autograded: the courses service records it (its
``submitted`` event says it is to be graded), the feedback service's intake queues it under the
submission's id, its workers grade it, the learner reads the result at the feedback service and the
courses service shows the score (from the ``graded`` event).

Real parts throughout: ``learnhub up`` with the courses and feedback services, the demo course
(its instructor source is the checkout's ``courses/intro-python``), one grading worker with
bubblewrap sandboxes, and nbgrader's own CLI over the HTTP exchange.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import create_engine, text

from hubtools import module_platform
from learnhub import db as lhdb
from learnhub.extensions.singleuser import config_dir

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parents[2]
COURSE, ASSIGNMENT, NOTEBOOK = "intro-python", "01-basics", "basics.ipynb"
SOURCE = REPO / "courses" / COURSE / "source" / ASSIGNMENT
COURSES = "/services/courses/api"
SUBMISSIONS = f"{COURSES}/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from module_platform(tmp_path_factory, "autograde", services=["courses", "feedback"], demo=True,
                               extra_env={"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"})


def learner(hub, name: str, course: str = COURSE) -> str:
    """A hub user enrolled (by themselves, through the courses service) in ``course``; their token."""
    assert hub.hub_api("POST", f"/users/{name}").status_code in (201, 409)
    token = hub.user_token(name)
    enrolled = hub.api("POST", f"{COURSES}/courses/{course}/enrollments", token=token, json={})
    assert enrolled.status_code == 201 and enrolled.json()["mirrored"] is True, enrolled.text
    return token


def db_rows(hub, sql: str, **params) -> list:
    engine = create_engine(lhdb.normalize_url(hub.db_url))
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).fetchall()
    finally:
        engine.dispose()


def wait_graded(hub, token: str, job_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = hub.api("GET", f"/services/feedback/api/submissions/{job_id}", token=token)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] in ("graded", "failed") or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def solved_notebook() -> bytes:
    return (SOURCE / NOTEBOOK).read_bytes()  # the instructor's solution: every test passes


def test_exchange_submit_queues_a_grading_job_the_learner_can_read(hub):
    token = learner(hub, "ag-ann")
    other = learner(hub, "ag-bob")
    submitted = hub.api("POST", SUBMISSIONS, token=token,
                        files=[("files", (NOTEBOOK, solved_notebook(), "application/x-ipynb+json"))])
    assert submitted.status_code == 201, submitted.text
    submission = submitted.json()
    grading = submission["grading"]
    assert grading["status"] == "queued" and grading["id"]

    # The feedback service's intake queues it under the submission's id (it reads the submitted
    # event and fetches the files from the courses service): for this course, assignment and
    # learner, in grade mode, against the instructor's source, with the submitted notebook as its files.
    assert grading["id"] == submission["id"]
    deadline = time.monotonic() + 60
    while not (jobs := db_rows(hub, "SELECT course_id, assignment_id, learner_id, mode, source_path, "
                                    "submission_blob FROM grading_jobs WHERE id = :id", id=grading["id"])):
        assert time.monotonic() < deadline, "the grading intake did not queue the submission"
        time.sleep(0.2)
    (job,) = jobs
    assert tuple(job[:4]) == (COURSE, ASSIGNMENT, "ag-ann", "grade")
    assert Path(job.source_path) == SOURCE
    with zipfile.ZipFile(io.BytesIO(bytes(job.submission_blob))) as blob:
        assert blob.namelist() == [NOTEBOOK] and blob.read(NOTEBOOK) == solved_notebook()

    # The learner's list of submissions names the grading job.
    listed = hub.api("GET", SUBMISSIONS, token=token).json()["items"]
    assert [(s["id"], s["grading"]["id"]) for s in listed] == [(submission["id"], grading["id"])]

    # The feedback service's worker grades it; the learner reads the result there, nobody else does.
    result = wait_graded(hub, token, grading["id"])
    assert result["status"] == "graded", result
    assert (result["course"], result["assignment"], result["learner"]) == (COURSE, ASSIGNMENT, "ag-ann")
    assert result["tests"] and all(test["passed"] for test in result["tests"])
    assert result["score"] == sum(test["max_points"] for test in result["tests"]) > 0
    assert hub.api("GET", f"/services/feedback/api/submissions/{grading['id']}", token=other).status_code == 404
    # The courses service learns the outcome from the graded event (its GradeRecorder).
    deadline = time.monotonic() + 60
    while (listed := hub.api("GET", SUBMISSIONS, token=token).json()["items"])[0]["grading"]["status"] != "graded":
        assert time.monotonic() < deadline, listed
        time.sleep(0.3)
    assert listed[0]["grading"]["score"] == result["score"] and listed[0]["grading"]["graded_at"]
    # The learner's assignment list shows it graded with the autograder's score, before any release.
    (mine,) = [a for a in hub.api("GET", f"{COURSES}/courses/{COURSE}/assignments", token=token).json()["items"]
               if a["id"] == ASSIGNMENT]
    assert (mine["status"], mine["score"], mine["attempts_used"]) == ("graded", result["score"], 1), mine

    # One "submitted" event (the courses service's) and one "graded" event for this submission.
    deadline = time.monotonic() + 30
    while not db_rows(hub, "SELECT id FROM events WHERE id = :id", id=f"graded:{grading['id']}"):
        assert time.monotonic() < deadline, "no graded event recorded"
        time.sleep(0.5)
    submitted_events = db_rows(hub, "SELECT source, result FROM events WHERE verb = 'submitted' "
                                    "AND actor = 'ag-ann'")
    assert len(submitted_events) == 1 and submitted_events[0].source == "courses"
    assert not db_rows(hub, "SELECT id FROM events WHERE id = :id", id=f"submitted:{grading['id']}")


def test_nbgrader_submit_is_autograded(hub, tmp_path):
    token = learner(hub, "ag-cem")
    home = tmp_path / "ag-cem"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "LEARNHUB"))}
    env.update({"HOME": str(home), "USER": "ag-cem", "JUPYTERHUB_API_TOKEN": token,
                "LEARNHUB_COURSES_URL": hub.url + "/services/courses/", "JUPYTER_CONFIG_PATH": config_dir()})

    def nbgrader(*args) -> str:
        done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--course", COURSE], cwd=home, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"nbgrader {' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    nbgrader("fetch_assignment", ASSIGNMENT)
    # <home>/<assignment>/ or, with nbgrader's path_includes_course, <home>/<course>/<assignment>/
    assert [p.relative_to(home).parts[-2:] for p in home.rglob(NOTEBOOK)] == [(ASSIGNMENT, NOTEBOOK)]
    output = nbgrader("submit", ASSIGNMENT)  # the released notebook, unanswered

    (submission,) = hub.api("GET", SUBMISSIONS, token=token).json()["items"]
    job_id = submission["grading"]["id"]
    assert f"/services/feedback/api/submissions/{job_id}" in output  # nbgrader tells the learner where
    result = wait_graded(hub, token, job_id)
    assert result["status"] == "graded", result
    assert result["score"] == 0 and result["max_score"] > 0
    assert result["tests"] and not any(test["passed"] for test in result["tests"])


def test_a_submission_that_cannot_be_graded_is_still_recorded(hub):
    # A course made through the API has no instructor source: nothing to grade against.
    prof = "ag-prof"
    assert hub.hub_api("POST", f"/users/{prof}").status_code in (201, 409)
    hub.hub_api("POST", "/groups/learnhub-instructors/users", json={"users": [prof]}).raise_for_status()
    prof_token = hub.user_token(prof)
    made = hub.api("POST", f"{COURSES}/courses", token=prof_token,
                   json={"id": "ag-plain", "title": "No sources", "status": "published", "open_enrollment": True})
    assert made.status_code == 201, made.text
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    released = hub.api("POST", f"{COURSES}/courses/ag-plain/assignments/hw/release", token=prof_token,
                       files=[("files", ("hw.ipynb", nbformat.writes(nb).encode()))])
    assert released.status_code == 201, released.text
    token = learner(hub, "ag-dan", course="ag-plain")
    path = f"{COURSES}/courses/ag-plain/assignments/hw/submissions"
    submitted = hub.api("POST", path, token=token, files=[("files", ("hw.ipynb", nbformat.writes(nb).encode()))])
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["grading"] is None
    listed = hub.api("GET", path, token=token).json()["items"]
    assert [(s["id"], s["grading"]) for s in listed] == [(submitted.json()["id"], None)]
    assert not db_rows(hub, "SELECT id FROM grading_jobs WHERE course_id = 'ag-plain'")

    # Files the grader would refuse (no notebook at all) in a course that has a source: recorded, not queued.
    token = learner(hub, "ag-eve")
    notes = hub.api("POST", SUBMISSIONS, token=token, files=[("files", ("notes.txt", b"my notes"))])
    assert notes.status_code == 201, notes.text
    assert notes.json()["grading"] is None
    assert [s["id"] for s in hub.api("GET", SUBMISSIONS, token=token).json()["items"]] == [notes.json()["id"]]
    assert not db_rows(hub, "SELECT id FROM grading_jobs WHERE learner_id = 'ag-eve'")
