"""LTI 1.3 Advantage: platforms, login nonces, linked contexts, members, line items, the score outbox.

Revision ID: 0013
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lti_platforms",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("auth_login_url", sa.String(1024), nullable=False),
        sa.Column("auth_token_url", sa.String(1024), nullable=False),
        sa.Column("jwks_url", sa.String(1024), nullable=False),
        sa.Column("token_audience", sa.String(1024), nullable=False),
        sa.Column("deployment_ids", sa.JSON(), nullable=False),
        sa.Column("username_prefix", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("issuer", "client_id", name="uq_lti_platform"),
    )
    op.create_table(
        "lti_nonces",
        sa.Column("state", sa.String(128), primary_key=True),
        sa.Column("nonce", sa.String(128), nullable=False, unique=True),
        sa.Column("platform_id", sa.String(36), nullable=False),
        sa.Column("target_link_uri", sa.String(1024), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
    )
    op.create_table(
        "lti_contexts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("platform_id", sa.String(36), nullable=False),
        sa.Column("deployment_id", sa.String(255), nullable=False),
        sa.Column("context_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("memberships_url", sa.String(1024), nullable=False),
        sa.Column("lineitems_url", sa.String(1024), nullable=False),
        sa.Column("ags_scopes", sa.JSON(), nullable=False),
        sa.Column("score_policy", sa.String(16), nullable=False),
        sa.Column("last_roster_sync", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.UniqueConstraint("platform_id", "deployment_id", "context_id", name="uq_lti_context"),
    )
    op.create_index("ix_lti_contexts_course", "lti_contexts", ["course_id"])
    op.create_table(
        "lti_members",
        sa.Column("context_pk", sa.String(36), primary_key=True),
        sa.Column("sub", sa.String(255), primary_key=True),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_index("ix_lti_members_user", "lti_members", ["context_pk", "user_name"])
    op.create_table(
        "lti_line_items",
        sa.Column("context_pk", sa.String(36), primary_key=True),
        sa.Column("assignment_id", sa.String(128), primary_key=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("score_maximum", sa.Float(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_table(
        "lti_scores",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("context_pk", sa.String(36), nullable=False),
        sa.Column("course_id", sa.String(128), nullable=False),
        sa.Column("assignment_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(255), nullable=False),
        sa.Column("sub", sa.String(255), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("max_score", sa.Float(), nullable=False),
        sa.Column("graded_at", TZ, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("posted", sa.JSON(), nullable=True),
        sa.Column("sent_at", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_lti_scores_due", "lti_scores", ["status", "next_attempt_at"])
    op.create_index("ix_lti_scores_course", "lti_scores", ["course_id", "assignment_id"])


def downgrade() -> None:
    for table in ("lti_scores", "lti_line_items", "lti_members", "lti_contexts", "lti_nonces", "lti_platforms"):
        op.drop_table(table)
