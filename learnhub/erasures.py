"""Erased names: no event appended after an erasure names the person who was erased.

An erasure (:meth:`learnhub.data_rights.CoreData.erase`) pseudonymises the events naming a person.
Work that was in flight meanwhile would write new ones naming them again: the recommender's
announcer, for one, reads a ``graded`` event, ranks the learner's next steps and appends a
``recommended`` event for them in the same transaction — on PostgreSQL that transaction could
commit just after the erasure had read the events, and the new row kept the name. Two things close
that, whatever the writer:

* **a tombstone** (:class:`~learnhub.models.ErasedName`): the erasure records, in its own
  transaction, the salted SHA-256 of the name and the pseudonym it chose, held until
  ``hold_until``; :meth:`learnhub.events.EventLog.append` (through which every component appends)
  looks, *after* its insert, for the tombstones of the names its rows carry and rewrites those rows
  to the pseudonym before they are committed or reach a listener;
* **one order between the erasure and writers**: the erasure first takes the events table's lock
  that excludes writers (PostgreSQL: ``SHARE ROW EXCLUSIVE``, waiting for the writers in flight to
  commit, so it sees their rows; SQLite: its first statement is a write, which takes the database's
  one write lock). A writer's insert then comes either before — and the erasure sees the row — or
  after the erasure committed — and the writer's look, a statement after its insert, sees the
  tombstone. (On SQLite a writer whose transaction read before the erasure committed cannot write
  after it at all: its snapshot is stale and the database refuses, so its transaction is retried.)

The name is never stored in clear, and a tombstone goes once its hold has passed
(:func:`purge_expired`, run by every erasure and by the retention job), so the table is not a list
of who asked to be forgotten. A person of the same name who comes later is not touched once the hold
is over. No web code.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from .models import ErasedName, Event
from .timeutil import utcnow

#: the fields of an event row that may name a person
NAMING_FIELDS = ("actor", "object_id", "result", "context")


def digest(salt: str, name: str) -> str:
    return hashlib.sha256(f"{salt}\0{name}".encode()).hexdigest()


def replace_name(value: Any, name: str, pseudonym: str) -> tuple[Any, bool]:
    """``value`` (JSON) with every string equal to ``name`` (or a key equal to it) replaced by ``pseudonym``."""
    if isinstance(value, str):
        return (pseudonym, True) if value == name else (value, False)
    if isinstance(value, list):
        pairs = [replace_name(item, name, pseudonym) for item in value]
        return [p[0] for p in pairs], any(p[1] for p in pairs)
    if isinstance(value, dict):
        changed, out = False, {}
        for key, item in value.items():
            new_item, hit = replace_name(item, name, pseudonym)
            new_key = pseudonym if key == name else key
            changed = changed or hit or new_key != key
            out[new_key] = new_item
        return out, changed
    return value, False


def _strings(value: Any) -> Iterable[str]:
    """Every string of a JSON value, keys included: the candidates for a name."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)


def exclude_writers(session: Session, *tables: str) -> None:
    """Start an erasure's transaction: from here until it commits no other transaction writes to
    ``tables`` (default: the events), and every one that had written has committed (so its rows are
    seen). Call it first; on SQLite the caller's first statement must then be a write."""
    if session.get_bind().dialect.name == "postgresql":
        # SHARE ROW EXCLUSIVE conflicts with the ROW EXCLUSIVE lock every INSERT/UPDATE takes (it waits
        # for those in flight and holds back new ones) and with itself (two erasures go one after the
        # other), but not with readers.
        for table in tables or ("events",):
            session.execute(text(f'LOCK TABLE "{table}" IN SHARE ROW EXCLUSIVE MODE'))
    # SQLite: the caller's first statement (the core's: the tombstone's INSERT, hold) is a write, which
    # waits for the database's one write lock and keeps it until the erasure commits.


def is_erased(session: Session, name: str) -> bool:
    """``name`` was erased within its hold: a service about to write a row for them writes none. Ask
    *after* writing the row (and drop it), for the reason :func:`shield` looks after its insert."""
    return bool(pseudonyms_for(session, [name]))


def hold(session: Session, name: str, pseudonym: str, until: datetime) -> None:
    """Record the tombstone of ``name`` (in the erasure's transaction, after :func:`exclude_writers`)."""
    salt = secrets.token_hex(16)
    session.add(ErasedName(salt=salt, digest=digest(salt, name), pseudonym=pseudonym, erased_at=utcnow(),
                           hold_until=until))
    session.flush()


def purge_expired(session: Session, now: datetime | None = None) -> int:
    """Delete the tombstones whose hold has passed; returns how many."""
    # (no session synchronisation: SQLite hands back naive times, which Python cannot compare with now)
    return session.execute(delete(ErasedName).where(ErasedName.hold_until <= (now or utcnow()))
                           .execution_options(synchronize_session=False)).rowcount


def pseudonyms_for(session: Session, names: Iterable[str], now: datetime | None = None) -> dict[str, str]:
    """``{name: pseudonym}`` for those of ``names`` erased within their hold (the newest erasure wins).

    One query for the held tombstones (none, nearly always); each is compared with the names by its salt."""
    tombstones = session.execute(select(ErasedName.salt, ErasedName.digest, ErasedName.pseudonym)
                                 .where(ErasedName.hold_until > (now or utcnow()))
                                 .order_by(ErasedName.id)).all()
    if not tombstones:
        return {}
    found = {}
    candidates = set(names)
    for salt, hashed, pseudonym in tombstones:  # oldest first: a later erasure's pseudonym overrides
        for name in candidates:
            if digest(salt, name) == hashed:
                found[name] = pseudonym
    return found


def shield(session: Session, rows: list[dict]) -> int:
    """Rewrite the just-inserted event ``rows`` (mappings, changed in place) that name a person erased
    within their hold: in the database and in ``rows`` (what the listeners get). Returns rows rewritten.

    Called after the insert, in the writer's transaction: see the module's docstring for why after."""
    # (a hub user name is at most 255 characters: longer strings, such as a reason's text, are none)
    names = {s for row in rows for field in NAMING_FIELDS for s in _strings(row.get(field)) if len(s) <= 255}
    erased = pseudonyms_for(session, names) if names else {}
    if not erased:
        return 0
    rewritten = 0
    for row in rows:
        changes = {}
        for field in NAMING_FIELDS:
            value = changes.get(field, row.get(field))
            for name, pseudonym in erased.items():
                value, hit = replace_name(value, name, pseudonym)
                if hit:
                    changes[field] = value
        if changes:
            session.execute(update(Event).where(Event.id == row["id"]).values(**changes)
                            .execution_options(synchronize_session=False))
            row.update(changes)
            rewritten += 1
    return rewritten
