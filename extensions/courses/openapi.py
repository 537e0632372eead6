"""The OpenAPI ``paths`` of the courses service (tests/core/test_service_kit.py checks they match the routes)."""
from __future__ import annotations

ERROR = {"$ref": "#/components/responses/Error"}
C = {"name": "course_id", "in": "path", "required": True, "schema": {"type": "string"}}
A = {"name": "assignment_id", "in": "path", "required": True, "schema": {"type": "string"}}
PAGE = [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}}]
LIST = {"description": "{items: [...], next: cursor|null}"}
UPLOAD = {"required": True, "content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
    "files": {"type": "array", "items": {"type": "string", "format": "binary"},
              "description": "one part per file; the part's filename is the relative path"}}}}}}


COURSE_BODY = {"type": "object", "properties": {
    "id": {"type": "string"}, "title": {"type": "string"}, "description": {"type": "string"},
    "level": {"type": "string", "enum": ["beginner", "intermediate", "advanced"]},
    "tags": {"type": "array", "items": {"type": "string"}},
    "prerequisites": {"type": "array", "items": {"type": "string"}},
    "status": {"type": "string", "enum": ["draft", "published", "archived"]},
    "open_enrollment": {"type": "boolean"},
    "skills": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "title": {"type": "string"},
        "prerequisites": {"type": "array", "items": {"type": "string"}}}}}}}
PROFILE_BODY = {"type": "object", "properties": {
    "goals": {"type": "string"}, "goal_skills": {"type": "array", "items": {"type": "string"}},
    "preferred_topics": {"type": "array", "items": {"type": "string"}},
    "level": {"type": "string", "enum": ["beginner", "intermediate", "advanced"], "nullable": True},
    "weekly_hours": {"type": "number", "nullable": True}, "language": {"type": "string", "nullable": True}}}


def json_body(schema: dict) -> dict:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def q(name: str, description: str, type_: str = "string") -> dict:
    return {"name": name, "in": "query", "description": description, "schema": {"type": type_}}


def errors(*codes: int) -> dict:
    return {str(code): ERROR for code in codes}


def paths() -> dict:
    spec = _paths()
    # Path-level parameters go into each operation (tools and the kit's test read operations only).
    for operations in spec.values():
        shared = operations.pop("parameters", [])
        for operation in operations.values():
            operation["parameters"] = shared + operation.get("parameters", [])
    return spec


def _paths() -> dict:
    return {
        "/api/courses": {
            "get": {"summary": "The catalogue (learners see published courses)",
                    "parameters": [q("q", "search text"), q("tag", "tag"), q("level", "beginner|intermediate|advanced"),
                                   q("skill", "skill id"), q("status", "draft|published|archived"),
                                   q("mine", "1: only courses the caller is enrolled in")] + PAGE,
                    "responses": {"200": LIST, **errors(400, 401, 403)}},
            "post": {"summary": "Create a course (instructors, admins); the creator becomes its instructor",
                     "requestBody": json_body({**COURSE_BODY, "required": ["id", "title"]}),
                     "responses": {"201": {"description": "the course"}, **errors(400, 401, 403, 409, 422)}},
        },
        "/api/courses/{course_id}": {
            "parameters": [C],
            "get": {"summary": "One course", "responses": {"200": {"description": "the course"},
                                                            **errors(401, 403, 404)}},
            "patch": {"summary": "Change a course (its instructors, admins): title, status, ...",
                      "requestBody": json_body(COURSE_BODY),
                      "responses": {"200": {"description": "the course"}, **errors(400, 401, 403, 404, 422)}},
            "delete": {"summary": "Delete a course without submissions (else 409: archive it)",
                       "responses": {"204": {"description": "deleted"}, **errors(401, 403, 404, 409)}},
        },
        "/api/courses/{course_id}/enrollments": {
            "parameters": [C],
            "get": {"summary": "Members of the course (staff)", "parameters": [q("role", "learner|ta|instructor")] + PAGE,
                    "responses": {"200": LIST, **errors(401, 403, 404)}},
            "post": {"summary": "Self-enroll (open courses) or add a user with a role (instructors)",
                     "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                         "user": {"type": "string"}, "role": {"type": "string", "enum": ["learner", "ta", "instructor"]}}}}}},
                     "responses": {"200": {"description": "already enrolled / role changed"},
                                   "201": {"description": "enrolled"}, **errors(400, 401, 403, 404, 409, 422)}},
        },
        "/api/courses/{course_id}/enrollments/{user}": {
            "parameters": [C, {"name": "user", "in": "path", "required": True, "schema": {"type": "string"}}],
            "delete": {"summary": "Unenroll (oneself, or anyone by an instructor)",
                       "responses": {"204": {"description": "removed"}, **errors(401, 403, 404)}},
        },
        "/api/courses/{course_id}/assignments": {
            "parameters": [C],
            "get": {"summary": "Assignments with the caller's status, attempts, due date and score",
                    "parameters": [q("user", "staff: for this learner")] + PAGE,
                    "responses": {"200": LIST, **errors(401, 403, 404)}},
        },
        "/api/courses/{course_id}/progress": {
            "parameters": [C],
            "get": {"summary": "Progress per assignment and per skill", "parameters": [q("user", "staff: for this learner")],
                    "responses": {"200": {"description": "assignments and skills"}, **errors(401, 403, 404)}},
        },
        "/api/profile": {
            "get": {"summary": "The caller's learner profile", "responses": {"200": {"description": "profile"},
                                                                              **errors(401, 403)}},
            "put": {"summary": "Replace the caller's learner profile (validated)",
                    "requestBody": json_body(PROFILE_BODY),
                    "responses": {"200": {"description": "profile"}, **errors(400, 401, 403, 422)}},
        },
        "/api/profiles/{user}": {
            "parameters": [{"name": "user", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"summary": "One person's learner profile (themselves; learnhub's services and admins: anyone)",
                    "responses": {"200": {"description": "profile"}, **errors(401, 403)}},
        },
        "/api/schedule": {
            "get": {"summary": "Released assignments with their due dates, across courses (learnhub's services, "
                               "admins: custom:learnhub:courses:read)",
                    "parameters": [q("course", "one course"), q("due_after", "ISO 8601 time with a zone"),
                                   q("due_before", "ISO 8601 time with a zone")] + PAGE,
                    "responses": {"200": LIST, **errors(400, 401, 403)}},
        },
        "/api/courses/{course_id}/assignments/{assignment_id}/release": {
            "parameters": [C, A],
            "post": {"summary": "Release an assignment: upload the student version (instructors)",
                     "parameters": [q("force", "1: replace an existing release")], "requestBody": UPLOAD,
                     "responses": {"201": {"description": "released"}, **errors(400, 401, 403, 404, 409, 413, 422)}},
            "delete": {"summary": "Withdraw a released assignment (instructors)",
                       "responses": {"200": {"description": "withdrawn"}, **errors(401, 403, 404)}},
        },
        "/api/courses/{course_id}/assignments/{assignment_id}/download": {
            "parameters": [C, A],
            "get": {"summary": "Fetch a released assignment (members): files with content_b64",
                    "responses": {"200": {"description": "files"}, **errors(401, 403, 404)}},
        },
        "/api/courses/{course_id}/assignments/{assignment_id}/submissions": {
            "parameters": [C, A],
            "get": {"summary": "Submissions: a learner's own; staff all (latest=1 or collect=1: newest per learner)",
                    "parameters": [q("user", "one learner"), q("latest", "1: newest per learner"),
                                   q("collect", "same as latest")] + PAGE,
                    "responses": {"200": LIST, **errors(401, 403, 404)}},
            "post": {"summary": "Submit (members; the feedback service for a learner named in the form field "
                                "'user'); recorded before the answer; the rules of the assignment (release, archived course, deadline "
                                "and late policy, attempts, the learner's extension) and the per-learner rate limit "
                                "(429 with Retry-After) apply",
                     "requestBody": UPLOAD,
                     "responses": {"201": {"description": "the submission; grading: {id, status, score, ...} of its "
                                                         "autograding (per-test results: "
                                                         "/services/feedback/api/submissions/{id}), or null without "
                                                         "an instructor source"},
                                   **errors(400, 401, 403, 404, 409, 413, 422, 429)}},
        },
        "/api/courses/{course_id}/assignments/{assignment_id}/submissions/{submission_id}/files": {
            "parameters": [C, A, {"name": "submission_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "get": {"summary": "A submission's files (its learner; staff: collect)",
                    "responses": {"200": {"description": "files with content_b64"}, **errors(401, 403, 404)}},
        },
        "/api/courses/{course_id}/assignments/{assignment_id}/feedback": {
            "parameters": [C, A],
            "get": {"summary": "The caller's feedback (staff: ?user=)", "parameters": [q("user", "staff: this learner")],
                    "responses": {"200": {"description": "submissions with feedback files"}, **errors(401, 403, 404)}},
            "post": {"summary": "Release feedback for one submission (staff): multipart files + submission or "
                                "user&timestamp, optional score, max_score, cell_scores",
                     "requestBody": UPLOAD,
                     "responses": {"201": {"description": "released"}, **errors(400, 401, 403, 404, 413, 422)}},
        },
        "/api/courses/{course_id}/assignments/{assignment_id}/extensions": {
            "parameters": [C, A],
            "get": {"summary": "Per-learner extensions of the assignment (staff)", "parameters": PAGE,
                    "responses": {"200": LIST, **errors(401, 403, 404)}},
        },
        "/api/courses/{course_id}/assignments/{assignment_id}/extensions/{user}": {
            "parameters": [C, A, {"name": "user", "in": "path", "required": True, "schema": {"type": "string"}}],
            "put": {"summary": "Give one enrolled learner a later due date and/or more attempts (staff): "
                               "{due: ISO 8601 time|null, extra_attempts: n}; replaces their extension",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"due": {"type": ["string", "null"], "format": "date-time"},
                                                         "extra_attempts": {"type": "integer", "minimum": 0}}}}}},
                    "responses": {"200": {"description": "replaced"}, "201": {"description": "granted"},
                                  **errors(400, 401, 403, 404, 422)}},
            "delete": {"summary": "Withdraw one learner's extension (staff)",
                       "responses": {"204": {"description": "withdrawn"}, **errors(401, 403, 404)}},
        },
        # LTI 1.3 Advantage (docs/lti.md)
        "/api/lti/platforms": {
            "get": {"summary": "The registered LMSs (admins)", "responses": {"200": LIST, **errors(401, 403)}},
            "post": {"summary": "Register an LMS: issuer, client_id, endpoints, deployment_ids (admins)",
                     "responses": {"201": {"description": "the platform"}, **errors(400, 401, 403, 409, 422)}},
        },
        "/api/lti/platforms/{platform_id}": {
            "parameters": [{"name": "platform_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "patch": {"summary": "Change a registered LMS (admins; not those from learnhub_config.py)",
                      "responses": {"200": {"description": "the platform"}, **errors(401, 403, 404, 409, 422)}},
            "delete": {"summary": "Unregister an LMS (admins)",
                       "responses": {"204": {"description": "removed"}, **errors(401, 403, 404, 409)}},
        },
        "/api/lti/contexts/{context_pk}": {
            "parameters": [{"name": "context_pk", "in": "path", "required": True, "schema": {"type": "string"}}],
            "patch": {"summary": "Set a linked LMS course's score_policy (instructors) or relink its course_id (admins)",
                      "responses": {"200": {"description": "the link"}, **errors(401, 403, 404, 422)}},
        },
        "/api/courses/{course_id}/lti": {
            "parameters": [C],
            "get": {"summary": "The LMS courses linked to this course (staff)", "responses": {"200": LIST, **errors(401, 403, 404)}},
        },
        "/api/courses/{course_id}/lti/roster-sync": {
            "parameters": [C],
            "post": {"summary": "Sync the roster from the LMS now (NRPS; instructors): new members enrolled, "
                                "dropped ones marked inactive and unenrolled (their work stays)",
                     "responses": {"200": {"description": "counts per linked LMS course, and `dropped`: "
                                                          "the names whose enrollment went"}, **errors(401, 403, 404, 409, 502)}},
        },
        "/api/courses/{course_id}/lti/scores": {
            "parameters": [C],
            "get": {"summary": "The grade passback outbox (staff): each graded submission's score and its delivery",
                    "parameters": [q("status", "pending|sent|failed"), *PAGE],
                    "responses": {"200": {"description": "{items: [...], next: cursor|null, failed: n (of the "
                                                         "items), counts: {pending, sent, failed} of the whole course}"},
                                  **errors(401, 403, 404, 422)}},
        },
        "/api/courses/{course_id}/lti/scores/retry": {
            "parameters": [C],
            "post": {"summary": "Send failed scores again (instructors); body {id} for one",
                     "responses": {"200": {"description": "{requeued: n}"}, **errors(401, 403, 404)}},
        },
    }
