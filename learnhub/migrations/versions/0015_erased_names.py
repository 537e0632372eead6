"""Erased names: the tombstones that keep work in flight during an erasure from naming the person
again (``learnhub.erasures``).

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "erased_names",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("erased_at", TZ, nullable=False),
        sa.Column("hold_until", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erased_names")),
    )
    op.create_index("ix_erased_names_hold_until", "erased_names", ["hold_until"])


def downgrade() -> None:
    op.drop_index("ix_erased_names_hold_until", "erased_names")
    op.drop_table("erased_names")
