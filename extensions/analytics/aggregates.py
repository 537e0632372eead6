"""The analytics component's summary tables: exact pre-aggregations of the event log.

Reports over millions of events must answer in well under a second, so the event log's listener
:func:`update_aggregates` (registered as the ``learnhub.event_listeners`` entry point
``analytics-summaries``) keeps these tables (migration 0005) in the same transaction as the events
it stores, whichever component appends. Each batch is folded in Python into one partial row per key,
then merged with one atomic upsert per table (counts add, first times take the least, last times
the greatest), so concurrent writers from different services never lose an update. The one quantity
a merge cannot keep exact when events arrive out of time order — attempts needed to pass an exercise —
is flagged ``dirty`` and recomputed from the raw events of that learner and object
(:func:`refresh_dirty_progress`).

The tables are the analytics component's: only this module writes them and only its reports read
them. Running inside other services' transactions is what keeps them exact (a separate reader with a
cursor could miss an event whose transaction committed late).

A regrade's ``graded`` event (``context.regrade_id``: the same submission graded again after a test
fix, :mod:`learnhub.gradings`) replaces that submission's earlier grading rather than adding one: it is
no attempt, no pass and no error of its own. The progress rows it touches are flagged ``dirty`` and
recounted from the raw events with one grading per submission (the latest); the error counts take the
difference from the grading it replaces; per day it is counted as :data:`REGRADED`, not ``graded``; and
it is no activity of the learner's (only their event counter moves, so the report's version changes).
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import (
    Boolean, Column, Date, DateTime, Float, Integer, MetaData, String, Table, case, func, select, update,
)
from sqlalchemy.orm import Session

from learnhub.db import copy_into_stage
from learnhub.event_schemas import Verb
from learnhub.gradings import is_regrade, latest_per_submission, submission_of
from learnhub.models import Event
from learnhub.timeutil import as_utc as _utc

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
PROGRESS_VERBS = {Verb.FETCHED, Verb.SUBMITTED, Verb.GRADED, Verb.ATTEMPTED}
NO_COURSE = ""  # key of events without a course in the activity table (platform-wide activity)
#: the daily table's key of regrades' ``graded`` events: the platform's ``graded`` total counts
#: submissions graded, a regrade grades one again
REGRADED = "regraded"


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
    if verb == Verb.FETCHED:
        state["fetched_at"] = _min(state["fetched_at"], time)
    elif verb == Verb.SUBMITTED:
        state["submitted_at"] = _min(state["submitted_at"], time)
        state["submissions"] += 1
    elif verb in (Verb.GRADED, Verb.ATTEMPTED):
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
        stage = copy_into_stage(session, table, rows)
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
    # a new row arrives dirty when it stands for a regrade (to be recounted)
    "dirty": lambda t, x: case((t.dirty, True), (x.dirty, True), (x.first_time < t.last_time, True), else_=False),
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
    if object_type != "submission" or verb not in (Verb.GRADED, Verb.SUBMITTED):
        return []
    context, result = row.get("context") or {}, row.get("result") or {}
    assignment = context.get("assignment_id") or context.get("assignment")
    if not assignment:
        return []
    derived_context = {**context, "assignment_id": assignment}
    out = [{**row, "object_type": "assignment", "object_id": assignment, "context": derived_context}]
    for test in (result.get("tests") or []) if verb == Verb.GRADED else []:
        if not test.get("grade_id") or test.get("passed") is None:
            continue
        attempt = {"success": bool(test["passed"])}
        if test.get("points") is not None:
            attempt["score"] = test["points"]
        if test.get("max_points") is not None:
            attempt["max_score"] = test["max_points"]
        if test.get("error_type"):
            attempt["error_type"] = str(test["error_type"])
        out.append({**row, "verb": Verb.ATTEMPTED.value, "object_type": "exercise",
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
    regraded: set[tuple] = set()  # (course, actor, assignment) whose progress rows a regrade changed
    for row in sorted(rows, key=lambda r: r["time"]):
        time, verb, actor = row["time"], row["verb"], row["actor"]
        result, context = row.get("result") or {}, row.get("context") or {}
        day = time.date()
        duration = result.get("duration") or 0.0
        regrade = _is_regrade(row)
        totals = daily.setdefault((day, REGRADED if regrade else verb), [0, 0.0])
        totals[0] += 1
        totals[1] += duration
        if context.get("role") in STAFF_ROLES:
            continue
        course = row["course_id"] or NO_COURSE
        if regrade:
            if row["course_id"]:
                _fold_regrade(session, row, learners, progress, errors, regraded)
            continue
        active = float(duration) if verb == Verb.ACTIVE else 0.0
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
        if verb == Verb.ENROLLED:
            learner["enrolled_at"] = time
        elif verb == Verb.UNENROLLED:
            learner["unenrolled_at"] = time
        elif verb == Verb.SUBMITTED:
            learner["submissions"] += 1
            learner["last_submission_time"] = time
        elif verb == Verb.ASKED_HELP:
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
    t = progress_table.c
    for course, actor, assignment in sorted(regraded):
        # exercise rows the regrade's tests do not name any more (a test removed) are recounted too
        session.execute(update(progress_table).where(
            t.course_id == course, t.actor == actor, t.assignment_id == assignment).values(dirty=True))
    _upsert(session, errors_table, [{"course_id": c, "object_id": o, "error_type": e, "count": n}
                                    for (c, o, e), n in errors.items()], {"count": _add("count")})
    _upsert(session, daily_table, [{"day": d, "verb": v, "count": n, "duration_sum": s}
                                   for (d, v), (n, s) in daily.items()], {"count": _add("count"), "duration_sum": _add("duration_sum")})


def _is_regrade(row: dict) -> bool:
    return row["verb"] == Verb.GRADED and row["object_type"] == "submission" and is_regrade(row.get("context"))


def _error_facts(row: dict) -> list[tuple[str, str]]:
    """``(exercise, error type)`` of each failed test of a graded submission event."""
    return [(f["object_id"], f["result"]["error_type"][:128]) for f in progress_rows(row)
            if f["object_type"] == "exercise" and (f.get("result") or {}).get("error_type")]


def _earlier_gradings(session: Session, row: dict) -> tuple[dict | None, dict | None]:
    """The first and the latest earlier ``graded`` events about a regrade's submission: where the
    submission is in the learner's history, and the grading the regrade replaces."""
    submission = submission_of(row["object_id"], row.get("context"))
    # the learner's graded events in the course (the actor-time index), matched on the submission here:
    # the JSON context is not compared in SQL the same way on SQLite and PostgreSQL
    earlier = session.execute(
        select(Event.id, Event.time, Event.verb, Event.object_type, Event.object_id, Event.result, Event.context)
        .where(Event.actor == row["actor"], Event.course_id == row["course_id"], Event.verb == Verb.GRADED,
               Event.object_type == "submission", Event.time <= row["time"], Event.id != row["id"])
        .order_by(Event.time, Event.id)).mappings().all()
    mine = [dict(e) for e in earlier if submission_of(e["object_id"], e["context"]) == submission]
    return (mine[0], mine[-1]) if mine else (None, None)


def _fold_regrade(session: Session, row: dict, learners: dict, progress: dict, errors: dict,
                  regraded: set) -> None:
    """A regrade's share of a batch (see the module's docstring): the learner's event counter, dirty
    progress rows, and the error counts' difference from the grading it replaces."""
    course, actor = row["course_id"], row["actor"]
    first, replaced = _earlier_gradings(session, row)
    # the learner's times stay those of their own work, already counted: the submission's first grading
    seen = _utc(first["time"]) if first else row["time"]
    learner = learners.setdefault((course, actor), {
        "course_id": course, "actor": actor, "first_time": seen, "last_time": seen, "events": 0,
        "enrolled_at": None, "unenrolled_at": None, "submissions": 0, "last_submission_time": None,
        "errors": 0, "help_requests": 0, "active_seconds": 0.0})
    learner["events"] += 1
    facts = progress_rows(row)
    for fact in facts:
        key = (course, actor, fact["object_type"], fact["object_id"])
        state = progress.get(key)
        if state is None:
            state = progress[key] = new_progress(*key)
        state["assignment_id"] = state["assignment_id"] or fact["context"].get("assignment_id")
        state["first_time"], state["last_time"] = _min(state["first_time"], seen), _max(state["last_time"], seen)
        state["dirty"] = True
    if facts:
        regraded.add((course, actor, facts[0]["object_id"]))
    for fact, change in [(f, -1) for f in (_error_facts(replaced) if replaced else [])] + \
                        [(f, +1) for f in _error_facts(row)]:
        errors[(course, *fact)] = errors.get((course, *fact), 0) + change


def _one_grading_per_submission(events) -> list[dict]:
    """Events in time order with each submission's gradings merged (:func:`latest_per_submission`):
    the latest grading's result and context, at the time of the first."""
    def key(row):
        if row["verb"] != Verb.GRADED or row["object_type"] != "submission":
            return None
        return submission_of(row["object_id"], row["context"])

    return [first if first is latest else {**first, "result": latest["result"], "context": latest["context"]}
            for first, latest in latest_per_submission([dict(e) for e in events], key)]


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
        for row in _one_grading_per_submission(events):
            if (row["context"] or {}).get("role") in STAFF_ROLES:
                continue
            for fact in progress_rows(row):
                if (fact["object_type"], fact["object_id"]) == (object_type, object_id):
                    fold_progress(state, fact)
        values = {k: v for k, v in state.items() if k not in ("course_id", "actor", "object_type", "object_id")}
        session.execute(update(progress_table).where(
            t.course_id == course_id, t.actor == actor, t.object_type == object_type,
            t.object_id == object_id).values(**values))
    return len(dirty)
