"""Tables of the courses service (migration ``0003_courses``).

Metadata only: file contents live in the content-addressed store (:mod:`.store`) and rows
refer to them by sha256. Submissions and feedback rows are never updated in place
(a new attempt is a new row), so what a learner was told was recorded stays recorded; only
grades and the id of the autograding job are added to a submission later.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKeyConstraint, Index, Integer, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from learnhub.db import Base
from learnhub.models import new_id, utcnow

COURSE_STATUSES = ("draft", "published", "archived")
ROLES = ("learner", "ta", "instructor")


class Course(Base):
    __tablename__ = "courses"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    level: Mapped[str] = mapped_column(String(32), default="beginner")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    prerequisites: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    open_enrollment: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CourseSkill(Base):
    __tablename__ = "course_skills"

    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    skill_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    prerequisites: Mapped[list] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),)


class Enrollment(Base):
    __tablename__ = "enrollments"

    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the hub group this row was last mirrored into (None: not yet; reconciled on start)
    mirrored_role: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),
                      Index("ix_enrollments_user_name", "user_name"))


class Assignment(Base):
    __tablename__ = "course_assignments"

    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    hard_deadline: Mapped[bool] = mapped_column(Boolean, default=False)
    max_attempts: Mapped[int | None] = mapped_column(Integer, nullable=True)
    difficulty: Mapped[int] = mapped_column(Integer, default=1)
    max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: [{"path": "basics.ipynb", "sha256": "...", "size": 123}] — the student version, in the store
    release_files: Mapped[list] = mapped_column(JSON, default=list)

    __table_args__ = (ForeignKeyConstraint(["course_id"], ["courses.id"], ondelete="CASCADE"),)


class Exercise(Base):
    __tablename__ = "course_exercises"

    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    grade_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    notebook: Mapped[str] = mapped_column(String(255), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    skills: Mapped[list] = mapped_column(JSON, default=list)
    difficulty: Mapped[int] = mapped_column(Integer, default=1)
    points: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (ForeignKeyConstraint(["course_id", "assignment_id"],
                                           ["course_assignments.course_id", "course_assignments.id"],
                                           ondelete="CASCADE"),)


class LearnerProfile(Base):
    __tablename__ = "learner_profiles"

    user_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    goals: Mapped[str] = mapped_column(Text, default="")
    goal_skills: Mapped[list] = mapped_column(JSON, default=list)
    preferred_topics: Mapped[list] = mapped_column(JSON, default=list)
    level: Mapped[str | None] = mapped_column(String(32), nullable=True)
    weekly_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    language: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Fetch(Base):
    __tablename__ = "assignment_fetches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    course_id: Mapped[str] = mapped_column(String(128))
    assignment_id: Mapped[str] = mapped_column(String(128))
    user_name: Mapped[str] = mapped_column(String(255))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (ForeignKeyConstraint(["course_id", "assignment_id"],
                                           ["course_assignments.course_id", "course_assignments.id"],
                                           ondelete="CASCADE"),
                      Index("ix_assignment_fetches_lookup", "course_id", "assignment_id", "user_name"))


class Submission(Base):
    """One immutable submission. ``(course, assignment, user, attempt)`` is unique: two
    concurrent submissions of one learner cannot take the same attempt number."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    course_id: Mapped[str] = mapped_column(String(128))
    assignment_id: Mapped[str] = mapped_column(String(128))
    user_name: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: nbgrader's timestamp string for this submission (``timestamp.txt``), UTC
    timestamp: Mapped[str] = mapped_column(String(64))
    files: Mapped[list] = mapped_column(JSON, default=list)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: grade_id -> points, from nbgrader's gradebook when feedback is released
    cell_scores: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    graded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: the feedback service's grading of it (its job id; for submissions since migration 0009 the
    #: submission's own id); None when the assignment has no instructor source to grade against
    grading_job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    #: what the feedback service's ``graded`` / ``grading-failed`` events said (:mod:`.grades`):
    #: queued, graded or failed, the autograded score and, per grade_id, the points
    autograde_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    autograde_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    autograde_max_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    autograde_cells: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    autograded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: minutes past the learner's effective due date when submitted (soft deadline); None: on time
    minutes_late: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (ForeignKeyConstraint(["course_id", "assignment_id"],
                                           ["course_assignments.course_id", "course_assignments.id"],
                                           ondelete="CASCADE"),
                      UniqueConstraint("course_id", "assignment_id", "user_name", "attempt",
                                       name="uq_submissions_attempt"),
                      Index("ix_submissions_user", "user_name", "course_id"),
                      Index("ix_submissions_user_time", "user_name", "submitted_at"))


class FeedbackFile(Base):
    __tablename__ = "feedback_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(String(36))
    path: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    released_by: Mapped[str] = mapped_column(String(255))
    released_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (ForeignKeyConstraint(["submission_id"], ["submissions.id"], ondelete="CASCADE"),
                      UniqueConstraint("submission_id", "path", name="uq_feedback_files_path"))


class Extension(Base):
    """One learner's extension of one assignment (migration ``0010``): a later due date
    and/or more attempts than the assignment's."""

    __tablename__ = "assignment_extensions"

    course_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    extra_attempts: Mapped[int] = mapped_column(Integer, default=0)
    granted_by: Mapped[str] = mapped_column(String(255))
    granted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (ForeignKeyConstraint(["course_id", "assignment_id"],
                                           ["course_assignments.course_id", "course_assignments.id"],
                                           ondelete="CASCADE"),)
