"""The event log: one xAPI-shaped event per thing people do, validated, appended in one place.

Every learnhub component records what happens as events — who (``actor``) did what (``verb``) to
which ``object``, with what ``result``, in which ``context`` — through :meth:`EventLog.append` (or
:func:`record`, its one-event form), which validates each event against its verb's schema::

    from learnhub.events import Verb, record
    record(session, "alice", Verb.FETCHED, "assignment", "loops", course_id="intro-python",
           context={"assignment_id": "loops"}, source="courses")

An event on the wire (``POST /services/analytics/api/events``) is a JSON object::

    {"id": "3f0c…", "time": "2026-11-26T10:00:00Z", "actor": "alice", "verb": "attempted",
     "object": {"type": "exercise", "id": "loops/sum-to-n"},
     "result": {"success": false, "score": 0, "max_score": 2, "error_type": "NameError"},
     "context": {"course_id": "intro-python", "assignment_id": "loops", "source": "feedback"},
     "schema_version": 2}

``id`` is chosen by the producer so that sending an event twice stores it once: retries are safe.
The vocabulary (:class:`Verb`, and what each verb's object, result and context hold) is in
:mod:`learnhub.event_schemas`. Consumers read the log with :class:`learnhub.event_feed.EventFeed`.

Listeners — callables ``(session, rows)`` registered under the ``learnhub.event_listeners`` entry
point group — run in the transaction that stores the events, on the rows actually stored (never on
duplicates): that is how the analytics component keeps its summary tables exact whichever component
appends. Events written as ORM objects in a session made by :func:`learnhub.db.make_session_factory`
reach the listeners too (:func:`fold_flushed`), which is how test fixtures write them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from . import erasures
from .event_schemas import (  # noqa: F401 (the vocabulary is part of this module's interface)
    LEGACY_VERBS, OBJECT_TYPES, SCHEMA_V1, SCHEMA_V2, SCHEMA_VERSION, SCHEMAS, VERB_SPECS, Verb, VerbSpec,
    make_event,
)
from .models import Event
from .timeutil import as_utc, iso, parse_iso, utcnow

MAX_CLOCK_SKEW_SECONDS = 24 * 3600
LISTENER_GROUP = "learnhub.event_listeners"

parse_time = parse_iso


@functools.cache
def _fast_validator(version: int):
    # jsonschema explains every error but costs ~0.7 ms an event; fastjsonschema (an nbformat
    # dependency) compiles the schema to Python and checks a valid event in microseconds. Valid
    # events (the common case) take the fast path; only invalid ones pay for the explanation.
    # Compiled on first use: a single-user server that only makes events never pays for it.
    import fastjsonschema

    return fastjsonschema.compile(SCHEMAS[version])


@functools.cache
def _explaining_validator(version: int):
    # Importing jsonschema loads its format checkers (about 1.6 s here, by python -X importtime),
    # which every service would otherwise pay at start-up for events that are nearly always valid.
    import jsonschema

    return jsonschema.Draft7Validator(SCHEMAS[version])


def _path(error) -> str:  # a jsonschema.ValidationError
    return "/".join(str(part) for part in error.absolute_path) or "(event)"


def validate_event(event: Any, now: datetime | None = None) -> list[str]:
    """The reasons ``event`` is invalid (an empty list if it is valid), each saying what to fix."""
    if not isinstance(event, dict):
        return [f"an event must be a JSON object, not {type(event).__name__}"]
    version = event.get("schema_version", SCHEMA_VERSION)
    if not isinstance(version, int) or isinstance(version, bool) or version not in SCHEMAS:
        return [f"schema_version: unknown version {version!r}; known: {sorted(SCHEMAS)}"]
    import fastjsonschema

    try:
        _fast_validator(version)(event)
        errors = []
    except fastjsonschema.JsonSchemaException:
        errors = list(_explaining_validator(version).iter_errors(event))
    reasons = []
    for error in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
        if error.validator == "anyOf" and list(error.absolute_path) == ["verb"]:
            known = ", ".join(sorted(v.value for v in Verb)) if version == SCHEMA_VERSION else "schema version 1's"
            reasons.append(f"verb: unknown verb {error.instance!r}; use one of {known} "
                           "or an 'x-' prefixed custom verb")
        else:
            reasons.append(f"{_path(error)}: {error.message}")
    if isinstance(event.get("time"), str) and "time" not in {r.split(":")[0] for r in reasons}:
        parsed = parse_iso(event["time"])
        if parsed is None:
            reasons.append(f"time: {event['time']!r} is not an ISO 8601 time with a zone, "
                           "e.g. 2026-11-26T10:00:00Z")
        elif (parsed - (now or utcnow())).total_seconds() > MAX_CLOCK_SKEW_SECONDS:
            reasons.append("time: more than a day in the future; check the producer's clock")
    return reasons


def to_row(event: dict, default_source: str, stored_at: datetime) -> dict:
    """The ``events`` table row of a *valid* wire event."""
    context = event.get("context") or {}
    return {
        "id": event["id"], "time": parse_iso(event["time"]), "actor": event["actor"], "verb": event["verb"],
        "object_type": event["object"]["type"], "object_id": event["object"]["id"],
        "course_id": context.get("course_id"), "result": event.get("result"), "context": context or None,
        "source": context.get("source") or default_source,
        "schema_version": event.get("schema_version", SCHEMA_VERSION), "stored_at": stored_at,
    }


def to_wire(row: Any) -> dict:
    """A stored row (ORM object or mapping) back in wire format."""
    get = (lambda k: row[k]) if isinstance(row, dict) else (lambda k: getattr(row, k))
    event = {"id": get("id"), "time": iso(get("time")), "actor": get("actor"), "verb": get("verb"),
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


class InvalidEvent(ValueError):
    """A component tried to record an event its verb's schema refuses (a bug in the producer)."""

    def __init__(self, event: dict, reasons: list[str]):
        super().__init__(f"invalid {event.get('verb')!r} event: {'; '.join(reasons)}")
        self.event, self.reasons = event, reasons


@dataclass
class AppendResult:
    """What :meth:`EventLog.append` did: ``stored`` (new ids), ``duplicates`` (ids already in the log or
    repeated in the batch) and ``rejected`` (``{"index", "id", "reasons"}`` per invalid event).

    Unpacks as ``stored, rejected = log.append(...)``.
    """

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list, repr=False)  # the rows stored, for listeners

    def __iter__(self):
        return iter((self.stored, self.rejected))

    def as_dict(self) -> dict:
        return {"stored": len(self.stored), "duplicates": len(self.duplicates), "rejected": self.rejected,
                "stored_ids": self.stored, "duplicate_ids": self.duplicates}


@functools.cache
def registered_listeners() -> tuple[Callable, ...]:
    """The ``learnhub.event_listeners`` entry points, loaded once, in name order."""
    from importlib.metadata import entry_points

    return tuple(entry.load() for entry in sorted(entry_points(group=LISTENER_GROUP), key=lambda e: e.name))


class EventLog:
    """Append events to the ``events`` table: validated, idempotent by id, in the caller's transaction.

    ``listeners``: callables ``(session, rows)`` run on the rows stored, in the same transaction;
    by default the registered ones (:func:`registered_listeners`).
    """

    def __init__(self, default_source: str = "unknown", listeners: Sequence[Callable] | None = None):
        self.default_source = default_source
        self.listeners = list(registered_listeners() if listeners is None else listeners)

    def append(self, session: Session, events: Iterable[Any]) -> AppendResult:
        """Store the valid events not stored before; reject the others with reasons. Does not commit."""
        outcome = AppendResult()
        now = utcnow()
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
                # After the insert, not before: a statement after it sees the tombstone of an erasure
                # that committed meanwhile (learnhub.erasures), and the listeners get the rewritten rows.
                erasures.shield(session, outcome.rows)
                for listener in self.listeners:
                    listener(session, outcome.rows)
        return outcome


def record(session: Session, actor: str, verb: Verb, object_type: str, object_id: str, *,
           course_id: str | None = None, result: dict | None = None, context: dict | None = None,
           source: str, id: str | None = None, time: datetime | None = None) -> bool:
    """Append one event made by a learnhub component, in the caller's transaction.

    The component is the ``source``. An event the schema refuses raises :class:`InvalidEvent`:
    a producer's bug is loud, never a silently missing event. Returns False when an event with
    this ``id`` was stored before (``id`` makes retried producers idempotent).
    """
    event = make_event(actor, verb, object_type, object_id, course_id=course_id, result=result,
                       context=context, source=source, id=id, time=time)
    outcome = EventLog(default_source=source).append(session, [event])
    if outcome.rejected:
        raise InvalidEvent(event, outcome.rejected[0]["reasons"])
    return bool(outcome.stored)


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
        from .db import copy_into_stage

        stage = copy_into_stage(session, table, rows)
        statement = (dialect_insert(table).from_select([c.name for c in table.columns], select(*stage.c))
                     .on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id))
        return list(session.execute(statement).scalars())
    # One cached statement executed with many parameter sets: SQLAlchemy's "insertmanyvalues" sends
    # multi-row INSERTs without compiling a new statement per batch (compiling dominated otherwise).
    statement = dialect_insert(table).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
    return list(session.execute(statement, rows).scalars())


# -- events written with the ORM ------------------------------------------------------------------

def orm_row(obj: Event) -> dict:
    """The row mapping listeners get, for an ``Event`` ORM object."""
    return {"id": obj.id, "time": as_utc(obj.time or utcnow()), "actor": obj.actor, "verb": obj.verb,
            "object_type": obj.object_type, "object_id": obj.object_id, "course_id": obj.course_id,
            "result": obj.result, "context": obj.context}


def fold_flushed(session: Session) -> None:
    """Run the registered listeners on the ``Event`` objects a flush inserted (same transaction: a
    failed insert never gets here, a rolled-back transaction takes the listeners' rows with it).
    :func:`learnhub.db.make_session_factory` installs it as an ``after_flush`` hook."""
    rows = [orm_row(obj) for obj in session.new if isinstance(obj, Event)]
    if rows:
        for listener in registered_listeners():
            listener(session, rows)
