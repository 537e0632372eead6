"""Time as learnhub keeps it: aware datetimes in UTC, ISO 8601 text with a ``Z`` on the wire.

SQLite hands naive datetimes back even for ``DateTime(timezone=True)`` columns; learnhub only ever
stores UTC, so a naive value read from the database is UTC (:func:`as_utc`).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone

# ISO 8601 with a zone (Z or ±hh:mm): naive times are ambiguous, so parse_iso refuses them.
_ZONED = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def iso(value: datetime | None) -> str | None:
    """``2026-11-26T10:00:00Z`` (or ``...:00.123456Z``), or None."""
    if value is None:
        return None
    return as_utc(value).isoformat().replace("+00:00", "Z")


def parse_iso(value: str) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text *with a zone*, or None if it is not one."""
    if not isinstance(value, str) or not _ZONED.match(value):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.astimezone(timezone.utc)
