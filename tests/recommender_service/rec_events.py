"""Helpers: write graded events exactly as the feedback service does (``graded_event``)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from learnhub import db as lhdb
from learnhub.events import Verb
from learnhub.models import Event

COURSE = "intro-python"


def graded(actor: str, assignment: str, results: dict, *, course: str = COURSE, when: datetime | None = None,
           event_id: str | None = None) -> Event:
    """One ``graded`` event; ``results`` maps grade_id -> passed."""
    tests = [{"grade_id": g, "passed": p, "points": 1.0 if p else 0.0, "max_points": 1.0,
              "error_type": None if p else "AssertionError"} for g, p in results.items()]
    score = sum(t["points"] for t in tests)
    return Event(id=event_id or f"graded:{uuid.uuid4()}", time=when or datetime.now(timezone.utc), actor=actor,
                 verb=Verb.GRADED, object_type="submission", object_id=str(uuid.uuid4()), course_id=course,
                 result={"score": score, "max_score": float(len(tests)), "success": score == len(tests),
                         "duration": 1.0, "tests": tests, "error": None},
                 context={"assignment_id": assignment, "mode": "grade"},
                 source="feedback")


def add(session_factory, *events: Event) -> None:
    with lhdb.session_scope(session_factory) as session:
        session.add_all(events)


def minutes_ago(n: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(minutes=n)
