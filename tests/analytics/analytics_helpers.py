"""Shared helpers of the analytics tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from learnhub.events import make_event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


@pytest.fixture
def event():
    """make_event with a course by default."""
    def make(actor, verb, object_type, object_id, course_id="c1", **kwargs):
        return make_event(actor, verb, object_type, object_id, course_id=course_id, **kwargs)
    return make
