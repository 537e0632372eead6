"""Event log: one cursor table for every consumer, verbs named by schema 2, an index for feeds.

* ``event_cursors`` replaces ``notification_cursors``: every consumer of the log
  (:class:`learnhub.event_feed.EventFeed`) keeps its cursor there; the notifications service's
  cursor is carried over, so it neither repeats nor skips events.
* Events stored under the ``x-`` names of learnhub 0.x (``x-assignment-released``, ...) get the
  names schema 2 gives them (``released``, ...), in the log and in the daily summary, so consumers
  subscribe by one name.
* ``ix_events_stored_at``: feeds read the log in ``(stored_at, id)`` order.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)

LEGACY_VERBS = {
    "x-course-created": "course-created", "x-course-updated": "course-updated",
    "x-course-deleted": "course-deleted", "x-course-imported": "course-imported",
    "x-profile-updated": "profile-updated", "x-assignment-released": "released",
    "x-assignment-unreleased": "unreleased", "x-submission-collected": "collected",
    "x-feedback-released": "feedback-released", "x-feedback-fetched": "feedback-fetched",
}


def _rename_verbs(mapping: dict[str, str]) -> None:
    events = sa.table("events", sa.column("verb", sa.String()))
    daily = sa.table("analytics_daily", sa.column("day", sa.Date()), sa.column("verb", sa.String()),
                     sa.column("count", sa.Integer()), sa.column("duration_sum", sa.Float()))
    bind = op.get_bind()
    for old, new in mapping.items():
        op.execute(events.update().where(events.c.verb == old).values(verb=new))
        # (day, verb) is the daily summary's key: fold an old name's counts into the new name's row.
        rows = bind.execute(sa.select(daily.c.day, daily.c.count, daily.c.duration_sum)
                            .where(daily.c.verb == old)).all()
        for day, count, duration in rows:
            existing = bind.execute(sa.select(daily.c.count).where(daily.c.day == day, daily.c.verb == new)).first()
            if existing is None:
                bind.execute(daily.insert().values(day=day, verb=new, count=count, duration_sum=duration))
            else:
                bind.execute(daily.update().where(daily.c.day == day, daily.c.verb == new).values(
                    count=daily.c.count + count, duration_sum=daily.c.duration_sum + duration))
        bind.execute(daily.delete().where(daily.c.verb == old))


def upgrade() -> None:
    cursors = op.create_table(
        "event_cursors",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_stored_at", TZ, nullable=True),
        sa.Column("last_event_id", sa.String(64), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_event_cursors"),
    )
    old = sa.table("notification_cursors", sa.column("name", sa.String()), sa.column("last_stored_at", TZ),
                   sa.column("last_event_id", sa.String()), sa.column("updated_at", TZ))
    bind = op.get_bind()
    for name, stored_at, event_id, updated_at in bind.execute(
            sa.select(old.c.name, old.c.last_stored_at, old.c.last_event_id, old.c.updated_at)).all():
        # The notifications service's one cursor was called "event-triggers".
        new_name = "notifications" if name == "event-triggers" else f"notifications-{name}"
        bind.execute(cursors.insert().values(name=new_name, last_stored_at=stored_at, last_event_id=event_id,
                                             updated_at=updated_at))
    op.drop_table("notification_cursors")
    _rename_verbs(LEGACY_VERBS)
    op.create_index("ix_events_stored_at", "events", ["stored_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_stored_at", "events")
    _rename_verbs({new: old for old, new in LEGACY_VERBS.items()})
    op.create_table(
        "notification_cursors",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_stored_at", TZ, nullable=True),
        sa.Column("last_event_id", sa.String(64), nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_notification_cursors"),
    )
    op.drop_table("event_cursors")
