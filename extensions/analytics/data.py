"""What the analytics service holds about one person — its summaries (``analytics_*``) — export and
pseudonymisation (``api/data/*``). No web code.

The summaries are course statistics: counts, times and scores per learner. Erasure keeps every row
under the person's pseudonym (the same one the event log gets), so a course's report still adds up,
and nothing in it leads back to them.
"""
from __future__ import annotations

from sqlalchemy import and_, delete, select, update
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
        counts, dropped = {}, {}
        for table in PERSONAL:
            # The core pseudonymises the event log first; a summary row the listener has meanwhile made
            # for the pseudonym (from those same events) already counts them: the person's row with the
            # same key is then dropped rather than renamed onto it.
            key = [c for c in table.primary_key.columns if c.name != "actor"]
            mine, theirs = table.alias("mine"), table.alias("theirs")
            clash = select(*[mine.c[c.name] for c in key]).join(
                theirs, and_(*[mine.c[c.name] == theirs.c[c.name] for c in key], theirs.c.actor == pseudonym)
            ).where(mine.c.actor == user)
            dropped[table.name] = 0
            for row in self.session.execute(clash).all():
                dropped[table.name] += self.session.execute(delete(table).where(
                    table.c.actor == user, *[table.c[c.name] == v for c, v in zip(key, row)])).rowcount
            counts[table.name] = self.session.execute(update(table).where(table.c.actor == user)
                                                      .values(actor=pseudonym)).rowcount
        return {"erased": dropped, "pseudonymised": counts}
