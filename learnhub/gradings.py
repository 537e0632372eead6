"""A submission's gradings in the event log: a regrade replaces the earlier grading, it is no new attempt.

A ``graded`` event's object is the grading job; ``context.submission_id`` names the courses service's
submission it graded (events from before that was recorded name the job only, whose id was the
submission's). A regrade (``context.regrade_id``, ``extensions/feedback/regrades.py``) is a new job for an
old submission: the learner did nothing, so what counts gradings — the analytics summaries, the
recommender's answers — keeps one grading per submission, the latest one's result, at the place of the
submission's first grading (where the learner's attempt is in their history). The courses service's
GradeRecorder does the same on its submission rows (the latest event about a submission wins).
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, TypeVar

Row = TypeVar("Row")


def submission_of(object_id: str | None, context: dict | None) -> str | None:
    """The submission a grading event is about."""
    return (context or {}).get("submission_id") or object_id


def is_regrade(context: dict | None) -> bool:
    return bool((context or {}).get("regrade_id"))


def latest_per_submission(rows: Iterable[Row], key: Callable[[Row], Hashable | None]) -> list[tuple[Row, Row]]:
    """``(first, latest)`` per submission, in the order of the first: ``rows`` are events in time order,
    ``key(row)`` names a row's submission (``None``: a row of its own, not a grading to merge)."""
    slots: list[tuple[Row, Row]] = []
    where: dict = {}
    for row in rows:
        name = key(row)
        if name is not None and name in where:
            slots[where[name]] = (slots[where[name]][0], row)
            continue
        if name is not None:
            where[name] = len(slots)
        slots.append((row, row))
    return slots
