"""The core event log: validation with reasons against the event's own schema version, EventLog.append
(idempotent, partial success, in the caller's transaction), listeners (appended and ORM-written events),
and the wire format read back from a stored row.

What the analytics component makes of the events (its summary tables and reports) is tested under
``tests/analytics/``."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from learnhub import db as lhdb
from learnhub import events as event_log
from learnhub.events import EventLog, SCHEMA_VERSION, Verb, make_event, to_wire, validate_event
from learnhub.models import Event, EventCursor

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


@pytest.fixture
def event():
    """make_event as a producer calls it, in a course by default: an event about an assignment names it
    in ``context.assignment_id`` and an enrollment says the role, as schema 2 requires."""
    def make(actor, verb, object_type, object_id, course_id="c1", **kwargs):
        if object_type == "assignment" and course_id:
            kwargs["context"] = {"assignment_id": object_id, **(kwargs.get("context") or {})}
        if verb in (Verb.ENROLLED, Verb.UNENROLLED) and not kwargs.get("result"):
            kwargs["result"] = {"role": "learner"}
        return make_event(actor, verb, object_type, object_id, course_id=course_id, **kwargs)
    return make


def count_events(session_factory) -> int:
    with session_factory() as session:
        return session.execute(select(func.count()).select_from(Event)).scalar_one()


# --------------------------------------------------------------------------- validation


def test_a_valid_event_has_no_reasons(event):
    assert validate_event(event("alice", Verb.ATTEMPTED, "exercise", "loops/ex1",
                                result={"success": False, "error_type": "NameError"},
                                context={"assignment_id": "loops"})) == []
    assert validate_event(make_event("alice", Verb.OPENED, "notebook", "work.ipynb")) == []  # no course needed
    assert validate_event(make_event("svc", "x-forum-posted", "course", "c1")) == []  # custom verbs


def test_every_problem_is_named_with_what_to_fix():
    reasons = validate_event({"id": "has space", "time": "2026-01-01", "actor": "", "verb": "jumped",
                              "object": {"type": "planet"}, "extra": 1})
    text = " | ".join(reasons)
    assert "id:" in text and "actor:" in text and "object:" in text and "object/type:" in text
    assert "unknown verb 'jumped'" in text and "'x-' prefixed" in text
    assert "time:" in text and "with a zone" in text
    assert "extra" in text  # additional properties are refused
    assert validate_event([1, 2]) == ["an event must be a JSON object, not list"]


def test_verb_specific_requirements(event):
    assert any("'result' is a required" in r for r in validate_event(event("a", Verb.GRADED, "assignment", "a1")))
    assert any("'score' is a required" in r
               for r in validate_event(event("a", Verb.GRADED, "assignment", "a1", result={"success": True})))
    assert any("success" in r
               for r in validate_event(event("a", Verb.ATTEMPTED, "exercise", "e", result={"score": 1})))
    assert any("course_id" in r for r in validate_event(
        make_event("a", Verb.SUBMITTED, "assignment", "a1", context={"session": "s"})))
    future = event("a", Verb.OPENED, "notebook", "n", time=datetime.now(timezone.utc) + timedelta(days=3))
    assert any("future" in r for r in validate_event(future))
    negative = event("a", Verb.GRADED, "assignment", "a1", result={"score": -1})
    assert any("result/score" in r for r in validate_event(negative))


# --------------------------------------------------------------------------- schema versions
# learnhub.event_schemas: version 1 is kept as published; an event says which version it was written
# for and is checked against that one, so a producer still sending version 1 is not broken by version 2.


def test_a_version_1_event_is_checked_against_schema_1(event):
    # "recommendation-shown" was a verb of version 1 only (version 2 has "recommended").
    shown = make_event("lena", "recommendation-shown", "recommendation", "r1", course_id="c1")
    assert validate_event(dict(shown, schema_version=1)) == []
    (reason,) = validate_event(dict(shown, schema_version=2))
    assert reason.startswith("verb: unknown verb 'recommendation-shown'")
    # ... and the other way round: a verb version 2 added is unknown to version 1.
    released = event("ines", Verb.RELEASED, "assignment", "a1", result={"title": "Loops"})
    assert validate_event(released) == []
    (reason,) = validate_event(dict(released, schema_version=1))
    assert reason.startswith("verb: unknown verb 'released'") and "schema version 1" in reason


def test_a_version_2_event_is_checked_against_schema_2():
    # Version 1 asked only for the course of a submission; version 2 also wants the assignment.
    submitted = make_event("ann", Verb.SUBMITTED, "assignment", "a1", course_id="c1")
    assert submitted["schema_version"] == 2
    assert validate_event(submitted) == ["context: 'assignment_id' is a required property"]
    assert validate_event(dict(submitted, schema_version=1)) == []


def test_an_event_without_a_version_is_of_the_current_one():
    shown = make_event("lena", "recommendation-shown", "recommendation", "r1", course_id="c1")
    del shown["schema_version"]
    assert SCHEMA_VERSION == 2
    assert validate_event(shown) == validate_event(dict(shown, schema_version=SCHEMA_VERSION)) != []


@pytest.mark.parametrize("version", [0, 3, "2", True, None, 1.5])
def test_an_unknown_version_is_refused_with_a_reason(version):
    opened = dict(make_event("ann", Verb.OPENED, "notebook", "n.ipynb"), schema_version=version)
    assert validate_event(opened) == [f"schema_version: unknown version {version!r}; known: [1, 2]"]


def test_a_version_1_event_is_stored_and_read_back_as_version_1(db_session_factory):
    shown = dict(make_event("lena", "recommendation-shown", "recommendation", "r1", course_id="c1",
                            time=at(0)), schema_version=1)
    with lhdb.session_scope(db_session_factory) as session:
        assert EventLog(default_source="test").append(session, [shown]).stored == [shown["id"]]
    with db_session_factory() as session:
        wire = to_wire(session.get(Event, shown["id"]))
    assert wire["schema_version"] == 1 and wire["verb"] == "recommendation-shown"
    assert validate_event(wire) == []  # still valid: read back, it is checked against version 1 again


# --------------------------------------------------------------------------- appending


def test_append_stores_good_events_rejects_bad_ones_and_ignores_duplicates(db_session_factory, event):
    good = [event("alice", Verb.ENROLLED, "course", "c1", time=at(0)),
            event("alice", Verb.FETCHED, "assignment", "a1", time=at(1))]
    bad = {"id": "x1", "actor": "alice"}
    with lhdb.session_scope(db_session_factory) as session:
        outcome = EventLog(default_source="test").append(session, [good[0], bad, good[1], good[1]])
    assert outcome.stored == [good[0]["id"], good[1]["id"]]
    assert outcome.duplicates == [good[1]["id"]]  # repeated within the batch
    assert outcome.rejected[0]["index"] == 1 and outcome.rejected[0]["id"] == "x1"
    assert any("verb" in r for r in outcome.rejected[0]["reasons"])
    stored, rejected = outcome  # unpacks as (stored_ids, rejected_with_reasons)
    assert len(stored) == 2 and len(rejected) == 1

    with lhdb.session_scope(db_session_factory) as session:
        again = EventLog().append(session, good)
    assert again.stored == [] and again.duplicates == [good[0]["id"], good[1]["id"]]
    assert count_events(db_session_factory) == 2


def test_a_stored_row_reads_back_as_the_wire_event(db_session_factory, event):
    fetched = event("alice", Verb.FETCHED, "assignment", "a1", time=at(1))
    with lhdb.session_scope(db_session_factory) as session:
        EventLog(default_source="test").append(session, [fetched])
    with db_session_factory() as session:
        row = session.get(Event, fetched["id"])
        assert row.source == "test" and row.course_id == "c1" and row.object_type == "assignment"
        wire = to_wire(row)
    # The time in UTC with a Z, whatever the backend handed back; the source the log filled in is in
    # the context; everything else is what was sent.
    assert wire == dict(fetched, time="2026-03-03T09:00:00Z", context={**fetched["context"], "source": "test"})
    assert validate_event(wire) == []


def test_append_in_a_failed_transaction_stores_nothing(db_session_factory, event):
    try:
        with lhdb.session_scope(db_session_factory) as session:
            EventLog().append(session, [event("bob", Verb.ENROLLED, "course", "c1")])
            raise RuntimeError("the caller's own work failed")
    except RuntimeError:
        pass
    assert count_events(db_session_factory) == 0


# --------------------------------------------------------------------------- listeners


class WritingListener:
    """A listener that writes in the session it is given (an ``event_cursors`` row per event: a core
    table, so no component's tables are needed), as the analytics summaries do."""

    def __init__(self):
        self.calls = []

    def __call__(self, session, rows):
        self.calls.append([row["id"] for row in rows])
        for row in rows:
            session.add(EventCursor(name=f"seen-{row['id']}"[:64], last_event_id=row["id"]))


def written_by(session_factory) -> set[str]:
    with session_factory() as session:
        return {cursor.last_event_id for cursor in session.scalars(select(EventCursor))}


def test_listeners_run_on_the_rows_stored_in_the_same_transaction(db_session_factory, event):
    listener = WritingListener()
    first = event("ann", Verb.ENROLLED, "course", "c1", time=at(0))
    with lhdb.session_scope(db_session_factory) as session:
        EventLog(listeners=[listener]).append(session, [first])
    # Duplicates are not stored again, so the listener never sees them twice; a batch of nothing
    # new does not call it at all.
    second = event("bob", Verb.ENROLLED, "course", "c1", time=at(0))
    with lhdb.session_scope(db_session_factory) as session:
        EventLog(listeners=[listener]).append(session, [first, second, {"id": "bad"}])
        EventLog(listeners=[listener]).append(session, [first])
    assert listener.calls == [[first["id"]], [second["id"]]]
    # What a listener wrote goes with the transaction that stored the events.
    third = event("cy", Verb.ENROLLED, "course", "c1", time=at(0))
    with pytest.raises(RuntimeError):
        with lhdb.session_scope(db_session_factory) as session:
            EventLog(listeners=[listener]).append(session, [third])
            raise RuntimeError("rolled back")
    assert listener.calls[-1] == [third["id"]]
    assert written_by(db_session_factory) == {first["id"], second["id"]}


def test_events_added_with_the_orm_reach_the_registered_listeners(db_session_factory, monkeypatch):
    """Event objects added to a session of ``make_session_factory`` reach the listeners at flush, in
    that transaction: a rolled-back one takes what the listeners wrote with it."""
    listener = WritingListener()
    monkeypatch.setattr(event_log, "registered_listeners", lambda: (listener,))
    with lhdb.session_scope(db_session_factory) as session:
        session.add(Event(id="orm-1", actor="ann", verb=Verb.SUBMITTED, object_type="submission",
                          object_id="s1", course_id="c9", context={"course_id": "c9", "assignment_id": "a1"},
                          source="courses", time=at(1)))
    with pytest.raises(RuntimeError):
        with lhdb.session_scope(db_session_factory) as session:
            session.add(Event(id="orm-2", actor="bob", verb=Verb.SUBMITTED, object_type="submission",
                              object_id="s2", course_id="c9", source="courses", time=at(2)))
            session.flush()
            raise RuntimeError("rolled back")
    assert listener.calls == [["orm-1"], ["orm-2"]]
    assert written_by(db_session_factory) == {"orm-1"}
    assert count_events(db_session_factory) == 1
