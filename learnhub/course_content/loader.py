"""Reading course folders: ``course.yaml`` and the source notebooks, into :class:`~.model.Course`.

Every field goes through the rules of :mod:`.checks`; what only a folder can be checked for —
assignments and their exercises, the source notebooks and their nbgrader metadata, several
courses side by side — is checked here. Every problem raises :class:`~.checks.CourseFormatError`
naming the file, the field and what to fix.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import yaml

from .checks import COURSE_METADATA_FIELDS, CourseFormatError, FieldChecker, check_course_metadata, find_cycle
from .model import (
    COURSE_FILE,
    GRADE_ID_RE,
    LIMIT_FIELDS,
    NBGRADER_SCHEMA_VERSION,
    SOURCE_DIR,
    Assignment,
    Course,
    Exercise,
    GradedCell,
    Limits,
    Skill,
)

__all__ = ["load_course", "load_courses", "read_graded_cells"]

_COURSE_FIELDS = {*COURSE_METADATA_FIELDS, "assignments"}
_ASSIGNMENT_FIELDS = {
    "id", "title", "due", "hard_deadline", "max_attempts", "difficulty", "limits", "exercises",
}
_EXERCISE_FIELDS = {"grade_id", "title", "skills", "difficulty"}


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


# --------------------------------------------------------------------------- one course


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

    check = FieldChecker(course_file, syntax="yaml")
    if raw is None:
        check.fail(None, "is empty", "see courses/README.md for the format")
    data = check.mapping(raw, "", _COURSE_FIELDS, ("id", "title", "level", "skills", "assignments"))

    # The course's own fields follow the rules the courses API applies too (checks.py). An
    # empty or missing description is no description; the other optional fields get their
    # defaults here, not in the rules.
    metadata = {key: data[key] for key in COURSE_METADATA_FIELDS if key in data}
    metadata["description"] = data.get("description") or ""
    fields = check_course_metadata(check, metadata, required_skill_fields=("id", "title"))
    if not fields["skills"]:
        check.fail("skills", "expected a non-empty list of skills",
                   "list the skills as '- {id: ..., title: ..., prerequisites: [...]}'")
    skills = [Skill(id=s["id"], title=s["title"], prerequisites=tuple(s["prerequisites"]))
              for s in fields["skills"]]
    skill_ids = {s.id for s in skills}

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
    check.unique(ids, "assignments", "assignment id")
    assignments = tuple(
        _load_assignment(check, course_dir, index, raw_assignment, skill_ids)
        for index, raw_assignment in enumerate(raw_assignments)
    )

    return Course(
        id=fields["id"],
        title=fields["title"],
        description=fields["description"].strip(),
        level=fields["level"],
        tags=tuple(fields.get("tags", ())),
        skills=tuple(skills),
        prerequisites=tuple(fields.get("prerequisites", ())),
        open_enrollment=fields.get("open_enrollment", True),
        assignments=assignments,
        path=course_dir.resolve(),
    )


def _load_assignment(check: FieldChecker, course_dir: Path, index: int, item: dict,
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
    check.unique([e["grade_id"] for e in parsed], f"{where}.exercises", "grade_id", key="grade_id")

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


# --------------------------------------------------------------------------- several courses


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
    cycle = find_cycle({c.id: c.prerequisites for c in courses})
    if cycle:
        raise CourseFormatError(by_id[cycle[0]].path / COURSE_FILE, "prerequisites",
                                f"prerequisite cycle between courses: {' -> '.join(cycle)}",
                                "remove one of these prerequisites")
    return sorted(courses, key=lambda c: c.id)
