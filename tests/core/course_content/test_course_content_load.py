"""The demo course loads, meets its counts, and its notebooks are proper nbgrader sources."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from learnhub.course_content import (
    LEVELS,
    Course,
    CourseFormatError,
    course_to_dict,
    load_course,
    load_courses,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
COURSES = REPO_ROOT / "courses"
DEMO = COURSES / "intro-python"


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(DEMO)


def test_demo_course_metadata(course):
    assert course.id == "intro-python"
    assert course.title == "Introduction to Python"
    assert course.level in LEVELS
    assert course.description
    assert course.tags
    assert course.open_enrollment is True
    assert course.path == DEMO.resolve()
    # also loadable from the course.yaml path itself
    assert load_course(DEMO / "course.yaml").id == course.id


def test_demo_course_meets_the_counts(course):
    exercises = [exercise for _, exercise in course.exercises()]
    assert len(course.assignments) >= 3
    assert len(exercises) >= 12
    assert len(course.skills) >= 6
    assert {exercise.difficulty for exercise in exercises} == {1, 2, 3}
    # every skill is practised by at least one exercise
    practised = {skill for exercise in exercises for skill in exercise.skills}
    assert practised == {skill.id for skill in course.skills}
    # assignments are in the order of their folders and ids
    assert [a.id for a in course.assignments] == ["01-basics", "02-control-flow", "03-functions-and-data"]


def test_every_exercise_has_hidden_tests_points_and_a_hint(course):
    for assignment, exercise in course.exercises():
        assert exercise.has_hidden_tests, f"{assignment.id}/{exercise.grade_id} has no hidden tests"
        assert exercise.points > 0
        assert exercise.hint and len(exercise.hint) > 20, f"{exercise.grade_id} needs a useful hint"
        assert exercise.notebook + ".ipynb" in assignment.notebooks


def test_manually_graded_answers_exist(course):
    manual = [cell for assignment in course.assignments for cell in assignment.manual_cells]
    assert manual, "the course needs at least one manually graded answer"
    assert all(cell.kind == "manual" and cell.cell_type == "markdown" and cell.points > 0 for cell in manual)
    first = course.assignment("01-basics")
    assert first.max_score == first.autograded_points + first.manual_points


def test_skill_prerequisites_are_ordered(course):
    order = course.skill_order()
    assert sorted(order) == sorted(skill.id for skill in course.skills)
    for skill in course.skills:
        for prerequisite in skill.prerequisites:
            assert order.index(prerequisite) < order.index(skill.id)


def test_assignment_settings(course):
    first, _, last = course.assignments
    assert first.due is not None and first.due.utcoffset().total_seconds() == 0
    assert first.max_attempts is None and first.hard_deadline is False
    assert last.hard_deadline is True and last.max_attempts == 5
    assert first.limits is not None and first.limits.cpu_seconds == 10
    assert last.notebooks == ("data.ipynb", "functions.ipynb")


def _nbgrader_cells(notebook):
    return [cell for cell in notebook.cells if cell.metadata.get("nbgrader")]


@pytest.mark.parametrize("notebook_path", sorted(DEMO.glob("source/*/*.ipynb")), ids=lambda p: p.name)
def test_source_notebooks_are_proper_nbgrader_sources(notebook_path):
    notebook = nbformat.read(notebook_path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    assert notebook.metadata.kernelspec.language == "python"
    graded = _nbgrader_cells(notebook)
    assert graded
    tests = solutions = manual = 0
    for cell in graded:
        meta = cell.metadata.nbgrader
        assert meta.schema_version == 3
        assert meta.grade_id
        if meta.grade and not meta.solution:  # autograded test cell
            tests += 1
            assert cell.cell_type == "code" and meta.locked is True and meta.points > 0
            assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source
            visible = cell.source.split("### BEGIN HIDDEN TESTS")[0]
            assert "assert" in visible, f"{meta.grade_id} needs visible tests too"
            assert isinstance(cell.metadata.learnhub.hint, str)
        elif meta.solution and not meta.grade:  # autograded answer
            solutions += 1
            assert cell.cell_type == "code"
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
        elif meta.solution and meta.grade:  # manually graded answer
            manual += 1
            assert meta.points > 0
    assert tests >= 2 and solutions == tests
    # friendly explanations between exercises
    assert sum(1 for cell in notebook.cells if cell.cell_type == "markdown" and not cell.metadata.get("nbgrader")) > tests


def test_course_to_dict_is_json(course):
    data = course_to_dict(course)
    again = json.loads(json.dumps(data))
    assert again["id"] == "intro-python"
    assert len(again["skills"]) == len(course.skills)
    first = again["assignments"][0]
    assert first["due"] == "2026-09-14T23:59:00Z"
    assert first["limits"] == {"cpu_seconds": 10, "wall_seconds": 30, "memory_mb": 256, "output_kb": 64}
    assert first["notebooks"] == ["basics"]
    assert first["exercises"][0] == {
        "grade_id": "variables",
        "title": "Naming values",
        "skills": ["variables-and-types"],
        "difficulty": 1,
        "notebook": "basics",
        "points": 1.0,
        "has_hidden_tests": True,
    }
    assert first["manual_cells"] == [
        {"grade_id": "explain-types", "notebook": "basics", "points": 3.0, "kind": "manual"}
    ]
    assert again["max_score"] == sum(a.max_score for a in course.assignments)
    assert all("hint" not in e for a in again["assignments"] for e in a["exercises"])
    with_hints = course_to_dict(course, include_hints=True)
    assert with_hints["assignments"][0]["exercises"][0]["hint"].startswith("Check the type")
    assert str(DEMO) not in json.dumps(with_hints)


def test_load_courses_finds_the_demo_course():
    courses = load_courses(COURSES)
    assert "intro-python" in [c.id for c in courses]


def test_missing_course_yaml(tmp_path):
    with pytest.raises(CourseFormatError, match="course.yaml.*file not found"):
        load_course(tmp_path)
