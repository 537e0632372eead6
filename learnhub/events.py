"""The event log: one xAPI-shaped schema for every event, validation with reasons, and an append API.

Every learnhub component records what people do as events — who (``actor``) did what (``verb``) to
which ``object``, with what ``result``, in which ``context`` — and appends them here::

    from learnhub.events import EventLog, make_event
    EventLog().append(session, [make_event("alice", "submitted", "assignment", "loops",
                                           course_id="intro-python", source="courses")])

An event on the wire (``POST /services/analytics/api/events``) is a JSON object::

    {"id": "3f0c…", "time": "2026-11-26T10:00:00Z", "actor": "alice", "verb": "attempted",
     "object": {"type": "exercise", "id": "loops/sum-to-n"},
     "result": {"success": false, "score": 0, "max_score": 2, "error_type": "NameError"},
     "context": {"course_id": "intro-python", "assignment_id": "loops", "source": "feedback"},
     "schema_version": 1}

``id`` is chosen by the producer so that sending an event twice stores it once: retries are safe.
``actor`` is the person the event is about (the learner whose submission was graded, not the grader).
Schemas are versioned: an event names its ``schema_version``; a new version is added beside the old
ones (never edited in place), so old producers keep working.
"""
from __future__ import annotations

import functools
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

import fastjsonschema
from sqlalchemy import insert
from sqlalchemy.orm import Session

from .models import Event

#: Verbs of schema version 1 and what each is about. Components may add their own verbs with an
#: ``x-`` prefix (``x-forum-posted``) without a new schema version; analytics counts but ignores them.
VERBS = {
    # courses service
    "enrolled": "joined a course (object: course)",
    "unenrolled": "left a course (object: course)",
    "fetched": "fetched an assignment (object: assignment)",
    "submitted": "submitted an assignment (object: assignment)",
    # feedback service / graders
    "graded": "a submission was graded (object: assignment, or the submission itself with "
              "context.assignment_id and result.tests, one per graded test cell; result: score, max_score, "
              "duration = latency)",
    "grading-failed": "a submission could not be graded (object: submission; result: error)",
    "attempted": "an exercise was attempted (object: exercise; result: success, score, error_type)",
    # help
    "asked-help": "asked for help (object: exercise or assignment)",
    "answered-help": "answered a help request",
    # recommender
    "recommendation-shown": "a recommendation was shown",
    "recommendation-clicked": "a recommendation was followed",
    # notifications
    "notification-sent": "a notification was sent",
    "notification-read": "a notification was read",
    # notebook activity (single-user extension)
    "opened": "opened a notebook or file",
    "saved": "saved a notebook or file",
    "executed": "executed a cell (result: success, error_type, duration)",
    "active": "was active in JupyterLab (result: duration in seconds, idle excluded)",
    # platform
    "logged-in": "logged in to the hub",
    "server-spawned": "a single-user server started (result: duration = spawn time)",
}

OBJECT_TYPES = ("course", "assignment", "exercise", "notebook", "cell", "file", "recommendation",
                "notification", "help-request", "server", "platform", "submission")

SCHEMA_VERSION = 1

_ID = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": r"^[A-Za-z0-9][A-Za-z0-9._:@-]*$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 255}
_SLUG = {"type": "string", "minLength": 1, "maxLength": 128}

#: JSON Schema of version 1 (draft 7, which both jsonschema and fastjsonschema implement). ``result`` and ``context`` allow more properties than
#: listed so that producers can add detail; the listed ones are typed because reports rely on them.
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
        "verb": {"anyOf": [{"enum": sorted(VERBS)},
                           {"type": "string", "pattern": r"^x-[a-z0-9][a-z0-9-]{0,61}$"}]},
        "object": {
            "type": "object", "required": ["type", "id"], "additionalProperties": False,
            "properties": {"type": {"enum": list(OBJECT_TYPES)},
                           "id": {"type": "string", "minLength": 1, "maxLength": 512},
                           "name": {"type": "string", "maxLength": 512}},
        },
        "result": {
            "type": "object",
            "properties": {
                "success": {"type": "boolean"},
                "score": {"type": "number", "minimum": 0},
                "max_score": {"type": "number", "minimum": 0},
                "duration": {"type": "number", "minimum": 0, "description": "seconds"},
                "error_type": {"type": "string", "maxLength": 128},
                "attempt": {"type": "integer", "minimum": 1},
            },
        },
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
    # Reports depend on these: a graded event without a score cannot be counted.
    "allOf": [
        {"if": {"required": ["verb"], "properties": {"verb": {"const": "graded"}}},
         "then": {"required": ["result"], "properties": {"result": {"required": ["score"]}}}},
        {"if": {"required": ["verb"], "properties": {"verb": {"const": "attempted"}}},
         "then": {"required": ["result"], "properties": {"result": {"required": ["success"]},
                                                          "object": {"properties": {"type": {"const": "exercise"}}}}}},
        {"if": {"required": ["verb"], "properties": {"verb": {"enum": ["enrolled", "unenrolled", "fetched", "submitted", "graded",
                                                   "attempted"]}}},
         "then": {"required": ["context"], "properties": {"context": {"required": ["course_id"]}}}},
    ],
}

SCHEMAS: dict[int, dict] = {1: SCHEMA_V1}

# jsonschema explains every error but costs ~0.7 ms an event; fastjsonschema (an nbformat dependency)
# compiles the schema to Python and checks a valid event in a few microseconds. Valid events (the
# common case) take the fast path; only invalid ones pay for the full explanation.
_FAST = {version: fastjsonschema.compile(schema) for version, schema in SCHEMAS.items()}


@functools.cache
def _explaining_validator(version: int):
    # Imported on first use: importing jsonschema loads its format checkers (about 1.6 s here, by
    # python -X importtime), which every service would otherwise pay at start-up for events that
    # are nearly always valid.
    import jsonschema

    return jsonschema.Draft7Validator(SCHEMAS[version])


# ISO 8601 with a zone (Z or ±hh:mm): naive times are ambiguous, so they are refused.
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")
MAX_CLOCK_SKEW_SECONDS = 24 * 3600


def _path(error) -> str:  # a jsonschema.ValidationError
    return "/".join(str(part) for part in error.absolute_path) or "(event)"


def validate_event(event: Any, now: datetime | None = None) -> list[str]:
    """The reasons ``event`` is invalid (an empty list if it is valid), each saying what to fix."""
    if not isinstance(event, dict):
        return [f"an event must be a JSON object, not {type(event).__name__}"]
    version = event.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version not in SCHEMAS:
        return [f"schema_version: unknown version {version!r}; known: {sorted(SCHEMAS)}"]
    reasons = []
    try:
        _FAST[version](event)
        errors = []
    except fastjsonschema.JsonSchemaException:
        errors = list(_explaining_validator(version).iter_errors(event))
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        if error.validator == "anyOf" and list(error.absolute_path) == ["verb"]:
            reasons.append(f"verb: unknown verb {error.instance!r}; use one of {', '.join(sorted(VERBS))} "
                           "or an 'x-' prefixed custom verb")
        else:
            reasons.append(f"{_path(error)}: {error.message}")
    if isinstance(event.get("time"), str) and "time" not in {r.split(":")[0] for r in reasons}:
        parsed = parse_time(event["time"])
        if parsed is None:
            reasons.append(f"time: {event['time']!r} is not an ISO 8601 time with a zone, "
                           "e.g. 2026-11-26T10:00:00Z")
        elif (parsed - (now or datetime.now(timezone.utc))).total_seconds() > MAX_CLOCK_SKEW_SECONDS:
            reasons.append("time: more than a day in the future; check the producer's clock")
    return reasons


def parse_time(value: str) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text with a zone, or None."""
    if not _TIME.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc)


def make_event(actor: str, verb: str, object_type: str, object_id: str, *, course_id: str | None = None,
               result: dict | None = None, context: dict | None = None, source: str | None = None,
               time: datetime | None = None, id: str | None = None) -> dict:
    """A wire-format event with a fresh id and the current time, for producers in Python."""
    context = dict(context or {})
    if course_id is not None:
        context["course_id"] = course_id
    if source is not None:
        context["source"] = source
    event = {"id": id or uuid.uuid4().hex, "time": (time or datetime.now(timezone.utc)).isoformat(),
             "actor": actor, "verb": verb, "object": {"type": object_type, "id": object_id},
             "schema_version": SCHEMA_VERSION}
    if result:
        event["result"] = result
    if context:
        event["context"] = context
    return event


def to_row(event: dict, default_source: str, stored_at: datetime) -> dict:
    """The ``events`` table row of a *valid* wire event."""
    context = event.get("context") or {}
    return {
        "id": event["id"], "time": parse_time(event["time"]), "actor": event["actor"], "verb": event["verb"],
        "object_type": event["object"]["type"], "object_id": event["object"]["id"],
        "course_id": context.get("course_id"), "result": event.get("result"), "context": context or None,
        "source": context.get("source") or default_source,
        "schema_version": event.get("schema_version", SCHEMA_VERSION), "stored_at": stored_at,
    }


def to_wire(row: Any) -> dict:
    """A stored row (ORM object or mapping) back in wire format."""
    get = (lambda k: row[k]) if isinstance(row, dict) else (lambda k: getattr(row, k))
    event = {"id": get("id"), "time": _iso(get("time")), "actor": get("actor"), "verb": get("verb"),
             "object": {"type": get("object_type"), "id": get("object_id")},
             "schema_version": get("schema_version")}
    if get("result"):
        event["result"] = get("result")
    context = dict(get("context") or {})
    if get("course_id"):
        context["course_id"] = get("course_id")
    context.setdefault("source", get("source"))
    event["context"] = context
    return event


def _iso(value: datetime) -> str:
    if value.tzinfo is None:  # SQLite gives naive datetimes back; they were stored as UTC
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class AppendResult:
    """What :meth:`EventLog.append` did: ``stored`` (new ids), ``duplicates`` (ids already in the log or
    repeated in the batch) and ``rejected`` (``{"index", "id", "reasons"}`` per invalid event).

    Unpacks as ``stored, rejected = log.append(...)``.
    """

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list, repr=False)  # the rows stored, for aggregators

    def __iter__(self):
        return iter((self.stored, self.rejected))

    def as_dict(self) -> dict:
        return {"stored": len(self.stored), "duplicates": len(self.duplicates), "rejected": self.rejected,
                "stored_ids": self.stored, "duplicate_ids": self.duplicates}


class EventLog:
    """Append events to the ``events`` table: validated, idempotent by id, in the caller's transaction.

    The analytics summary tables (see :func:`update_aggregates`) are updated in the same transaction
    from the events actually stored (never from duplicates), whichever service appends: that is what
    keeps them exact. ``listeners`` are further callables ``(session, rows)`` run the same way.
    """

    def __init__(self, default_source: str = "unknown", listeners: Sequence[Callable] = (),
                 aggregate: bool = True):
        self.default_source = default_source
        self.listeners = ([update_aggregates] if aggregate else []) + list(listeners)

    def append(self, session: Session, events: Iterable[Any]) -> AppendResult:
        """Store the valid events not stored before; reject the others with reasons. Does not commit."""
        outcome = AppendResult()
        now = datetime.now(timezone.utc)
        rows, seen = [], set()
        for index, event in enumerate(events):
            reasons = validate_event(event, now)
            if reasons:
                outcome.rejected.append({"index": index, "id": event.get("id") if isinstance(event, dict) else None,
                                         "reasons": reasons})
                continue
            if event["id"] in seen:
                outcome.duplicates.append(event["id"])
                continue
            seen.add(event["id"])
            rows.append(to_row(event, self.default_source, now))
        if rows:
            stored = set(_insert_ignoring_duplicates(session, rows))
            for row in rows:
                (outcome.stored if row["id"] in stored else outcome.duplicates).append(row["id"])
            outcome.rows = [row for row in rows if row["id"] in stored]
            if outcome.rows:
                for listener in self.listeners:
                    listener(session, outcome.rows)
        return outcome


def _insert_ignoring_duplicates(session: Session, rows: list[dict]) -> list[str]:
    """Insert rows whose id is new; return the ids inserted. Few round trips per batch."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # other backends: look first, then insert (fine for a single writer)
        existing = {i for (i,) in session.query(Event.id).filter(Event.id.in_([r["id"] for r in rows]))}
        fresh = [r for r in rows if r["id"] not in existing]
        if fresh:
            session.execute(insert(Event), fresh)
        return [r["id"] for r in fresh]
    table = Event.__table__
    if dialect == "postgresql":
        stage = _pg_stage(session, table, rows)
        statement = (dialect_insert(table).from_select([c.name for c in table.columns], select(*stage.c))
                     .on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id))
        return list(session.execute(statement).scalars())
    # One cached statement executed with many parameter sets: SQLAlchemy's "insertmanyvalues" sends
    # multi-row INSERTs without compiling a new statement per batch (compiling dominated otherwise).
    statement = dialect_insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
    inserted: list[str] = list(session.execute(statement, rows).scalars())
    return inserted


# -- exact pre-aggregations ------------------------------------------------------------------------
#
# Reports over millions of events must answer in well under a second, so ``append`` also keeps
# summary tables (migration 0005) in the same transaction as the events it stores. Each batch is
# folded in Python into one partial row per key, then merged with one atomic upsert per table
# (counts add, first times take the least, last times the greatest), so concurrent writers from
# different services never lose an update. The one quantity a merge cannot keep exact when events
# arrive out of time order — attempts needed to pass an exercise — is flagged ``dirty`` and
# recomputed from the raw events of that learner and object (:func:`refresh_dirty_progress`).

from datetime import date, timedelta  # noqa: E402

from sqlalchemy import (  # noqa: E402
    Boolean, Column, Date, DateTime, Float, Integer, MetaData, String, Table, and_, case, func, literal,
    select, update,
)

AGGREGATES = MetaData()
_TZ = DateTime(timezone=True)

learners_table = Table(
    "analytics_learners", AGGREGATES,
    Column("course_id", String(128), primary_key=True), Column("actor", String(255), primary_key=True),
    Column("first_time", _TZ), Column("last_time", _TZ), Column("events", Integer),
    Column("enrolled_at", _TZ), Column("unenrolled_at", _TZ), Column("submissions", Integer),
    Column("last_submission_time", _TZ), Column("errors", Integer), Column("help_requests", Integer),
    Column("active_seconds", Float),
)
activity_table = Table(
    "analytics_activity", AGGREGATES,
    Column("course_id", String(128), primary_key=True), Column("actor", String(255), primary_key=True),
    Column("day", Date, primary_key=True), Column("week", Date), Column("events", Integer),
    Column("active_seconds", Float),
)
progress_table = Table(
    "analytics_progress", AGGREGATES,
    Column("course_id", String(128), primary_key=True), Column("actor", String(255), primary_key=True),
    Column("object_type", String(64), primary_key=True), Column("object_id", String(512), primary_key=True),
    Column("assignment_id", String(128)), Column("first_time", _TZ), Column("last_time", _TZ),
    Column("fetched_at", _TZ), Column("submitted_at", _TZ), Column("submissions", Integer),
    Column("attempts", Integer), Column("passes", Integer), Column("first_pass_time", _TZ),
    Column("attempts_to_pass", Integer), Column("best_score", Float), Column("last_score", Float),
    Column("last_score_time", _TZ), Column("max_score", Float), Column("dirty", Boolean),
)
errors_table = Table(
    "analytics_errors", AGGREGATES,
    Column("course_id", String(128), primary_key=True), Column("object_id", String(512), primary_key=True),
    Column("error_type", String(128), primary_key=True), Column("count", Integer),
)
daily_table = Table(
    "analytics_daily", AGGREGATES,
    Column("day", Date, primary_key=True), Column("verb", String(64), primary_key=True),
    Column("count", Integer), Column("duration_sum", Float),
)

#: Events by people in these roles describe teaching, not learning: kept in the log, left out of
#: learner aggregates.
STAFF_ROLES = {"ta", "instructor", "admin", "service"}
PROGRESS_VERBS = {"fetched", "submitted", "graded", "attempted"}
NO_COURSE = ""  # key of events without a course in the activity table (platform-wide activity)


def _least(old, new):
    return case((old.is_(None), new), (new.is_(None), old), (new < old, new), else_=old)


def _greatest(old, new):
    return case((old.is_(None), new), (new.is_(None), old), (new > old, new), else_=old)


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _min(a, b):
    return b if a is None else a if b is None else min(a, b)


def _max(a, b):
    return b if a is None else a if b is None else max(a, b)


def _passed(result: dict) -> bool | None:
    if "success" in result:
        return bool(result["success"])
    if result.get("score") is not None and result.get("max_score"):
        return result["score"] >= result["max_score"]
    return None


def new_progress(course_id: str, actor: str, object_type: str, object_id: str) -> dict:
    return {"course_id": course_id, "actor": actor, "object_type": object_type, "object_id": object_id,
            "assignment_id": None, "first_time": None, "last_time": None, "fetched_at": None,
            "submitted_at": None, "submissions": 0, "attempts": 0, "passes": 0, "first_pass_time": None,
            "attempts_to_pass": None, "best_score": None, "last_score": None, "last_score_time": None,
            "max_score": None, "dirty": False}


def fold_progress(state: dict, row: dict) -> None:
    """Add one event (in time order) to a learner's progress on one assignment or exercise."""
    time, verb, result = row["time"], row["verb"], row.get("result") or {}
    context = row.get("context") or {}
    state["first_time"] = _min(state["first_time"], time)
    state["last_time"] = _max(state["last_time"], time)
    if context.get("assignment_id"):
        state["assignment_id"] = context["assignment_id"]
    elif row["object_type"] == "assignment":
        state["assignment_id"] = row["object_id"]
    if verb == "fetched":
        state["fetched_at"] = _min(state["fetched_at"], time)
    elif verb == "submitted":
        state["submitted_at"] = _min(state["submitted_at"], time)
        state["submissions"] += 1
    elif verb in ("graded", "attempted"):
        state["attempts"] += 1
        score = result.get("score")
        if score is not None:
            state["best_score"] = _max(state["best_score"], float(score))
            if state["last_score_time"] is None or time >= state["last_score_time"]:
                state["last_score"], state["last_score_time"] = float(score), time
        if result.get("max_score") is not None:
            state["max_score"] = _max(state["max_score"], float(result["max_score"]))
        if _passed(result):
            state["passes"] += 1
            if state["first_pass_time"] is None:
                state["first_pass_time"] = time
                state["attempts_to_pass"] = state["attempts"]


def _upsert(session: Session, table: Table, rows: list[dict], merge: dict) -> None:
    """Insert ``rows``; where a key exists, set each column ``name`` to ``merge[name](stored, new)``
    (column name → function of the stored columns ``t`` and the proposed row ``x``)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    keys = [column.name for column in table.primary_key.columns]
    # Sorted by key so that concurrent batches lock rows in the same order (no deadlocks).
    rows = sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))
    if dialect == "postgresql":
        stage = _pg_stage(session, table, rows)
        statement = dialect_insert(table).from_select([c.name for c in table.columns],
                                                      select(*stage.c).order_by(*[stage.c[k] for k in keys]))
        x = statement.excluded
        session.execute(statement.on_conflict_do_update(
            index_elements=keys, set_={name: fn(table.c, x) for name, fn in merge.items()}))
        return
    statement = dialect_insert(table)
    x = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={name: fn(table.c, x) for name, fn in merge.items()})
    session.execute(statement, rows)


_STAGES: dict[str, Table] = {}


def _pg_stage(session: Session, table: Table, rows: list[dict]) -> Table:
    """COPY ``rows`` into a session-private staging table shaped like ``table`` and return it.

    On PostgreSQL, COPY is several times faster than multi-row INSERTs, whose parameter handling
    dominated ingestion; the INSERT ... SELECT from the stage then keeps ON CONFLICT semantics.
    """
    import json

    name = f"lh_stage_{table.name}"
    stage = _STAGES.get(name)
    if stage is None:
        stage = _STAGES[name] = Table(name, MetaData(), *[Column(c.name, c.type) for c in table.columns])
    connection = session.connection()
    # A temporary table lives as long as the database connection (pooled), its rows for one transaction.
    connection.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE {table.name}) ON COMMIT DELETE ROWS")
    connection.exec_driver_sql(f"DELETE FROM {name}")
    columns = [c.name for c in table.columns]
    is_json = [c.type.__class__.__name__ == "JSON" for c in table.columns]
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row.get(c)) if j and row.get(c) is not None else row.get(c)
                                for c, j in zip(columns, is_json)])
    return stage


def _add(name):
    return lambda t, x: t[name] + x[name]


def _lst(name):
    return lambda t, x: _least(t[name], x[name])


def _gst(name):
    return lambda t, x: _greatest(t[name], x[name])


LEARNER_MERGE = {"first_time": _lst("first_time"), "last_time": _gst("last_time"), "events": _add("events"),
                 "enrolled_at": _gst("enrolled_at"), "unenrolled_at": _gst("unenrolled_at"),
                 "submissions": _add("submissions"), "last_submission_time": _gst("last_submission_time"),
                 "errors": _add("errors"), "help_requests": _add("help_requests"),
                 "active_seconds": _add("active_seconds")}

PROGRESS_MERGE = {
    "assignment_id": lambda t, x: func.coalesce(x.assignment_id, t.assignment_id),
    "first_time": _lst("first_time"), "last_time": _gst("last_time"), "fetched_at": _lst("fetched_at"),
    "submitted_at": _lst("submitted_at"), "submissions": _add("submissions"), "attempts": _add("attempts"),
    "passes": _add("passes"), "first_pass_time": _lst("first_pass_time"),
    # Exact when the new events come after the stored ones (the usual case); if not, ``dirty`` is
    # set and the report recounts that one key from the raw events before using it.
    "attempts_to_pass": lambda t, x: case((t.first_pass_time.is_not(None), t.attempts_to_pass),
                                          (x.first_pass_time.is_not(None), t.attempts + x.attempts_to_pass),
                                          else_=None),
    "best_score": _gst("best_score"), "max_score": _gst("max_score"),
    "last_score": lambda t, x: case((x.last_score_time.is_(None), t.last_score),
                                    (t.last_score_time.is_(None), x.last_score),
                                    (x.last_score_time >= t.last_score_time, x.last_score),
                                    else_=t.last_score),
    "last_score_time": _gst("last_score_time"),
    "dirty": lambda t, x: case((t.dirty, True), (x.first_time < t.last_time, True), else_=False),
}


def progress_rows(row: dict) -> list[dict]:
    """The progress facts in one event: the event itself when it is about an assignment or an exercise;
    for a submission (what the feedback service records) the same verb on its assignment
    (``context.assignment_id``) and, when it was ``graded``, an ``attempted`` of each graded test cell —
    exercise ``<assignment>/<grade_id>`` — from ``result.tests``."""
    verb, object_type = row["verb"], row["object_type"]
    if verb not in PROGRESS_VERBS:
        return []
    if object_type in ("assignment", "exercise"):
        return [row]
    if object_type != "submission" or verb not in ("graded", "submitted"):
        return []
    context, result = row.get("context") or {}, row.get("result") or {}
    assignment = context.get("assignment_id") or context.get("assignment")
    if not assignment:
        return []
    derived_context = {**context, "assignment_id": assignment}
    out = [{**row, "object_type": "assignment", "object_id": assignment, "context": derived_context}]
    for test in (result.get("tests") or []) if verb == "graded" else []:
        if not test.get("grade_id") or test.get("passed") is None:
            continue
        attempt = {"success": bool(test["passed"])}
        if test.get("points") is not None:
            attempt["score"] = test["points"]
        if test.get("max_points") is not None:
            attempt["max_score"] = test["max_points"]
        if test.get("error_type"):
            attempt["error_type"] = str(test["error_type"])
        out.append({**row, "verb": "attempted", "object_type": "exercise",
                    "object_id": f"{assignment}/{test['grade_id']}", "result": attempt,
                    "context": derived_context})
    return out


def update_aggregates(session: Session, rows: list[dict]) -> None:
    """Fold newly stored event rows into the summary tables (same transaction)."""
    learners: dict[tuple, dict] = {}
    activity: dict[tuple, dict] = {}
    progress: dict[tuple, dict] = {}
    errors: dict[tuple, int] = {}
    daily: dict[tuple, list] = {}
    for row in sorted(rows, key=lambda r: r["time"]):
        time, verb, actor = row["time"], row["verb"], row["actor"]
        result, context = row.get("result") or {}, row.get("context") or {}
        day = time.date()
        duration = result.get("duration") or 0.0
        totals = daily.setdefault((day, verb), [0, 0.0])
        totals[0] += 1
        totals[1] += duration
        if context.get("role") in STAFF_ROLES:
            continue
        course = row["course_id"] or NO_COURSE
        active = float(duration) if verb == "active" else 0.0
        act = activity.setdefault((course, actor, day), {"course_id": course, "actor": actor, "day": day,
                                                          "week": _week(day), "events": 0,
                                                          "active_seconds": 0.0})
        act["events"] += 1
        act["active_seconds"] += active
        if not row["course_id"]:
            continue
        learner = learners.get((course, actor))
        if learner is None:
            learner = learners[(course, actor)] = {
                "course_id": course, "actor": actor, "first_time": time, "last_time": time, "events": 0,
                "enrolled_at": None, "unenrolled_at": None, "submissions": 0, "last_submission_time": None,
                "errors": 0, "help_requests": 0, "active_seconds": 0.0}
        learner["last_time"] = time
        learner["events"] += 1
        learner["active_seconds"] += active
        if verb == "enrolled":
            learner["enrolled_at"] = time
        elif verb == "unenrolled":
            learner["unenrolled_at"] = time
        elif verb == "submitted":
            learner["submissions"] += 1
            learner["last_submission_time"] = time
        elif verb == "asked-help":
            learner["help_requests"] += 1
        if result.get("error_type"):
            learner["errors"] += 1
        for fact in progress_rows(row):
            error_type = (fact.get("result") or {}).get("error_type")
            if error_type and fact["object_type"] == "exercise":
                key = (course, fact["object_id"], error_type[:128])
                errors[key] = errors.get(key, 0) + 1
            key = (course, actor, fact["object_type"], fact["object_id"])
            state = progress.get(key)
            if state is None:
                state = progress[key] = new_progress(*key)
            fold_progress(state, fact)

    _upsert(session, learners_table, list(learners.values()), LEARNER_MERGE)
    _upsert(session, activity_table, list(activity.values()),
            {"events": _add("events"), "active_seconds": _add("active_seconds")})
    _upsert(session, progress_table, list(progress.values()), PROGRESS_MERGE)
    _upsert(session, errors_table, [{"course_id": c, "object_id": o, "error_type": e, "count": n}
                                    for (c, o, e), n in errors.items()], {"count": _add("count")})
    _upsert(session, daily_table, [{"day": d, "verb": v, "count": n, "duration_sum": s}
                                   for (d, v), (n, s) in daily.items()], {"count": _add("count"), "duration_sum": _add("duration_sum")})


def refresh_dirty_progress(session: Session, course_id: str) -> int:
    """Recount, from the raw events, the progress rows that late (out-of-order) events made inexact."""
    t = progress_table.c
    dirty = session.execute(select(t.actor, t.object_type, t.object_id).where(
        t.course_id == course_id, t.dirty.is_(True))).all()
    for actor, object_type, object_id in dirty:
        state = new_progress(course_id, actor, object_type, object_id)
        events = session.execute(
            select(Event.time, Event.verb, Event.object_type, Event.object_id, Event.result, Event.context)
            .where(Event.actor == actor, Event.course_id == course_id, Event.verb.in_(PROGRESS_VERBS),
                   # the object itself, or graded submissions, whose facts are derived (progress_rows)
                   ((Event.object_type == object_type) & (Event.object_id == object_id))
                   | (Event.object_type == "submission"))
            .order_by(Event.time)).mappings().all()
        for row in events:
            if (row["context"] or {}).get("role") in STAFF_ROLES:
                continue
            for fact in progress_rows(dict(row)):
                if (fact["object_type"], fact["object_id"]) == (object_type, object_id):
                    fold_progress(state, fact)
        values = {k: v for k, v in state.items() if k not in ("course_id", "actor", "object_type", "object_id")}
        session.execute(update(progress_table).where(
            t.course_id == course_id, t.actor == actor, t.object_type == object_type,
            t.object_id == object_id).values(**values))
    return len(dirty)


# -- events written with the ORM ------------------------------------------------------------------
#
# Some components add ``Event`` objects to their own ORM sessions instead of calling ``append``.
# So that the summary tables stay exact whichever way an event is written, every flush that inserts
# ``Event`` objects folds them in, in the same transaction (a failed insert never reaches the hook;
# a rolled-back transaction takes the summary rows with it). Active in every process that imports
# this module; ``learnhub.models`` should import it for that reason.

from sqlalchemy import event as _sa_event  # noqa: E402


def _orm_row(obj: Event) -> dict:
    time = obj.time or datetime.now(timezone.utc)
    if time.tzinfo is None:  # naive times in learnhub are UTC
        time = time.replace(tzinfo=timezone.utc)
    return {"id": obj.id, "time": time.astimezone(timezone.utc), "actor": obj.actor, "verb": obj.verb,
            "object_type": obj.object_type, "object_id": obj.object_id, "course_id": obj.course_id,
            "result": obj.result, "context": obj.context}


@_sa_event.listens_for(Session, "after_flush")
def _fold_flushed_events(session: Session, _context) -> None:
    rows = [_orm_row(obj) for obj in session.new if isinstance(obj, Event)]
    if rows:
        update_aggregates(session, rows)
