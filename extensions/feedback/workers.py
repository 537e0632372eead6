"""Grading worker processes kept running beside the feedback service, and the record of results.

Workers are separate processes (``python -m learnhub.graders.worker``) that claim jobs from
the durable queue; the service only supervises them. :class:`CompletionRecorder` appends one
``graded`` event per finished job to the event log, so analytics, the recommender and
notifications learn of results however the job was submitted.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import datetime, timedelta, timezone

from sqlalchemy import or_, select

from learnhub import db as lhdb
from learnhub.events import EventLog, Verb, make_event
from learnhub.graders.models import FAILED, GRADED, GradingJob
from learnhub.timeutil import as_utc

log = logging.getLogger("learnhub.feedback")
SOURCE = "feedback"


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM it when the service dies, however the service dies."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerSupervisor:
    """Start ``count`` grading workers, restart any that dies, stop them with the service."""

    def __init__(self, db_url: str, count: int, pool_size: int, sandbox: str = "",
                 allow_unsafe_local: bool = False):
        self.db_url = db_url
        self.count = count
        self.pool_size = pool_size
        self.sandbox = sandbox
        self.allow_unsafe_local = allow_unsafe_local
        self.processes: list[asyncio.subprocess.Process | None] = [None] * count
        self._task: asyncio.Task | None = None
        self._stopping = False

    def command(self, index: int) -> list[str]:
        cmd = [sys.executable, "-m", "learnhub.graders.worker", "--db-url", self.db_url,
               "--pool-size", str(self.pool_size), "--poll", "0.05", "--worker-id", f"feedback-worker-{index}"]
        if self.sandbox:
            cmd += ["--sandbox", self.sandbox]
        if self.allow_unsafe_local:
            cmd.append("--allow-unsafe-local")
        return cmd

    async def _spawn(self, index: int) -> None:
        self.processes[index] = await asyncio.create_subprocess_exec(
            *self.command(index), stdout=asyncio.subprocess.DEVNULL, stderr=None,
            preexec_fn=_terminate_with_parent)
        log.info("grading worker %d started (pid %d)", index, self.processes[index].pid)

    async def start(self) -> None:
        for index in range(self.count):
            await self._spawn(index)
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(2)
            for index, process in enumerate(self.processes):
                if process is not None and process.returncode is not None and not self._stopping:
                    log.warning("grading worker %d exited with %s; restarting", index, process.returncode)
                    await self._spawn(index)

    async def stop(self, grace: float = 15) -> None:
        self._stopping = True
        if self._task:
            self._task.cancel()
        for process in self.processes:
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            if process is None:
                continue
            try:
                await asyncio.wait_for(process.wait(), grace)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


def flatten_tests(result: dict | None) -> list[dict]:
    """Per-test results of every notebook, in order, with the notebook's name."""
    tests = []
    for notebook in (result or {}).get("notebooks", []):
        for test in notebook.get("tests", []):
            tests.append({"notebook": notebook.get("name"), **test})
    return tests


def graded_event(job: GradingJob, previous_score: float | None = None) -> dict:
    """The ``graded`` (or ``grading-failed``) event of a finished job, its id derived from the job's
    so that recording it twice stores it once. Its object is the job (``submissions/{id}`` here);
    ``context.submission_id`` names the courses service's submission it graded, which for a regrade
    is an older one, ``context.regrade_id`` the regrade and ``context.previous_score`` the score of
    the grading it replaces (:func:`replaced_score`)."""
    result = job.result or {}
    tests = [{"grade_id": t.get("grade_id"), "passed": t.get("passed"), "points": t.get("points"),
              "max_points": t.get("max_points"), "error_type": t.get("error") or t.get("hidden_error")}
             for t in flatten_tests(result) if t.get("grade_id")]
    context = {"assignment_id": job.assignment_id, "mode": job.mode, "role": "learner",
               # the courses service's submission: a regrade's job is not the submission itself
               "submission_id": job.submission_id or job.id}
    if job.regrade_id:
        context["regrade_id"] = job.regrade_id
        if previous_score is not None:
            context["previous_score"] = previous_score
    if job.status != GRADED:
        return make_event(job.learner_id, Verb.GRADING_FAILED, "submission", job.id, course_id=job.course_id,
                          result={"error": (job.error or "")[:2000]}, context=context, source=SOURCE,
                          time=job.finished_at, id=f"graded:{job.id}")
    # Success means every autograded test passed: manually graded answers wait for a person
    # and must not make a perfect autograded submission look failed.
    success = bool(tests) and all(t["passed"] for t in tests)
    latency = (as_utc(job.finished_at) - as_utc(job.created_at)).total_seconds() \
        if job.finished_at and job.created_at else None
    return make_event(job.learner_id, Verb.GRADED, "submission", job.id, course_id=job.course_id,
                      result={"score": job.score or 0.0, "max_score": job.max_score or 0.0, "success": success,
                              "duration": latency, "tests": tests},
                      context=context, source=SOURCE, time=job.finished_at, id=f"graded:{job.id}")


def replaced_score(session, job: GradingJob) -> float | None:
    """The score of the submission's grading before this regrade's (its first job, whose id is the
    submission's, or an earlier regrade's): what the learner was told last."""
    if not job.regrade_id:
        return None
    submission = job.submission_id or job.id
    earlier = session.scalar(
        select(GradingJob).where(or_(GradingJob.id == submission, GradingJob.submission_id == submission),
                                 GradingJob.id != job.id, GradingJob.status == GRADED, GradingJob.mode == "grade",
                                 GradingJob.finished_at <= job.finished_at)
        .order_by(GradingJob.finished_at.desc()).limit(1))
    return (earlier.score or 0.0) if earlier is not None else None


class CompletionRecorder:
    """Append a ``graded`` event for every finished grading job, exactly once (event id = job id)."""

    def __init__(self, session_factory, interval: float = 0.5, lookback: timedelta = timedelta(days=1)):
        self.sessions = session_factory
        self.log = EventLog(default_source=SOURCE)
        self.interval = interval
        self.cursor = datetime.now(timezone.utc) - lookback
        self._task: asyncio.Task | None = None

    def record_new(self) -> int:
        # Jobs finish on other processes' clocks: look a little behind the cursor, and rely
        # on the event id to never store one twice.
        since = self.cursor - timedelta(seconds=5)
        recorded = 0
        with lhdb.session_scope(self.sessions) as session:
            jobs = session.scalars(
                select(GradingJob)
                .where(GradingJob.status.in_((GRADED, FAILED)), GradingJob.mode == "grade",
                       GradingJob.finished_at >= since)
                .order_by(GradingJob.finished_at)).all()
            if jobs:
                outcome = self.log.append(session, [graded_event(job, replaced_score(session, job)) for job in jobs])
                if outcome.rejected:  # a bug of ours, never a learner's doing: say which and why
                    log.error("graded events refused by the event log: %s", outcome.rejected)
                recorded = len(outcome.stored)
                self.cursor = max(self.cursor, max(as_utc(job.finished_at) for job in jobs))
        return recorded

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, self.record_new)
            except Exception:
                log.exception("recording grading results in the event log failed; will retry")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
