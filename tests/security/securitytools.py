"""A platform with real data for the permission matrix and the fuzzer, and the people who ask.

Everything is real: ``learnhub up`` with the demo course (the hub, its proxy, the five services, the
grading worker in its bubblewrap sandbox); people created in the hub; enrollments made through the
courses service; a learner's notebook submitted to the feedback service and graded by the real grader
(as tests/e2e/test_dashboards_e2e.py does); a help request asked through the feedback service.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from learnhub.course_content import generate_release, load_course

REPO = Path(__file__).resolve().parents[2]
COURSE = "intro-python"
COURSE_DIR = REPO / "courses" / COURSE
ASSIGNMENT = "01-basics"
NOTEBOOK = "basics.ipynb"
OTHER_COURSE = "sec-other-course"
GRADED_S = 300

#: The people of the matrix, in its columns' order, and who each one is on the platform.
PERSONAS = ("anonymous", "learner", "other_learner", "ta", "instructor", "other_instructor", "admin")
USERS = {"learner": "ada", "other_learner": "olga", "ta": "tess", "instructor": "ivan",
         "other_instructor": "oscar"}


@dataclass
class Platform:
    """The running hub, each persona's token (None: anonymous) and the ids the data got."""

    hub: object
    tokens: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.hub.url

    def service_url(self, service: str) -> str:
        return f"{self.hub.url}/services/{service}"

    def call(self, persona: str, method: str, url: str, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        token = self.tokens.get(persona)
        if token:
            headers["Authorization"] = f"token {token}"
        return requests.request(method, url, headers=headers, timeout=60, allow_redirects=False, **kwargs)


def _ok(response: requests.Response, *codes: int) -> dict:
    assert response.status_code in codes, f"{response.request.method} {response.url}: {response.status_code} {response.text}"
    return response.json() if response.content else {}


def populate(hub, folder: Path) -> Platform:
    """People, two courses with their members, a graded submission and a help request."""
    platform = Platform(hub)
    admin = hub.admin_token
    platform.tokens = {"anonymous": None, "admin": admin}
    for persona, name in USERS.items():
        _ok(hub.hub_api("POST", f"/users/{name}"), 201, 409)
        platform.tokens[persona] = hub.user_token(name)
    courses = f"{hub.url}/services/courses/api"
    auth = {"Authorization": f"token {admin}"}
    _ok(requests.post(f"{courses}/courses", headers=auth, timeout=60,
                      json={"id": OTHER_COURSE, "title": "Another course", "status": "published",
                            "open_enrollment": False}), 201, 409)
    for course, persona, role in ((COURSE, "learner", "learner"), (COURSE, "ta", "ta"),
                                  (COURSE, "instructor", "instructor"), (OTHER_COURSE, "other_learner", "learner"),
                                  (OTHER_COURSE, "other_instructor", "instructor")):
        _ok(requests.post(f"{courses}/courses/{course}/enrollments", headers=auth, timeout=60,
                          json={"user": USERS[persona], "role": role}), 200, 201)

    # The learner submits the solution; the real grader grades it.
    solution = (COURSE_DIR / "source" / ASSIGNMENT / NOTEBOOK).read_bytes()
    generate_release(load_course(COURSE_DIR), ASSIGNMENT, folder / "release")  # the course's release works
    accepted = _ok(platform.call("learner", "POST", f"{hub.url}/services/feedback/api/submissions",
                                 data={"course": COURSE, "assignment": ASSIGNMENT},
                                 files=[("files", (NOTEBOOK, solution, "application/x-ipynb+json"))]), 202)
    submission = accepted["id"]
    deadline = time.monotonic() + GRADED_S
    while True:
        state = _ok(platform.call("learner", "GET", f"{hub.url}/services/feedback/api/submissions/{submission}"), 200)
        if state["status"] in ("graded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert state["status"] == "graded", state
    platform.ids["submission_id"] = submission
    help_request = _ok(platform.call("learner", "POST", f"{hub.url}/services/feedback/api/help-requests",
                                     json={"course": COURSE, "assignment": ASSIGNMENT,
                                           "question": "Why does my loop stop early?"}), 201)
    platform.ids["request_id"] = help_request["id"]
    # The grading's notification reaches the learner's inbox (the notifications service listens to the
    # event log); its id names a real notification of hers in the matrix.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        inbox = _ok(platform.call("learner", "GET", f"{hub.url}/services/notifications/api/notifications"), 200)
        if inbox.get("items"):
            platform.ids["notification_id"] = inbox["items"][0]["id"]
            break
        time.sleep(0.5)
    return platform
