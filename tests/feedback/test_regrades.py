"""Regrades and executions of the feedback service, through a real hub.

An instructor fixes a wrong test and regrades the assignment: every learner's latest autograded
submission is graded again on the service's grading workers, the changes are reported before →
after, and the courses service's submission gets the new score from the `graded` event
(`context.submission_id`). Executions run a notebook for nbgrader's autograde in an instructor's
server. Real parts: JupyterHub, the courses and feedback services, the grading workers and their
bubblewrap sandboxes, the event log.
"""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
import requests
from nbformat.v4 import new_code_cell, new_notebook

from demo_course import ASSIGNMENT, COURSE, COURSE_DIR, NOTEBOOK, fixed_test_source, wrong_test_source
from hubtools import log_in, module_platform, sign_up
from learnhub.course_content import generate_release, load_course

pytestmark = pytest.mark.hub

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    env = {"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"}
    for hub in module_platform(tmp_path_factory, "regrades", demo=True, extra_env=env):
        # The instructor's copy of the source, where the feedback service looks first (<data dir>/courses):
        # it has the wrong test when the learners submit.
        source = hub.data_dir / "courses" / COURSE / "source" / ASSIGNMENT
        wrong_test_source(source)
        tokens = {}
        for name in ("lena", "leo", "ian", "tia", "otto"):
            sign_up(hub, name, PASSWORD)
            log_in(hub, name, PASSWORD)
            tokens[name] = hub.user_token(name)
        enroll = f"/services/courses/api/courses/{COURSE}/enrollments"
        for learner in ("lena", "leo"):
            assert hub.api("POST", enroll, token=tokens[learner]).status_code == 201
        for name, role in (("ian", "instructor"), ("tia", "ta")):
            assert hub.api("POST", enroll, token=hub.admin_token, json={"user": name, "role": role}).status_code == 201
        release = generate_release(load_course(COURSE_DIR), ASSIGNMENT, tmp_path_factory.mktemp("release") / "r")
        yield {"hub": hub, "tokens": tokens, "source": source, "blank": Path(release.notebooks[0]).read_bytes(),
               "solution": (COURSE_DIR / "source" / ASSIGNMENT / NOTEBOOK).read_bytes()}


def call(platform, who, method, path, **kwargs) -> requests.Response:
    return platform["hub"].api(method, f"/services/{path}", token=platform["tokens"][who], **kwargs)


def submit(platform, who, notebook: bytes) -> str:
    response = requests.post(f"{platform['hub'].url}/services/feedback/api/submissions",
                             headers={"Authorization": f"token {platform['tokens'][who]}"},
                             data={"course": COURSE, "assignment": ASSIGNMENT},
                             files=[("files", (NOTEBOOK, notebook, "application/x-ipynb+json"))], timeout=60)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_for(fetch, done, timeout=240, every=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(every)


def graded(platform, who, job_id) -> dict:
    return wait_for(lambda: call(platform, who, "GET", f"feedback/api/submissions/{job_id}").json(),
                    lambda body: body["status"] in ("graded", "failed"))


REGRADES = f"feedback/api/courses/{COURSE}/assignments/{ASSIGNMENT}/regrades"


def test_a_regrade_after_a_test_fix_updates_the_scores(platform):
    hub = platform["hub"]
    # lena hands in a blank notebook, then the solution; leo the blank one. The wrong test costs the
    # solution shout's point.
    first = submit(platform, "lena", platform["blank"])
    assert graded(platform, "lena", first)["score"] == 0
    latest = submit(platform, "lena", platform["solution"])
    leo = submit(platform, "leo", platform["blank"])
    lena_before, leo_before = graded(platform, "lena", latest), graded(platform, "leo", leo)
    assert lena_before["status"] == "graded" and leo_before["score"] == 0
    shout = next(t for t in lena_before["tests"] if t["grade_id"] == "shout")
    assert not shout["passed"] and lena_before["score"] == 6.0  # 7 autograded points, one lost to the wrong test

    # Only the course's staff regrade.
    for who in ("lena", "otto"):
        refused = call(platform, who, "POST", REGRADES)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["status"] == 403
    assert call(platform, "lena", "GET", REGRADES).status_code == 403
    assert call(platform, "ian", "POST", f"feedback/api/courses/{COURSE}/assignments/99-nope/regrades").status_code == 404

    # The instructor fixes the test and regrades.
    fixed_test_source(platform["source"])
    accepted = call(platform, "ian", "POST", REGRADES)
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["total"] == 2 and body["status"] == "queueing"  # lena's latest and leo's: one each
    assert accepted.headers["Location"].endswith(f"{REGRADES.split('api/', 1)[1]}/{body['id']}")
    progress = wait_for(lambda: call(platform, "ian", "GET", f"{REGRADES}/{body['id']}").json(),
                        lambda p: p["status"] == "done")
    assert progress["status"] == "done", progress
    assert (progress["total"], progress["done"], progress["failed"], progress["unchanged"]) == (2, 2, 0, 1)
    [change] = progress["changes"]
    assert (change["learner"], change["submission"]) == ("lena", latest)
    assert change["before"] == {"score": 6.0, "max_score": 10.0} and change["after"] == {"score": 7.0, "max_score": 10.0}
    assert call(platform, "tia", "GET", f"{REGRADES}/{body['id']}").status_code == 200  # a TA follows it too
    assert call(platform, "ian", "GET", REGRADES).json()["items"][0]["id"] == body["id"]

    # The regrade job is lena's to read, with its per-test results.
    mine = call(platform, "lena", "GET", f"feedback/api/submissions/{change['job']}").json()
    assert mine["score"] == 7.0 and all(t["passed"] for t in mine["tests"])
    assert call(platform, "leo", "GET", f"feedback/api/submissions/{change['job']}").status_code == 404

    # The courses service updates lena's submission from the regrade's `graded` event.
    listing = f"courses/api/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions"

    def lena_submissions():
        items = call(platform, "ian", "GET", listing, params={"user": "lena"}).json()["items"]
        return {item["id"]: item for item in items}

    subs = wait_for(lena_submissions, lambda s: s[latest]["grading"]["score"] == 7.0, timeout=60)
    assert subs[latest]["grading"]["score"] == 7.0 and subs[latest]["grading"]["id"] == change["job"]
    assert subs[first]["grading"]["score"] == 0  # an older attempt is not regraded

    from sqlalchemy import select

    from learnhub import db
    from learnhub.events import Verb
    from learnhub.models import Event

    engine = db.make_engine(hub.db_url)
    try:
        with db.make_session_factory(engine)() as session:
            event = session.get(Event, f"graded:{change['job']}")
            regraded = session.scalars(select(Event).where(Event.verb == Verb.GRADED,
                                                           Event.object_id == change["job"])).all()
        assert event is not None and regraded == [event]
        assert event.context["submission_id"] == latest and event.context["regrade_id"] == body["id"]
        assert event.actor == "lena" and event.result["score"] == 7.0
    finally:
        engine.dispose()

    # The queue's latency statistics are about learners' own submissions, not a class regraded at once.
    stats = platform["hub"].api("GET", "/services/feedback/api/grading/stats", token=hub.admin_token).json()
    assert stats["latency_seconds"]["count"] == 3

    # A TA may start one too; with nothing changed since, nothing changes.
    again = call(platform, "tia", "POST", REGRADES)
    assert again.status_code == 202
    second = wait_for(lambda: call(platform, "tia", "GET", f"{REGRADES}/{again.json()['id']}").json(),
                      lambda p: p["status"] == "done")
    assert second["changes"] == [] and second["unchanged"] == 2

    # Everything downstream of the `graded` events takes the regrades as replacing the gradings of
    # lena's and leo's submissions, not as new attempts: three submissions were graded, twice regraded.
    def admin_report():
        return hub.api("GET", "/services/analytics/api/platform/report", token=hub.admin_token).json()

    # the regrades' events are appended by the feedback service's recorder, a moment after the jobs finish
    platform_report = wait_for(admin_report, lambda r: r.get("regraded", {}).get("total") == 4, timeout=60)
    assert platform_report["graded"]["total"] == 3, platform_report["graded"]
    assert platform_report.get("regraded", {}).get("total") == 4
    report = call(platform, "ian", "GET", f"analytics/api/courses/{COURSE}/report").json()
    (basics,) = [a for a in report["assignments"] if a["assignment_id"] == ASSIGNMENT]
    assert (basics["funnel"]["graded"], basics["funnel"]["passed"]) == (2, 1)  # lena, since the fix
    exercises = {e["exercise_id"]: e for e in report["exercises"]}
    shout = exercises[f"{ASSIGNMENT}/shout"]
    assert (shout["attempts"], shout["learners_attempted"], shout["learners_passed"]) == (3, 2, 1), shout
    assert shout["attempts_to_pass"]["median"] == 2  # lena's second submission passed it, once regraded
    # the recommender's mastery: two submissions of lena's, each with two string tests (shout, initials)
    mastery = call(platform, "lena", "GET", "recommender/api/mastery", params={"course": COURSE}).json()
    strings = {item["skill"]: item for item in mastery["items"]}["strings"]
    assert (strings["attempts"], strings["correct"]) == (4, 2), strings
    # the attempt limit: lena used two attempts, whatever the regrades
    (mine,) = [a for a in call(platform, "lena", "GET", f"courses/api/courses/{COURSE}/assignments").json()["items"]
               if a["id"] == ASSIGNMENT]
    assert mine["attempts_used"] == 2 and mine["score"] == 7.0, mine
    # lena is told of each grading: her two submissions graded, then regraded with the new score; the
    # second regrade left her score at 7 and says nothing
    notes = wait_for(lambda: call(platform, "lena", "GET", "notifications/api/notifications").json()["items"],
                     lambda items: len([n for n in items if n["data"].get("regrade_id")]) >= 1, timeout=60)
    time.sleep(4)  # the notifications feed's settle time, twice: a notice of the second would be here by now
    notes = call(platform, "lena", "GET", "notifications/api/notifications").json()["items"]
    regraded = [n for n in notes if n["data"].get("regrade_id")]
    assert [n["data"]["regrade_id"] for n in regraded] == [body["id"]], regraded
    assert all(n["title"].startswith("Regraded: ") and "7 / 10" in n["body"] for n in regraded), regraded
    assert all(n["type"] == "feedback_ready" for n in regraded)  # her channels for feedback apply
    assert len([n for n in notes if n["title"].startswith("Feedback ready: ")]) == 2, notes


def notebook(*sources: str) -> bytes:
    return nbformat.writes(new_notebook(cells=[new_code_cell(s) for s in sources])).encode()


EXECUTIONS = f"feedback/api/courses/{COURSE}/assignments/{ASSIGNMENT}/executions"


def execute(platform, who, files) -> requests.Response:
    return requests.post(f"{platform['hub'].url}/services/{EXECUTIONS}",
                         headers={"Authorization": f"token {platform['tokens'][who]}"}, files=files, timeout=60)


def test_an_execution_runs_the_notebook_in_a_sandbox_and_returns_the_outputs(platform):
    cells = ("print(open('data/words.txt').read().split()[1])", "",
             "import os\nprint(os.environ.get('JUPYTERHUB_API_TOKEN'), sorted(os.environ))", "1 / 0", "6 * 7")
    accepted = execute(platform, "ian", [("files", ("nb.ipynb", notebook(*cells))),
                                         ("files", ("data/words.txt", b"alpha beta gamma"))])
    assert accepted.status_code == 202, accepted.text
    job = accepted.json()["id"]
    result = wait_for(lambda: call(platform, "ian", "GET", f"feedback/api/executions/{job}").json(),
                      lambda body: body["status"] in ("graded", "failed"))
    assert result["status"] == "graded", result
    ran = {cell["index"]: cell for cell in result["cells"]}
    assert sorted(ran) == [0, 2, 3, 4]  # the empty cell does not run, as in nbclient
    assert ran[0]["outputs"][0]["text"] == "beta\n"
    assert "None" in ran[2]["outputs"][0]["text"] and "JUPYTERHUB" not in ran[2]["outputs"][0]["text"]
    assert ran[3]["outputs"][0]["ename"] == "ZeroDivisionError"
    assert ran[4]["outputs"][0]["data"]["text/plain"] == "42"
    assert platform["tokens"]["ian"] not in str(result)
    # The course's staff may read it; its learners and others may not, nor start one.
    assert call(platform, "tia", "GET", f"feedback/api/executions/{job}").status_code == 200
    assert call(platform, "lena", "GET", f"feedback/api/executions/{job}").status_code == 404
    assert execute(platform, "lena", [("files", ("nb.ipynb", notebook("1")))]).status_code == 403
    assert execute(platform, "otto", [("files", ("nb.ipynb", notebook("1")))]).status_code == 403
    # One notebook per execution, and a notebook at all.
    two = execute(platform, "ian", [("files", ("a.ipynb", notebook("1"))), ("files", ("b.ipynb", notebook("2")))])
    assert two.status_code == 422 and two.json()["error"]["details"]["notebooks"] == ["a.ipynb", "b.ipynb"]
    assert execute(platform, "ian", [("files", ("data.txt", b"x"))]).status_code == 422


def test_which_submission_of_each_learner_is_regraded():
    """Per learner the latest submission graded here, scored before as its last successful grading."""
    from types import SimpleNamespace

    from learnhub.extensions.feedback.regrades import latest_autograded

    def job(status, score=None):
        return SimpleNamespace(status=status, score=score, max_score=10.0 if score is not None else None)

    submissions = [
        {"id": "a1", "user": "ann", "attempt": 1}, {"id": "a2", "user": "ann", "attempt": 2},
        {"id": "b1", "user": "bob", "attempt": 1}, {"id": "b2", "user": "bob", "attempt": 2},
        {"id": "c1", "user": "cat", "attempt": 1},
        {"id": "d1", "user": "dan", "attempt": 1}, {"id": "d2", "user": "dan", "attempt": 2, "grading": None},
        {"id": "e1", "user": "eve", "attempt": 1, "grading": {"status": "queued"}},
    ]
    gradings = {"a1": (job("graded", 3.0), job("graded", 3.0)), "a2": (job("graded", 8.0), job("graded", 8.0)),
                "b1": (job("graded", 4.0), job("graded", 4.0)), "b2": (job("running"), None),
                "c1": (job("failed"), job("graded", 6.0)),  # its last regrade failed: it keeps 6
                "d1": (job("graded", 5.0), job("graded", 5.0))}
    targets, skipped = latest_autograded(submissions, gradings)
    assert [(t["learner"], t["submission"], t["score"]) for t in targets] == [
        ("ann", "a2", 8.0), ("cat", "c1", 6.0), ("dan", "d1", 5.0)]
    assert [(s["learner"], s["submission"]) for s in skipped] == [("bob", "b2"), ("eve", "e1")]
