"""The event vocabulary: every verb named once, with what its object, result and context hold.

:class:`Verb` is the only place a verb's name is written; producers pass ``Verb.RELEASED``, consumers
subscribe to ``Verb.RELEASED``. :data:`VERB_SPECS` says, per verb, which object types it takes and
which ``result`` and ``context`` fields it requires; :data:`SCHEMA_V2` (JSON Schema, draft 7) is
generated from it. :data:`SCHEMA_V1`, the first version, is kept exactly as it was published: events
a producer still sends as ``schema_version: 1`` are checked against it (a new version is added beside
the old ones, never edited in place).

Verbs outside the vocabulary may be sent by other programs with an ``x-`` prefix (``x-forum-posted``)
through ``POST /services/analytics/api/events``; learnhub's own components use :class:`Verb` only
(``tests/core/test_event_contract.py`` checks that).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum


class Verb(StrEnum):
    """What happened. The value is what the event log stores."""

    # courses service: the catalogue, enrollment, the exchange
    COURSE_CREATED = "course-created"
    COURSE_UPDATED = "course-updated"
    COURSE_DELETED = "course-deleted"
    COURSE_IMPORTED = "course-imported"
    ENROLLED = "enrolled"
    UNENROLLED = "unenrolled"
    PROFILE_UPDATED = "profile-updated"
    RELEASED = "released"
    UNRELEASED = "unreleased"
    FETCHED = "fetched"
    SUBMITTED = "submitted"
    COLLECTED = "collected"
    FEEDBACK_RELEASED = "feedback-released"
    FEEDBACK_FETCHED = "feedback-fetched"
    # feedback service: grading results and help
    GRADED = "graded"
    GRADING_FAILED = "grading-failed"
    ATTEMPTED = "attempted"
    ASKED_HELP = "asked-help"
    ANSWERED_HELP = "answered-help"
    # recommender service
    RECOMMENDED = "recommended"
    # notifications service
    NOTIFICATION_SENT = "notification-sent"
    NOTIFICATION_READ = "notification-read"
    # the single-user server (notebook activity)
    OPENED = "opened"
    SAVED = "saved"
    EXECUTED = "executed"
    ACTIVE = "active"
    # the hub
    LOGGED_IN = "logged-in"
    SERVER_SPAWNED = "server-spawned"
    USER_DELETED = "user-deleted"


OBJECT_TYPES = ("course", "assignment", "exercise", "notebook", "cell", "file", "recommendation",
                "notification", "help-request", "server", "platform", "submission")

_NUMBER = {"type": "number", "minimum": 0}
_TEXT = {"type": "string", "maxLength": 512}
_OPTIONAL_TEXT = {"type": ["string", "null"], "maxLength": 512}
_ROLE = {"enum": ["learner", "ta", "instructor"]}
_PATHS = {"type": "array", "maxItems": 1000, "items": {"type": "string", "maxLength": 512}}
_TESTS = {"type": "array", "maxItems": 5000, "items": {
    "type": "object", "required": ["grade_id"],
    "properties": {"grade_id": {"type": "string", "maxLength": 128},
                   "passed": {"type": ["boolean", "null"]},
                   "points": {"type": ["number", "null"]}, "max_points": {"type": ["number", "null"]},
                   "error_type": {"type": ["string", "null"], "maxLength": 128}}}}
_REASON = {"type": "object", "required": ["code"],
           "properties": {"code": {"type": "string", "maxLength": 64}, "params": {"type": "object"}}}


@dataclass(frozen=True)
class VerbSpec:
    """What an event of one verb holds, beyond the fields every event has.

    ``objects``: the object types it may be about. ``result`` / ``context``: JSON Schema properties
    of those bags that the verb defines (producers may add more); ``requires_result`` /
    ``requires_context``: the ones it must carry, because a consumer relies on them.
    """

    about: str
    objects: tuple[str, ...]
    result: dict = field(default_factory=dict)
    requires_result: tuple[str, ...] = ()
    context: dict = field(default_factory=dict)
    requires_context: tuple[str, ...] = ()


_IN_COURSE = ("course_id",)
_IN_ASSIGNMENT = ("course_id", "assignment_id")
#: a grading's object is the grading job (the feedback service's ``submissions/{id}``); these name the
#: courses service's submission it graded (a regrade is a new job for an old submission) and the regrade
_GRADING_CONTEXT = {"submission_id": {"type": "string", "minLength": 1, "maxLength": 64},
                    "regrade_id": {"type": "string", "minLength": 1, "maxLength": 64},
                    "previous_score": {"type": "number"}}

#: The vocabulary of schema version 2. ``actor`` is the person an event is about (the learner whose
#: submission was graded, the instructor who released an assignment); events by staff say so with
#: ``context.role`` so that learner statistics leave them out.
VERB_SPECS: dict[Verb, VerbSpec] = {
    Verb.COURSE_CREATED: VerbSpec("a course was created", ("course",), requires_context=_IN_COURSE),
    Verb.COURSE_UPDATED: VerbSpec("a course's settings changed", ("course",),
                                  context={"changed": _PATHS}, requires_context=_IN_COURSE),
    Verb.COURSE_DELETED: VerbSpec("a course was deleted", ("course",), requires_context=_IN_COURSE),
    Verb.COURSE_IMPORTED: VerbSpec("a course folder was imported", ("course",),
                                   result={"created": {"type": "boolean"}, "assignments": _PATHS},
                                   requires_context=_IN_COURSE),
    Verb.ENROLLED: VerbSpec("joined a course, or changed role in it", ("course",),
                            result={"role": _ROLE, "previous_role": {"enum": ["learner", "ta", "instructor", None]}},
                            requires_result=("role",), requires_context=_IN_COURSE),
    Verb.UNENROLLED: VerbSpec("left a course", ("course",), result={"role": _ROLE}, requires_context=_IN_COURSE),
    Verb.PROFILE_UPDATED: VerbSpec("changed their learner profile", ("platform",)),
    Verb.RELEASED: VerbSpec("an assignment was released to the course's learners", ("assignment",),
                            result={"title": _TEXT, "due": _OPTIONAL_TEXT, "files": _PATHS},
                            requires_result=("title",), requires_context=_IN_ASSIGNMENT),
    Verb.UNRELEASED: VerbSpec("an assignment was withdrawn", ("assignment",), requires_context=_IN_ASSIGNMENT),
    Verb.FETCHED: VerbSpec("fetched an assignment", ("assignment",), requires_context=_IN_ASSIGNMENT),
    Verb.SUBMITTED: VerbSpec(
        "submitted an assignment (object: the submission)", ("submission", "assignment"),
        result={"attempt": {"type": "integer", "minimum": 1}, "files": _PATHS,
                "autograde": {"type": "boolean", "description": "the feedback service grades it"}},
        requires_context=_IN_ASSIGNMENT),
    Verb.COLLECTED: VerbSpec("staff collected a submission", ("submission",), requires_context=_IN_ASSIGNMENT),
    Verb.FEEDBACK_RELEASED: VerbSpec(
        "staff released feedback on a submission", ("submission",),
        result={"score": _NUMBER, "max_score": _NUMBER, "title": _TEXT},
        requires_context=_IN_ASSIGNMENT),
    Verb.FEEDBACK_FETCHED: VerbSpec("fetched their feedback", ("assignment",), requires_context=_IN_ASSIGNMENT),
    Verb.GRADED: VerbSpec(
        "a submission was autograded (result.tests: one per graded test cell; duration = latency)",
        ("submission", "assignment"),
        result={"score": _NUMBER, "max_score": _NUMBER, "success": {"type": "boolean"},
                "duration": {"type": ["number", "null"], "minimum": 0}, "tests": _TESTS},
        context=_GRADING_CONTEXT, requires_result=("score",), requires_context=_IN_ASSIGNMENT),
    Verb.GRADING_FAILED: VerbSpec("a submission could not be graded", ("submission",),
                                  result={"error": {"type": ["string", "null"], "maxLength": 2000}},
                                  context=_GRADING_CONTEXT, requires_context=_IN_ASSIGNMENT),
    Verb.ATTEMPTED: VerbSpec("an exercise was attempted (object: <assignment>/<grade_id>)", ("exercise",),
                             requires_result=("success",), requires_context=_IN_COURSE),
    Verb.ASKED_HELP: VerbSpec("asked for help on an assignment", ("help-request",),
                              requires_context=_IN_ASSIGNMENT),
    Verb.ANSWERED_HELP: VerbSpec("staff answered a help request (context.learner: who asked)", ("help-request",),
                                 context={"learner": {"type": "string", "minLength": 1, "maxLength": 255}},
                                 requires_context=("course_id", "assignment_id", "learner")),
    Verb.RECOMMENDED: VerbSpec(
        "new recommendations for a learner (the top one in result)", ("recommendation",),
        result={"kind": {"enum": ["course", "assignment", "exercise"]}, "item": _TEXT, "title": _TEXT,
                "reason": _REASON, "reason_text": {"type": "string", "maxLength": 1000}},
        requires_result=("kind", "item", "reason_text"), requires_context=_IN_COURSE),
    Verb.NOTIFICATION_SENT: VerbSpec("a notification was delivered", ("notification",),
                                     result={"channel": {"type": "string", "maxLength": 32},
                                             "type": {"type": "string", "maxLength": 64}},
                                     requires_result=("channel",)),
    Verb.NOTIFICATION_READ: VerbSpec("a notification was read", ("notification",)),
    Verb.OPENED: VerbSpec("opened a notebook or file", ("notebook", "file")),
    Verb.SAVED: VerbSpec("saved a notebook or file", ("notebook", "file")),
    Verb.EXECUTED: VerbSpec("executed a cell (result: success, error_type, duration)", ("cell",),
                            requires_result=("success",)),
    Verb.ACTIVE: VerbSpec("was active in JupyterLab (result.duration: seconds, idle excluded)", ("notebook",),
                          requires_result=("duration",)),
    Verb.LOGGED_IN: VerbSpec("logged in to the hub", ("platform",)),
    Verb.USER_DELETED: VerbSpec("the hub deleted this account (learnhub then erases their data)", ("platform",)),
    Verb.SERVER_SPAWNED: VerbSpec("their single-user server started (result.duration: spawn time)", ("server",),
                                  result={"duration": {"type": "number", "minimum": 0}}),
}

_ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_SLUG = {"type": "string", "minLength": 1, "maxLength": 128}
_CUSTOM_VERB = {"type": "string", "pattern": r"^x-[a-z0-9][a-z0-9-]{0,61}$"}
_COMMON_RESULT = {
    "success": {"type": "boolean"},
    "score": {"type": "number", "minimum": 0},
    "max_score": {"type": "number", "minimum": 0},
    "duration": {"type": "number", "minimum": 0, "description": "seconds"},
    "error_type": {"type": "string", "maxLength": 128},
    "attempt": {"type": "integer", "minimum": 1},
}


#: Version 1, as published (2026-11). Do not edit: add a version instead.
SCHEMA_V1: dict = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://learnhub.example/schemas/event/1",
    "title": "learnhub event, version 1",
    "type": "object",
    "required": ["id", "time", "actor", "verb", "object"],
    "additionalProperties": False,
    "properties": {
        "id": _ID,
        "time": {"type": "string", "format": "date-time", "maxLength": 40},
        "actor": _NAME,
        "verb": {"anyOf": [{"enum": sorted([
            "enrolled", "unenrolled", "fetched", "submitted", "graded", "grading-failed", "attempted",
            "asked-help", "answered-help", "recommendation-shown", "recommendation-clicked",
            "notification-sent", "notification-read", "opened", "saved", "executed", "active", "logged-in",
            "server-spawned"])}, _CUSTOM_VERB]},
        "object": {
            "type": "object", "required": ["type", "id"], "additionalProperties": False,
            "properties": {"type": {"enum": list(OBJECT_TYPES)},
                           "id": {"type": "string", "minLength": 1, "maxLength": 512},
                           "name": {"type": "string", "maxLength": 512}},
        },
        "result": {"type": "object", "properties": dict(_COMMON_RESULT)},
        "context": {
            "type": "object",
            "properties": {
                "course_id": _SLUG,
                "assignment_id": _SLUG,
                "session": {"type": "string", "maxLength": 128},
                "source": {"type": "string", "minLength": 1, "maxLength": 64},
                "role": {"enum": ["learner", "ta", "instructor", "admin", "service"]},
            },
        },
        "schema_version": {"const": 1},
    },
    "allOf": [
        {"if": {"required": ["verb"], "properties": {"verb": {"const": "graded"}}},
         "then": {"required": ["result"], "properties": {"result": {"required": ["score"]}}}},
        {"if": {"required": ["verb"], "properties": {"verb": {"const": "attempted"}}},
         "then": {"required": ["result"], "properties": {"result": {"required": ["success"]},
                                                          "object": {"properties": {"type": {"const": "exercise"}}}}}},
        {"if": {"required": ["verb"], "properties": {"verb": {"enum": ["enrolled", "unenrolled", "fetched", "submitted",
                                                                       "graded", "attempted"]}}},
         "then": {"required": ["context"], "properties": {"context": {"required": ["course_id"]}}}},
    ],
}


def _bag(properties: dict, required: tuple[str, ...]) -> dict:
    bag: dict = {"properties": properties}
    if required:
        bag["required"] = list(required)
    return bag


def _verb_rule(verb: Verb, spec: VerbSpec) -> dict:
    then: dict = {"properties": {"object": {"properties": {"type": {"enum": list(spec.objects)}}}}}
    required = []
    if spec.result or spec.requires_result:
        then["properties"]["result"] = _bag(spec.result, spec.requires_result)
        if spec.requires_result:
            required.append("result")
    if spec.context or spec.requires_context:
        then["properties"]["context"] = _bag(spec.context, spec.requires_context)
        if spec.requires_context:
            required.append("context")
    if required:
        then["required"] = required
    return {"if": {"required": ["verb"], "properties": {"verb": {"const": verb.value}}}, "then": then}


def build_schema_v2() -> dict:
    """Version 2: the vocabulary of :data:`VERB_SPECS`, one rule per verb."""
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://learnhub.example/schemas/event/2",
        "title": "learnhub event, version 2",
        "type": "object",
        "required": ["id", "time", "actor", "verb", "object"],
        "additionalProperties": False,
        "properties": {
            "id": _ID,
            "time": {"type": "string", "format": "date-time", "maxLength": 40},
            "actor": _NAME,
            "verb": {"anyOf": [{"enum": sorted(v.value for v in Verb)}, _CUSTOM_VERB]},
            "object": SCHEMA_V1["properties"]["object"],
            "result": {"type": "object", "properties": dict(_COMMON_RESULT)},
            "context": {
                "type": "object",
                "properties": {
                    "course_id": _SLUG,
                    "assignment_id": _SLUG,
                    "session": {"type": "string", "maxLength": 128},
                    "source": {"type": "string", "minLength": 1, "maxLength": 64},
                    "role": {"enum": ["learner", "ta", "instructor", "admin", "service"]},
                    "by": _NAME,
                },
            },
            "schema_version": {"const": 2},
        },
        "allOf": [_verb_rule(verb, spec) for verb, spec in VERB_SPECS.items()],
    }
    return schema


SCHEMA_V2: dict = build_schema_v2()

SCHEMAS: dict[int, dict] = {1: SCHEMA_V1, 2: SCHEMA_V2}
SCHEMA_VERSION = 2

#: Verbs written by learnhub 0.x before schema 2 named them; migration 0008 renames stored events.
LEGACY_VERBS = {
    "x-course-created": Verb.COURSE_CREATED, "x-course-updated": Verb.COURSE_UPDATED,
    "x-course-deleted": Verb.COURSE_DELETED, "x-course-imported": Verb.COURSE_IMPORTED,
    "x-profile-updated": Verb.PROFILE_UPDATED, "x-assignment-released": Verb.RELEASED,
    "x-assignment-unreleased": Verb.UNRELEASED, "x-submission-collected": Verb.COLLECTED,
    "x-feedback-released": Verb.FEEDBACK_RELEASED, "x-feedback-fetched": Verb.FEEDBACK_FETCHED,
}


def make_event(actor: str, verb: Verb | str, object_type: str, object_id: str, *, course_id: str | None = None,
               result: dict | None = None, context: dict | None = None, source: str | None = None,
               time: datetime | None = None, id: str | None = None) -> dict:
    """A wire-format event of the current schema version; by default with a fresh id and the current time.
    A ``result`` field whose value is None is left out (the schema types what is there).

    Light on purpose (no database code): single-user servers build their events with it."""
    context = dict(context or {})
    if course_id is not None:
        context["course_id"] = course_id
    if source is not None:
        context["source"] = source
    when = time or datetime.now(timezone.utc)
    if when.tzinfo is None:  # learnhub stores UTC; SQLite hands it back naive
        when = when.replace(tzinfo=timezone.utc)
    event = {"id": id or uuid.uuid4().hex, "time": when.isoformat(),
             "actor": actor, "verb": str(verb), "object": {"type": object_type, "id": object_id},
             "schema_version": SCHEMA_VERSION}
    result = {key: value for key, value in (result or {}).items() if value is not None}  # absent, not null
    if result:
        event["result"] = result
    if context:
        event["context"] = context
    return event


@dataclass(frozen=True)
class EventContract:
    """What one component writes to the event log and what it reads from it, by verb.

    Every component declares one (``EVENTS`` in its package); ``tests/core/test_event_contract.py``
    lists them as one table, fails when a component waits for a verb nobody writes or writes one the
    vocabulary does not have, and checks each declaration against the component's code.
    """

    component: str
    #: the ``context.source`` of the events it writes
    source: str
    produces: tuple[Verb, ...] = ()
    consumes: tuple[Verb, ...] = ()
    #: why, where it is not obvious (shown in the table)
    notes: str = ""
