"""The permission matrix: for every route of every service, the answer each kind of person gets.

One row per operation, ``"METHOD /path"`` exactly as the service's ``api/openapi.json`` names it, with
seven status codes in the order of :data:`COLUMNS`. ``tests/security/test_permission_matrix.py`` walks
every operation every service describes, as each of these people, on a platform with real data
(``securitytools.populate``), and fails on a route that has no row here (its message gives the row to
add, with the answers it saw: check them before pasting), on a row whose route is gone, and on any
answer that differs from its row.

What the people are (see ``securitytools.USERS``):

* ``anonymous`` — no credentials at all;
* ``learner`` — enrolled as a learner in the course the request names (``intro-python``), with a graded
  submission and a help request of their own there;
* ``other_learner`` — a learner of another course only;
* ``ta``, ``instructor`` — of the course the request names;
* ``other_instructor`` — instructor of another course only;
* ``admin`` — the hub's admin (every ``custom:learnhub:*`` scope).

What a request sends: the path's values from :data:`PATH_VALUES` (real ids of the data, or the
stand-ins below), a JSON ``{}`` body for POST, PUT and PATCH, unless :data:`PROBES` says otherwise.
Requests that change something are chosen so that they change nothing the next rows depend on: an
empty or invalid body (staff then get 400/422 — past the permission check — and the others 403), or
an id that does not exist. WebSocket routes answer a plain GET with 400 once the caller is let in.
"""
from __future__ import annotations

COLUMNS = ("anonymous", "learner", "other_learner", "ta", "instructor", "other_instructor", "admin")

#: Values of path parameters; ``{submission_id}`` and the like are filled in from the data made.
PATH_VALUES = {
    "course_id": "intro-python",
    "assignment_id": "01-basics",
    "user": "ada",
    "submission_id": "{submission_id}",
    "request_id": "{request_id}",
    "notification_id": "{notification_id}",
    "regrade_id": "no-such-regrade",
    "execution_id": "no-such-execution",
    "delivery_id": "no-such-delivery",
    "path": "dashboards.js",
    "platform_id": "no-such-platform",
    "context_pk": "0",
}

#: Per operation, what differs from the defaults: ``path`` (values), ``query``, ``json`` (the body),
#: ``form`` (form fields, sent as a multipart body without files).
PROBES = {
    # Unenrolling someone not enrolled: the learner may not touch others (403), staff find nobody (404).
    ("courses", "DELETE /api/courses/{course_id}/enrollments/{user}"): {"path": {"user": "nobody-enrolled"}},
    # The learner, as the learner she already is: nothing changes (200), but only she and the course's
    # instructors may say so; anyone else adding her is refused.
    ("courses", "POST /api/courses/{course_id}/enrollments"): {"json": {"user": "ada", "role": "learner"}},
    # Withdrawing the release of an assignment that does not exist.
    ("courses", "DELETE /api/courses/{course_id}/assignments/{assignment_id}/release"):
        {"path": {"assignment_id": "no-such-assignment"}},
    # Regrading an assignment that does not exist starts nothing.
    ("feedback", "POST /api/courses/{course_id}/assignments/{assignment_id}/regrades"):
        {"path": {"assignment_id": "no-such-assignment"}},
    # A submission and a check naming the course but carrying no notebook: members are told the files
    # are missing, everyone else that they may not submit there.
    ("feedback", "POST /api/submissions"): {"form": {"course": "intro-python", "assignment": "01-basics"}},
    ("feedback", "POST /api/checks"): {"form": {"course": "intro-python", "assignment": "01-basics"}},
    # Data rights: reading ada's data changes nothing; erasing is asked for someone who has none, so
    # ada's data stays for the rows after.
    **{(service, "GET /api/data/export"): {"query": {"user": "ada"}}
       for service in ("courses", "feedback", "recommender", "analytics", "notifications")},
    **{(service, "POST /api/data/erase"): {"json": {"user": "nobody-enrolled", "pseudonym": "erased-00000000"}}
       for service in ("courses", "feedback", "recommender", "analytics", "notifications")},
    ("courses", "GET /api/data/archives"): {"query": {"user": "ada"}},
    ("courses", "POST /api/data/erasures"): {"json": {"user": "nobody-enrolled"}},
    # Retention asked for a course that does not exist: nothing is deleted for the rows after.
    ("feedback", "POST /api/data/retention"): {"json": {"courses": ["no-such-course"]}},
    # A valid change of a linked LMS course that does not exist: the walk gets past the body's shape.
    ("courses", "PATCH /api/lti/contexts/{context_pk}"): {"json": {"score_policy": "best"}},
}

#: The routes every service has (learnhub/service.py), unless a service's own rows say otherwise.
COMMON: dict[str, str] = {
    "GET /": "302 200 200 200 200 200 200",
    "GET /api/health": "200 200 200 200 200 200 200",
    "GET /api/openapi.json": "200 200 200 200 200 200 200",
    "GET /api/whoami": "401 200 200 200 200 200 200",
    "GET /metrics": "401 403 403 403 403 403 200",
    "GET /oauth_callback": "400 400 400 400 400 400 400",
    # Data rights (learnhub/data_rights.py): admins, or holders of custom:learnhub:data:admin, only.
    "GET /api/data/export": "401 403 403 403 403 403 200",
    "POST /api/data/erase": "401 403 403 403 403 403 200",
}

#: service -> "METHOD /path" -> the seven answers, in COLUMNS' order.
MATRIX: dict[str, dict[str, str]] = {
    "courses": {
        "GET /api/courses": "401 200 200 200 200 200 200",
        "POST /api/courses": "401 403 403 403 403 403 422",
        "GET /api/courses/{course_id}": "401 200 200 200 200 200 200",
        "PATCH /api/courses/{course_id}": "401 403 403 403 200 403 200",
        "DELETE /api/courses/{course_id}": "401 403 403 403 409 403 409",
        "GET /api/courses/{course_id}/enrollments": "401 403 403 200 200 403 200",
        "POST /api/courses/{course_id}/enrollments": "401 200 403 403 200 403 200",
        "DELETE /api/courses/{course_id}/enrollments/{user}": "401 403 403 403 404 403 404",
        "GET /api/courses/{course_id}/assignments": "401 200 403 200 200 403 200",
        "GET /api/courses/{course_id}/progress": "401 200 403 200 200 403 200",
        "GET /api/profile": "401 200 200 200 200 200 200",
        "PUT /api/profile": "401 200 200 200 200 200 200",
        "GET /api/profiles/{user}": "401 200 403 403 403 403 200",
        "GET /api/schedule": "401 403 403 403 403 403 200",
        "POST /api/courses/{course_id}/assignments/{assignment_id}/release": "401 403 403 403 400 403 400",
        "DELETE /api/courses/{course_id}/assignments/{assignment_id}/release": "401 403 403 403 404 403 404",
        "GET /api/courses/{course_id}/assignments/{assignment_id}/download": "401 200 403 200 200 403 200",
        "GET /api/courses/{course_id}/assignments/{assignment_id}/submissions": "401 200 403 200 200 403 200",
        "POST /api/courses/{course_id}/assignments/{assignment_id}/submissions": "401 400 403 400 400 403 403",
        "GET /api/courses/{course_id}/assignments/{assignment_id}/submissions/{submission_id}/files":
            "401 200 404 200 200 404 200",
        "GET /api/courses/{course_id}/assignments/{assignment_id}/feedback": "401 200 403 200 200 403 200",
        "POST /api/courses/{course_id}/assignments/{assignment_id}/feedback": "401 403 403 400 400 403 400",
        "GET /api/courses/{course_id}/assignments/{assignment_id}/extensions": "401 403 403 200 200 403 200",
        "PUT /api/courses/{course_id}/assignments/{assignment_id}/extensions/{user}":
            "401 403 403 422 422 403 422",
        "DELETE /api/courses/{course_id}/assignments/{assignment_id}/extensions/{user}":
            "401 403 403 404 404 403 404",
        # data rights: the coordinator and the audit log
        "GET /api/data/archives": "401 403 403 403 403 403 200",
        "POST /api/data/erasures": "401 403 403 403 403 403 200",
        "POST /api/data/retention": "401 403 403 403 403 403 200",
        "GET /api/audit": "401 403 403 403 403 403 200",
        # LTI 1.3 (docs/lti.md): platforms are the admin's, a course's LMS link its instructors'
        "GET /api/lti/platforms": "401 403 403 403 403 403 200",
        "POST /api/lti/platforms": "401 403 403 403 403 403 422",
        "PATCH /api/lti/platforms/{platform_id}": "401 403 403 403 403 403 404",
        "DELETE /api/lti/platforms/{platform_id}": "401 403 403 403 403 403 404",
        "PATCH /api/lti/contexts/{context_pk}": "401 404 404 404 404 404 404",
        "GET /api/courses/{course_id}/lti": "401 403 403 200 200 403 200",
        "POST /api/courses/{course_id}/lti/roster-sync": "401 403 403 403 409 403 409",
        "GET /api/courses/{course_id}/lti/scores": "401 403 403 200 200 403 200",
        "POST /api/courses/{course_id}/lti/scores/retry": "401 403 403 403 200 403 200",
    },
    "feedback": {
        "POST /api/submissions": "401 400 403 400 400 403 400",
        "GET /api/submissions/{submission_id}": "401 200 404 200 200 404 200",
        "GET /api/submissions/{submission_id}/events": "401 400 404 400 400 404 400",
        "POST /api/checks": "401 400 403 400 400 403 400",
        "GET /api/checks/{submission_id}": "401 404 404 404 404 404 404",
        "GET /api/checks/{submission_id}/events": "401 404 404 404 404 404 404",
        "GET /api/grading/stats": "401 403 403 403 403 403 200",
        "GET /api/help-requests": "401 200 200 200 200 200 200",
        "POST /api/help-requests": "401 422 422 422 422 422 422",
        "GET /api/help-requests/events": "401 400 400 400 400 400 400",
        "GET /api/help-requests/{request_id}": "401 200 404 200 200 404 200",
        "POST /api/courses/{course_id}/assignments/{assignment_id}/regrades": "401 403 403 404 404 403 404",
        "GET /api/courses/{course_id}/assignments/{assignment_id}/regrades": "401 403 403 200 200 403 200",
        "GET /api/courses/{course_id}/assignments/{assignment_id}/regrades/{regrade_id}":
            "401 403 403 404 404 403 404",
        "POST /api/courses/{course_id}/assignments/{assignment_id}/executions": "401 403 403 400 400 403 400",
        "GET /api/executions/{execution_id}": "401 404 404 404 404 404 404",
        "POST /api/help-requests/{request_id}/answers": "401 403 404 422 422 404 422",
        # retention of archived courses' grading jobs and help requests (the courses service's job calls it)
        "POST /api/data/retention": "401 403 403 403 403 403 200",
    },
    "recommender": {
        "GET /api/recommendations": "401 200 200 200 200 200 200",
        "GET /api/mastery": "401 200 200 200 200 200 200",
        "GET /api/model": "401 200 200 200 200 200 200",
        "POST /api/refits": "401 403 403 403 403 403 201",
    },
    "analytics": {
        "POST /api/events": "401 400 400 400 400 400 400",
        "GET /api/courses/{course_id}/report": "401 403 403 200 200 403 200",
        "GET /api/courses/{course_id}/export": "401 403 403 200 200 403 200",
        "GET /api/platform/report": "401 403 403 403 403 403 200",
        "GET /dashboards": "302 200 200 200 200 200 200",
        "GET /courses/{course_id}/dashboard": "302 403 403 200 200 403 200",
        "GET /platform/dashboard": "302 403 403 403 403 403 200",
        "GET /static/{path}": "200 200 200 200 200 200 200",
    },
    "notifications": {
        "GET /api/notifications": "401 200 200 200 200 200 200",
        "GET /api/notifications/stream": "401 400 400 400 400 400 400",
        "POST /api/notifications/{notification_id}/read": "401 200 404 404 404 404 404",
        "GET /api/preferences": "401 200 200 200 200 200 200",
        "PUT /api/preferences": "401 200 200 200 200 200 200",
        "POST /api/courses/{course_id}/announcements": "401 403 403 403 422 403 422",
        "GET /api/dead-letters": "401 403 403 403 403 403 200",
        "POST /api/dead-letters/{delivery_id}/retry": "401 403 403 403 403 403 404",
    },
}
