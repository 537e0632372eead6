"""Tables of the feedback service: help requests and regrades (submissions are grading jobs, see graders)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from learnhub.db import Base
from learnhub.timeutil import iso, utcnow

OPEN, ANSWERED, CLOSED = "open", "answered", "closed"


class HelpRequest(Base):
    """A learner's question about an assignment, optionally about one cell and its code."""

    __tablename__ = "help_requests"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    course_id: Mapped[str] = mapped_column(String(128))
    assignment_id: Mapped[str] = mapped_column(String(128))
    learner: Mapped[str] = mapped_column(String(255))
    question: Mapped[str] = mapped_column(Text)
    cell_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    answer: Mapped[str | None] = mapped_column(Text, nullable=True)
    answered_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        Index("ix_help_requests_course_status", "course_id", "status"),
        Index("ix_help_requests_learner", "learner"),
    )

    def to_dict(self) -> dict:
        return {"id": self.id, "course": self.course_id, "assignment": self.assignment_id,
                "learner": self.learner, "question": self.question, "cell_id": self.cell_id,
                "code": self.code, "status": self.status, "answer": self.answer,
                "answered_by": self.answered_by, "created_at": iso(self.created_at),
                "answered_at": iso(self.answered_at)}


#: A regrade's states: its jobs are being queued, all are queued (some may still run), every one finished.
QUEUEING, QUEUED_ALL, FINISHED = "queueing", "running", "done"


class GradingRegrade(Base):
    """"Grade this assignment again" (after a test fix), asked by one of the course's staff.

    ``targets``: every learner's latest autograded submission when it was asked, as the courses
    service listed them — ``[{"submission", "learner", "score", "max_score"}]`` (the score before).
    Its jobs are ``grading_jobs`` rows with this ``regrade_id``; ``problems``: the targets that could
    not be queued (their files could not be read), ``[{"submission", "learner", "error"}]``.
    Created by migration 0010."""

    __tablename__ = "grading_regrades"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    course_id: Mapped[str] = mapped_column(String(128))
    assignment_id: Mapped[str] = mapped_column(String(128))
    requested_by: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=QUEUEING)
    targets: Mapped[list] = mapped_column(JSON, default=list)
    problems: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (Index("ix_grading_regrades_assignment", "course_id", "assignment_id", "created_at"),)
