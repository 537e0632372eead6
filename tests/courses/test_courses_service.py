"""The courses service through a real hub: catalogue, enrollment, profiles, permissions, bad input,
concurrency, and nbgrader's own CLI doing a full round trip over the HTTP exchange.

One platform (``learnhub up``) serves the whole module; every test uses its own users and courses.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from sqlalchemy import create_engine, text

from hubtools import module_platform
from learnhub import db as lhdb
from learnhub.course_content import empty_gradebook
from learnhub.extensions.singleuser import config_dir
from learnhub.events import Verb

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parents[2]
API = "/services/courses/api"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # the feedback service too: an instructor's `nbgrader autograde` executes in its grading sandboxes
    env = {"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"}
    yield from module_platform(tmp_path_factory, "courses", services=["courses", "feedback"], extra_env=env)


class People:
    """Hub users and their tokens, made on demand."""

    def __init__(self, hub):
        self.hub = hub
        self.tokens = {"admin": hub.admin_token}

    def token(self, name: str, instructor: bool = False) -> str:
        if name not in self.tokens:
            response = self.hub.hub_api("POST", f"/users/{name}")
            assert response.status_code in (201, 409), response.text
            if instructor:
                self.hub.hub_api("POST", "/groups/learnhub-instructors/users", json={"users": [name]}).raise_for_status()
            self.tokens[name] = self.hub.user_token(name)
        return self.tokens[name]

    def call(self, who: str | None, method: str, path: str, **kwargs):
        token = self.tokens.get(who) if who else None
        if who and token is None:
            token = self.token(who)
        return self.hub.api(method, API + path, token=token, **kwargs)


@pytest.fixture(scope="module")
def people(hub):
    return People(hub)


def notebook_bytes(marker: str = "") -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell(f"work of {marker}"))
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    return nbformat.writes(nb).encode()


def upload(files: dict[str, bytes]):
    return [("files", (name, data)) for name, data in files.items()]


def db_execute(hub, sql: str, **params):
    engine = create_engine(lhdb.normalize_url(hub.db_url))
    with engine.begin() as connection:
        result = connection.execute(text(sql), params)
        rows = result.fetchall() if result.returns_rows else None
    engine.dispose()
    return rows


def make_course(people, who: str, course_id: str, **fields):
    body = {"id": course_id, "title": f"Course {course_id}", "status": "published", "open_enrollment": True,
            **fields}
    response = people.call(who, "POST", "/courses", json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --------------------------------------------------------------------------- catalogue, enrollment, profiles


def course_ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["items"]]


def group_members(hub, course_id: str, role_plural: str) -> list[str]:
    return hub.hub_api("GET", f"/groups/course-{course_id}-{role_plural}").json()["users"]


def verbs_of(hub, course_id: str) -> set[str]:
    return {row[0] for row in db_execute(hub, "SELECT verb FROM events WHERE course_id = :c", c=course_id)}


@pytest.fixture(scope="module")
def catalogue(people):
    """cat-prof's courses: cat-python (published, open, searchable), cat-draft (a draft), cat-closed
    (published, closed to self-enrollment, advanced). Tests read them and enroll people in them; none
    changes or deletes them (the lifecycle tests make courses of their own)."""
    people.token("cat-prof", instructor=True)
    make_course(people, "cat-prof", "cat-python", description="Loops and lists", level="beginner",
                tags=["python", "Programming"], skills=[{"id": "loops", "title": "Loops"}])
    make_course(people, "cat-prof", "cat-draft", status="draft", title="Secret draft")
    make_course(people, "cat-prof", "cat-closed", open_enrollment=False, level="advanced")
    return "cat-python"


def test_learners_see_published_courses_only(people, catalogue):
    assert "cat-draft" not in course_ids(people.call("cat-ann", "GET", "/courses?limit=200"))
    assert "cat-draft" in course_ids(people.call("cat-prof", "GET", "/courses?limit=200"))
    assert people.call("cat-ann", "GET", "/courses/cat-draft").status_code == 404


def test_catalogue_search_tag_level_and_skill_filters(people, catalogue):
    assert course_ids(people.call("cat-ann", "GET", "/courses?q=LISTS")) == ["cat-python"]  # any case
    assert course_ids(people.call("cat-ann", "GET", "/courses?tag=programming")) == ["cat-python"]
    assert course_ids(people.call("cat-ann", "GET", "/courses?skill=loops")) == ["cat-python"]
    advanced = course_ids(people.call("cat-ann", "GET", "/courses?level=advanced"))
    assert "cat-closed" in advanced and "cat-python" not in advanced


def test_catalogue_pages_with_a_cursor(people, catalogue):
    first = people.call("cat-ann", "GET", "/courses?limit=1").json()
    assert len(first["items"]) == 1 and first["next"]
    second = people.call("cat-ann", "GET", f"/courses?limit=1&cursor={first['next']}").json()
    assert second["items"][0]["id"] != first["items"][0]["id"]
    assert people.call("cat-ann", "GET", "/courses?limit=0").status_code == 400


def test_self_enrollment_in_an_open_course_is_mirrored_into_the_hub_group(hub, people, catalogue):
    response = people.call("cat-ann", "POST", "/courses/cat-python/enrollments", json={})
    assert response.status_code == 201 and response.json()["role"] == "learner"
    assert response.json()["mirrored"] is True
    assert "cat-ann" in group_members(hub, "cat-python", "learners")
    assert "cat-prof" in group_members(hub, "cat-python", "instructors")  # the creator teaches it
    # Enrolling again changes nothing; a closed course and a role of one's own choosing are refused.
    assert people.call("cat-ann", "POST", "/courses/cat-python/enrollments", json={}).status_code == 200
    assert people.call("cat-ann", "POST", "/courses/cat-closed/enrollments", json={}).status_code == 403
    assert people.call("cat-ann", "POST", "/courses/cat-python/enrollments",
                       json={"role": "instructor"}).status_code == 403
    assert Verb.ENROLLED in verbs_of(hub, "cat-python")


def test_staff_enroll_others_and_a_role_change_moves_them_between_hub_groups(hub, people):
    people.token("st-prof", instructor=True)
    make_course(people, "st-prof", "st-course")
    people.token("st-lea")
    assert people.call("st-lea", "POST", "/courses/st-course/enrollments", json={}).status_code == 201
    people.token("st-tim")
    assert people.call("st-prof", "POST", "/courses/st-course/enrollments",
                       json={"user": "st-tim", "role": "learner"}).status_code == 201
    assert people.call("st-prof", "POST", "/courses/st-course/enrollments",
                       json={"user": "st-tim", "role": "ta"}).status_code == 200
    assert "st-tim" in group_members(hub, "st-course", "tas")
    assert "st-tim" not in group_members(hub, "st-course", "learners")
    bad = people.call("st-prof", "POST", "/courses/st-course/enrollments", json={"user": "nobody-here"})
    assert bad.status_code == 422
    bad = people.call("st-prof", "POST", "/courses/st-course/enrollments", json={"user": "st-tim", "role": "boss"})
    assert bad.status_code == 422
    # The TA sees who is in the course.
    members = people.call("st-tim", "GET", "/courses/st-course/enrollments").json()["items"]
    assert {(m["user"], m["role"]) for m in members} == {("st-prof", "instructor"), ("st-lea", "learner"),
                                                         ("st-tim", "ta")}
    # Removing someone takes them out of the hub group; removing them twice is a 404.
    assert people.call("st-prof", "DELETE", "/courses/st-course/enrollments/st-tim").status_code == 204
    assert "st-tim" not in group_members(hub, "st-course", "tas")
    assert people.call("st-prof", "DELETE", "/courses/st-course/enrollments/st-tim").status_code == 404
    assert {Verb.ENROLLED, Verb.UNENROLLED} <= verbs_of(hub, "st-course")


def test_course_lifecycle_patch_refused_values_duplicate_id_and_delete(hub, people):
    people.token("lc-prof", instructor=True)
    make_course(people, "lc-prof", "lc-course")
    make_course(people, "lc-prof", "lc-gone")
    patched = people.call("lc-prof", "PATCH", "/courses/lc-course", json={"title": "Python!", "status": "archived"})
    assert patched.status_code == 200 and patched.json()["status"] == "archived"
    assert patched.json()["title"] == "Python!"
    assert people.call("lc-prof", "PATCH", "/courses/lc-course", json={"status": "gone"}).status_code == 422
    assert people.call("lc-prof", "PATCH", "/courses/lc-course", json={"id": "x"}).status_code == 422
    assert people.call("lc-prof", "GET", "/courses/lc-course").json()["status"] == "archived"  # refused: unchanged
    dup = people.call("lc-prof", "POST", "/courses", json={"id": "lc-course", "title": "again"})
    assert dup.status_code == 409 and dup.json()["error"]["status"] == 409
    for body in ({"id": "Bad Id", "title": "x"}, {"id": "ok-id"}, {"id": "ok-id", "title": "x", "colour": "red"},
                 {"id": "ok-id", "title": "x", "level": "expert"}, ["not", "an", "object"]):
        assert people.call("lc-prof", "POST", "/courses", json=body).status_code == 422, body
    assert people.call("lc-prof", "POST", "/courses", data="{nope").status_code == 400
    assert people.call("lc-prof", "GET", "/courses/ok-id").status_code == 404  # none of them was made
    assert people.call("lc-prof", "DELETE", "/courses/lc-gone").status_code == 204
    assert people.call("lc-prof", "GET", "/courses/lc-gone").status_code == 404
    assert {Verb.COURSE_CREATED, Verb.COURSE_UPDATED} <= verbs_of(hub, "lc-course")


def test_profile_defaults_validation_and_replacement(people):
    assert people.call("pf-ann", "GET", "/profile").json()["goals"] == ""  # nobody wrote one yet
    good = {"goals": "Automate my spreadsheets", "goal_skills": ["loops"], "preferred_topics": ["data"],
            "level": "beginner", "weekly_hours": 4, "language": "pt-BR"}
    saved = people.call("pf-ann", "PUT", "/profile", json=good)
    assert saved.status_code == 200 and saved.json()["weekly_hours"] == 4.0
    assert people.call("pf-ann", "GET", "/profile").json()["language"] == "pt-BR"
    for bad_profile in ({"weekly_hours": 500}, {"weekly_hours": "lots"}, {"level": "guru"},
                        {"goal_skills": ["Not A Slug"]}, {"language": "english please"}, {"mood": "happy"},
                        {"goals": "x" * 5000}):
        response = people.call("pf-ann", "PUT", "/profile", json=bad_profile)
        assert response.status_code == 422, bad_profile
        assert response.json()["error"]["message"]
    assert people.call("pf-ann", "GET", "/profile").json()["goals"] == good["goals"]  # unchanged


def test_progress_of_a_learner_and_who_may_read_it(people, catalogue):
    assert people.call("pg-ann", "POST", "/courses/cat-python/enrollments", json={}).status_code == 201
    # No assignment in the course yet: empty lists.
    assert people.call("pg-ann", "GET", "/courses/cat-python/assignments").json() == {"items": [], "next": None}
    progress = people.call("pg-ann", "GET", "/courses/cat-python/progress").json()
    assert progress["user"] == "pg-ann" and progress["assignments"] == []
    assert people.call("cat-prof", "GET", "/courses/cat-python/progress?user=pg-ann").status_code == 200
    assert people.call("pg-ann", "GET", "/courses/cat-python/progress?user=cat-prof").status_code == 403
    assert people.call("pg-ann", "GET", "/courses/nope/progress").status_code == 404


# --------------------------------------------------------------------------- permission matrix

ROLES = ("learner", "ta", "other", "admin", "anon")


@pytest.fixture(scope="module")
def matrix_course(hub, people):
    """Course pm-course: pm-prof teaches, pm-ta assists, pm-learner learns; pm-other teaches pm-other-course.
    hw1 is released, pm-learner submitted it and got feedback on it; hw-old was released and withdrawn."""
    people.token("pm-prof", instructor=True)
    people.token("pm-other", instructor=True)
    make_course(people, "pm-prof", "pm-course")
    make_course(people, "pm-other", "pm-other-course")
    for user, role in (("pm-ta", "ta"), ("pm-learner", "learner"), ("pm-learner2", "learner")):
        people.token(user)
        assert people.call("pm-prof", "POST", "/courses/pm-course/enrollments",
                           json={"user": user, "role": role}).status_code == 201
    released = people.call("pm-prof", "POST", "/courses/pm-course/assignments/hw1/release",
                           files=upload({"hw1.ipynb": notebook_bytes("release")}))
    assert released.status_code == 201, released.text
    sub = people.call("pm-learner", "POST", "/courses/pm-course/assignments/hw1/submissions",
                      files=upload({"hw1.ipynb": notebook_bytes("pm-learner")}))
    assert sub.status_code == 201, sub.text
    feedback = people.call("pm-prof", "POST", "/courses/pm-course/assignments/hw1/feedback",
                           files=upload({"hw1.html": b"<html>feedback</html>"}), data={"submission": sub.json()["id"]})
    assert feedback.status_code == 201, feedback.text
    old = "/courses/pm-course/assignments/hw-old/release"
    assert people.call("pm-prof", "POST", old, files=upload({"old.ipynb": notebook_bytes("old")})).status_code == 201
    assert people.call("pm-prof", "DELETE", old).status_code == 200
    return {"submission": sub.json()["id"]}


WHO = {"learner": "pm-learner", "ta": "pm-ta", "other": "pm-other", "admin": "admin", "anon": None}


def matrix_cases(submission_id: str):
    c, a = "/courses/pm-course", "/courses/pm-course/assignments/hw1"
    fb = lambda: {"files": upload({"hw1.html": b"<html>feedback</html>"}), "data": {"submission": submission_id}}  # noqa
    nb = lambda m: {"files": upload({"hw1.ipynb": notebook_bytes(m)})}  # noqa: E731
    counter = iter(range(1000))
    # (method, path, kwargs-factory, {role: expected status})
    return [
        ("GET", "/courses", dict, dict(learner=200, ta=200, other=200, admin=200)),
        ("POST", "/courses", lambda: {"json": {"id": f"pm-new-{next(counter)}", "title": "t"}},
         dict(learner=403, ta=403, other=201, admin=201)),
        ("GET", c, dict, dict(learner=200, ta=200, other=200, admin=200)),
        ("PATCH", c, lambda: {"json": {"description": "d"}}, dict(learner=403, ta=403, other=403, admin=200)),
        ("GET", c + "/enrollments", dict, dict(learner=403, ta=200, other=403, admin=200)),
        ("POST", c + "/enrollments", lambda: {"json": {"user": "pm-extra", "role": "learner"}},
         dict(learner=403, ta=403, other=403, admin=201)),
        ("DELETE", c + "/enrollments/pm-extra", dict, dict(learner=403, ta=403, other=403, admin=204)),
        ("GET", c + "/assignments", dict, dict(learner=200, ta=200, other=403, admin=200)),
        ("GET", c + "/progress", dict, dict(learner=200, ta=200, other=403, admin=200)),
        ("GET", c + "/progress?user=pm-learner2", dict, dict(learner=403, ta=200, other=403, admin=200)),
        ("GET", "/profile", dict, dict(learner=200, ta=200, other=200, admin=200)),
        ("PUT", "/profile", lambda: {"json": {"goals": "learn"}}, dict(learner=200, ta=200, other=200, admin=200)),
        ("POST", c + "/assignments/hw2/release", lambda: nb("r2"), dict(learner=403, ta=403, other=403, admin=201)),
        ("DELETE", c + "/assignments/hw2/release", dict, dict(learner=403, ta=403, other=403, admin=200)),
        ("GET", a + "/download", dict, dict(learner=200, ta=200, other=403, admin=200)),
        ("GET", c + "/assignments/hw2/download", dict, dict(learner=404, ta=404, other=403, admin=404)),
        ("POST", a + "/submissions", lambda: nb("m"), dict(learner=201, ta=201, other=403, admin=403)),
        ("GET", a + "/submissions", dict, dict(learner=200, ta=200, other=403, admin=200)),
        ("GET", a + "/submissions?user=pm-learner2", dict, dict(learner=403, ta=200, other=403, admin=200)),
        ("GET", f"{a}/submissions/{submission_id}/files", dict, dict(learner=200, ta=200, other=404, admin=200)),
        ("POST", a + "/feedback", fb, dict(learner=403, ta=201, other=403, admin=201)),
        ("GET", a + "/feedback", dict, dict(learner=200, ta=200, other=403, admin=200)),
        ("GET", a + "/feedback?user=pm-learner2", dict, dict(learner=403, ta=200, other=403, admin=200)),
        ("DELETE", "/courses/pm-other-course", dict, dict(learner=403, ta=403, other=204, admin=404)),
    ]


def test_permission_matrix(hub, people, matrix_course):
    people.token("pm-extra")
    failures = []
    for method, path, kwargs, expected in matrix_cases(matrix_course["submission"]):
        expected = {**expected, "anon": 401}
        for role in ROLES:
            response = people.call(WHO[role], method, path, **kwargs())
            if response.status_code != expected[role]:
                failures.append(f"{role:8} {method} {path}: {response.status_code} (want {expected[role]}) "
                                f"{response.text[:120]}")
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}, (role, method, path)
    assert not failures, "\n".join(failures)


def test_learners_see_only_their_own_work(hub, people, matrix_course):
    mine = people.call("pm-learner2", "GET", "/courses/pm-course/assignments/hw1/submissions").json()["items"]
    assert all(s["user"] == "pm-learner2" for s in mine)
    # pm-learner2 asking for pm-learner's submission gets the same answer as for one that does not exist
    other = people.call("pm-learner2", "GET",
                        f"/courses/pm-course/assignments/hw1/submissions/{matrix_course['submission']}/files")
    assert other.status_code == 404 and "pm-learner" not in other.text
    feedback = people.call("pm-learner2", "GET", "/courses/pm-course/assignments/hw1/feedback").json()
    assert feedback["items"] == []
    own = people.call("pm-learner", "GET", "/courses/pm-course/assignments/hw1/feedback").json()
    assert own["items"] and base64.b64decode(own["items"][0]["feedback"][0]["content_b64"]) == b"<html>feedback</html>"
    listed = people.call("pm-learner", "GET", "/courses/pm-course/assignments").json()["items"]
    # hw-old (and hw2, when the permission matrix ran) was withdrawn: learners do not see it
    assert [a["id"] for a in listed] == ["hw1"]
    assert listed[0]["status"] == "graded" and listed[0]["attempts_used"] >= 1


# --------------------------------------------------------------------------- bad input


def test_bad_uploads_leave_nothing_behind(hub, people):
    people.token("bi-prof", instructor=True)
    make_course(people, "bi-prof", "bi-course")
    people.token("bi-ann")
    people.call("bi-ann", "POST", "/courses/bi-course/enrollments", json={})
    a = "/courses/bi-course/assignments/hw"

    def count():
        return db_execute(hub, "SELECT count(*) FROM submissions WHERE course_id = 'bi-course'")[0][0]

    # unknown course / assignment; unreleased
    assert people.call("bi-ann", "POST", "/courses/nope/assignments/hw/submissions",
                       files=upload({"a.ipynb": notebook_bytes()})).status_code == 404
    assert people.call("bi-ann", "POST", a + "/submissions", files=upload({"a.ipynb": notebook_bytes()})).status_code == 404
    assert people.call("bi-ann", "GET", a + "/download").status_code == 404
    # release: invalid notebook (422 names the file), traversal (400), re-release needs force (409)
    bad = people.call("bi-prof", "POST", a + "/release",
                      files=upload({"good.ipynb": notebook_bytes(), "broken.ipynb": b"{not json"}))
    assert bad.status_code == 422 and "broken.ipynb" in bad.json()["error"]["message"]
    assert people.call("bi-ann", "GET", a + "/download").status_code == 404  # nothing was released
    for name in ("../evil.ipynb", "/abs.ipynb", "dir/../../x.txt"):
        response = people.call("bi-prof", "POST", a + "/release", files=upload({name: notebook_bytes()}))
        assert response.status_code == 400, (name, response.text)
    assert people.call("bi-prof", "POST", a + "/release", files=[]).status_code == 400
    assert people.call("bi-prof", "POST", a + "/release",
                       files=upload({"hw.ipynb": notebook_bytes(), "data/input.csv": b"1,2"})).status_code == 201
    again = people.call("bi-prof", "POST", a + "/release", files=upload({"hw.ipynb": notebook_bytes()}))
    assert again.status_code == 409 and "force" in again.json()["error"]["message"]
    assert people.call("bi-prof", "POST", a + "/release?force=1",
                       files=upload({"hw.ipynb": notebook_bytes(), "data/input.csv": b"1,2"})).status_code == 201
    files = people.call("bi-ann", "GET", a + "/download").json()["files"]
    assert sorted(f["path"] for f in files) == ["data/input.csv", "hw.ipynb"]

    # submissions: invalid notebook, traversal, too large — none recorded
    wrong = people.call("bi-ann", "POST", a + "/submissions",
                        files=upload({"hw.ipynb": json.dumps({"cells": "nope"}).encode()}))
    assert wrong.status_code == 422 and "hw.ipynb" in wrong.json()["error"]["message"]
    assert people.call("bi-ann", "POST", a + "/submissions",
                       files=upload({"../../hw.ipynb": notebook_bytes()})).status_code == 400
    huge = people.call("bi-ann", "POST", a + "/submissions",
                       files=upload({"hw.ipynb": notebook_bytes(), "big.bin": b"0" * (51 * 1024 * 1024)}))
    assert huge.status_code == 413, huge.text[:200]
    assert count() == 0

    # attempt limit and hard deadline: 409 with the reason
    db_execute(hub, "UPDATE course_assignments SET max_attempts = 2 WHERE course_id = 'bi-course' AND id = 'hw'")
    for attempt in (1, 2):
        ok = people.call("bi-ann", "POST", a + "/submissions", files=upload({"hw.ipynb": notebook_bytes()}))
        assert ok.status_code == 201 and ok.json()["attempt"] == attempt
    over = people.call("bi-ann", "POST", a + "/submissions", files=upload({"hw.ipynb": notebook_bytes()}))
    assert over.status_code == 409 and over.json()["error"]["details"]["reason"] == "attempt_limit"
    past = datetime.now(timezone.utc) - timedelta(hours=1)
    db_execute(hub, "UPDATE course_assignments SET max_attempts = NULL, hard_deadline = :t, due = :due "
                    "WHERE course_id = 'bi-course' AND id = 'hw'", t=True, due=past)
    late = people.call("bi-ann", "POST", a + "/submissions", files=upload({"hw.ipynb": notebook_bytes()}))
    assert late.status_code == 409 and late.json()["error"]["details"]["reason"] == "hard_deadline"
    assert count() == 2
    # feedback for an unknown submission
    assert people.call("bi-prof", "POST", a + "/feedback", data={"submission": "nope"},
                       files=upload({"x.html": b"<p>"})).status_code == 404
    # a course with submissions cannot be deleted, only archived
    assert people.call("bi-prof", "DELETE", "/courses/bi-course").status_code == 409


# --------------------------------------------------------------------------- concurrency


def test_twenty_concurrent_submissions_are_all_recorded(hub, people):
    people.token("cc-prof", instructor=True)
    make_course(people, "cc-prof", "cc-course")
    people.call("cc-prof", "POST", "/courses/cc-course/assignments/hw/release",
                files=upload({"hw.ipynb": notebook_bytes("release")})).raise_for_status()
    learners = [f"cc-learner-{i:02d}" for i in range(20)]
    with ThreadPoolExecutor(20) as pool:
        list(pool.map(people.token, learners))
        enrolled = list(pool.map(lambda u: people.call(u, "POST", "/courses/cc-course/enrollments", json={}), learners))
    assert all(r.status_code == 201 for r in enrolled)

    def submit(user):
        return people.call(user, "POST", "/courses/cc-course/assignments/hw/submissions",
                           files=upload({"hw.ipynb": notebook_bytes(user)}))

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(submit, learners))
    assert [r.status_code for r in answers] == [201] * 20, [r.text[:200] for r in answers if r.status_code != 201]
    assert [r.json()["user"] for r in answers] == learners

    listed = people.call("cc-prof", "GET", "/courses/cc-course/assignments/hw/submissions?limit=200").json()["items"]
    assert sorted(s["user"] for s in listed) == learners
    for sub in listed:
        files = people.call("cc-prof", "GET", f"/courses/cc-course/assignments/hw/submissions/{sub['id']}/files").json()
        content = base64.b64decode(files["files"][0]["content_b64"]).decode()
        assert f"work of {sub['user']}" in content  # nobody's work under someone else's name

    # one learner submitting 5 times at once: 5 attempts, numbered 1..5, none lost
    with ThreadPoolExecutor(5) as pool:
        same = list(pool.map(lambda _: submit("cc-learner-00"), range(5)))
    assert all(r.status_code == 201 for r in same), [r.text[:200] for r in same]
    attempts = sorted(s["attempt"] for s in people.call(
        "cc-learner-00", "GET", "/courses/cc-course/assignments/hw/submissions").json()["items"])
    assert attempts == [1, 2, 3, 4, 5, 6]


# --------------------------------------------------------------------------- nbgrader end to end


class Person:
    """One user's own machine: a home directory, their token, nbgrader's CLI."""

    def __init__(self, hub, name: str, token: str, root: Path):
        self.name, self.home = name, root / name
        self.home.mkdir(parents=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "LEARNHUB"))}
        self.env.update({
            "HOME": str(self.home), "USER": name,
            "JUPYTERHUB_API_TOKEN": token,
            "LEARNHUB_COURSES_URL": hub.url + "/services/courses/",
            "LEARNHUB_FEEDBACK_URL": hub.url + "/services/feedback/",
            # exactly what a single-user server gets: the learnhub.extensions.singleuser config dir
            "JUPYTER_CONFIG_PATH": config_dir(),
        })

    def nbgrader(self, *args, cwd: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd or self.home, env=self.env,
                              capture_output=True, text=True, timeout=300)
        if ok:
            assert done.returncode == 0, f"{self.name}: nbgrader {' '.join(args)}\n{done.stdout}\n{done.stderr}"
        return done


def test_nbgrader_round_trip_over_http(hub, people, tmp_path):
    people.token("e2e-prof", instructor=True)
    make_course(people, "e2e-prof", "e2e")
    prof = Person(hub, "e2e-prof", people.tokens["e2e-prof"], tmp_path)
    learners = {}
    for name in ("e2e-ann", "e2e-bob"):
        learners[name] = Person(hub, name, people.token(name), tmp_path)
        assert people.call(name, "POST", "/courses/e2e/enrollments", json={}).status_code == 201

    # The instructor's course directory, in the instructor's home only. (An empty gradebook is laid
    # down from learnhub's template: nbgrader would otherwise spend seconds creating it in a subprocess.)
    course = prof.home / "course"
    shutil.copytree(REPO / "courses" / "intro-python" / "source" / "01-basics", course / "source" / "01-basics")
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'e2e'\n")
    empty_gradebook(course / "gradebook.db")
    prof.nbgrader("generate_assignment", "01-basics", cwd=course)
    prof.nbgrader("release_assignment", "01-basics", cwd=course)

    def fetch_and_submit(name: str) -> None:
        person = learners[name]
        person.nbgrader("fetch_assignment", "01-basics", "--course", "e2e")
        notebook = person.home / "e2e" / "01-basics" / "basics.ipynb"
        nb = nbformat.read(notebook, as_version=4)
        for cell in nb.cells:  # each learner's own words in their answer cells
            if cell.metadata.get("nbgrader", {}).get("solution"):
                cell.source = f"# answer of {name}\n" + cell.source
        nbformat.write(nb, notebook)
        person.nbgrader("submit", "01-basics", "--course", "e2e")

    # Learners work at the same time, each on their own machine.
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(fetch_and_submit, learners))

    inbound = prof.nbgrader("list", "--inbound", cwd=course)
    assert "e2e-ann" in inbound.stdout + inbound.stderr and "e2e-bob" in inbound.stdout + inbound.stderr
    prof.nbgrader("collect", "01-basics", cwd=course)
    for name in learners:
        assert (course / "submitted" / name / "01-basics" / "basics.ipynb").is_file()
    prof.nbgrader("autograde", "01-basics", cwd=course)
    prof.nbgrader("generate_feedback", "01-basics", cwd=course)
    prof.nbgrader("release_feedback", "01-basics", cwd=course)

    def fetch_feedback(name: str) -> str:
        person = learners[name]
        person.nbgrader("fetch_feedback", "01-basics", "--course", "e2e")
        feedback = list((person.home / "e2e" / "01-basics" / "feedback").glob("*/basics.html"))
        assert len(feedback) == 1, feedback
        return feedback[0].read_text()

    with ThreadPoolExecutor(2) as pool:
        pages = dict(zip(learners, pool.map(fetch_feedback, learners)))
    for name, html in pages.items():
        other = next(n for n in learners if n != name)
        assert f"answer of {name}" in html and f"answer of {other}" not in html
    cached = learners["e2e-ann"].nbgrader("list", "--cached", "--course", "e2e")
    assert "01-basics" in cached.stdout + cached.stderr and "feedback" in cached.stdout + cached.stderr

    # Learner B cannot fetch learner A's feedback, nor A's submission.
    theirs = people.call("e2e-bob", "GET", "/courses/e2e/assignments/01-basics/feedback?user=e2e-ann")
    assert theirs.status_code == 403
    ann_subs = people.call("e2e-ann", "GET", "/courses/e2e/assignments/01-basics/submissions").json()["items"]
    assert people.call("e2e-bob", "GET", f"/courses/e2e/assignments/01-basics/submissions/{ann_subs[0]['id']}/files"
                       ).status_code == 404
    # The grade reached the service: status graded, with a score; the event log has the whole story.
    mine = people.call("e2e-ann", "GET", "/courses/e2e/assignments").json()["items"][0]
    assert mine["status"] == "graded" and mine["score"] is not None and mine["attempts_used"] == 1
    verbs = {row[0] for row in db_execute(hub, "SELECT verb FROM events WHERE course_id = 'e2e'")}
    assert {Verb.RELEASED, Verb.FETCHED, Verb.SUBMITTED, Verb.COLLECTED, Verb.FEEDBACK_RELEASED,
            Verb.FEEDBACK_FETCHED} <= verbs
    # Nothing was shared on disk: each home holds only its own user's files.
    assert not (learners["e2e-bob"].home / "course").exists()

    # nbgrader's own `list --remove` withdraws a release; submissions it cannot remove, and says so.
    refused = prof.nbgrader("list", "--inbound", "--remove", "01-basics", cwd=course, ok=False)
    assert refused.returncode != 0 and "cannot be removed" in refused.stdout + refused.stderr
    before = learners["e2e-bob"].nbgrader("list", "--course", "e2e")
    assert "e2e 01-basics" in before.stdout + before.stderr
    prof.nbgrader("list", "--remove", "01-basics", cwd=course)
    listed = learners["e2e-bob"].nbgrader("list", "--course", "e2e")
    assert "e2e 01-basics" not in listed.stdout + listed.stderr
    assert people.call("e2e-bob", "GET", "/courses/e2e/assignments/01-basics/download").status_code == 404
    assert len(people.call("e2e-ann", "GET", "/courses/e2e/assignments/01-basics/submissions").json()["items"]) == 1


# --------------------------------------------------------------------------- hub groups when the hub is away


def test_group_mirroring_is_reconciled_after_a_failure(hub, people):
    import asyncio

    from learnhub.extensions.courses.app import CoursesService
    from learnhub.extensions.courses.hubgroups import CourseGroupMirror
    from learnhub.hubapi import HubAPI

    # An enrollment made while the hub cannot be reached still stands; mirroring reports failure.
    away = CoursesService(db_url=hub.db_url, api_token="unused", hub_api_url="http://127.0.0.1:9/hub/api")
    away.initialize([])
    try:
        assert asyncio.run(away.mirror("rc-course", "rc-ann", "learner")) is False
    finally:
        away.engine.dispose()

    # Reconciliation brings the hub groups in line with the database, removals included.
    people.token("rc-ann")
    people.token("rc-stray")
    hub.hub_api("POST", "/groups/course-rc-course-learners").raise_for_status()
    hub.hub_api("POST", "/groups/course-rc-course-learners/users", json={"users": ["rc-stray"]}).raise_for_status()
    groups = CourseGroupMirror(HubAPI(hub.url + "/hub/api", hub.admin_token))
    changes = asyncio.run(groups.reconcile({"rc-course": {"rc-ann": "learner"}}))
    assert changes == 2
    assert hub.hub_api("GET", "/groups/course-rc-course-learners").json()["users"] == ["rc-ann"]
    assert hub.hub_api("GET", "/groups/course-rc-course-tas").json()["users"] == []
    assert asyncio.run(groups.reconcile({"rc-course": {"rc-ann": "learner"}})) == 0
