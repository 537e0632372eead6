"""Course and platform reports from the pre-aggregations: exact against a brute-force recount of the
raw events, even when batches arrive out of order and are resent; the at-risk list with reasons."""
from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest

from learnhub import db as lhdb
from learnhub.events import EventLog, make_event, parse_time
from learnhub.extensions.analytics import reports, synthetic
from learnhub.extensions.analytics.risk import AtRiskClassifier, FEATURES

from analytics_helpers import at, event  # noqa: F401 (event is a fixture)


def brute_force(events: list[dict]) -> dict:
    """The report's numbers recomputed naively from the raw events."""
    events = sorted(events, key=lambda e: parse_time(e["time"]))
    learners = {e["actor"] for e in events}
    weeks = defaultdict(set)
    progress = defaultdict(lambda: {"attempts": 0, "first_pass_attempt": None, "fetched": False,
                                    "submitted": False, "best": None, "max": None})
    errors = defaultdict(Counter)
    for e in events:
        t = parse_time(e["time"]).date()
        weeks[(t - timedelta(days=t.weekday())).isoformat()].add(e["actor"])
        key = (e["object"]["id"], e["actor"])
        state, result = progress[key], e.get("result", {})
        if e["verb"] == "fetched":
            state["fetched"] = True
        elif e["verb"] == "submitted":
            state["submitted"] = True
        elif e["verb"] in ("attempted", "graded"):
            state["attempts"] += 1
            if "score" in result:
                state["best"] = max(state["best"] or 0, result["score"])
                state["max"] = result.get("max_score")
            if result.get("success") and state["first_pass_attempt"] is None:
                state["first_pass_attempt"] = state["attempts"]
            if result.get("error_type"):
                errors[e["object"]["id"]][result["error_type"]] += 1
    return {"learners": len(learners), "weeks": {w: len(a) for w, a in weeks.items()}, "progress": progress,
            "errors": errors}


@pytest.mark.parametrize("shuffle", [False, True], ids=["in-order", "out-of-order"])
def test_report_is_exact_against_a_recount_of_the_raw_events(db_session_factory, shuffle):
    events = list(synthetic.course_events("c1", learners=40, assignments=3, exercises_per_assignment=3,
                                          days=30, seed=7))
    batches = [events[i:i + 97] for i in range(0, len(events), 97)]
    if shuffle:  # late batches: progress rows go dirty and are recounted from the raw log
        random.Random(3).shuffle(batches)
    log = EventLog()
    for batch in batches + batches[:3]:  # and some batches are resent
        with lhdb.session_scope(db_session_factory) as session:
            log.append(session, batch)
    with lhdb.session_scope(db_session_factory) as session:
        report = reports.course_report(session, "c1")
    truth = brute_force(events)

    assert report["learners"] == truth["learners"] == 40
    assert report["enrollment"]["enrolled"] == 40
    assert {w["week"]: w["active_learners"] for w in report["activity"]["weekly"]} == truth["weeks"]
    assert sum(d["events"] for d in report["activity"]["daily"]) == len(events)
    progress = truth["progress"]
    for assignment in report["assignments"]:
        rows = {a: s for (o, a), s in progress.items() if o == assignment["assignment_id"]}
        funnel = assignment["funnel"]
        assert funnel["fetched"] == sum(s["fetched"] for s in rows.values())
        assert funnel["submitted"] == sum(s["submitted"] for s in rows.values())
        assert funnel["graded"] == sum(s["best"] is not None for s in rows.values())
        assert funnel["passed"] == sum(s["first_pass_attempt"] is not None for s in rows.values())
        assert sum(assignment["scores"]["counts"]) == funnel["graded"]
        percents = [100 * s["best"] / s["max"] for s in rows.values() if s["best"] is not None]
        assert assignment["scores"]["mean"] == pytest.approx(statistics.mean(percents), abs=0.01)
    assert len(report["exercises"]) == 9
    for exercise in report["exercises"]:
        rows = [s for (o, _), s in progress.items() if o == exercise["exercise_id"]]
        passed = [s["first_pass_attempt"] for s in rows if s["first_pass_attempt"] is not None]
        assert exercise["learners_attempted"] == len(rows)
        assert exercise["learners_passed"] == len(passed)
        assert exercise["attempts"] == sum(s["attempts"] for s in rows)
        assert exercise["attempts_to_pass"]["median"] == statistics.median(passed)
        assert exercise["attempts_to_pass"]["mean"] == pytest.approx(statistics.mean(passed), abs=0.01)
        expected = truth["errors"][exercise["exercise_id"]].most_common()
        assert [(e["error_type"], e["count"]) for e in exercise["common_errors"]] == \
            sorted(expected, key=lambda x: (-x[1], x[0]))[:3]
        assert exercise["median_seconds_to_pass"] is None or exercise["median_seconds_to_pass"] >= 0


def test_a_small_course_reads_as_expected(db_session_factory, event):
    def ex(actor, number, hours, success, error=None):
        result = {"success": success, "score": 1.0 if success else 0.0, "max_score": 1.0}
        if error:
            result["error_type"] = error
        return event(actor, "attempted", "exercise", "a1/ex1", time=at(1, hours), result=result,
                     context={"assignment_id": "a1"}, id=f"{actor}-ex-{number}")

    events = [
        event("ann", "enrolled", "course", "c1", time=at(0)), event("bob", "enrolled", "course", "c1", time=at(0)),
        event("cy", "enrolled", "course", "c1", time=at(0)), event("cy", "unenrolled", "course", "c1", time=at(2)),
        event("ann", "fetched", "assignment", "a1", time=at(1)), event("bob", "fetched", "assignment", "a1", time=at(1)),
        ex("ann", 1, 1, False, "NameError"), ex("ann", 2, 2, False, "NameError"), ex("ann", 3, 3, True),
        ex("bob", 1, 1, True),
        event("ann", "submitted", "assignment", "a1", time=at(1, 4)),
        event("ann", "graded", "assignment", "a1", time=at(1, 5), result={"score": 7, "max_score": 10, "duration": 12}),
        event("bob", "submitted", "assignment", "a1", time=at(1, 2)),
        event("bob", "graded", "assignment", "a1", time=at(1, 3), result={"score": 10, "max_score": 10, "duration": 4}),
        event("bob", "active", "notebook", "a1.ipynb", time=at(9), result={"duration": 1800}),
        event("ann", "active", "notebook", "a1.ipynb", time=at(9), result={"duration": 600},
              context={"role": "instructor"}),  # staff activity is not learner activity
        event("ann", "opened", "notebook", "other.ipynb", course_id="c2", time=at(9)),  # another course
    ]
    with lhdb.session_scope(db_session_factory) as session:
        EventLog().append(session, events)
    model = AtRiskClassifier().fit([[0, 0, 3, 60, 3], [1, 90, 0, 1, 3], [0.3, 40, 2, 30, 3], [1, 80, 0, 2, 3]],
                                   [1, 0, 1, 0])
    with lhdb.session_scope(db_session_factory) as session:
        report = reports.course_report(session, "c1", model)
        platform = reports.platform_report(session, now=at(10))
    assert report["learners"] == 3
    assert report["enrollment"] == {"enrolled": 2, "unenrolled": 1,
                                    "by_week": [{"week": "2026-03-02", "new": 2, "enrolled": 2}]}
    [a1] = report["assignments"]
    # Without "success", passing means full marks: bob passed, ann (7/10) did not.
    assert a1["funnel"] == {"enrolled": 2, "fetched": 2, "submitted": 2, "graded": 2, "passed": 1}
    assert a1["scores"]["counts"][7] == 1 and a1["scores"]["counts"][9] == 1 and a1["scores"]["mean"] == 85.0
    [ex1] = report["exercises"]
    assert ex1["pass_rate"] == 1.0 and ex1["attempts"] == 4
    assert ex1["attempts_to_pass"] == {"median": 2.0, "mean": 2.0}
    assert ex1["common_errors"] == [{"error_type": "NameError", "count": 2}]
    # From fetching the assignment to the first pass: ann 3 h, bob 1 h.
    assert ex1["median_seconds_to_pass"] == pytest.approx(2 * 3600, abs=1)
    weeks = {w["week"]: w for w in report["activity"]["weekly"]}
    assert weeks["2026-03-09"]["active_learners"] == 1 and weeks["2026-03-09"]["active_hours"] == 0.5
    # cy left the course: not ranked. Both remaining learners are ranked, with reasons.
    assert {r["learner"] for r in report["at_risk"]} == {"ann", "bob"}
    assert all(set(r["features"]) == set(FEATURES) for r in report["at_risk"])
    assert report["at_risk"][0]["risk"] >= report["at_risk"][1]["risk"]

    assert platform["active_users"]["month"] == 3
    assert platform["submissions"]["total"] == 2 and platform["graded"]["total"] == 2
    assert platform["grading"]["latency_seconds"]["count"] == 2  # from graded events (no grading jobs yet)
    assert platform["grading"]["latency_seconds"]["max"] == 12
    assert {c["course_id"] for c in platform["busiest_courses"]} == {"c1", "c2"}


def test_an_unknown_course_has_an_empty_report(db_session_factory):
    with lhdb.session_scope(db_session_factory) as session:
        report = reports.course_report(session, "nothing-here")
    assert report["learners"] == 0 and report["assignments"] == [] and report["at_risk"] == []


def test_grading_latency_is_read_from_finished_grading_jobs(db_url):
    """A job the grading queue finished is read back as a latency, on SQLite too: raw SQL there hands
    back timestamps as strings unless the query says which columns are dates (it once failed with
    ``'str' object has no attribute 'tzinfo'`` after the first graded submission)."""
    from learnhub.graders.queue import JobQueue

    queue = JobQueue(db_url)
    try:
        queue.enqueue(course_id="c1", assignment_id="a1", learner_id="ann", source_path="/nowhere",
                      submission_blob=b"zip")
        queue.enqueue(course_id="c1", assignment_id="a1", learner_id="bob", source_path="/nowhere",
                      submission_blob=b"zip")
        claim = queue.claim("worker-1")
        assert queue.complete(claim, {"score": 1.0, "max_score": 1.0})
        with lhdb.session_scope(queue.sessions) as session:
            state = reports.grading_state(session, datetime.now(timezone.utc) - timedelta(hours=1))
            platform = reports.platform_report(session)
        assert state["queue_depth"] == 1 and state["running"] == 0
        assert state["latency_seconds"]["count"] == 1 and state["latency_seconds"]["p50"] >= 0
        assert platform["grading"]["latency_seconds"]["count"] == 1
        # A job finished before the window is left out.
        with lhdb.session_scope(queue.sessions) as session:
            later = reports.grading_state(session, datetime.now(timezone.utc) + timedelta(minutes=1))
        assert later["latency_seconds"]["count"] == 0
    finally:
        queue.engine.dispose()
