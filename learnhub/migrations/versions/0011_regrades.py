"""Grading jobs know the submission they grade; regrades of an assignment by its staff.

* ``grading_jobs.submission_id``: the courses service's submission a job grades. A submission's
  first grading is queued under the submission's own id (since 0009), so the two were one; a
  regrade is a new job for an old submission, and its ``graded`` event must name that submission
  (``context.submission_id``) for the courses service to update it. Jobs from before this
  migration keep NULL: their id is their submission's.
* ``grading_jobs.regrade_id``: the regrade a job belongs to (NULL for learners' own submissions).
* ``grading_regrades``: one row per "regrade this assignment" an instructor or TA asked for — the
  submissions it covers with their score before, and those that could not be queued and why.

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("grading_jobs") as batch:
        batch.add_column(sa.Column("submission_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("regrade_id", sa.String(36), nullable=True))
    op.create_index("ix_grading_jobs_regrade", "grading_jobs", ["regrade_id"])
    op.create_table(
        "grading_regrades",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("targets", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("queued_at", TZ, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grading_regrades")),
    )
    op.create_index("ix_grading_regrades_assignment", "grading_regrades", ["course_id", "assignment_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_grading_regrades_assignment", "grading_regrades")
    op.drop_table("grading_regrades")
    op.drop_index("ix_grading_jobs_regrade", "grading_jobs")
    with op.batch_alter_table("grading_jobs") as batch:
        batch.drop_column("regrade_id")
        batch.drop_column("submission_id")
