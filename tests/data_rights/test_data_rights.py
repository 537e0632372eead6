"""Data rights and the audit log on a real platform (``learnhub up`` with every service, the demo
course, a grading worker with its bubblewrap sandbox).

A learner's data is made the way people make it — enrolling, a profile, contact details, fetching,
submitting (graded in the sandbox), asking for help, notebook activity; staff grant an extension,
override the grade, announce, regrade — then exported (one archive holds all of it), erased
(nothing in any table of the learnhub database or any file of the data dir names them any more,
while the course's statistics keep their rows under a pseudonym), and a second learner is deleted
in the hub's admin API, which erases them the same way. The audit log records the staff's actions
and refuses to change.

The learner's home folder is written directly (``DATA_DIR/users/<name>``, the folder the sandboxed
spawner mounts as their home): starting a real server only to save a file there adds a minute and
tests nothing of data rights.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError

from hubtools import log_in, module_platform, sign_up
from learnhub import db as lhdb
from learnhub.course_content import generate_release, load_course
from learnhub.events import make_event, Verb

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: runs on PostgreSQL too (the audit trigger differs)

REPO = Path(__file__).resolve().parents[2]
COURSE_DIR = REPO / "courses" / "intro-python"
COURSE, ASSIGNMENT, NOTEBOOK = "intro-python", "01-basics", "basics.ipynb"
PASSWORD = "correct-horse-battery"
LEARNER, OTHER, STAFF, DELETED = "zelda-gdpr", "yuri-other", "ines-staff", "hana-deleted"
ALSO_DELETED = "omar-deleted"  # deleted right after DELETED: two deletions for the courses service at once
EMAIL, PHONE = "zelda.private@example.org", "+15551234987"
HOME_MARKER = "zelda's private notes 7f3a"
RETENTION_DAYS = 36500


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    # Retention on, at a century: the live course is never that old; test_retention_reaches_the_feedback_service
    # makes one that is.
    env = {"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1",
           "LEARNHUB_RETENTION_ARCHIVED_COURSE_DAYS": str(RETENTION_DAYS)}
    for hub in module_platform(tmp_path_factory, "data-rights", demo=True, extra_env=env):
        tokens = {"admin": hub.admin_token}
        for name in (LEARNER, OTHER, STAFF, DELETED, ALSO_DELETED):
            assert sign_up(hub, name, PASSWORD).status_code == 200
            log_in(hub, name, PASSWORD)
            tokens[name] = hub.user_token(name)
        release = generate_release(load_course(COURSE_DIR), ASSIGNMENT, tmp_path_factory.mktemp("release") / "r")
        yield {"hub": hub, "tokens": tokens, "solution": (COURSE_DIR / "source" / ASSIGNMENT / NOTEBOOK).read_bytes(),
               "blank": Path(release.notebooks[0]).read_bytes()}


def call(platform, who, method, path, **kwargs):
    return platform["hub"].api(method, f"/services/{path}", token=platform["tokens"].get(who), **kwargs)


def ok(response, *codes):
    assert response.status_code in (codes or (200,)), f"{response.status_code}: {response.text}"
    return response.json() if response.content and "json" in response.headers.get("Content-Type", "") else None


def wait_for(probe, done, timeout=180, step=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(step)


def make_learner_data(platform, who: str) -> dict:
    """Everything a learner leaves in every service; returns what the test looks for later."""
    enroll = f"courses/api/courses/{COURSE}/enrollments"
    ok(call(platform, who, "POST", enroll), 201)
    ok(call(platform, who, "PUT", "courses/api/profile", json={"goals": f"{who} wants to learn loops", "level": "beginner"}))
    ok(call(platform, who, "PUT", "notifications/api/preferences", json={
        "email": EMAIL if who == LEARNER else f"{who}@example.org", "phone": PHONE if who == LEARNER else None}))
    ok(call(platform, who, "GET", f"courses/api/courses/{COURSE}/assignments/{ASSIGNMENT}/download"))
    work = platform["solution"]
    submitted = requests.post(f"{platform['hub'].url}/services/feedback/api/submissions",
                              headers={"Authorization": f"token {platform['tokens'][who]}"},
                              data={"course": COURSE, "assignment": ASSIGNMENT},
                              files=[("files", (NOTEBOOK, work, "application/x-ipynb+json"))], timeout=60)
    job = ok(submitted, 201, 202)
    graded = wait_for(lambda: ok(call(platform, who, "GET", f"feedback/api/submissions/{job['id']}")),
                      lambda b: b["status"] in ("graded", "failed"))
    assert graded["status"] == "graded", graded
    ok(call(platform, who, "POST", "feedback/api/help-requests", json={
        "course": COURSE, "assignment": ASSIGNMENT, "question": f"{who} asks: why NameError?", "code": "print(x)"}), 201)
    activity = make_event(who, Verb.ACTIVE, "notebook", f"{COURSE}/{ASSIGNMENT}/{NOTEBOOK}", course_id=COURSE,
                          result={"duration": 42.0}, context={"assignment_id": ASSIGNMENT})
    ok(call(platform, who, "POST", "analytics/api/events", json={"events": [activity]}))
    ok(call(platform, who, "GET", f"recommender/api/recommendations?course={COURSE}"))
    home = platform["hub"].data_dir / "users" / who
    home.mkdir(parents=True, exist_ok=True)
    (home / "notes.txt").write_text(f"{HOME_MARKER} by {who}")
    return {"job": job["id"], "submission": graded.get("submission_id") or job["id"]}


def learnhub_cli(platform, *args) -> subprocess.CompletedProcess:
    hub = platform["hub"]
    return subprocess.run([sys.executable, "-m", "learnhub", *args, "--data-dir", str(hub.data_dir), "--url", hub.url],
                          capture_output=True, text=True, timeout=300, cwd=hub.data_dir.parent)


def rows_naming(platform, *needles: str) -> dict[str, list]:
    """Every row of every table of the learnhub database whose text names one of ``needles``."""
    engine = create_engine(lhdb.normalize_url(platform["hub"].db_url))
    found = {}
    try:
        with engine.connect() as connection:
            for table in inspect(connection).get_table_names():
                for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                    as_text = " ".join(str(v) for v in row)
                    if any(n in as_text for n in needles):
                        found.setdefault(table, []).append(as_text[:300])
    finally:
        engine.dispose()
    return found


def files_naming(platform, *needles: bytes) -> list[str]:
    """Every file of the data dir (databases aside: their tables are scanned above) holding a needle."""
    hits = []
    for path in platform["hub"].data_dir.rglob("*"):
        if path.is_file() and ".sqlite" not in path.name:
            content = path.read_bytes()
            if any(n in content for n in needles):
                hits.append(str(path))
    return hits


def test_export_then_erase_leaves_nothing_of_the_person(platform):
    hub = platform["hub"]
    # Staff: an instructor enrolled by the admin; then their actions on the learner.
    ok(call(platform, "admin", "POST", f"courses/api/courses/{COURSE}/enrollments", json={"user": STAFF, "role": "instructor"}), 201)
    made = make_learner_data(platform, LEARNER)
    make_learner_data(platform, OTHER)
    base = f"courses/api/courses/{COURSE}/assignments/{ASSIGNMENT}"
    ok(call(platform, STAFF, "PUT", f"{base}/extensions/{LEARNER}", json={"extra_attempts": 2}), 200, 201)
    subs = ok(call(platform, STAFF, "GET", f"{base}/submissions?user={LEARNER}"))["items"]
    ok(call(platform, STAFF, "POST", f"{base}/feedback", data={"submission": subs[0]["id"], "score": "9", "max_score": "10"},
            files=[("files", ("feedback.html", f"<p>well done {LEARNER}</p>".encode()))]), 201)
    ok(call(platform, STAFF, "POST", f"notifications/api/courses/{COURSE}/announcements",
            json={"title": "Office hours", "body": "Friday at 10"}), 202)
    regrade = ok(call(platform, STAFF, "POST", f"feedback/{base.split('/', 1)[1]}/regrades"), 202)
    wait_for(lambda: ok(call(platform, STAFF, "GET", f"feedback/{base.split('/', 1)[1]}/regrades/{regrade['id']}")),
             lambda p: p["status"] == "done")
    # The announcement and the graded notifications reach the learner's in-app list.
    notes = wait_for(lambda: ok(call(platform, LEARNER, "GET", "notifications/api/notifications"))["items"],
                     lambda items: any(i["type"] == "announcement" for i in items))
    assert any(i["type"] == "announcement" for i in notes), notes
    assert rows_naming(platform, LEARNER).keys() >= {"submissions", "enrollments", "learner_profiles", "help_requests",
                                                      "notifications", "notification_preferences", "grading_jobs",
                                                      "events", "analytics_learners", "assignment_fetches",
                                                      "assignment_extensions", "grading_regrades"}

    # Nobody but an admin exports or erases anyone, or reads the audit log — in any service.
    for who in (OTHER, STAFF, LEARNER):
        assert call(platform, who, "GET", f"courses/api/data/archives?user={LEARNER}").status_code == 403
        assert call(platform, who, "POST", "courses/api/data/erasures", json={"user": LEARNER}).status_code == 403
        assert call(platform, who, "GET", "courses/api/audit").status_code == 403
        assert call(platform, who, "POST", "courses/api/data/retention", json={}).status_code == 403
        for service in ("courses", "feedback", "notifications", "analytics", "recommender"):
            assert call(platform, who, "GET", f"{service}/api/data/export?user={LEARNER}").status_code == 403
            assert call(platform, who, "POST", f"{service}/api/data/erase",
                        json={"user": LEARNER, "pseudonym": "erased-0123456789abcdef"}).status_code == 403
    assert call(platform, None, "GET", f"courses/api/data/archives?user={LEARNER}").status_code == 401
    # Retention deletes nothing of a course that is not archived.
    done = learnhub_cli(platform, "data", "retention")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["enabled"] is True and json.loads(done.stdout)["courses"] == [], done.stdout
    bad = call(platform, "admin", "POST", "feedback/api/data/erase", json={"user": LEARNER, "pseudonym": "x"})
    assert bad.status_code == 400 and "pseudonym" in bad.json()["error"]["message"]

    # Export: one archive, a JSON per service and the files.
    out = hub.data_dir.parent / "zelda.zip"
    done = learnhub_cli(platform, "data", "export", LEARNER, "-o", str(out))
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        parts = {n[:-5]: json.loads(archive.read(n)) for n in names if n.endswith(".json") and "/" not in n}
        assert set(parts) == {"manifest", "courses", "feedback", "notifications", "recommender", "analytics", "core"}
        courses, feedback = parts["courses"]["data"], parts["feedback"]["data"]
        assert courses["profile"]["goals"] == f"{LEARNER} wants to learn loops"
        assert [e["course_id"] for e in courses["enrollments"]] == [COURSE]
        assert courses["submissions"] and courses["fetches"] and courses["extensions"][0]["extra_attempts"] == 2
        assert any(s["score"] == 9 for s in courses["submissions"])
        submitted = [n for n in names if n.startswith("files/courses/submissions/") and n.endswith(NOTEBOOK)]
        assert submitted and archive.read(submitted[0]) == platform["solution"]
        assert any(n.endswith("feedback.html") for n in names)
        assert [h["question"] for h in feedback["help_requests"]] == [f"{LEARNER} asks: why NameError?"]
        assert {j["id"] for j in feedback["grading_jobs"]} >= {made["job"]}
        assert feedback["regrades"] and feedback["regrades"][0]["targets"][0]["learner"] == LEARNER
        prefs = parts["notifications"]["data"]["preferences"]
        assert (prefs["email"], prefs["phone"]) == (EMAIL, PHONE)  # decrypted: the person's own
        assert any(n["type"] == "announcement" for n in parts["notifications"]["data"]["notifications"])
        assert parts["analytics"]["data"]["analytics_learners"][0]["actor"] == LEARNER
        assert "mastery" in parts["recommender"]["data"]["model_state"]
        assert {e["verb"] for e in parts["core"]["data"]["events"]} >= {"enrolled", "submitted", "graded", "active"}
        assert archive.read("files/core/home/notes.txt").decode().startswith(HOME_MARKER)
        assert {e["action"] for e in parts["core"]["data"]["audit_log"]} >= {"extension-granted", "grade-overridden"}
    events_before = rows_naming(platform, LEARNER)["events"]

    # Erase.
    done = learnhub_cli(platform, "data", "erase", LEARNER, "--yes")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pseudonym"].startswith("erased-")
    assert report["services"]["courses"]["erased"]["submissions"] >= 1
    assert report["services"]["core"]["erased"]["home_folder"] == 1

    # Nothing names them, in any table or file: name, address, phone, their work.
    assert rows_naming(platform, LEARNER, EMAIL, PHONE) == {}
    assert files_naming(platform, LEARNER.encode(), EMAIL.encode(), f"{HOME_MARKER} by {LEARNER}".encode()) == []
    assert not (hub.data_dir / "users" / LEARNER).exists()
    # ... while the course's statistics keep their rows under the pseudonym, and the other learner is untouched.
    kept = rows_naming(platform, report["pseudonym"])
    # (at least as many: notifications and recommendations may still have been recorded meanwhile)
    assert len(kept["events"]) >= len(events_before) and "analytics_learners" in kept
    assert rows_naming(platform, OTHER).keys() >= {"submissions", "enrollments", "notification_preferences"}
    # A second erasure finds nothing more (idempotent).
    again = ok(call(platform, "admin", "POST", "courses/api/data/erasures", json={"user": LEARNER}))
    assert again["services"]["courses"]["erased"]["submissions"] == 0

    # The audit log: who did what to whom, from where; the erased learner now named by nobody.
    items = ok(call(platform, "admin", "GET", "courses/api/audit?limit=1000"))["items"]
    actions = {(i["actor"], i["action"]) for i in items}
    assert actions >= {("admin", "enrollment-changed"), (STAFF, "extension-granted"), (STAFF, "grade-overridden"),
                       (STAFF, "announcement-sent"), (STAFF, "regrade-requested"), ("admin", "data-exported"),
                       ("admin", "data-erased")}
    staff_entry = next(i for i in items if i["action"] == "enrollment-changed")
    assert staff_entry["target"] == STAFF and staff_entry["details"]["role"] == "instructor"
    assert staff_entry["ip"] and staff_entry["course_id"] == COURSE
    overridden = next(i for i in items if i["action"] == "grade-overridden")
    assert overridden["target"] == "(erased)" and overridden["details"]["score"] == 9
    assert not any(LEARNER in json.dumps(i) for i in items)
    listed = learnhub_cli(platform, "audit", "--action", "grade-overridden")
    assert listed.returncode == 0 and "grade-overridden" in listed.stdout and STAFF in listed.stdout


def test_retention_reaches_the_feedback_service(platform):
    """A course archived longer ago than the retention: its grading jobs and help requests, which the
    feedback service holds, go too (the courses service asks it over its api/data/retention)."""
    from datetime import timedelta

    from learnhub.extensions.courses import models as cm
    from learnhub.extensions.feedback.models import HelpRequest
    from learnhub.graders.models import GRADED, GradingJob
    from learnhub.timeutil import utcnow

    old, long_ago = "retired-course", utcnow() - timedelta(days=RETENTION_DAYS + 30)
    engine = lhdb.make_engine(platform["hub"].db_url)
    factory = lhdb.make_session_factory(engine)
    try:
        with lhdb.session_scope(factory) as session:  # (made as the services would have, decades ago)
            session.add(cm.Course(id=old, title="Retired", status="archived", created_at=long_ago, updated_at=long_ago))
            session.add(HelpRequest(course_id=old, assignment_id="a1", learner=OTHER, question="old question"))
            session.add(GradingJob(course_id=old, assignment_id="a1", learner_id=OTHER, source_path="/gone",
                                   status=GRADED, score=1.0))
            session.add(GradingJob(course_id=COURSE, assignment_id="a1", learner_id=OTHER, source_path="/live",
                                   status=GRADED, score=1.0))
        done = learnhub_cli(platform, "data", "retention")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["courses"] == [old] and result["feedback"] == {
            "grading_jobs": 1, "help_requests": 1, "grading_regrades": 0}, result
        with lhdb.session_scope(factory) as session:
            assert session.scalars(select(GradingJob.id).where(GradingJob.course_id == old)).all() == []
            assert session.scalars(select(HelpRequest.id).where(HelpRequest.course_id == old)).all() == []
            assert session.scalars(select(GradingJob.id).where(GradingJob.source_path == "/live")).all()
            assert session.get(cm.Course, old) is not None  # the course itself stays
    finally:
        engine.dispose()
    # The feedback service's endpoint itself: admins only (tests/security/matrix.py), a list of course ids.
    bad = call(platform, "admin", "POST", "feedback/api/data/retention", json={"courses": "all"})
    assert bad.status_code == 400 and "courses" in bad.json()["error"]["message"]
    assert call(platform, OTHER, "POST", "feedback/api/data/retention", json={"courses": [COURSE]}).status_code == 403


def test_the_audit_log_refuses_to_change(platform):
    """Append-only, enforced by the database itself: UPDATE and DELETE fail, even in raw SQL."""
    ok(call(platform, "admin", "POST", f"courses/api/courses/{COURSE}/enrollments", json={"user": OTHER, "role": "ta"}))
    engine = create_engine(lhdb.normalize_url(platform["hub"].db_url))
    try:
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM audit_log")).scalar()
        assert count > 0
        for statement in ("UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"):
                with engine.begin() as connection:
                    connection.execute(text(statement))
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM audit_log")).scalar() == count
            assert connection.execute(text("SELECT count(*) FROM audit_log WHERE action = 'nothing'")).scalar() == 0
    finally:
        engine.dispose()
    # And no API changes it: the audit endpoint only reads.
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert call(platform, "admin", method, "courses/api/audit", json={}).status_code == 405


def test_deleting_a_user_in_the_hub_erases_them(platform):
    hub = platform["hub"]
    make_learner_data(platform, DELETED)
    assert rows_naming(platform, DELETED).keys() >= {"submissions", "notification_preferences", "events"}
    ok(call(platform, ALSO_DELETED, "POST", f"courses/api/courses/{COURSE}/enrollments"), 201)
    for name in (DELETED, ALSO_DELETED):
        deleted = hub.hub_api("DELETE", f"/users/{name}")
        assert deleted.status_code == 204, deleted.text
    left = wait_for(lambda: rows_naming(platform, DELETED, ALSO_DELETED), lambda found: found == {}, timeout=120)
    assert left == {}
    assert files_naming(platform, DELETED.encode(), ALSO_DELETED.encode()) == []
    items = ok(call(platform, "admin", "GET", "courses/api/audit?action=data-erased"))["items"]
    assert any(i["actor"] == "hub" and i["details"].get("reason") for i in items)


def test_erasure_refuses_while_the_persons_server_runs(platform):
    """Their home folder would be written again: stop the server first (the hub's deletion does)."""
    from hubtools import start_server

    hub = platform["hub"]
    start_server(hub, OTHER)
    try:
        refused = call(platform, "admin", "POST", "courses/api/data/erasures", json={"user": OTHER})
        assert refused.status_code == 409 and "stop it first" in refused.json()["error"]["message"]
        assert rows_naming(platform, OTHER).keys() >= {"submissions", "enrollments"}  # nothing was erased
    finally:
        hub.hub_api("DELETE", f"/users/{OTHER}/server")
