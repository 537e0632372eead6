"""What a loaded course is: frozen dataclasses, and the constants of the course folder format.

Nothing here reads files or runs nbgrader; :mod:`.loader` builds these objects from a course
folder after :mod:`.checks` has checked every field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterator, Mapping

#: the metadata file of a course folder
COURSE_FILE = "course.yaml"
#: the folder of a course that holds nbgrader's ``source/<assignment id>/`` layout
SOURCE_DIR = "source"
LEVELS = ("beginner", "intermediate", "advanced")
DIFFICULTIES = (1, 2, 3)
LIMIT_FIELDS = ("cpu_seconds", "wall_seconds", "memory_mb", "output_kb")
#: the nbgrader cell metadata ``schema_version`` source notebooks must use
NBGRADER_SCHEMA_VERSION = 3

#: course, skill and assignment ids: lower-case letters and digits, words joined by - or _
SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
#: nbgrader grade_ids
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Skill:
    id: str
    title: str
    prerequisites: tuple[str, ...] = ()


@dataclass(frozen=True)
class Limits:
    """Resource limits for grading one submission (``None`` = the grader's default)."""

    cpu_seconds: float | None = None
    wall_seconds: float | None = None
    memory_mb: float | None = None
    output_kb: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in LIMIT_FIELDS}


@dataclass(frozen=True)
class GradedCell:
    """One nbgrader graded cell found in a source notebook.

    ``kind`` is ``"autograded"`` (a locked test cell: grade, not solution), ``"manual"``
    (grade + solution: the instructor grades the answer) or ``"task"`` (an nbgrader task cell).
    ``notebook`` is the notebook's name without ``.ipynb`` (nbgrader's notebook id).
    """

    notebook: str
    grade_id: str
    points: float
    kind: str
    cell_type: str
    has_hidden_tests: bool = False
    hint: str | None = None


@dataclass(frozen=True)
class Exercise:
    grade_id: str
    title: str
    skills: tuple[str, ...]
    difficulty: int
    #: filled in from the source notebooks
    notebook: str = ""
    points: float = 0.0
    hint: str | None = None
    has_hidden_tests: bool = False


@dataclass(frozen=True)
class Assignment:
    id: str
    title: str
    due: datetime | None
    hard_deadline: bool
    max_attempts: int | None
    difficulty: int
    limits: Limits | None
    exercises: tuple[Exercise, ...]
    #: folder with the nbgrader source notebooks (``<course>/source/<id>``)
    source_dir: Path
    #: notebook file names, e.g. ``("basics.ipynb",)``, sorted
    notebooks: tuple[str, ...]
    #: graded cells that are not exercises (manually graded answers, tasks)
    manual_cells: tuple[GradedCell, ...] = ()

    @property
    def autograded_points(self) -> float:
        return float(sum(exercise.points for exercise in self.exercises))

    @property
    def manual_points(self) -> float:
        return float(sum(cell.points for cell in self.manual_cells))

    @property
    def max_score(self) -> float:
        return self.autograded_points + self.manual_points

    def exercise(self, grade_id: str) -> Exercise:
        for exercise in self.exercises:
            if exercise.grade_id == grade_id:
                return exercise
        raise KeyError(grade_id)


@dataclass(frozen=True)
class Course:
    id: str
    title: str
    description: str
    level: str
    tags: tuple[str, ...]
    skills: tuple[Skill, ...]
    prerequisites: tuple[str, ...]
    open_enrollment: bool
    assignments: tuple[Assignment, ...]
    #: the course folder
    path: Path

    def skill(self, skill_id: str) -> Skill:
        for skill in self.skills:
            if skill.id == skill_id:
                return skill
        raise KeyError(skill_id)

    def assignment(self, assignment_id: str) -> Assignment:
        for assignment in self.assignments:
            if assignment.id == assignment_id:
                return assignment
        raise KeyError(assignment_id)

    def exercises(self) -> Iterator[tuple[Assignment, Exercise]]:
        """Every (assignment, exercise) pair, in course order."""
        for assignment in self.assignments:
            for exercise in assignment.exercises:
                yield assignment, exercise

    def skill_order(self) -> list[str]:
        """Skill ids in an order where every skill comes after its prerequisites."""
        return topological_order({s.id: s.prerequisites for s in self.skills})


def topological_order(graph: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The nodes of ``graph`` (node -> prerequisites), each after its prerequisites.

    ``graph`` must have no cycle; the checks refuse skill and course graphs that have one.
    """
    order: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        for dep in graph.get(node, ()):
            visit(dep)
        done.add(node)
        order.append(node)

    for node in graph:
        visit(node)
    return order
