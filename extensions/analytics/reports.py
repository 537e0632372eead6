"""Course and platform reports from the event log's summary tables. No web code.

Reports read the exact pre-aggregations that :mod:`.aggregates` keeps (one row per
learner, per learner-day, per learner-assignment/exercise, per exercise error type, per day-verb),
never the raw events, so a course with a million events reports in milliseconds. The raw log is read
only for the rare summary row a late event made inexact, and for grading-latency percentiles over a
window, through the (verb, time) index.
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
from sqlalchemy import and_, case, func, literal_column, or_, select, text
from sqlalchemy.orm import Session

from learnhub.event_schemas import Verb
from learnhub.gradings import is_regrade
from learnhub.models import Event
from learnhub.timeutil import as_utc, iso

from .aggregates import (
    NO_COURSE, REGRADED, activity_table, daily_table, errors_table, learners_table, progress_table,
    refresh_dirty_progress,
)

from .risk import FEATURES, AtRiskClassifier

SCORE_BINS = list(range(0, 101, 10))


_utc = as_utc


def _iso(value) -> str | None:
    """A datetime as learnhub's ISO text (UTC, Z); a date as YYYY-MM-DD."""
    if value is None or isinstance(value, datetime):
        return iso(value)
    return value.isoformat()


def _pct(P):
    """A score as a percentage of its maximum when known (else the raw score), in SQL."""
    return case((P.max_score > 0, 100.0 * P.best_score / P.max_score), else_=P.best_score)


def _bucket(pct):
    # A CASE ladder rather than FLOOR/CAST, which round differently on SQLite and PostgreSQL.
    return case(*[(pct < edge, index) for index, edge in enumerate(SCORE_BINS[1:-1])], else_=len(SCORE_BINS) - 2)


def _median_of_counts(pairs) -> float | None:
    """Exact median of a distribution given as (value, count) pairs."""
    pairs = sorted((v, c) for v, c in pairs if v is not None)
    total = sum(c for _, c in pairs)
    if not total:
        return None
    expanded_at = lambda k: next(v for v, acc in _cumulative(pairs) if acc > k)  # noqa: E731
    if total % 2:
        return float(expanded_at(total // 2))
    return (expanded_at(total // 2 - 1) + expanded_at(total // 2)) / 2


def _cumulative(pairs):
    running = 0
    for value, count in pairs:
        running += count
        yield value, running


def course_report(session: Session, course_id: str, risk_model: AtRiskClassifier | None = None,
                  top_errors: int = 3, at_risk_limit: int = 50) -> dict:
    """Everything an instructor's dashboard shows, as JSON-ready data. Commits nothing; may update
    summary rows made inexact by late events (the caller commits).

    Every aggregate is computed by the database over the summary tables, which hold one row per
    learner (per day, per assignment or exercise), not per event: the work grows with learners,
    not with events.
    """
    refresh_dirty_progress(session, course_id)
    L = learners_table.c
    summary = session.execute(select(
        func.count(), func.min(L.first_time), func.max(L.last_time),
        func.sum(case((and_(L.enrolled_at.is_not(None),
                            or_(L.unenrolled_at.is_(None), L.enrolled_at > L.unenrolled_at)), 1), else_=0)),
        func.sum(case((and_(L.unenrolled_at.is_not(None),
                            or_(L.enrolled_at.is_(None), L.unenrolled_at >= L.enrolled_at)), 1), else_=0)),
    ).where(L.course_id == course_id)).one()
    n_learners, start, as_of, n_enrolled, n_left = summary
    if not n_learners:
        return {"course_id": course_id, "as_of": None, "learners": 0,
                "enrollment": {"enrolled": 0, "unenrolled": 0, "by_week": []},
                "activity": {"weekly": [], "daily": []}, "assignments": [], "exercises": [],
                "at_risk": [], "at_risk_model": None}
    start, as_of = _utc(start), _utc(as_of)
    enrolled_days = session.execute(select(L.enrolled_at).where(
        L.course_id == course_id, L.enrolled_at.is_not(None),
        or_(L.unenrolled_at.is_(None), L.enrolled_at > L.unenrolled_at))).scalars()
    by_week: dict[date, int] = defaultdict(int)
    for enrolled_at in enrolled_days:
        day = _utc(enrolled_at).date()
        by_week[day - timedelta(days=day.weekday())] += 1
    cumulative, running = [], 0
    for week in sorted(by_week):
        running += by_week[week]
        cumulative.append({"week": week.isoformat(), "new": by_week[week], "enrolled": running})

    A = activity_table.c
    # Per learner-week first, then per week: a hash aggregate instead of COUNT(DISTINCT)'s sort.
    per_learner_week = (select(A.week, A.actor, func.sum(A.events).label("events"),
                               func.sum(A.active_seconds).label("seconds"))
                        .where(A.course_id == course_id).group_by(A.week, A.actor).subquery())
    W = per_learner_week.c
    weekly = session.execute(select(W.week, func.count(), func.sum(W.events), func.sum(W.seconds))
                             .group_by(W.week).order_by(W.week)).all()
    daily = session.execute(select(A.day, func.count(), func.sum(A.events)).where(A.course_id == course_id)
                            .group_by(A.day).order_by(A.day)).all()

    assignments = _assignments(session, course_id, int(n_enrolled or 0))
    exercises = _exercises(session, course_id, top_errors)
    at_risk = []
    if risk_model is not None:
        at_risk = _at_risk(session, course_id, start, as_of, risk_model, at_risk_limit)
    return {
        "course_id": course_id,
        "as_of": _iso(as_of),
        "learners": int(n_learners),
        "enrollment": {"enrolled": int(n_enrolled or 0), "unenrolled": int(n_left or 0), "by_week": cumulative},
        "activity": {
            "weekly": [{"week": _iso(w), "active_learners": n, "events": int(e or 0),
                        "active_hours": round(float(s or 0) / 3600, 2)} for w, n, e, s in weekly],
            "daily": [{"day": _iso(d), "active_learners": n, "events": int(e or 0)} for d, n, e in daily],
        },
        "assignments": assignments,
        "exercises": exercises,
        "at_risk": at_risk,
        "at_risk_model": None if risk_model is None else {
            "features": FEATURES, "validated": "OULAD, AUC at day 60 and 120: see docs/analytics.md"},
    }


def _assignments(session: Session, course_id: str, enrolled: int) -> list[dict]:
    P = progress_table.c
    mine = and_(P.course_id == course_id, P.object_type == "assignment")
    funnel = session.execute(select(
        P.object_id, func.sum(case((P.fetched_at.is_not(None), 1), else_=0)),
        func.sum(case((P.submitted_at.is_not(None), 1), else_=0)),
        func.sum(case((P.best_score.is_not(None), 1), else_=0)), func.sum(case((P.passes > 0, 1), else_=0)),
        func.avg(_pct(P))).where(mine).group_by(P.object_id).order_by(P.object_id)).all()
    pct = _pct(P)
    histogram: dict[str, list[int]] = defaultdict(lambda: [0] * (len(SCORE_BINS) - 1))
    bucket = _bucket(pct)
    for object_id, index, count in session.execute(
            select(P.object_id, bucket, func.count()).where(mine, P.best_score.is_not(None))
            .group_by(P.object_id, bucket)):
        histogram[object_id][int(index)] += count
    return [{
        "assignment_id": object_id,
        "funnel": {"enrolled": enrolled, "fetched": int(fetched), "submitted": int(submitted),
                   "graded": int(graded), "passed": int(passed)},
        "scores": {"bins": SCORE_BINS, "counts": histogram[object_id],
                   "mean": None if mean is None else round(float(mean), 2)},
    } for object_id, fetched, submitted, graded, passed, mean in funnel]


def _exercises(session: Session, course_id: str, top_errors: int) -> list[dict]:
    P = progress_table.c
    mine = and_(P.course_id == course_id, P.object_type == "exercise")
    # One pass over the course's exercise rows: grouped by exercise and attempts-to-pass, from which
    # the per-exercise totals and the exact median of attempts to pass both follow.
    # Literals, not bound parameters, so that the grouped expression and the selected one are the same.
    has_passed = P.passes > literal_column("0")
    passed_flag = case((has_passed, literal_column("1")), else_=literal_column("0"))
    needed_expr = case((has_passed, P.attempts_to_pass))
    totals: dict[str, dict] = {}
    to_pass: dict[str, list] = defaultdict(list)
    for object_id, needed, assignment_id, learners, passed, attempts in session.execute(
            select(P.object_id, needed_expr, func.max(P.assignment_id), func.count(),
                   func.sum(passed_flag), func.sum(P.attempts))
            .where(mine).group_by(P.object_id, needed_expr)):
        entry = totals.setdefault(object_id, {"assignment_id": None, "learners": 0, "passed": 0, "attempts": 0})
        entry["assignment_id"] = entry["assignment_id"] or assignment_id
        entry["learners"] += learners
        entry["passed"] += int(passed or 0)
        entry["attempts"] += int(attempts or 0)
        if needed is not None:
            to_pass[object_id].append((needed, int(passed or 0)))
    seconds = _median_seconds_to_pass(session, course_id)
    errors: dict[str, list] = defaultdict(list)
    E = errors_table.c
    for object_id, error_type, count in session.execute(
            select(E.object_id, E.error_type, E.count).where(E.course_id == course_id)
            .order_by(E.object_id, E.count.desc(), E.error_type)):
        if len(errors[object_id]) < top_errors:
            errors[object_id].append({"error_type": error_type, "count": count})
    out = []
    for object_id in sorted(totals):
        entry, pairs = totals[object_id], to_pass[object_id]
        n_passed = sum(count for _, count in pairs)
        out.append({
            "exercise_id": object_id, "assignment_id": entry["assignment_id"],
            "learners_attempted": entry["learners"], "learners_passed": entry["passed"],
            "pass_rate": round(entry["passed"] / entry["learners"], 4) if entry["learners"] else None,
            "attempts": entry["attempts"],
            "attempts_to_pass": {"median": _median_of_counts(pairs),
                                 "mean": round(sum(v * c for v, c in pairs) / n_passed, 2) if n_passed else None},
            "median_seconds_to_pass": seconds.get(object_id),
            "common_errors": errors.get(object_id, []),
        })
    return out


def _median_seconds_to_pass(session: Session, course_id: str) -> dict[str, float]:
    """Per exercise, the median time from fetching its assignment (or, if unknown, the first attempt)
    to the first pass."""
    e = progress_table.alias("e")
    a = progress_table.alias("a")
    joined = e.outerjoin(a, and_(a.c.course_id == e.c.course_id, a.c.actor == e.c.actor,
                                 a.c.object_type == "assignment", a.c.object_id == e.c.assignment_id))
    begin = func.coalesce(a.c.fetched_at, e.c.first_time)
    mine = and_(e.c.course_id == course_id, e.c.object_type == "exercise", e.c.first_pass_time.is_not(None))
    if session.get_bind().dialect.name == "postgresql":
        # Summary tables grow fast and their planner statistics lag behind (autovacuum); with an
        # estimate of one row PostgreSQL picks a nested loop that compares every exercise row with
        # every assignment row. A hash join is right at any size, so ask for it (this transaction only).
        session.execute(text("SET LOCAL enable_nestloop = off"))
        seconds = func.greatest(0, func.extract("epoch", e.c.first_pass_time - begin))
        rows = session.execute(select(e.c.object_id, func.percentile_cont(0.5).within_group(seconds))
                               .select_from(joined).where(mine).group_by(e.c.object_id)).all()
        return {object_id: round(float(value), 1) for object_id, value in rows if value is not None}
    # SQLite (the single-machine default, small courses): medians in Python.
    seconds = (func.julianday(e.c.first_pass_time) - func.julianday(begin)) * 86400.0
    values: dict[str, list] = defaultdict(list)
    for object_id, value in session.execute(select(e.c.object_id, seconds).select_from(joined).where(mine)):
        if value is not None:
            values[object_id].append(max(0.0, value))
    return {object_id: round(float(statistics.median(v)), 1) for object_id, v in values.items()}


def learner_features(session: Session, course_id: str, start: datetime, as_of: datetime):
    """The at-risk features (:data:`risk.FEATURES`) of every current learner of a course, as of ``as_of``,
    and when each was last active.

    "Assignments due so far" are the course's assignments someone has already submitted or been
    graded on: the analytics service does not know the course's calendar (the courses service does).
    """
    P, L = progress_table.c, learners_table.c
    done = and_(P.course_id == course_id, P.object_type == "assignment",
                or_(P.submitted_at.is_not(None), P.best_score.is_not(None)))
    n_due = session.execute(select(func.count(func.distinct(P.object_id))).where(done)).scalar_one()
    per = {actor: (n, mean) for actor, n, mean in session.execute(
        select(P.actor, func.count(), func.avg(_pct(P))).where(done).group_by(P.actor))}
    current = session.execute(select(L.actor, L.last_submission_time, L.last_time).where(
        L.course_id == course_id,
        or_(L.unenrolled_at.is_(None), and_(L.enrolled_at.is_not(None), L.enrolled_at > L.unenrolled_at)))).all()
    actors = [r.actor for r in current]
    submitted = np.array([per.get(a, (0, None))[0] for a in actors], dtype=float)
    table = pd.DataFrame(index=pd.Index(actors, name="actor"))
    table["n_due"] = float(n_due)
    table["frac_submitted"] = submitted / n_due if n_due else 1.0
    table["missed"] = np.clip(n_due - submitted, 0, None)
    table["mean_score"] = [float(per[a][1]) if a in per and per[a][1] is not None else 0.0 for a in actors]
    table["days_since_last_submission"] = [
        max(0.0, (as_of - (_utc(r.last_submission_time) or start)).total_seconds() / 86400) for r in current]
    return table[FEATURES].astype(float), {r.actor: _iso(r.last_time) for r in current}


def _at_risk(session, course_id, start, as_of, model, limit: int) -> list[dict]:
    features, last_active = learner_features(session, course_id, start, as_of)
    if features.empty:
        return []
    risk = model.predict_proba(features)[:, 1]
    order = np.argsort(-risk, kind="stable")[:limit]
    top = features.iloc[order]
    reasons = model.reasons(top)
    return [{"learner": actor, "risk": round(float(risk[i]), 4), "at_risk": bool(risk[i] >= 0.5), "reasons": why,
             "last_active": last_active[actor],
             "features": {k: round(float(v), 2) for k, v in top.loc[actor].items()}}
            for i, actor, why in zip(order, top.index, reasons)]


def course_version(session: Session, course_id: str) -> tuple:
    """A cheap fingerprint of everything a course report depends on: it changes with every learner
    event stored for the course (events only ever add to the per-learner counters), so a report
    built at one version is exact for as long as the version holds."""
    L = learners_table.c
    count, events, last = session.execute(select(func.count(), func.sum(L.events), func.max(L.last_time))
                                          .where(L.course_id == course_id)).one()
    return (int(count), int(events or 0), _iso(last))


def course_ids(session: Session) -> list[str]:
    """Every course with learner activity on record, sorted."""
    L = learners_table.c
    return sorted(session.scalars(select(L.course_id).distinct()))


def course_events(session: Session, course_id: str, batch: int = 5000):
    """The raw events of a course in time order, as row mappings, streamed (for exports)."""
    query = (select(Event.id, Event.time, Event.actor, Event.verb, Event.object_type, Event.object_id,
                    Event.course_id, Event.result, Event.context, Event.source, Event.schema_version)
             .where(Event.course_id == course_id).order_by(Event.time, Event.id)
             .execution_options(yield_per=batch))
    for row in session.execute(query).mappings():
        yield row


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {"count": int(array.size), "p50": round(float(np.percentile(array, 50)), 3),
            "p90": round(float(np.percentile(array, 90)), 3), "p99": round(float(np.percentile(array, 99)), 3),
            "max": round(float(array.max()), 3)}


NO_GRADING_STATS = {"queue_depth": None, "running": None, "latency_seconds": None}


def _events_by_verb(totals: dict[str, int]) -> dict[str, int]:
    """The daily table's totals as events of the log by verb: its ``regraded`` key, which
    counts regrades' ``graded`` events apart, is folded back into ``graded``."""
    by_verb = {verb: count for verb, count in totals.items() if verb != REGRADED}
    if totals.get(REGRADED):
        by_verb[Verb.GRADED] = by_verb.get(Verb.GRADED, 0) + totals[REGRADED]
    return dict(sorted(by_verb.items()))


def platform_report(session: Session, now: datetime | None = None, days: int = 30,
                    grading: dict | None = None) -> dict:
    """Platform health for admins: active users, servers spawned, submissions, grading latency, queue.

    ``grading``: the grading queue's state as the feedback service reports it (``api/grading/stats``,
    which owns the queue); without it, queue depth is unknown and latency comes from graded events."""
    now = now or datetime.now(timezone.utc)
    since_day = (now - timedelta(days=days - 1)).date()
    A = activity_table.c

    def active(window: int) -> int:
        return session.execute(select(func.count(func.distinct(A.actor)))
                               .where(A.day >= (now - timedelta(days=window - 1)).date())).scalar_one()

    daily_active = session.execute(select(A.day, func.count(func.distinct(A.actor))).where(A.day >= since_day)
                                   .group_by(A.day).order_by(A.day)).all()
    D = daily_table.c
    per_verb = session.execute(select(D.day, D.verb, D.count, D.duration_sum).where(D.day >= since_day)
                               .order_by(D.day)).all()
    series: dict[str, dict] = defaultdict(dict)
    totals: dict[str, int] = defaultdict(int)
    for day, verb, count, _ in per_verb:
        series[verb][day.isoformat()] = count
        totals[verb] += count
    graded = session.execute(select(Event.result, Event.context).where(
        Event.verb == Verb.GRADED, Event.time >= now - timedelta(days=days))).all()
    # As the feedback service's own statistics: a regrade queues a whole class at once and nobody
    # waits for it, so its latency says nothing about the learners' wait.
    event_latency = [r["duration"] for r, context in graded
                     if r and r.get("duration") is not None and not is_regrade(context)]
    grading = dict(grading or NO_GRADING_STATS)
    if not grading.get("latency_seconds") or not grading["latency_seconds"]["count"]:
        grading["latency_seconds"] = _percentiles(event_latency)
    courses = session.execute(select(A.course_id, func.count(func.distinct(A.actor)))
                              .where(A.day >= (now - timedelta(days=6)).date(), A.course_id != NO_COURSE)
                              .group_by(A.course_id).order_by(func.count(func.distinct(A.actor)).desc())
                              .limit(20)).all()
    return {
        "as_of": _iso(now), "window_days": days,
        "active_users": {"day": active(1), "week": active(7), "month": active(30),
                         "daily": [{"day": _iso(d), "active_users": n} for d, n in daily_active]},
        "servers_spawned": {"total": totals.get(Verb.SERVER_SPAWNED, 0),
                            "daily": series.get(Verb.SERVER_SPAWNED, {})},
        "submissions": {"total": totals.get(Verb.SUBMITTED, 0), "daily": series.get(Verb.SUBMITTED, {})},
        # submissions graded; their regrades (after a test fix) apart, as they grade no new work
        "graded": {"total": totals.get(Verb.GRADED, 0), "daily": series.get(Verb.GRADED, {})},
        "regraded": {"total": totals.get(REGRADED, 0), "daily": series.get(REGRADED, {})},
        "grading": grading,
        # the log's events by verb: a regrade's events are ``graded`` events
        "events_by_verb": _events_by_verb(totals),
        "busiest_courses": [{"course_id": c, "active_learners_7d": n} for c, n in courses],
    }
