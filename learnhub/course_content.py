"""Course content: the course folder format, its loader/validator and nbgrader releases.

A course is a folder::

    <course>/
      course.yaml                       # metadata, skills, assignments, exercises
      source/<assignment>/<name>.ipynb  # nbgrader *source* notebooks (with solutions)

The format is documented in ``courses/README.md``. This module is core: it has no web code.

Public API
----------
- :func:`load_course` — parse and validate one course folder into a :class:`Course`.
- :func:`load_courses` — load every course under a folder and check cross-course prerequisites.
- :func:`generate_release` — run nbgrader's real ``generate_assignment`` for one assignment.
- :func:`self_check` — autograde the source (solution) and the released (blank) notebooks with
  nbgrader, so an instructor can see that solutions score full marks and blanks score nothing.
- :func:`course_to_dict` — a JSON-ready view of a course.
- :func:`read_graded_cells` — the nbgrader graded cells of one notebook.

Every problem in a course folder raises :class:`CourseFormatError`, which names the file, the
field and what to fix.
"""
from __future__ import annotations

import atexit
import json
import logging
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

import yaml

__all__ = [
    "LEVELS",
    "LIMIT_FIELDS",
    "CourseFormatError",
    "ReleaseError",
    "Skill",
    "Limits",
    "GradedCell",
    "Exercise",
    "Assignment",
    "Course",
    "Release",
    "CellScore",
    "SelfCheck",
    "load_course",
    "load_courses",
    "read_graded_cells",
    "generate_release",
    "self_check",
    "course_to_dict",
]

log = logging.getLogger(__name__)

COURSE_FILE = "course.yaml"
SOURCE_DIR = "source"
LEVELS = ("beginner", "intermediate", "advanced")
DIFFICULTIES = (1, 2, 3)
LIMIT_FIELDS = ("cpu_seconds", "wall_seconds", "memory_mb", "output_kb")
NBGRADER_SCHEMA_VERSION = 3

#: course, skill and assignment ids: lower-case letters and digits, words joined by - or _
SLUG_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
#: nbgrader grade_ids
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")

_COURSE_FIELDS = {
    "id", "title", "description", "level", "tags", "skills", "prerequisites",
    "open_enrollment", "assignments",
}
_SKILL_FIELDS = {"id", "title", "prerequisites"}
_ASSIGNMENT_FIELDS = {
    "id", "title", "due", "hard_deadline", "max_attempts", "difficulty", "limits", "exercises",
}
_EXERCISE_FIELDS = {"grade_id", "title", "skills", "difficulty"}


# --------------------------------------------------------------------------- errors


class CourseFormatError(ValueError):
    """A course folder that does not follow the format.

    ``path`` is the file at fault, ``field`` the dotted location inside it (for example
    ``assignments[1].exercises[0].skills``), ``problem`` what is wrong and ``fix`` what to do.
    """

    def __init__(self, path: Path | str | None, field: str | None, problem: str, fix: str = ""):
        self.path = Path(path) if path is not None else None
        self.field = field
        self.problem = problem
        self.fix = fix
        where = str(self.path) if self.path is not None else "<course>"
        if field:
            where += f": {field}"
        message = f"{where}: {problem}"
        if fix:
            message += f" — {fix}"
        super().__init__(message)


class ReleaseError(RuntimeError):
    """nbgrader could not generate or autograde an assignment; the message carries its log."""


# --------------------------------------------------------------------------- data model


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
        return _topological_order({s.id: s.prerequisites for s in self.skills})


@dataclass
class Release:
    """The result of :func:`generate_release`."""

    assignment_id: str
    #: ``<dest_dir>/<assignment_id>``
    directory: Path
    #: released (student) notebooks, sorted
    notebooks: list[Path]
    #: notebook id -> grade_id -> max points, as recorded in nbgrader's gradebook
    max_points: dict[str, dict[str, float]]
    #: notebook id -> grade_id -> "autograded" | "manual" | "task"
    kinds: dict[str, dict[str, str]]
    #: nbgrader's captured log
    log: str = ""

    @property
    def total_points(self) -> float:
        return float(sum(p for cells in self.max_points.values() for p in cells.values()))


@dataclass(frozen=True)
class CellScore:
    notebook: str
    grade_id: str
    kind: str
    score: float | None
    max_score: float


@dataclass
class SelfCheck:
    """Scores nbgrader's autograde gave the solution and the blank notebooks of one assignment."""

    assignment_id: str
    solution: list[CellScore]
    blank: list[CellScore]

    def problems(self) -> list[str]:
        """Autograded cells where the solution loses points or the blank notebook earns some."""
        found = []
        for cell in self.solution:
            if cell.kind == "autograded" and (cell.score or 0.0) < cell.max_score:
                found.append(
                    f"{cell.notebook}/{cell.grade_id}: the solution scores {cell.score} of {cell.max_score}"
                )
        for cell in self.blank:
            if cell.kind == "autograded" and (cell.score or 0.0) > 0:
                found.append(
                    f"{cell.notebook}/{cell.grade_id}: the blank release scores {cell.score} "
                    f"(tests pass without an answer)"
                )
        return found


# --------------------------------------------------------------------------- helpers


def _topological_order(graph: Mapping[str, tuple[str, ...]]) -> list[str]:
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


def _find_cycle(graph: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle in ``graph`` (node -> prerequisites) as a path ``[a, b, ..., a]``, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in graph}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in colour:
                continue
            if colour[dep] == GREY:
                return stack[stack.index(dep):] + [dep]
            if colour[dep] == WHITE:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in graph:
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


class _Checker:
    """Type checks for one YAML file, raising CourseFormatError with the file and field."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str | None, problem: str, fix: str = "") -> None:
        raise CourseFormatError(self.path, where, problem, fix)

    def mapping(self, value: Any, where: str, allowed: set[str], required: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            self.fail(where or None, f"expected a mapping of fields, got {type(value).__name__}",
                      "write it as 'key: value' lines")
        for key in value:
            if key not in allowed:
                self.fail(_join(where, str(key)), f"unknown field {key!r}",
                          f"remove it or use one of: {', '.join(sorted(allowed))}")
        for key in required:
            if key not in value:
                self.fail(_join(where, key), "is missing", "this field is required")
        return value

    def string(self, value: Any, where: str, *, empty_ok: bool = False) -> str:
        if not isinstance(value, str):
            self.fail(where, f"expected text, got {type(value).__name__} {value!r}",
                      "put the value in quotes if YAML reads it as something else")
        if not empty_ok and not value.strip():
            self.fail(where, "is empty", "give it a value")
        return value

    def slug(self, value: Any, where: str, what: str) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        self.string(value, where)
        if not SLUG_RE.match(value):
            self.fail(where, f"{what} {value!r} is not a valid id",
                      "use lower-case letters and digits with words joined by '-' or '_', "
                      "e.g. 'intro-python' or '01-basics'")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"expected true or false, got {value!r}", "write true or false")
        return value

    def difficulty(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or value not in DIFFICULTIES:
            self.fail(where, f"difficulty must be 1, 2 or 3, got {value!r}",
                      "use 1 (easy), 2 (medium) or 3 (challenge)")
        return int(value)

    def string_list(self, value: Any, where: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected a list, got {type(value).__name__} {value!r}",
                      "write it as [a, b] or as '- a' lines")
        for index, item in enumerate(value):
            self.string(item, f"{where}[{index}]")
        return list(value)

    def slug_list(self, value: Any, where: str, what: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected a list of ids, got {type(value).__name__} {value!r}",
                      "write it as [a, b] or as '- a' lines")
        items = value
        result = [self.slug(item, f"{where}[{index}]", what) for index, item in enumerate(items)]
        duplicates = sorted({item for item in result if result.count(item) > 1})
        if duplicates:
            self.fail(where, f"lists {', '.join(map(repr, duplicates))} more than once",
                      "list each id once")
        return result

    def due(self, value: Any, where: str) -> datetime | None:
        if value is None:
            return None
        example = "write an ISO 8601 date and time in UTC, e.g. \"2026-09-14T23:59:00Z\""
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            self.fail(where, f"{value.isoformat()} is a date without a time", example)
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                self.fail(where, f"{value!r} is not an ISO 8601 date and time", example)
            if len(value.strip()) <= 10:
                self.fail(where, f"{value!r} is a date without a time", example)
        else:
            self.fail(where, f"expected a date and time, got {value!r}", example)
        if parsed.tzinfo is None:
            self.fail(where, f"{value!s} has no time zone", example + " (note the Z)")
        if parsed.utcoffset().total_seconds() != 0:
            self.fail(where, f"{value!s} is not in UTC", example)
        return parsed.astimezone(timezone.utc)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _check_unique(checker: _Checker, ids: list[str], where: str, what: str) -> None:
    seen: dict[str, int] = {}
    for index, value in enumerate(ids):
        if value in seen:
            checker.fail(f"{where}[{index}].id" if what != "grade_id" else f"{where}[{index}].grade_id",
                         f"duplicate {what} {value!r} (also {where}[{seen[value]}])",
                         f"every {what} must be unique")
        seen[value] = index


# --------------------------------------------------------------------------- notebooks


def _cell_source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def read_graded_cells(notebook_path: Path | str) -> list[GradedCell]:
    """The nbgrader graded cells of one source notebook, in notebook order.

    Raises :class:`CourseFormatError` for an unreadable notebook or broken nbgrader metadata
    (missing grade_id, bad points, old schema version, duplicate grade_ids).
    """
    path = Path(notebook_path)
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CourseFormatError(path, None, f"cannot read the notebook ({exc})",
                                "save it again from Jupyter") from exc
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    if not isinstance(cells, list):
        raise CourseFormatError(path, "cells", "is not a Jupyter notebook (no cell list)",
                                "save it again from Jupyter")
    graded: list[GradedCell] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells):
        metadata = cell.get("metadata") or {}
        nbgrader = metadata.get("nbgrader")
        if not nbgrader:
            continue
        where = f"cells[{index}].metadata.nbgrader"
        is_grade = bool(nbgrader.get("grade"))
        is_solution = bool(nbgrader.get("solution"))
        is_task = bool(nbgrader.get("task"))
        is_locked = bool(nbgrader.get("locked"))
        if not (is_grade or is_solution or is_task or is_locked):
            continue
        version = nbgrader.get("schema_version")
        if version != NBGRADER_SCHEMA_VERSION:
            raise CourseFormatError(path, f"{where}.schema_version",
                                    f"nbgrader schema version {version!r}, expected {NBGRADER_SCHEMA_VERSION}",
                                    "run 'nbgrader update' on the source notebook")
        grade_id = nbgrader.get("grade_id")
        if not isinstance(grade_id, str) or not GRADE_ID_RE.match(grade_id):
            raise CourseFormatError(path, f"{where}.grade_id",
                                    f"missing or invalid grade_id {grade_id!r}",
                                    "give the cell an ID in the nbgrader cell toolbar "
                                    "(letters, digits, '-' and '_')")
        if grade_id in seen:
            raise CourseFormatError(path, f"{where}.grade_id",
                                    f"duplicate grade_id {grade_id!r} (also cells[{seen[grade_id]}])",
                                    "every nbgrader cell needs its own ID")
        seen[grade_id] = index
        source = _cell_source(cell)
        for begin, end in (("BEGIN SOLUTION", "END SOLUTION"), ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
                           ("BEGIN MARK SCHEME", "END MARK SCHEME")):
            opened = sum(begin in line for line in source.splitlines())
            closed = sum(end in line for line in source.splitlines())
            if opened != closed:
                raise CourseFormatError(path, f"cells[{index}].source",
                                        f"cell {grade_id!r} has {opened} '{begin}' but {closed} '{end}' markers",
                                        f"close every '### {begin}' with a '### {end}'")
        if not (is_grade or is_task):
            continue
        points = nbgrader.get("points")
        if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
            raise CourseFormatError(path, f"{where}.points",
                                    f"graded cell {grade_id!r} has invalid points {points!r}",
                                    "set a number of points of 0 or more in the nbgrader cell toolbar")
        if is_task:
            kind = "task"
        elif is_solution:
            kind = "manual"
        else:
            kind = "autograded"
        learnhub_meta = metadata.get("learnhub") or {}
        hint = learnhub_meta.get("hint") if isinstance(learnhub_meta, dict) else None
        if hint is not None and not isinstance(hint, str):
            raise CourseFormatError(path, f"cells[{index}].metadata.learnhub.hint",
                                    f"hint of {grade_id!r} must be text, got {type(hint).__name__}",
                                    "write the hint as a string")
        graded.append(GradedCell(
            notebook=path.stem,
            grade_id=grade_id,
            points=float(points),
            kind=kind,
            cell_type=str(cell.get("cell_type", "code")),
            has_hidden_tests=kind == "autograded" and "BEGIN HIDDEN TESTS" in source,
            hint=hint,
        ))
    return graded


def _assignment_notebooks(source_dir: Path) -> list[Path]:
    return sorted(p for p in source_dir.glob("*.ipynb") if p.is_file())


# --------------------------------------------------------------------------- loading


def load_course(path: Path | str) -> Course:
    """Load and validate the course in folder ``path`` (or the ``course.yaml`` file itself).

    Reads ``course.yaml`` and every source notebook the assignments use. Raises
    :class:`CourseFormatError` at the first problem found.
    """
    path = Path(path)
    if path.is_file() or path.name == COURSE_FILE:
        course_dir, course_file = path.parent, path
    else:
        course_dir, course_file = path, path / COURSE_FILE
    if not course_file.is_file():
        raise CourseFormatError(course_file, None, "file not found",
                                f"a course folder needs a {COURSE_FILE}")
    try:
        raw = yaml.safe_load(course_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise CourseFormatError(course_file, where, f"is not valid YAML ({getattr(exc, 'problem', exc)})",
                                "fix the YAML syntax (indentation, quotes, colons)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CourseFormatError(course_file, None, f"cannot be read ({exc})") from exc

    check = _Checker(course_file)
    if raw is None:
        check.fail(None, "is empty", "see courses/README.md for the format")
    data = check.mapping(raw, "", _COURSE_FIELDS, ("id", "title", "level", "skills", "assignments"))

    course_id = check.slug(data["id"], "id", "course id")
    title = check.string(data["title"], "title")
    description = check.string(data.get("description") or "", "description", empty_ok=True)
    level = data["level"]
    if level not in LEVELS:
        check.fail("level", f"level {level!r} is not allowed", f"use one of: {', '.join(LEVELS)}")
    tags = check.string_list(data.get("tags"), "tags")
    prerequisites = check.slug_list(data.get("prerequisites"), "prerequisites", "course id")
    if course_id in prerequisites:
        check.fail("prerequisites", f"course {course_id!r} lists itself as a prerequisite",
                   "remove it")
    open_enrollment = check.boolean(data.get("open_enrollment", True), "open_enrollment")

    # skills
    raw_skills = data["skills"]
    if not isinstance(raw_skills, list) or not raw_skills:
        check.fail("skills", "expected a non-empty list of skills",
                   "list the skills as '- {id: ..., title: ..., prerequisites: [...]}'")
    skills: list[Skill] = []
    for index, raw_skill in enumerate(raw_skills):
        where = f"skills[{index}]"
        item = check.mapping(raw_skill, where, _SKILL_FIELDS, ("id", "title"))
        skills.append(Skill(
            id=check.slug(item["id"], f"{where}.id", "skill id"),
            title=check.string(item["title"], f"{where}.title"),
            prerequisites=tuple(check.slug_list(item.get("prerequisites"), f"{where}.prerequisites", "skill id")),
        ))
    _check_unique(check, [s.id for s in skills], "skills", "skill id")
    skill_ids = {s.id for s in skills}
    for index, skill in enumerate(skills):
        for p_index, prerequisite in enumerate(skill.prerequisites):
            if prerequisite not in skill_ids:
                check.fail(f"skills[{index}].prerequisites[{p_index}]",
                           f"skill {skill.id!r} needs unknown skill {prerequisite!r}",
                           f"declare {prerequisite!r} under skills or use one of: {', '.join(sorted(skill_ids))}")
    cycle = _find_cycle({s.id: s.prerequisites for s in skills})
    if cycle:
        check.fail("skills", f"prerequisite cycle between skills: {' -> '.join(cycle)}",
                   "a skill cannot (even indirectly) be its own prerequisite; remove one of these links")

    # assignments
    raw_assignments = data["assignments"]
    if not isinstance(raw_assignments, list) or not raw_assignments:
        check.fail("assignments", "expected a non-empty list of assignments",
                   "list the assignments in the order learners should do them")
    ids = []
    for index, raw_assignment in enumerate(raw_assignments):
        item = check.mapping(raw_assignment, f"assignments[{index}]", _ASSIGNMENT_FIELDS,
                             ("id", "title", "difficulty", "exercises"))
        ids.append(check.slug(item["id"], f"assignments[{index}].id", "assignment id"))
    _check_unique(check, ids, "assignments", "assignment id")
    assignments = tuple(
        _load_assignment(check, course_dir, index, raw_assignment, skill_ids)
        for index, raw_assignment in enumerate(raw_assignments)
    )

    return Course(
        id=course_id,
        title=title,
        description=description.strip(),
        level=level,
        tags=tuple(tags),
        skills=tuple(skills),
        prerequisites=tuple(prerequisites),
        open_enrollment=open_enrollment,
        assignments=assignments,
        path=course_dir.resolve(),
    )


def _load_assignment(check: _Checker, course_dir: Path, index: int, item: dict,
                     skill_ids: set[str]) -> Assignment:
    where = f"assignments[{index}]"
    assignment_id = item["id"]
    title = check.string(item["title"], f"{where}.title")
    due = check.due(item.get("due"), f"{where}.due")
    hard_deadline = check.boolean(item.get("hard_deadline", False), f"{where}.hard_deadline")
    if hard_deadline and due is None:
        check.fail(f"{where}.hard_deadline", "is true but the assignment has no due date",
                   "add a due date or set hard_deadline: false")
    max_attempts = item.get("max_attempts")
    if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
                                     or max_attempts < 1):
        check.fail(f"{where}.max_attempts", f"must be a whole number of at least 1 or null, got {max_attempts!r}",
                   "use null for unlimited attempts")
    difficulty = check.difficulty(item["difficulty"], f"{where}.difficulty")
    limits = None
    if item.get("limits") is not None:
        raw_limits = check.mapping(item["limits"], f"{where}.limits", set(LIMIT_FIELDS), ())
        values = {}
        for name, value in raw_limits.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                check.fail(f"{where}.limits.{name}", f"must be a positive number, got {value!r}",
                           "leave it out to use the grader's default")
            values[name] = value
        limits = Limits(**values)

    # exercises (structure first)
    raw_exercises = item["exercises"]
    if not isinstance(raw_exercises, list):
        check.fail(f"{where}.exercises", "expected a list of exercises",
                   "list one entry per autograded test cell")
    parsed: list[dict] = []
    for e_index, raw_exercise in enumerate(raw_exercises):
        e_where = f"{where}.exercises[{e_index}]"
        exercise = check.mapping(raw_exercise, e_where, _EXERCISE_FIELDS,
                                 ("grade_id", "title", "skills", "difficulty"))
        grade_id = exercise["grade_id"]
        if not isinstance(grade_id, str) or not GRADE_ID_RE.match(grade_id):
            check.fail(f"{e_where}.grade_id", f"invalid grade_id {grade_id!r}",
                       "use the nbgrader ID of the autograded test cell (letters, digits, '-' and '_')")
        skills = check.slug_list(exercise["skills"], f"{e_where}.skills", "skill id")
        if not skills:
            check.fail(f"{e_where}.skills", "is empty", "name at least one skill the exercise practises")
        for s_index, skill in enumerate(skills):
            if skill not in skill_ids:
                check.fail(f"{e_where}.skills[{s_index}]",
                           f"exercise {grade_id!r} uses unknown skill {skill!r}",
                           f"declare it under skills or use one of: {', '.join(sorted(skill_ids))}")
        parsed.append({
            "grade_id": grade_id,
            "title": check.string(exercise["title"], f"{e_where}.title"),
            "skills": tuple(skills),
            "difficulty": check.difficulty(exercise["difficulty"], f"{e_where}.difficulty"),
        })
    _check_unique(check, [e["grade_id"] for e in parsed], f"{where}.exercises", "grade_id")

    # the source notebooks
    source_dir = course_dir / SOURCE_DIR / assignment_id
    if not source_dir.is_dir():
        check.fail(f"{where}.id",
                   f"assignment {assignment_id!r} has no source notebook folder {source_dir}",
                   f"create {SOURCE_DIR}/{assignment_id}/ with the nbgrader source notebooks "
                   f"(the folder name must equal the assignment id)")
    notebooks = _assignment_notebooks(source_dir)
    if not notebooks:
        check.fail(f"{where}.id", f"the source folder {source_dir} has no notebooks",
                   "put the assignment's nbgrader source notebooks (.ipynb) in it")
    cells: dict[str, GradedCell] = {}
    for notebook in notebooks:
        for cell in read_graded_cells(notebook):
            if cell.grade_id in cells:
                raise CourseFormatError(
                    notebook, f"grade_id {cell.grade_id!r}",
                    f"is also used in {cells[cell.grade_id].notebook}.ipynb of the same assignment",
                    "grade_ids must be unique within an assignment; rename one of the cells")
            cells[cell.grade_id] = cell

    exercises = []
    autograded = {g for g, c in cells.items() if c.kind == "autograded"}
    for e_index, exercise in enumerate(parsed):
        e_where = f"{where}.exercises[{e_index}].grade_id"
        cell = cells.get(exercise["grade_id"])
        if cell is None:
            check.fail(e_where,
                       f"no graded cell {exercise['grade_id']!r} in the notebooks of {SOURCE_DIR}/{assignment_id}/",
                       f"use the grade_id of an autograded test cell; these exist: "
                       f"{', '.join(sorted(autograded)) or '(none)'}")
        if cell.kind != "autograded":
            check.fail(e_where,
                       f"{exercise['grade_id']!r} in {cell.notebook}.ipynb is a {cell.kind} graded cell, "
                       f"not an autograded test cell",
                       "exercises name autograded test cells (grade: true, solution: false); "
                       "manually graded answers need no entry")
        if cell.points <= 0:
            check.fail(e_where, f"test cell {exercise['grade_id']!r} in {cell.notebook}.ipynb is worth 0 points",
                       "give the test cell points in the nbgrader cell toolbar")
        exercises.append(Exercise(notebook=cell.notebook, points=cell.points, hint=cell.hint,
                                  has_hidden_tests=cell.has_hidden_tests, **exercise))
    listed = {e["grade_id"] for e in parsed}
    unlisted = sorted(autograded - listed)
    if unlisted:
        check.fail(f"{where}.exercises",
                   f"autograded test cell(s) {', '.join(map(repr, unlisted))} in {SOURCE_DIR}/{assignment_id}/ "
                   f"are not listed as exercises",
                   "add an exercise entry (with its skills and difficulty) for every autograded test cell")
    manual_cells = tuple(c for c in cells.values() if c.kind != "autograded")

    return Assignment(
        id=assignment_id,
        title=title,
        due=due,
        hard_deadline=hard_deadline,
        max_attempts=max_attempts,
        difficulty=difficulty,
        limits=limits,
        exercises=tuple(exercises),
        source_dir=source_dir.resolve(),
        notebooks=tuple(p.name for p in notebooks),
        manual_cells=manual_cells,
    )


def load_courses(root: Path | str) -> list[Course]:
    """Load every course folder (a folder with a course.yaml) directly under ``root``.

    Also checks what one course cannot: course ids are unique, course prerequisites name
    courses that exist, and course prerequisites have no cycle. Courses come sorted by id.
    """
    root = Path(root)
    courses = [load_course(folder) for folder in sorted(root.iterdir())
               if folder.is_dir() and (folder / COURSE_FILE).is_file()]
    by_id: dict[str, Course] = {}
    for course in courses:
        if course.id in by_id:
            raise CourseFormatError(course.path / COURSE_FILE, "id",
                                    f"course id {course.id!r} is also used by {by_id[course.id].path}",
                                    "every course needs its own id")
        by_id[course.id] = course
    for course in courses:
        for index, prerequisite in enumerate(course.prerequisites):
            if prerequisite not in by_id:
                raise CourseFormatError(course.path / COURSE_FILE, f"prerequisites[{index}]",
                                        f"unknown course {prerequisite!r}",
                                        f"use one of: {', '.join(sorted(by_id))}")
    cycle = _find_cycle({c.id: c.prerequisites for c in courses})
    if cycle:
        raise CourseFormatError(by_id[cycle[0]].path / COURSE_FILE, "prerequisites",
                                f"prerequisite cycle between courses: {' -> '.join(cycle)}",
                                "remove one of these prerequisites")
    return sorted(courses, key=lambda c: c.id)


# --------------------------------------------------------------------------- nbgrader


# A Unix socket's path is limited to 107 bytes on Linux; "-<n>" is appended to the prefix.
_MAX_IPC_PREFIX = 96


def use_unix_socket_kernels(config, folder: Path | str) -> None:
    """Make the kernels nbgrader starts with ``config`` talk over Unix sockets in ``folder``, not TCP.

    A TCP port that jupyter_client found free may be taken by another process before the kernel
    binds it ("Address already in use", the kernel dies at start), as happens when autogrades run
    side by side (jupyter_client issue 487). The prefix is absolute: the kernel runs in the
    notebook's folder. TCP stays when the path would be too long for a Unix socket."""
    sockets = Path(folder).absolute() / "kernel"
    if len(str(sockets).encode()) <= _MAX_IPC_PREFIX:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(sockets)


def _nbgrader_api(root: Path, course_id: str, db_url: str | None = None):
    """An NbGraderAPI on the course directory ``root`` (imports nbgrader lazily)."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.course_id = course_id
    config.CourseDirectory.db_url = db_url or f"sqlite:///{root / 'gradebook.db'}"
    # keep nbgrader's filesystem exchange inside the temporary course (never /srv/nbgrader)
    config.Exchange.root = str(root / "exchange")
    config.NbGraderAPI.log_level = "WARN"
    use_unix_socket_kernels(config, root)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


_GRADEBOOK_TEMPLATE: Path | None = None


def _empty_gradebook(target: Path) -> None:
    """Write an empty nbgrader gradebook (SQLite) at ``target``.

    nbgrader creates a new gradebook by running the ``alembic heads`` command in a subprocess,
    which takes seconds; the first empty gradebook of the process is kept as a template and
    copied afterwards (same nbgrader, same schema and alembic version).
    """
    global _GRADEBOOK_TEMPLATE
    if _GRADEBOOK_TEMPLATE is None or not _GRADEBOOK_TEMPLATE.is_file():
        import nbgrader.api
        from unittest import mock

        folder = Path(tempfile.mkdtemp(prefix="learnhub-gradebook-"))
        atexit.register(shutil.rmtree, folder, True)
        template = folder / "gradebook.db"
        head = _alembic_head()
        if head:  # the same answer as nbgrader's `alembic heads` subprocess, without the subprocess
            with mock.patch.object(nbgrader.api, "get_alembic_version", lambda: head):
                nbgrader.api.Gradebook(f"sqlite:///{template}", "template").close()
        else:
            nbgrader.api.Gradebook(f"sqlite:///{template}", "template").close()
        _GRADEBOOK_TEMPLATE = template
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_GRADEBOOK_TEMPLATE, target)


def _alembic_head() -> str | None:
    """The head revision of nbgrader's gradebook migrations, read in-process (None if unknown)."""
    try:
        import nbgrader
        from alembic.script import ScriptDirectory

        heads = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_heads()
    except Exception:  # pragma: no cover - fall back to nbgrader's own subprocess
        log.debug("cannot read nbgrader's alembic head in-process", exc_info=True)
        return None
    return heads[0] if len(heads) == 1 else None


def _sqlite_file(db_url: str) -> Path | None:
    prefix = "sqlite:///"
    if db_url.startswith(prefix) and len(db_url) > len(prefix) and ":memory:" not in db_url:
        return Path(db_url[len(prefix):])
    return None


def _prepare_nbgrader_course(assignment: Assignment, root: Path, db_url: str | None = None) -> str:
    """Lay out an nbgrader course directory at ``root`` for one assignment; returns its db_url."""
    target = root / SOURCE_DIR / assignment.id
    shutil.copytree(assignment.source_dir, target,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (root / "exchange").mkdir(exist_ok=True)
    if db_url:
        existing = _sqlite_file(db_url)
        if existing is not None and not existing.exists():
            _empty_gradebook(existing)
        return db_url
    gradebook = root / "gradebook.db"
    _empty_gradebook(gradebook)
    return f"sqlite:///{gradebook}"


def _run(api, method: str, *args) -> str:
    with warnings.catch_warnings():
        # nbgrader's autograde trips SQLAlchemy's "not in session" autoflush warnings; harmless
        warnings.filterwarnings("ignore", message=r".*not in session.*")
        result = getattr(api, method)(*args)
    if not result.get("success"):
        raise ReleaseError(
            f"nbgrader {method} {' '.join(map(str, args))} failed:\n"
            f"{result.get('error') or ''}\n{result.get('log') or ''}".strip()
        )
    return result.get("log") or ""


def _gradebook_cells(db_url: str, course_id: str, assignment_id: str):
    """notebook -> grade_id -> (max points, kind), read from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    max_points: dict[str, dict[str, float]] = {}
    kinds: dict[str, dict[str, str]] = {}
    with Gradebook(db_url, course_id) as gradebook:
        assignment = gradebook.find_assignment(assignment_id)
        for notebook in assignment.notebooks:
            solution_ids = {cell.name for cell in notebook.solution_cells}
            max_points[notebook.name] = {}
            kinds[notebook.name] = {}
            for cell in notebook.grade_cells:
                max_points[notebook.name][cell.name] = float(cell.max_score)
                kinds[notebook.name][cell.name] = "manual" if cell.name in solution_ids else "autograded"
            for cell in notebook.task_cells:
                max_points[notebook.name][cell.name] = float(cell.max_score)
                kinds[notebook.name][cell.name] = "task"
    return max_points, kinds


def _assignment_of(course: Course, assignment_id: str) -> Assignment:
    try:
        return course.assignment(assignment_id)
    except KeyError:
        raise KeyError(f"course {course.id!r} has no assignment {assignment_id!r}; "
                       f"it has: {', '.join(a.id for a in course.assignments)}") from None


def generate_release(course: Course, assignment_id: str, dest_dir: Path | str, *,
                     db_url: str | None = None) -> Release:
    """Run nbgrader's ``generate_assignment`` for one assignment into ``dest_dir/<assignment_id>``.

    nbgrader works in a temporary course directory (``source/<assignment_id>`` copied from the
    course); solutions and hidden tests are stripped, cells locked and checksummed exactly as
    ``nbgrader generate_assignment`` does. An existing ``dest_dir/<assignment_id>`` is replaced.

    ``db_url``: where nbgrader writes the gradebook (which keeps the hidden tests and is what
    ``nbgrader autograde`` needs); by default a throw-away SQLite file in the temporary folder.
    Returns the released notebooks' paths and each graded cell's max points from the gradebook.
    """
    assignment = _assignment_of(course, assignment_id)
    dest_dir = Path(dest_dir).absolute()
    with tempfile.TemporaryDirectory(prefix="learnhub-release-") as tmp:
        root = Path(tmp) / "course"
        root.mkdir()
        url = _prepare_nbgrader_course(assignment, root, db_url)
        api = _nbgrader_api(root, course.id, url)
        nbgrader_log = _run(api, "generate_assignment", assignment_id)
        max_points, kinds = _gradebook_cells(url, course.id, assignment_id)
        released = root / "release" / assignment_id
        target = dest_dir / assignment_id
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(released, target)
    return Release(
        assignment_id=assignment_id,
        directory=target,
        notebooks=sorted(target.glob("*.ipynb")),
        max_points=max_points,
        kinds=kinds,
        log=nbgrader_log,
    )


def self_check(course: Course, assignment_id: str, work_dir: Path | str | None = None) -> SelfCheck:
    """Autograde the assignment's solutions and its blank release with nbgrader.

    In one temporary nbgrader course directory: ``generate_assignment``, then ``autograde`` of a
    submission made of the source notebooks (student ``solution``) and one made of the released
    notebooks (student ``blank``). Use :meth:`SelfCheck.problems` to see cells where a solution
    loses points or a blank notebook earns some. Executes the notebooks (a few seconds each).
    """
    assignment = _assignment_of(course, assignment_id)
    from nbgrader.api import Gradebook

    with tempfile.TemporaryDirectory(prefix="learnhub-selfcheck-", dir=work_dir) as tmp:
        root = Path(tmp) / "course"
        root.mkdir()
        url = _prepare_nbgrader_course(assignment, root)
        api = _nbgrader_api(root, course.id, url)
        _run(api, "generate_assignment", assignment_id)
        submissions = {
            "solution": root / SOURCE_DIR / assignment_id,
            "blank": root / "release" / assignment_id,
        }
        for student, origin in submissions.items():
            shutil.copytree(origin, root / "submitted" / student / assignment_id)
        # one nbgrader autograde run over both submissions (student "*", as `nbgrader autograde <id>`)
        _run(api, "autograde", assignment_id, "*")
        _, kinds = _gradebook_cells(url, course.id, assignment_id)
        scores: dict[str, list[CellScore]] = {}
        with Gradebook(url, course.id) as gradebook:
            for student in submissions:
                rows = []
                for notebook_file in assignment.notebooks:
                    name = Path(notebook_file).stem
                    submitted = gradebook.find_submission_notebook(name, assignment_id, student)
                    for grade in submitted.grades:
                        rows.append(CellScore(
                            notebook=name,
                            grade_id=grade.name,
                            kind=kinds.get(name, {}).get(grade.name, "autograded"),
                            score=None if grade.score is None else float(grade.score),
                            max_score=float(grade.max_score),
                        ))
                scores[student] = rows
    return SelfCheck(assignment_id=assignment_id, solution=scores["solution"], blank=scores["blank"])


# --------------------------------------------------------------------------- JSON


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
