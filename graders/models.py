"""The durable grading job table (on ``learnhub.db.Base``; created by migration 0002, 0010 added
``submission_id`` and ``regrade_id``)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from learnhub.db import Base
from learnhub.timeutil import utcnow

#: Job statuses: queued -> running -> graded | failed (running -> queued again when its
#: worker's lease expires and attempts remain).
QUEUED, RUNNING, GRADED, FAILED = "queued", "running", "graded", "failed"
STATUSES = (QUEUED, RUNNING, GRADED, FAILED)


class GradingJob(Base):
    """One submission to grade.

    The submission is referenced by ``submission_path`` (a directory the workers can read,
    e.g. the exchange's storage) or carried in ``submission_blob`` (a zip of the learner's
    files). ``source_path`` is the instructor's source assignment directory. A worker that
    claims the job gets a lease (``lease_owner``, ``lease_token``, ``lease_expires_at``);
    only the holder of the current ``lease_token`` can store the result.
    """

    __tablename__ = "grading_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    course_id: Mapped[str] = mapped_column(String(128))
    assignment_id: Mapped[str] = mapped_column(String(128))
    learner_id: Mapped[str] = mapped_column(String(255))
    source_path: Mapped[str] = mapped_column(String(1024))
    submission_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    submission_blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: grade (a learner's submission, scored), check (visible tests only) or execute (run a notebook for
    #: nbgrader's autograde in an instructor's server and return the outputs; nothing is scored)
    mode: Mapped[str] = mapped_column(String(16), default="grade")
    #: the courses service's submission this job grades (migration 0010): the job's own id for a
    #: submission's first grading, an older submission's for a regrade; NULL for checks, executions
    #: and jobs from before 0010 (whose id is their submission's)
    submission_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: the regrade (extensions/feedback's ``grading_regrades``) this job is part of, if any
    regrade_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(36), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    progress: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    score: Mapped[float | None] = mapped_column(nullable=True)
    max_score: Mapped[float | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_grading_jobs_status_created", "status", "created_at"),
        Index("ix_grading_jobs_course_assignment_learner", "course_id", "assignment_id", "learner_id"),
        Index("ix_grading_jobs_regrade", "regrade_id"),
    )
