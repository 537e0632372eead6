"""Courses: a submission keeps its autograding outcome, as the feedback service's events report it.

The courses service no longer reads the grading queue's table: its ``GradeRecorder`` copies each
``graded`` / ``grading-failed`` event onto the submission. Submissions graded before this migration get
their outcome from the jobs they were linked to (``grading_job_id``), once, here.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("autograde_status", "autograde_score", "autograde_max_score", "autograde_cells", "autograded_at")


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("autograde_status", sa.String(16), nullable=True))
        batch.add_column(sa.Column("autograde_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("autograde_max_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("autograde_cells", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("autograded_at", sa.DateTime(timezone=True), nullable=True))
    jobs = sa.table("grading_jobs", sa.column("id", sa.String()), sa.column("status", sa.String()),
                    sa.column("score", sa.Float()), sa.column("max_score", sa.Float()),
                    sa.column("finished_at", sa.DateTime(timezone=True)))
    subs = sa.table("submissions", sa.column("id", sa.String()), sa.column("grading_job_id", sa.String()),
                    *[sa.column(name) for name in COLUMNS])
    bind = op.get_bind()
    rows = bind.execute(sa.select(subs.c.id, jobs.c.status, jobs.c.score, jobs.c.max_score, jobs.c.finished_at)
                        .select_from(subs.join(jobs, subs.c.grading_job_id == jobs.c.id))).all()
    for sub_id, status, score, max_score, finished_at in rows:
        bind.execute(subs.update().where(subs.c.id == sub_id).values(
            autograde_status=status, autograde_score=score, autograde_max_score=max_score,
            autograded_at=finished_at))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
