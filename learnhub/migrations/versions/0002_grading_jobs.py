"""Grading jobs (the grading queue).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grading_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("learner_id", sa.String(255), nullable=False),
        sa.Column("source_path", sa.String(1024), nullable=False),
        sa.Column("submission_path", sa.String(1024), nullable=True),
        sa.Column("submission_blob", sa.LargeBinary(), nullable=True),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(255), nullable=True),
        sa.Column("lease_token", sa.String(36), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("progress", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grading_jobs")),
    )
    op.create_index("ix_grading_jobs_status_created", "grading_jobs", ["status", "created_at"])
    op.create_index(
        "ix_grading_jobs_course_assignment_learner", "grading_jobs", ["course_id", "assignment_id", "learner_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_grading_jobs_course_assignment_learner", "grading_jobs")
    op.drop_index("ix_grading_jobs_status_created", "grading_jobs")
    op.drop_table("grading_jobs")
