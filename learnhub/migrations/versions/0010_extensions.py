"""Courses: per-learner extensions of an assignment, lateness of a submission, and an index for the
per-learner submission rate limit.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assignment_extensions",
        sa.Column("course_id", sa.String(128), primary_key=True),
        sa.Column("assignment_id", sa.String(128), primary_key=True),
        sa.Column("user_name", sa.String(255), primary_key=True),
        sa.Column("due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("extra_attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("granted_by", sa.String(255), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["course_id", "assignment_id"],
                                ["course_assignments.course_id", "course_assignments.id"], ondelete="CASCADE"),
    )
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("minutes_late", sa.Integer(), nullable=True))
    op.create_index("ix_submissions_user_time", "submissions", ["user_name", "submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_submissions_user_time", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("minutes_late")
    op.drop_table("assignment_extensions")
