"""Help requests of the feedback service.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "help_requests",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("learner", sa.String(255), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("cell_id", sa.String(255), nullable=True),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_help_requests")),
    )
    op.create_index("ix_help_requests_course_status", "help_requests", ["course_id", "status"])
    op.create_index("ix_help_requests_learner", "help_requests", ["learner"])


def downgrade() -> None:
    op.drop_index("ix_help_requests_learner", "help_requests")
    op.drop_index("ix_help_requests_course_status", "help_requests")
    op.drop_table("help_requests")
