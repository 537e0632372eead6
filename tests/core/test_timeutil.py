"""Times as learnhub keeps them (learnhub/timeutil.py): aware UTC datetimes, ISO 8601 with a Z on the wire."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from learnhub.timeutil import as_utc, iso, parse_iso, utcnow

PARIS_WINTER = timezone(timedelta(hours=1))


def test_utcnow_is_aware_and_in_utc():
    now = utcnow()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)


@pytest.fixture
def machine_in_new_york(monkeypatch):
    """The process's local zone is not UTC, so that a naive time read as local time would show."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_as_utc_takes_a_naive_time_to_be_utc_and_converts_an_aware_one(machine_in_new_york):
    naive = datetime(2026, 11, 26, 10, 0)  # what SQLite hands back for a stored UTC time
    assert as_utc(naive) == datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)
    assert as_utc(naive).tzinfo is timezone.utc
    paris = datetime(2026, 11, 26, 11, 0, tzinfo=PARIS_WINTER)
    converted = as_utc(paris)
    assert (converted.hour, converted.utcoffset()) == (10, timedelta(0))
    assert as_utc(None) is None


def test_iso_writes_utc_with_a_z(machine_in_new_york):
    assert iso(datetime(2026, 11, 26, 11, 0, tzinfo=PARIS_WINTER)) == "2026-11-26T10:00:00Z"
    assert iso(datetime(2026, 11, 26, 10, 0)) == "2026-11-26T10:00:00Z"
    assert iso(datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=timezone.utc)) == "2026-11-26T10:00:00.123456Z"
    assert iso(None) is None


@pytest.mark.parametrize("text, expected", [
    ("2026-11-26T10:00:00Z", datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-26 10:00:00Z", datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-26T11:00:00+01:00", datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-26T05:30:00-0430", datetime(2026, 11, 26, 10, 0, tzinfo=timezone.utc)),
    ("2026-11-26T10:00:00.5Z", datetime(2026, 11, 26, 10, 0, 0, 500000, tzinfo=timezone.utc)),
])
def test_parse_iso_reads_a_zoned_time_as_utc(text, expected):
    parsed = parse_iso(text)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", [
    "2026-11-26T10:00:00",  # naive: which zone? refused, not guessed
    "2026-11-26",
    "2026-13-01T10:00:00Z",  # no 13th month
    "2026-02-30T10:00:00Z",
    "yesterday",
    "",
    None,
    1764151200,
])
def test_parse_iso_refuses_what_is_not_a_zoned_iso_time(text):
    assert parse_iso(text) is None


def test_iso_and_parse_iso_round_trip():
    when = datetime(2026, 3, 2, 9, 15, 30, 250000, tzinfo=PARIS_WINTER)
    assert parse_iso(iso(when)) == when
