"""The grading queue's state: how many jobs wait, how many run, how long submit → graded takes.

The feedback service owns the queue, so it answers for it: ``GET api/grading/stats`` (the analytics
service's platform report asks it) and Prometheus gauges in its own ``metrics``.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnhub import db as lhdb
from learnhub.graders.models import QUEUED, RUNNING, GradingJob
from learnhub.timeutil import as_utc, utcnow


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    array = np.asarray(values, dtype=float)
    return {"count": int(array.size), "p50": round(float(np.percentile(array, 50)), 3),
            "p90": round(float(np.percentile(array, 90)), 3), "p99": round(float(np.percentile(array, 99)), 3),
            "max": round(float(array.max()), 3)}


def grading_stats(session: Session, since: datetime) -> dict:
    """Queue depth now and the latency of graded submissions (mode grade, not regrades) finished since ``since``."""
    depth = dict(session.execute(select(GradingJob.status, func.count()).where(
        GradingJob.status.in_((QUEUED, RUNNING))).group_by(GradingJob.status)).all())
    # A regrade queues a whole class at once and nobody waits for one submission: its jobs would
    # only blur how long a learner waits, so the latency is of learners' own submissions.
    finished = session.execute(select(GradingJob.created_at, GradingJob.finished_at).where(
        GradingJob.finished_at.is_not(None), GradingJob.finished_at >= since, GradingJob.mode == "grade",
        GradingJob.regrade_id.is_(None))).all()
    latencies = [(as_utc(done) - as_utc(created)).total_seconds() for created, done in finished]
    return {"queue_depth": int(depth.get(QUEUED, 0)), "running": int(depth.get(RUNNING, 0)),
            "latency_seconds": percentiles(latencies)}


class GradingCollector:
    """Queue depth and grading latency (last hour), read from the database when Prometheus scrapes."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        try:
            with lhdb.session_scope(self.service.session_factory) as session:
                state = grading_stats(session, utcnow() - timedelta(hours=1))
        except Exception:  # a scrape must not fail because the database blinked
            return
        depth = GaugeMetricFamily("learnhub_grading_queue_depth", "Grading jobs waiting", labels=["status"])
        depth.add_metric(["queued"], state["queue_depth"])
        depth.add_metric(["running"], state["running"])
        yield depth
        latency = GaugeMetricFamily("learnhub_grading_latency_seconds",
                                    "Submission-to-grade latency over the last hour", labels=["quantile"])
        for key, quantile in (("p50", "0.5"), ("p90", "0.9"), ("p99", "0.99")):
            value = state["latency_seconds"][key]
            if value is not None:
                latency.add_metric([quantile], value)
        yield latency
