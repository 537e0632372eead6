"""The durable grading queue: claims, leases, retries, exactly-once results.

Runs on SQLite by default and on PostgreSQL when LEARNHUB_TEST_DB_URL is set (``db_url``).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from learnhub.graders import testing as T
from learnhub.graders.models import FAILED, GRADED, QUEUED, RUNNING, GradingJob
from learnhub.graders.queue import JobQueue
from learnhub.graders.sandbox import bwrap_path
from learnhub.graders.worker import make_blob

requires_bwrap = pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed")


def enqueue(q, source, sub, **kw):
    return q.enqueue(course_id="c1", assignment_id=T.ASSIGNMENT, learner_id=kw.pop("learner", "ann"),
                     source_path=str(source), submission_path=str(sub) if sub else None, **kw)


def test_stale_worker_cannot_overwrite(db_url, tmp_path):
    q = JobQueue(db_url)
    job_id = enqueue(q, tmp_path, tmp_path)
    first = q.claim("worker-a", lease_seconds=0.2)
    assert first and first.job_id == job_id and first.attempt == 1
    assert q.claim("worker-b", lease_seconds=30) is None  # leased: nobody else gets it
    time.sleep(0.4)
    second = q.claim("worker-b", lease_seconds=30)  # lease expired: taken over
    assert second and second.job_id == job_id and second.attempt == 2
    assert not q.renew(first, 30)
    assert not q.complete(first, {"score": 99.0, "max_score": 9.0})  # stale: refused
    assert q.complete(second, {"score": 7.0, "max_score": 9.0})
    assert not q.complete(second, {"score": 1.0, "max_score": 9.0})  # stored exactly once
    job = q.get(job_id)
    assert job.status == GRADED and job.score == 7.0 and job.result["score"] == 7.0
    assert job.attempts == 2 and job.lease_token is None


def test_attempts_exhausted_marks_failed(db_url, tmp_path):
    q = JobQueue(db_url)
    job_id = enqueue(q, tmp_path, tmp_path, max_attempts=1)
    assert q.claim("w", lease_seconds=0.1)
    time.sleep(0.3)
    assert q.claim("w2", lease_seconds=30) is None
    job = q.get(job_id)
    assert job.status == FAILED and "attempts" in job.error


def test_concurrent_claims_each_job_once(db_url, tmp_path):
    q = JobQueue(db_url)
    ids = {enqueue(q, tmp_path, tmp_path, learner=f"l{i}") for i in range(24)}
    claimed: list[str] = []
    lock = threading.Lock()

    def worker(n):
        wq = JobQueue(db_url)
        while True:
            c = wq.claim(f"w{n}", lease_seconds=60)
            if c is None:
                return
            assert wq.complete(c, {"score": 1.0, "max_score": 1.0})
            with lock:
                claimed.append(c.job_id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(ids)  # every job once, none twice
    assert q.counts() == {GRADED: 24}


def _start_worker(db_url, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "learnhub.graders.worker", "--db-url", db_url, "--pool-size", "1",
         "--poll", "0.2", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
    )


@requires_bwrap
def test_two_worker_processes_grade_each_job_once(db_url, nbgrader_run, tmp_path):
    q = JobQueue(db_url)
    subs = [T.make_submission(nbgrader_run.release, v, tmp_path / f"s{i}")
            for i, v in enumerate(["correct", "wrong", "hidden_fail", "correct", "blank", "correct"])]
    ids = [enqueue(q, nbgrader_run.source, s, learner=f"l{i}") for i, s in enumerate(subs[:-1])]
    # one job carries its files in the database instead of a path
    ids.append(q.enqueue(course_id="c1", assignment_id=T.ASSIGNMENT, learner_id="blob",
                         source_path=str(nbgrader_run.source), submission_blob=make_blob(subs[-1])))
    workers = [_start_worker(db_url, "--exit-when-idle", "--worker-id", f"w{i}") for i in range(2)]
    for w in workers:
        w.communicate(timeout=240)
    expected = [7.0, 1.0, 4.0, 7.0, 0.0, 7.0]
    for job_id, score in zip(ids, expected):
        job = q.get(job_id)
        assert job.status == GRADED, (job.status, job.error)
        assert job.attempts == 1
        assert job.score == score
        assert job.result["notebooks"][0]["tests"]
        assert job.progress["type"] == "done"


@requires_bwrap
def test_killed_worker_job_is_retried_after_lease(db_url, nbgrader_run, tmp_path):
    from learnhub.graders.engine import GradingEngine
    from learnhub.graders.worker import Worker

    q = JobQueue(db_url)
    sub = T.make_submission(nbgrader_run.release, "correct", tmp_path / "slow",
                            extra_code="import time\ntime.sleep(4)")
    job_id = enqueue(q, nbgrader_run.source, sub)
    doomed = _start_worker(db_url, "--lease", "2", "--worker-id", "doomed")
    deadline = time.monotonic() + 120
    while q.get(job_id).status != RUNNING:
        assert time.monotonic() < deadline, "worker never claimed the job"
        time.sleep(0.1)
    assert q.get(job_id).lease_owner == "doomed"
    os.killpg(doomed.pid, signal.SIGKILL)  # the worker dies mid-job
    doomed.wait(10)
    assert q.get(job_id).status == RUNNING  # still leased to the dead worker

    engine = GradingEngine(workdir=str(tmp_path / "engine"))
    survivor = Worker(db_url, engine=engine, pool_size=0, lease_seconds=10, worker_id="survivor")
    try:
        deadline = time.monotonic() + 120
        while not survivor.run_once():
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        survivor.close()
    job = q.get(job_id)
    assert job.status == GRADED and job.attempts == 2 and job.score == 7.0
    assert job.lease_owner == "survivor"


def test_migration_creates_table(db_engine):
    from sqlalchemy import inspect

    cols = {c["name"] for c in inspect(db_engine).get_columns("grading_jobs")}
    assert {"id", "status", "attempts", "lease_owner", "lease_expires_at", "result", "created_at"} <= cols
    assert GradingJob.__tablename__ == "grading_jobs" and QUEUED == "queued"
