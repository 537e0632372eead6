"""A regrade replaces a submission's grading in the analytics summaries: it is no attempt, no pass and no
error of its own, and no activity of the learner's.

The oracle is a second course in the same database where the same submissions were graded right the
first time (the regrades' results at the first gradings' times, no regrade events): both courses' reports
must be equal. Events as the feedback service writes them (``graded_event`` of real job rows), in the
batches the service would append them. Runs on SQLite and PostgreSQL (LEARNHUB_TEST_DB_URL).
"""
from __future__ import annotations

from learnhub import db as lhdb

from analytics_helpers import at
from regrade_events import append, grading_job, submitted

ASSIGNMENT = "01-basics"
WRONG = "AssertionError"  # what the wrong shout test raises on a right answer


def gradings(course: str, fixed: bool):
    """The class's history in ``course`` as batches of events. ``fixed``: the shout test was right
    from the start; else it is wrong, then fixed and the assignment regraded (twice for bob)."""
    from learnhub.extensions.feedback.workers import graded_event

    def sub(name):
        return f"{course}-{name}"

    first = {  # submission -> (learner, attempt, time, tests with the wrong test, tests with the fixed one)
        "s1": ("ann", 1, at(1), {"variables": WRONG, "shout": WRONG}, {"variables": WRONG, "shout": WRONG}),
        "s2": ("ann", 2, at(1, 1), {"variables": True, "shout": WRONG}, {"variables": True, "shout": True}),
        "s3": ("bob", 1, at(1, 2), {"variables": "NameError", "shout": WRONG},
               {"variables": "NameError", "shout": True}),
        # the wrong test let carl's wrong answer pass
        "s4": ("carl", 1, at(1, 3), {"variables": True, "shout": True}, {"variables": True, "shout": WRONG}),
    }
    batches = [[event for name, (learner, attempt, time, wrong, right) in first.items() for event in (
        submitted(sub(name), learner, course, ASSIGNMENT, time, attempt),
        graded_event(grading_job(sub(name), learner, course, ASSIGNMENT, right if fixed else wrong, time)))]]
    if not fixed:
        # s1 is not regraded (an older attempt: regrades take each learner's latest)
        batches.append([graded_event(grading_job(sub(name), first[name][0], course, ASSIGNMENT, first[name][4],
                                                 at(2), regrade="r1")) for name in ("s2", "s3", "s4")])
        batches.append([graded_event(grading_job(sub("s3"), "bob", course, ASSIGNMENT, first["s3"][4], at(2, 1),
                                                 regrade="r2"))])
    return batches


def later_attempt(course: str):
    """ann submits once more after the regrade: a new attempt counts as always."""
    from learnhub.extensions.feedback.workers import graded_event

    return [submitted(f"{course}-s5", "ann", course, ASSIGNMENT, at(3), 3),
            graded_event(grading_job(f"{course}-s5", "ann", course, ASSIGNMENT, {"variables": True, "shout": True},
                                     at(3)))]


def report_of(session_factory, course):
    from learnhub.extensions.analytics import reports

    with lhdb.session_scope(session_factory) as session:
        report = reports.course_report(session, course)
    return {k: v for k, v in report.items() if k != "course_id"}


def test_a_regrade_replaces_the_grading_in_the_course_report(db_session_factory):
    for course, fixed in (("regraded", False), ("right-first", True)):
        for batch in gradings(course, fixed):
            with lhdb.session_scope(db_session_factory) as session:
                append(session, batch)
    regraded = report_of(db_session_factory, "regraded")
    assert regraded == report_of(db_session_factory, "right-first")

    (assignment,) = regraded["assignments"]
    # three learners graded, one passed (ann's regraded latest); carl's pass was the wrong test's
    assert assignment["funnel"] == {"enrolled": 0, "fetched": 0, "submitted": 3, "graded": 3, "passed": 1}
    exercises = {e["exercise_id"]: e for e in regraded["exercises"]}
    shout, variables = exercises[f"{ASSIGNMENT}/shout"], exercises[f"{ASSIGNMENT}/variables"]
    # four submissions, four attempts: the regrades add none
    assert (shout["attempts"], shout["learners_attempted"], shout["learners_passed"]) == (4, 3, 2)
    assert shout["attempts_to_pass"] == {"median": 1.5, "mean": 1.5}  # ann at her 2nd, bob at his 1st
    assert shout["common_errors"] == [{"error_type": WRONG, "count": 2}]  # ann's first attempt, carl's
    assert (variables["attempts"], variables["learners_passed"]) == (4, 2)
    assert variables["common_errors"] == [{"error_type": WRONG, "count": 1}, {"error_type": "NameError", "count": 1}]
    # nobody did anything on the regrade days: no activity then
    assert [d["day"] for d in regraded["activity"]["daily"]] == [at(1).date().isoformat()]

    # A new attempt after the regrade is counted on the recounted rows as ever.
    for course in ("regraded", "right-first"):
        with lhdb.session_scope(db_session_factory) as session:
            append(session, later_attempt(course))
    regraded = report_of(db_session_factory, "regraded")
    assert regraded == report_of(db_session_factory, "right-first")
    exercises = {e["exercise_id"]: e for e in regraded["exercises"]}
    assert exercises[f"{ASSIGNMENT}/shout"]["attempts"] == 5


def test_the_platform_report_counts_regrades_apart(db_session_factory):
    from learnhub.extensions.analytics import reports

    for batch in gradings("regraded", fixed=False):
        with lhdb.session_scope(db_session_factory) as session:
            append(session, batch)
    with lhdb.session_scope(db_session_factory) as session:
        report = reports.platform_report(session, now=at(4), days=30)
    assert report["graded"]["total"] == 4 and report["submissions"]["total"] == 4
    assert report["regraded"] == {"total": 4, "daily": {at(2).date().isoformat(): 4}}
    # the log holds 8 graded events (4 gradings, 4 regrades); regraded is no verb of the log
    assert report["events_by_verb"]["graded"] == 8 and "regraded" not in report["events_by_verb"]
    # grading latency is the learners' wait: the regrades' jobs are left out
    assert report["grading"]["latency_seconds"]["count"] == 4


def test_the_report_is_rebuilt_after_a_regrade(db_session_factory):
    """The analytics service serves a cached report while reports.course_version holds: a regrade,
    which is no activity, must still change it."""
    from learnhub.extensions.analytics import reports

    batches = gradings("regraded", fixed=False)
    with lhdb.session_scope(db_session_factory) as session:
        append(session, batches[0])
    with lhdb.session_scope(db_session_factory) as session:
        before = reports.course_version(session, "regraded")
        append(session, batches[1])
    with lhdb.session_scope(db_session_factory) as session:
        assert reports.course_version(session, "regraded") != before
