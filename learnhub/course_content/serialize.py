"""Courses as JSON: :func:`course_to_dict`, a JSON-ready view of a loaded course."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .model import Course, Exercise

__all__ = ["course_to_dict"]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def course_to_dict(course: Course, *, include_hints: bool = False) -> dict[str, Any]:
    """A JSON-ready dict of the course (times ISO 8601 UTC with ``Z``).

    Hints are left out unless ``include_hints`` (learners see them only after a failed test).
    Paths on disk are never included.
    """
    def exercise_dict(exercise: Exercise) -> dict[str, Any]:
        data = {
            "grade_id": exercise.grade_id,
            "title": exercise.title,
            "skills": list(exercise.skills),
            "difficulty": exercise.difficulty,
            "notebook": exercise.notebook,
            "points": exercise.points,
            "has_hidden_tests": exercise.has_hidden_tests,
        }
        if include_hints:
            data["hint"] = exercise.hint
        return data

    return {
        "id": course.id,
        "title": course.title,
        "description": course.description,
        "level": course.level,
        "tags": list(course.tags),
        "prerequisites": list(course.prerequisites),
        "open_enrollment": course.open_enrollment,
        "skills": [
            {"id": s.id, "title": s.title, "prerequisites": list(s.prerequisites)} for s in course.skills
        ],
        "assignments": [
            {
                "id": a.id,
                "title": a.title,
                "due": _iso(a.due),
                "hard_deadline": a.hard_deadline,
                "max_attempts": a.max_attempts,
                "difficulty": a.difficulty,
                "limits": a.limits.to_dict() if a.limits else None,
                "notebooks": [Path(n).stem for n in a.notebooks],
                "exercises": [exercise_dict(e) for e in a.exercises],
                "manual_cells": [
                    {"grade_id": c.grade_id, "notebook": c.notebook, "points": c.points, "kind": c.kind}
                    for c in a.manual_cells
                ],
                "autograded_points": a.autograded_points,
                "max_score": a.max_score,
            }
            for a in course.assignments
        ],
        "max_score": sum(a.max_score for a in course.assignments),
    }
