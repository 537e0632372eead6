"""Every kind of broken course raises CourseFormatError naming the file, the field and the fix.

Each test copies the demo course to a temporary folder and breaks exactly one thing.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Callable

import pytest
import yaml

from learnhub.course_content import CourseFormatError, load_course, load_courses

DEMO = Path(__file__).resolve().parents[3] / "courses" / "intro-python"


@pytest.fixture
def course_copy(tmp_path) -> Path:
    target = tmp_path / "intro-python"
    shutil.copytree(DEMO, target)
    return target


def edit_yaml(course_dir: Path, change: Callable[[dict], None]) -> None:
    path = course_dir / "course.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def edit_text(course_dir: Path, old: str, new: str) -> None:
    path = course_dir / "course.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def edit_notebook(path: Path, change: Callable[[dict], None]) -> None:
    notebook = json.loads(path.read_text())
    change(notebook)
    path.write_text(json.dumps(notebook, indent=1))


def cell(notebook: dict, grade_id: str) -> dict:
    for c in notebook["cells"]:
        if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id:
            return c
    raise KeyError(grade_id)


def expect_error(course_dir: Path, *fragments: str, file: str = "course.yaml") -> CourseFormatError:
    with pytest.raises(CourseFormatError) as info:
        load_course(course_dir)
    error = info.value
    message = str(error)
    assert error.path is not None and error.path.name == file, message
    assert file in message
    for fragment in fragments:
        assert re.search(fragment, message), f"{fragment!r} not in {message!r}"
    assert error.fix, f"no fix suggested in {message!r}"
    assert " — " in message
    return error


def test_the_unbroken_copy_loads(course_copy):
    assert load_course(course_copy).id == "intro-python"


def test_unknown_skill_in_an_exercise(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][1]["exercises"][2]["skills"].append("recursion"))
    error = expect_error(course_copy, r"assignments\[1\]\.exercises\[2\]\.skills\[2\]",
                         "unknown skill 'recursion'", "declare it under skills")
    assert error.field == "assignments[1].exercises[2].skills[2]"


def test_unknown_skill_prerequisite(course_copy):
    edit_yaml(course_copy, lambda d: d["skills"][4]["prerequisites"].append("maths"))
    expect_error(course_copy, r"skills\[4\]\.prerequisites\[1\]", "unknown skill 'maths'")


def test_prerequisite_cycle_between_skills(course_copy):
    # variables-and-types -> dictionaries -> lists -> loops -> conditionals -> variables-and-types
    edit_yaml(course_copy, lambda d: d["skills"][0]["prerequisites"].append("dictionaries"))
    error = expect_error(course_copy, "prerequisite cycle between skills",
                         "variables-and-types -> dictionaries -> lists -> loops -> conditionals -> variables-and-types")
    assert error.field == "skills"


def test_skill_that_is_its_own_prerequisite(course_copy):
    edit_yaml(course_copy, lambda d: d["skills"][2]["prerequisites"].append("strings"))
    expect_error(course_copy, "cycle", "strings -> strings")


def test_missing_source_notebook_folder(course_copy):
    shutil.rmtree(course_copy / "source" / "02-control-flow")
    expect_error(course_copy, r"assignments\[1\]\.id", "no source notebook folder",
                 "create source/02-control-flow/")


def test_source_folder_without_notebooks(course_copy):
    for notebook in (course_copy / "source" / "01-basics").glob("*.ipynb"):
        notebook.unlink()
    expect_error(course_copy, "has no notebooks")


def test_exercise_grade_id_not_in_the_notebooks(course_copy):
    edit_text(course_copy, "grade_id: fizzbuzz,", "grade_id: fizz-buzz,")
    expect_error(course_copy, r"assignments\[1\]\.exercises\[3\]\.grade_id",
                 "no graded cell 'fizz-buzz'", "these exist: .*fizzbuzz")


def test_exercise_grade_id_of_a_manually_graded_cell(course_copy):
    def change(d):
        d["assignments"][0]["exercises"].append(
            {"grade_id": "explain-types", "title": "Explain", "skills": ["variables-and-types"], "difficulty": 1})
    edit_yaml(course_copy, change)
    expect_error(course_copy, "'explain-types' in basics.ipynb is a manual graded cell",
                 "not an autograded test cell")


def test_exercise_grade_id_of_a_solution_cell(course_copy):
    edit_text(course_copy, "grade_id: shout,", "grade_id: shout-code,")
    expect_error(course_copy, "no graded cell 'shout-code'")


def test_autograded_cell_not_listed_as_an_exercise(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][0]["exercises"].pop(1))
    expect_error(course_copy, r"assignments\[0\]\.exercises", "'celsius-to-fahrenheit'", "not listed as exercises")


def test_duplicate_assignment_id(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][2].update(id="01-basics"))
    expect_error(course_copy, r"assignments\[2\]\.id", "duplicate assignment id '01-basics'")


def test_duplicate_skill_id(course_copy):
    edit_yaml(course_copy, lambda d: d["skills"].append({"id": "loops", "title": "Loops again"}))
    expect_error(course_copy, r"skills\[8\]\.id", "duplicate skill id 'loops'")


def test_duplicate_exercise(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][0]["exercises"].append(d["assignments"][0]["exercises"][0]))
    expect_error(course_copy, r"assignments\[0\]\.exercises\[5\]\.grade_id", "duplicate grade_id 'variables'")


def test_duplicate_skill_in_an_exercise(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][0]["exercises"][0]["skills"].append("variables-and-types"))
    expect_error(course_copy, r"exercises\[0\]\.skills", "more than once")


@pytest.mark.parametrize("due, fragment", [
    ('"next monday"', "is not an ISO 8601 date and time"),
    ('"2026-13-40T23:59:00Z"', "is not an ISO 8601 date and time"),
    ("2026-09-14", "is a date without a time"),
    ('"2026-09-14"', "is a date without a time"),
    ('"2026-09-14T23:59:00"', "has no time zone"),
    ('"2026-09-14T23:59:00+02:00"', "is not in UTC"),
    ("12", "expected a date and time"),
])
def test_bad_dates(course_copy, due, fragment):
    edit_text(course_copy, 'due: "2026-09-28T23:59:00Z"', f"due: {due}")
    expect_error(course_copy, r"assignments\[1\]\.due", fragment, "2026-09-14T23:59:00Z")


def test_unquoted_utc_date_is_accepted(course_copy):
    edit_text(course_copy, 'due: "2026-09-28T23:59:00Z"', "due: 2026-09-28T23:59:00Z")
    assert load_course(course_copy).assignment("02-control-flow").due.isoformat() == "2026-09-28T23:59:00+00:00"


def test_level_not_in_the_allowed_set(course_copy):
    edit_text(course_copy, "level: beginner", "level: expert")
    error = expect_error(course_copy, "level 'expert' is not allowed", "beginner, intermediate, advanced")
    assert error.field == "level"


def test_unknown_field_is_a_typo(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][0].update(deadline="2026-09-14T23:59:00Z"))
    expect_error(course_copy, r"assignments\[0\]\.deadline", "unknown field 'deadline'", "due")


def test_missing_required_field(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][2]["exercises"][0].pop("difficulty"))
    expect_error(course_copy, r"assignments\[2\]\.exercises\[0\]\.difficulty", "is missing")


@pytest.mark.parametrize("value", [0, 4, "hard", True])
def test_bad_difficulty(course_copy, value):
    edit_yaml(course_copy, lambda d: d["assignments"][1]["exercises"][0].update(difficulty=value))
    expect_error(course_copy, r"assignments\[1\]\.exercises\[0\]\.difficulty", "must be 1, 2 or 3")


@pytest.mark.parametrize("value", [0, -2, 2.5, "many"])
def test_bad_max_attempts(course_copy, value):
    edit_yaml(course_copy, lambda d: d["assignments"][1].update(max_attempts=value))
    expect_error(course_copy, r"assignments\[1\]\.max_attempts", "at least 1 or null")


def test_hard_deadline_without_due_date(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][2].pop("due"))
    expect_error(course_copy, r"assignments\[2\]\.hard_deadline", "no due date")


def test_bad_limits(course_copy):
    edit_yaml(course_copy, lambda d: d["assignments"][0]["limits"].update(memory_mb=-1))
    expect_error(course_copy, r"assignments\[0\]\.limits\.memory_mb", "positive number")
    edit_yaml(course_copy, lambda d: d["assignments"][0].update(limits={"gpu": 1}))
    expect_error(course_copy, r"assignments\[0\]\.limits\.gpu", "unknown field")


@pytest.mark.parametrize("where, value", [("id", "Intro Python"), ("assignments.0.id", "01 basics"),
                                          ("skills.0.id", "Variables")])
def test_bad_ids(course_copy, where, value):
    def change(d):
        target = d
        *path, last = where.split(".")
        for part in path:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    edit_yaml(course_copy, change)
    expect_error(course_copy, "is not a valid id", "lower-case")


def test_bad_booleans_and_lists(course_copy):
    edit_text(course_copy, "open_enrollment: true", "open_enrollment: sometimes")
    expect_error(course_copy, "open_enrollment", "expected true or false")


def test_tags_must_be_a_list(course_copy):
    edit_yaml(course_copy, lambda d: d.update(tags="python"))
    expect_error(course_copy, "tags", "expected a list")


def test_course_cannot_require_itself(course_copy):
    edit_yaml(course_copy, lambda d: d.update(prerequisites=["intro-python"]))
    expect_error(course_copy, "prerequisites", "lists itself")


def test_invalid_yaml(course_copy):
    edit_text(course_copy, "level: beginner", "level: [beginner")
    expect_error(course_copy, "line \\d+, column \\d+", "not valid YAML")


def test_empty_course_yaml(course_copy):
    (course_copy / "course.yaml").write_text("")
    expect_error(course_copy, "is empty")


# ---------------------------------------------------------------- problems inside the notebooks


def test_exercise_cell_without_points(course_copy):
    notebook = course_copy / "source" / "01-basics" / "basics.ipynb"
    edit_notebook(notebook, lambda nb: cell(nb, "shout")["metadata"]["nbgrader"].update(points=0))
    expect_error(course_copy, "'shout' in basics.ipynb is worth 0 points")


def test_graded_cell_with_invalid_points(course_copy):
    notebook = course_copy / "source" / "01-basics" / "basics.ipynb"
    edit_notebook(notebook, lambda nb: cell(nb, "shout")["metadata"]["nbgrader"].update(points="two"))
    expect_error(course_copy, r"cells\[\d+\]\.metadata\.nbgrader\.points", "invalid points 'two'",
                 file="basics.ipynb")


def test_duplicate_grade_id_in_a_notebook(course_copy):
    notebook = course_copy / "source" / "01-basics" / "basics.ipynb"
    edit_notebook(notebook, lambda nb: cell(nb, "shout-code")["metadata"]["nbgrader"].update(grade_id="shout"))
    expect_error(course_copy, "duplicate grade_id 'shout'", file="basics.ipynb")


def test_duplicate_grade_id_across_notebooks_of_an_assignment(course_copy):
    notebook = course_copy / "source" / "03-functions-and-data" / "functions.ipynb"
    edit_notebook(notebook, lambda nb: cell(nb, "greet")["metadata"]["nbgrader"].update(grade_id="list-stats"))
    expect_error(course_copy, "'list-stats'", "also used in data.ipynb", file="functions.ipynb")


def test_old_nbgrader_schema(course_copy):
    notebook = course_copy / "source" / "02-control-flow" / "control_flow.ipynb"
    edit_notebook(notebook, lambda nb: cell(nb, "fizzbuzz")["metadata"]["nbgrader"].update(schema_version=1))
    expect_error(course_copy, "schema version 1", "nbgrader update", file="control_flow.ipynb")


def test_unreadable_notebook(course_copy):
    (course_copy / "source" / "02-control-flow" / "control_flow.ipynb").write_text("{not json")
    expect_error(course_copy, "cannot read the notebook", file="control_flow.ipynb")


def test_hint_must_be_text(course_copy):
    notebook = course_copy / "source" / "01-basics" / "basics.ipynb"
    edit_notebook(notebook, lambda nb: cell(nb, "shout")["metadata"].update(learnhub={"hint": ["a", "b"]}))
    expect_error(course_copy, r"metadata\.learnhub\.hint", "must be text", file="basics.ipynb")


# ---------------------------------------------------------------- several courses


def _second_course(root: Path, course_id: str, prerequisites: list[str]) -> None:
    target = root / course_id
    shutil.copytree(DEMO, target)
    edit_yaml(target, lambda d: d.update(id=course_id, prerequisites=prerequisites))


def test_load_courses_checks_course_prerequisites(tmp_path):
    shutil.copytree(DEMO, tmp_path / "intro-python")
    _second_course(tmp_path, "python-next", ["intro-python"])
    assert [c.id for c in load_courses(tmp_path)] == ["intro-python", "python-next"]

    edit_yaml(tmp_path / "python-next", lambda d: d.update(prerequisites=["intro-rust"]))
    with pytest.raises(CourseFormatError, match=r"python-next/course.yaml: prerequisites\[0\]: unknown course 'intro-rust'"):
        load_courses(tmp_path)


def test_load_courses_finds_cycles_and_duplicates(tmp_path):
    _second_course(tmp_path, "course-a", ["course-b"])
    _second_course(tmp_path, "course-b", ["course-a"])
    with pytest.raises(CourseFormatError, match="prerequisite cycle between courses: course-a -> course-b -> course-a"):
        load_courses(tmp_path)
    edit_yaml(tmp_path / "course-b", lambda d: d.update(id="course-a", prerequisites=[]))
    with pytest.raises(CourseFormatError, match="course id 'course-a' is also used"):
        load_courses(tmp_path)


def test_unbalanced_solution_markers(course_copy):
    notebook = course_copy / "source" / "01-basics" / "basics.ipynb"

    def change(nb):
        c = cell(nb, "shout-code")
        c["source"] = "".join(c["source"]).replace("### END SOLUTION", "")
    edit_notebook(notebook, change)
    expect_error(course_copy, "'shout-code' has 1 'BEGIN SOLUTION' but 0 'END SOLUTION'", file="basics.ipynb")


def test_unbalanced_hidden_test_markers(course_copy):
    notebook = course_copy / "source" / "02-control-flow" / "control_flow.ipynb"

    def change(nb):
        c = cell(nb, "fizzbuzz")
        c["source"] = "".join(c["source"]).replace("### BEGIN HIDDEN TESTS", "")
    edit_notebook(notebook, change)
    expect_error(course_copy, r"cells\[\d+\]\.source", "0 'BEGIN HIDDEN TESTS' but 1 'END HIDDEN TESTS'",
                 file="control_flow.ipynb")
