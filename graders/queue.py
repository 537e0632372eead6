"""The durable grading queue: enqueue, claim with a lease, renew, complete exactly once.

Claiming is safe with many workers on both backends:

* PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks a job no other worker is
  looking at, and the claim is an UPDATE in the same transaction.
* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before looking, so the
  select-then-update cannot interleave with another worker's.

Both then use a conditional UPDATE (``WHERE id=? AND <still claimable>``) and check the
row count. A claim gives a fresh ``lease_token``; :meth:`JobQueue.complete` stores the
result only ``WHERE lease_token = <mine> AND status = 'running'``, so a worker whose lease
expired and was taken over can never overwrite the new holder's result, and a job's
result is written once.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine

from learnhub import db as lhdb
from learnhub.timeutil import utcnow

from .models import FAILED, GRADED, QUEUED, RUNNING, GradingJob


class JobExists(Exception):
    """A job with this id is queued already (its producer was retried, or another one queued it)."""


@dataclass
class Claim:
    """A job a worker holds: the token proves it when storing the result."""

    job_id: str
    token: str
    owner: str
    attempt: int
    course_id: str
    assignment_id: str
    learner_id: str
    source_path: str
    submission_path: str | None
    submission_blob: bytes | None
    mode: str


class JobQueue:
    """Queue operations on the ``grading_jobs`` table of a learnhub database."""

    def __init__(self, engine_or_url: Engine | str):
        self.engine = lhdb.make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
        self.sqlite = self.engine.dialect.name == "sqlite"
        self.sessions = lhdb.make_session_factory(self.engine)

    # ----- producers (services) -----
    def enqueue(
        self, *, course_id: str, assignment_id: str, learner_id: str, source_path: str,
        submission_path: str | None = None, submission_blob: bytes | None = None,
        mode: str = "grade", max_attempts: int = 3, on_event: Callable[[dict], None] | None = None,
        job_id: str | None = None, submission_id: str | None = None, regrade_id: str | None = None,
    ) -> str:
        """Queue a submission (stored durably first by the caller); returns the job id.

        ``job_id``: the id to queue it under (a submission's id, so that queueing it twice is
        harmless): :class:`JobExists` if a job has it already. ``submission_id``: the courses
        service's submission graded (its ``graded`` event names it); ``regrade_id``: the regrade
        the job is part of."""
        from sqlalchemy.exc import IntegrityError

        if not submission_path and submission_blob is None:
            raise ValueError("a job needs submission_path or submission_blob")
        job = GradingJob(
            id=job_id or str(uuid.uuid4()), course_id=course_id, assignment_id=assignment_id, learner_id=learner_id,
            source_path=str(source_path), submission_path=str(submission_path) if submission_path else None,
            submission_blob=submission_blob, mode=mode, status=QUEUED, attempts=0,
            max_attempts=max_attempts, progress={"type": "queued"}, submission_id=submission_id,
            regrade_id=regrade_id,
        )
        try:
            with lhdb.session_scope(self.sessions) as session:
                if job_id and session.get(GradingJob, job_id) is not None:
                    raise JobExists(job_id)
                session.add(job)
                session.flush()
                job_id = job.id
        except IntegrityError:
            raise JobExists(job.id) from None
        if on_event:
            on_event({"type": "queued", "job_id": job_id})
        return job_id

    def get(self, job_id: str) -> GradingJob | None:
        with self.sessions() as session:
            return session.get(GradingJob, job_id)

    def counts(self) -> dict[str, int]:
        from sqlalchemy import func

        with self.sessions() as session:
            rows = session.execute(select(GradingJob.status, func.count()).group_by(GradingJob.status)).all()
        return {status: n for status, n in rows}

    # ----- workers -----
    def _claimable(self, now):
        return or_(
            GradingJob.status == QUEUED,
            and_(GradingJob.status == RUNNING, GradingJob.lease_expires_at < now),
        )

    def claim(self, owner: str, lease_seconds: float = 60.0) -> Claim | None:
        """Take the oldest claimable job (queued, or running with an expired lease)."""
        for _ in range(20):
            with self.engine.connect() as conn:
                if self.sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                now = utcnow()
                query = (
                    select(GradingJob.id, GradingJob.attempts, GradingJob.max_attempts, GradingJob.status)
                    .where(self._claimable(now))
                    .order_by(GradingJob.created_at, GradingJob.id)
                    .limit(1)
                )
                if not self.sqlite:
                    query = query.with_for_update(skip_locked=True)
                row = conn.execute(query).first()
                if row is None:
                    conn.rollback()
                    return None
                if row.status == RUNNING and row.attempts >= row.max_attempts:
                    # its workers keep dying: stop retrying, say why
                    conn.execute(
                        update(GradingJob).where(GradingJob.id == row.id, self._claimable(now)).values(
                            status=FAILED, finished_at=now, updated_at=now, lease_token=None,
                            error=f"gave up after {row.attempts} attempts (worker lost each time)",
                            progress={"type": "failed", "reason": "attempts exhausted"},
                        )
                    )
                    conn.commit()
                    continue
                token = str(uuid.uuid4())
                res = conn.execute(
                    update(GradingJob)
                    .where(GradingJob.id == row.id, self._claimable(now))
                    .values(
                        status=RUNNING, lease_owner=owner, lease_token=token,
                        lease_expires_at=now + timedelta(seconds=lease_seconds),
                        attempts=GradingJob.attempts + 1, started_at=now, updated_at=now,
                        progress={"type": "claimed", "owner": owner},
                    )
                )
                if res.rowcount != 1:  # someone else got it first; look again
                    conn.rollback()
                    continue
                job = conn.execute(select(GradingJob.__table__).where(GradingJob.id == row.id)).mappings().one()
                conn.commit()
                return Claim(
                    job_id=job["id"], token=token, owner=owner, attempt=job["attempts"],
                    course_id=job["course_id"], assignment_id=job["assignment_id"],
                    learner_id=job["learner_id"], source_path=job["source_path"],
                    submission_path=job["submission_path"], submission_blob=job["submission_blob"],
                    mode=job["mode"],
                )
        return None

    def _update_held(self, claim: Claim, values: dict, require_live_lease: bool = False) -> bool:
        now = utcnow()
        conditions = [GradingJob.id == claim.job_id, GradingJob.lease_token == claim.token,
                      GradingJob.status == RUNNING]
        if require_live_lease:
            conditions.append(GradingJob.lease_expires_at >= now)
        with self.engine.connect() as conn:
            if self.sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            res = conn.execute(update(GradingJob).where(*conditions).values(updated_at=now, **values))
            conn.commit()
            return res.rowcount == 1

    def renew(self, claim: Claim, lease_seconds: float = 60.0) -> bool:
        """Extend the lease while grading; False when the lease was lost (stop, the result won't count)."""
        return self._update_held(
            claim, {"lease_expires_at": utcnow() + timedelta(seconds=lease_seconds)}, require_live_lease=True
        )

    def report_progress(self, claim: Claim, event: dict) -> bool:
        return self._update_held(claim, {"progress": event})

    def complete(self, claim: Claim, result: dict) -> bool:
        """Store the result, once; False if this claim no longer holds the job."""
        now = utcnow()
        return self._update_held(claim, {
            "status": GRADED, "result": result, "score": result.get("score"),
            "max_score": result.get("max_score"), "finished_at": now, "lease_token": None,
            "lease_expires_at": None, "error": None,
            "progress": {"type": "done", "score": result.get("score"), "max_score": result.get("max_score")},
        })

    def fail(self, claim: Claim, error: str, retry: bool = False) -> bool:
        """Record a grading failure; with ``retry`` the job is queued again if attempts remain."""
        job = self.get(claim.job_id)
        if retry and job is not None and job.attempts < job.max_attempts:
            values = {"status": QUEUED, "lease_token": None, "lease_owner": None, "lease_expires_at": None,
                      "error": error, "progress": {"type": "queued", "retry": True}}
        else:
            values = {"status": FAILED, "error": error, "finished_at": utcnow(), "lease_token": None,
                      "progress": {"type": "failed", "error": error[:500]}}
        return self._update_held(claim, values)
