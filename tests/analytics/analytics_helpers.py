"""Shared helpers of the analytics tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from learnhub.events import Verb, make_event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)  # a Monday


def at(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


@pytest.fixture
def event():
    """make_event as a producer calls it, in a course by default: an event about an assignment names it
    in ``context.assignment_id`` and an enrollment says the role, as schema 2 requires."""
    def make(actor, verb, object_type, object_id, course_id="c1", **kwargs):
        if object_type == "assignment" and course_id:
            kwargs["context"] = {"assignment_id": object_id, **(kwargs.get("context") or {})}
        if verb in (Verb.ENROLLED, Verb.UNENROLLED) and not kwargs.get("result"):
            kwargs["result"] = {"role": "learner"}
        return make_event(actor, verb, object_type, object_id, course_id=course_id, **kwargs)
    return make
