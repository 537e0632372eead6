"""What the analytics service holds about one person — its summaries (``analytics_*``) — export and
pseudonymisation (``api/data/*``). No web code.

The summaries are course statistics: counts, times and scores per learner. Erasure keeps every row
under the person's pseudonym (the same one the event log gets), so a course's report still adds up,
and nothing in it leads back to them.
"""
from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from learnhub.timeutil import iso

from .aggregates import activity_table, learners_table, progress_table

PERSONAL = (learners_table, activity_table, progress_table)


class AnalyticsData:
    def __init__(self, session: Session):
        self.session = session

    def export(self, user: str) -> dict:
        data = {}
        for table in PERSONAL:
            rows = self.session.execute(select(table).where(table.c.actor == user)).mappings().all()
            data[table.name] = [{k: (iso(v) if hasattr(v, "tzinfo") else str(v) if hasattr(v, "isoformat") else v)
                                 for k, v in row.items()} for row in rows]
        return {"data": data, "files": []}

    def erase(self, user: str, pseudonym: str) -> dict:
        counts = {table.name: self.session.execute(update(table).where(table.c.actor == user)
                                                   .values(actor=pseudonym)).rowcount for table in PERSONAL}
        return {"erased": {}, "pseudonymised": counts}
