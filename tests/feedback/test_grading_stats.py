"""The grading queue's statistics, which the feedback service answers for (``api/grading/stats`` and
its metrics): depth, running jobs and the latency of finished submissions, on both databases."""
from __future__ import annotations

from datetime import timedelta

import pytest

from learnhub import db as lhdb
from learnhub.extensions.feedback.grading_stats import grading_stats
from learnhub.graders.queue import JobQueue
from learnhub.timeutil import utcnow

pytestmark = pytest.mark.db


def test_depth_running_and_latency_of_finished_jobs(db_url):
    """SQLite hands timestamps back naive (and once, through raw SQL, as strings: the platform report
    answered 500 after the first graded submission); the statistics are exact on both."""
    queue = JobQueue(db_url)
    try:
        for learner in ("ann", "bob", "cy"):
            queue.enqueue(course_id="c1", assignment_id="a1", learner_id=learner, source_path="/nowhere",
                          submission_blob=b"zip")
        queue.enqueue(course_id="c1", assignment_id="a1", learner_id="dee", source_path="/nowhere",
                      submission_blob=b"zip", mode="check")
        done = queue.claim("worker-1")
        assert queue.complete(done, {"score": 1.0, "max_score": 1.0})
        running = queue.claim("worker-2")
        assert running is not None
        with lhdb.session_scope(queue.sessions) as session:
            stats = grading_stats(session, utcnow() - timedelta(hours=1))
            later = grading_stats(session, utcnow() + timedelta(minutes=1))
        assert (stats["queue_depth"], stats["running"]) == (2, 1)  # the check waits too
        assert stats["latency_seconds"]["count"] == 1 and 0 <= stats["latency_seconds"]["p50"] < 60
        assert later["latency_seconds"] == {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    finally:
        queue.engine.dispose()
