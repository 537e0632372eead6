"""Analytics: exact pre-aggregations of the event log, and an index for verb-wide queries.

The tables are kept by ``learnhub.events.EventLog.append`` in the same transaction as the events,
so every report reads a few thousand summary rows instead of scanning millions of events.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
# The lead: set this to "0004" once 0004 is in. Until then it follows the newest revision present,
# so that this file never makes a second head while 0004 is being written.
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_index("ix_events_verb_time", "events", ["verb", "time"])
    op.create_table(
        "analytics_learners",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("first_time", TZ, nullable=False),
        sa.Column("last_time", TZ, nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("enrolled_at", TZ, nullable=True),
        sa.Column("unenrolled_at", TZ, nullable=True),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("last_submission_time", TZ, nullable=True),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("help_requests", sa.Integer(), nullable=False),
        sa.Column("active_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "actor", name="pk_analytics_learners"),
    )
    op.create_table(
        "analytics_activity",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("active_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "actor", "day", name="pk_analytics_activity"),
    )
    op.create_index("ix_analytics_activity_day", "analytics_activity", ["day"])
    op.create_table(
        "analytics_progress",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(512), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=True),
        sa.Column("first_time", TZ, nullable=False),
        sa.Column("last_time", TZ, nullable=False),
        sa.Column("fetched_at", TZ, nullable=True),
        sa.Column("submitted_at", TZ, nullable=True),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("passes", sa.Integer(), nullable=False),
        sa.Column("first_pass_time", TZ, nullable=True),
        sa.Column("attempts_to_pass", sa.Integer(), nullable=True),
        sa.Column("best_score", sa.Float(), nullable=True),
        sa.Column("last_score", sa.Float(), nullable=True),
        sa.Column("last_score_time", TZ, nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "object_type", "object_id", "actor", name="pk_analytics_progress"),
    )
    op.create_index("ix_analytics_progress_dirty", "analytics_progress", ["course_id", "dirty"])
    op.create_table(
        "analytics_errors",
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("object_id", sa.String(512), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("course_id", "object_id", "error_type", name="pk_analytics_errors"),
    )
    op.create_table(
        "analytics_daily",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("verb", sa.String(64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("duration_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "verb", name="pk_analytics_daily"),
    )


def downgrade() -> None:
    op.drop_table("analytics_daily")
    op.drop_table("analytics_errors")
    op.drop_index("ix_analytics_progress_dirty", "analytics_progress")
    op.drop_table("analytics_progress")
    op.drop_index("ix_analytics_activity_day", "analytics_activity")
    op.drop_table("analytics_activity")
    op.drop_table("analytics_learners")
    op.drop_index("ix_events_verb_time", "events")
