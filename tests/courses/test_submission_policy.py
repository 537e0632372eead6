"""One set of rules for every submission path: :class:`SubmissionPolicy` on a real database, then the
same refusals through the courses API and through the feedback service's POST api/submissions, on a
real hub (``learnhub up`` with the courses and feedback services and the demo course).
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from hubtools import module_platform
from learnhub.extensions.courses import models as m
from learnhub.extensions.courses.catalog import Caller, CourseError
from learnhub.extensions.courses.policy import Extensions, SubmissionPolicy

from test_courses_service import db_execute

REPO = Path(__file__).resolve().parents[2]
COURSE, ASSIGNMENT, NOTEBOOK = "intro-python", "01-basics", "basics.ipynb"
NOTEBOOK_BYTES = (REPO / "courses" / COURSE / "source" / ASSIGNMENT / NOTEBOOK).read_bytes()
COURSES = "/services/courses/api"
ASSIGNMENT_API = f"{COURSES}/courses/{COURSE}/assignments/{ASSIGNMENT}"
PER_WINDOW, WINDOW = 3, 3  # the rate limit of the platform below: 3 submissions per 3 s

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- the engine, on a real DB


@pytest.fixture
def session(db_session_factory):
    with db_session_factory() as session:
        session.add(m.Course(id="c", title="C", status="published"))
        session.flush()  # no ORM relationships: rows go in in the order of their foreign keys
        session.add(m.Assignment(course_id="c", id="a", title="A", due=NOW, hard_deadline=True, max_attempts=1,
                                 released=True, release_files=[]))
        session.flush()
        for user, role in (("ann", "learner"), ("bob", "learner"), ("tia", "ta")):
            session.add(m.Enrollment(course_id="c", user_name=user, role=role))
        session.flush()
        yield session


def add_submission(session, user: str, attempt: int, at: datetime, course="c", assignment="a"):
    session.add(m.Submission(course_id=course, assignment_id=assignment, user_name=user, attempt=attempt,
                             submitted_at=at, timestamp="t", files=[]))
    session.flush()


def refusal(policy, session, user, now):
    course, assignment = session.get(m.Course, "c"), session.get(m.Assignment, ("c", "a"))
    with pytest.raises(CourseError) as info:
        policy.check(course, assignment, user, now)
    return info.value.status, info.value.details.get("reason")


def test_policy_deadline_late_attempts_and_extensions(session):
    policy = SubmissionPolicy(session)
    course, assignment = session.get(m.Course, "c"), session.get(m.Assignment, ("c", "a"))
    assert policy.check(course, assignment, "ann", NOW).minutes_late(NOW) is None
    later = NOW + timedelta(minutes=90, seconds=1)
    assert refusal(policy, session, "ann", later) == (409, "hard_deadline")
    # A soft deadline: accepted, and 91 minutes late.
    assignment.hard_deadline = False
    assert policy.check(course, assignment, "ann", later).minutes_late(later) == 91
    assignment.hard_deadline = True
    # Ann's extension: two more hours and one more attempt; Bob is still refused.
    row, created = Extensions(session).put(Caller("tia"), "c", "a", "ann",
                                           {"due": "2026-11-01T14:00:00Z", "extra_attempts": 1})
    assert created and row["due"].startswith("2026-11-01T14:00:00")
    standing = policy.check(course, assignment, "ann", later)
    assert standing.extended and standing.max_attempts == 2 and standing.minutes_late(later) is None
    assert refusal(policy, session, "bob", later) == (409, "hard_deadline")
    add_submission(session, "ann", 1, NOW)
    assert policy.check(course, assignment, "ann", later).attempts_left == 1
    add_submission(session, "ann", 2, NOW)
    assert refusal(policy, session, "ann", later) == (409, "attempt_limit")
    # Released and archived come first.
    course.status = "archived"
    assert refusal(policy, session, "bob", NOW) == (409, "archived")
    assignment.released = False
    assert refusal(policy, session, "bob", NOW) == (404, "not_released")


def test_extensions_are_for_staff_and_enrolled_learners(session):
    book = Extensions(session)
    with pytest.raises(CourseError) as info:
        book.put(Caller("ann"), "c", "a", "ann", {"extra_attempts": 1})
    assert info.value.status == 403
    for user, body, status in (("nobody", {"extra_attempts": 1}, 404), ("ann", {}, 422),
                               ("ann", {"due": "tomorrow"}, 422), ("ann", {"extra_attempts": -1}, 422),
                               ("ann", {"extra_attempts": True}, 422)):
        with pytest.raises(CourseError) as info:
            book.put(Caller("tia"), "c", "a", user, body)
        assert info.value.status == status, (user, body)
    with pytest.raises(CourseError) as info:
        book.put(Caller("tia"), "c", "nope", "ann", {"extra_attempts": 1})
    assert info.value.status == 404
    book.put(Caller("tia"), "c", "a", "ann", {"extra_attempts": 2})
    _row, created = book.put(Caller("tia"), "c", "a", "ann", {"extra_attempts": 3})
    assert not created and [e["extra_attempts"] for e in book.list(Caller("tia"), "c", "a")] == [3]
    book.delete(Caller("tia"), "c", "a", "ann")
    assert book.list(Caller("tia"), "c", "a") == []


def test_policy_rate_limit_is_a_sliding_window_over_the_submissions_table(session):
    session.get(m.Assignment, ("c", "a")).max_attempts = None
    session.get(m.Assignment, ("c", "a")).due = None
    policy = SubmissionPolicy(session, per_minute=2, window=60)
    add_submission(session, "ann", 1, NOW - timedelta(seconds=50))
    add_submission(session, "ann", 2, NOW - timedelta(seconds=10))
    course, assignment = session.get(m.Course, "c"), session.get(m.Assignment, ("c", "a"))
    with pytest.raises(CourseError) as info:
        policy.check(course, assignment, "ann", NOW)
    assert info.value.status == 429 and info.value.details["retry_after"] == 10
    assert policy.check(course, assignment, "bob", NOW) is not None  # per learner
    assert policy.check(course, assignment, "ann", NOW + timedelta(seconds=11)) is not None
    assert SubmissionPolicy(session, per_minute=0).check(course, assignment, "ann", NOW) is not None


# --------------------------------------------------------------------------- every path, on a real hub


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from module_platform(tmp_path_factory, "policy", services=["courses", "feedback"], demo=True,
                               extra_env={"LEARNHUB_GRADER_WORKERS": "0",
                                          "LEARNHUB_SUBMISSIONS_PER_MINUTE": str(PER_WINDOW),
                                          "LEARNHUB_SUBMISSIONS_WINDOW_SECONDS": str(WINDOW)})


def learner(hub, name: str, role: str = "learner") -> str:
    assert hub.hub_api("POST", f"/users/{name}").status_code in (201, 409)
    enrolled = hub.api("POST", f"{COURSES}/courses/{COURSE}/enrollments", token=hub.admin_token,
                       json={"user": name, "role": role})
    assert enrolled.status_code in (200, 201), enrolled.text
    return hub.user_token(name)


def rules(hub, *, released=True, status="published", due=None, hard=False, max_attempts=None):
    db_execute(hub, "UPDATE course_assignments SET released = :r, due = :due, hard_deadline = :hard, "
                    "max_attempts = :n WHERE course_id = :c AND id = :a",
               r=released, due=due, hard=hard, n=max_attempts, c=COURSE, a=ASSIGNMENT)
    db_execute(hub, "UPDATE courses SET status = :s WHERE id = :c", s=status, c=COURSE)


def via_courses(hub, token):
    return hub.api("POST", f"{ASSIGNMENT_API}/submissions", token=token,
                   files=[("files", (NOTEBOOK, NOTEBOOK_BYTES, "application/x-ipynb+json"))])


def via_feedback(hub, token):
    return hub.api("POST", "/services/feedback/api/submissions", token=token,
                   data={"course": COURSE, "assignment": ASSIGNMENT},
                   files=[("files", (NOTEBOOK, NOTEBOOK_BYTES, "application/x-ipynb+json"))])


def refused(response) -> tuple[int, str | None]:
    return response.status_code, response.json()["error"]["details"].get("reason")


def listing(hub, token) -> dict:
    response = hub.api("GET", f"{COURSES}/courses/{COURSE}/assignments", token=token)
    assert response.status_code == 200, response.text
    return {a["id"]: a for a in response.json()["items"]}[ASSIGNMENT]


def past(minutes: int = 30) -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=minutes)


@pytest.mark.parametrize("setting, expected", [
    ({"released": False}, (404, "not_released")),
    ({"status": "archived"}, (409, "archived")),
    ({"due": "past", "hard": True}, (409, "hard_deadline")),
])
def test_both_paths_refuse_alike(hub, setting, expected):
    token = learner(hub, f"pr-{expected[1].replace('_', '')}")
    rules(hub, **{**setting, **({"due": past()} if setting.get("due") == "past" else {})})
    try:
        assert refused(via_courses(hub, token)) == expected
        assert refused(via_feedback(hub, token)) == expected
    finally:
        rules(hub)
    assert via_courses(hub, token).status_code == 201  # the rules, not the learner, said no


def test_attempts_and_an_extension_for_one_learner(hub):
    ann, bob = learner(hub, "pa-ann"), learner(hub, "pa-bob")
    rules(hub, max_attempts=1)
    try:
        assert via_courses(hub, ann).status_code == 201
        assert via_feedback(hub, bob).status_code == 202
        for token in (ann, bob):
            assert refused(via_courses(hub, token)) == (409, "attempt_limit")
            assert refused(via_feedback(hub, token)) == (409, "attempt_limit")
        assert listing(hub, ann)["attempts_left"] == 0
        # A learner cannot grant themselves one; the admin (staff) gives Ann one more attempt.
        mine = hub.api("PUT", f"{ASSIGNMENT_API}/extensions/pa-ann", token=ann, json={"extra_attempts": 1})
        assert mine.status_code == 403
        assert hub.api("GET", f"{ASSIGNMENT_API}/extensions", token=ann).status_code == 403
        granted = hub.api("PUT", f"{ASSIGNMENT_API}/extensions/pa-ann", token=hub.admin_token,
                          json={"extra_attempts": 1})
        assert granted.status_code == 201, granted.text
        assert listing(hub, ann)["attempts_left"] == 1 and listing(hub, ann)["extended"] is True
        assert listing(hub, bob)["attempts_left"] == 0 and listing(hub, bob)["extended"] is False
        assert via_feedback(hub, ann).status_code == 202
        assert refused(via_courses(hub, ann)) == (409, "attempt_limit")
        assert refused(via_feedback(hub, bob)) == (409, "attempt_limit")
        assert hub.api("PUT", f"{ASSIGNMENT_API}/extensions/pa-nobody", token=hub.admin_token,
                       json={"extra_attempts": 1}).status_code == 404
        assert hub.api("PUT", f"{COURSES}/courses/{COURSE}/assignments/nope/extensions/pa-ann",
                       token=hub.admin_token, json={"extra_attempts": 1}).status_code == 404
        assert hub.api("DELETE", f"{ASSIGNMENT_API}/extensions/pa-ann", token=ann).status_code == 403
        assert hub.api("DELETE", f"{ASSIGNMENT_API}/extensions/pa-ann",
                       token=hub.admin_token).status_code == 204
        assert hub.api("DELETE", f"{ASSIGNMENT_API}/extensions/pa-ann",
                       token=hub.admin_token).status_code == 404
    finally:
        rules(hub)


def test_deadlines_late_marks_and_a_later_due_date_for_one_learner(hub):
    ann, bob = learner(hub, "pd-ann"), learner(hub, "pd-bob")
    ta = learner(hub, "pd-tia", role="ta")
    due = past(30)
    rules(hub, due=due, hard=False)
    try:
        # Soft deadline: accepted on both paths and marked late.
        late = via_courses(hub, ann)
        assert late.status_code == 201 and late.json()["late"] is True and 29 <= late.json()["minutes_late"] <= 31
        queued = via_feedback(hub, bob)
        assert queued.status_code == 202
        rows = db_execute(hub, "SELECT minutes_late FROM submissions WHERE id = :i", i=queued.json()["id"])
        assert rows[0][0] is not None and rows[0][0] >= 29
        # Hard deadline: refused, except for Ann, whose due date a TA moved to tomorrow.
        rules(hub, due=due, hard=True)
        tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).replace(microsecond=0)
        granted = hub.api("PUT", f"{ASSIGNMENT_API}/extensions/pd-ann", token=ta,
                          json={"due": tomorrow.isoformat().replace("+00:00", "Z")})
        assert granted.status_code == 201, granted.text
        listed = hub.api("GET", f"{ASSIGNMENT_API}/extensions", token=ta).json()["items"]
        assert [(e["user"], e["extra_attempts"]) for e in listed] == [("pd-ann", 0)]
        on_time = via_feedback(hub, ann)
        assert on_time.status_code == 202
        sub = via_courses(hub, ann)
        assert sub.status_code == 201 and sub.json()["late"] is False and sub.json()["minutes_late"] is None
        for response in (via_courses(hub, bob), via_feedback(hub, bob)):
            assert refused(response) == (409, "hard_deadline")
        # Each learner sees their own due date.
        mine, theirs = listing(hub, ann), listing(hub, bob)
        assert mine["extended"] is True and mine["due"].startswith(tomorrow.strftime("%Y-%m-%dT%H:%M:%S"))
        assert theirs["extended"] is False and theirs["due"] == theirs["assignment_due"] == mine["assignment_due"]
        assert theirs["due"].startswith(due.strftime("%Y-%m-%dT%H:%M"))
        progress = hub.api("GET", f"{COURSES}/courses/{COURSE}/progress", token=ann).json()["assignments"]
        assert [(a["due"], a["extended"]) for a in progress if a["id"] == ASSIGNMENT] == [(mine["due"], True)]
    finally:
        rules(hub)


def test_the_rate_limit_holds_on_both_paths(hub):
    token = learner(hub, "pr-rita")
    rules(hub)
    codes = [via_courses(hub, token).status_code for _ in range(PER_WINDOW)]
    assert codes == [201] * PER_WINDOW
    limited = via_courses(hub, token)
    assert refused(limited) == (429, "rate_limit")
    wait = int(limited.headers["Retry-After"])
    assert 1 <= wait <= WINDOW
    relayed = via_feedback(hub, token)
    assert refused(relayed) == (429, "rate_limit")
    assert 1 <= int(relayed.headers["Retry-After"]) <= wait
    # Another learner is not held up; this one may submit again once the oldest leaves the window.
    assert via_courses(hub, learner(hub, "pr-otto")).status_code == 201
    time.sleep(int(relayed.headers["Retry-After"]))
    assert via_feedback(hub, token).status_code == 202
