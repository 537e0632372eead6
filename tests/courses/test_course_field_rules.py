"""The courses API and a course.yaml refuse the same course fields, by the same rule.

Both go through ``learnhub.course_content.checks``. Each case breaks the demo course's
``course.yaml`` in one field, loads it, and sends the same course fields to the API's
``validate_course``: both must refuse, naming the same field and the same problem. (The fix is
worded for each syntax — YAML or JSON — so only the problem is compared.)
"""
from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Callable

import pytest
import yaml

from learnhub.course_content import CourseFormatError, load_course
from learnhub.extensions.courses.catalog import COURSE_FIELDS, CourseError, validate_course

DEMO = Path(__file__).resolve().parents[2] / "courses" / "intro-python"


def _skill(data: dict, skill_id: str) -> dict:
    return next(s for s in data["skills"] if s["id"] == skill_id)


CASES: dict[str, Callable[[dict], None]] = {
    "id not a slug": lambda d: d.update(id="Intro Python"),
    "id not text": lambda d: d.update(id=[101]),
    "id too long": lambda d: d.update(id="a" * 65),
    "title empty": lambda d: d.update(title="   "),
    "title too long": lambda d: d.update(title="T" * 301),
    "description not text": lambda d: d.update(description=["a", "b"]),
    "level unknown": lambda d: d.update(level="expert"),
    "tags not a list": lambda d: d.update(tags="python"),
    "tag empty": lambda d: d.update(tags=["python", "  "]),
    "tag too long": lambda d: d.update(tags=["t" * 65]),
    "prerequisite not a slug": lambda d: d.update(prerequisites=["Intro Rust"]),
    "prerequisite twice": lambda d: d.update(prerequisites=["intro-shell", "intro-shell"]),
    "prerequisite itself": lambda d: d.update(prerequisites=["intro-python"]),
    "open_enrollment not a boolean": lambda d: d.update(open_enrollment="sometimes"),
    "skills not a list": lambda d: d.update(skills="loops"),
    "skill not a mapping": lambda d: d["skills"].append("recursion"),
    "skill with an unknown field": lambda d: _skill(d, "loops").update(colour="red"),
    "skill id not a slug": lambda d: _skill(d, "loops").update(id="Loops"),
    "skill id twice": lambda d: d["skills"].append({"id": "loops", "title": "Loops again"}),
    "skill title empty": lambda d: _skill(d, "loops").update(title=""),
    "skill prerequisite unknown": lambda d: _skill(d, "loops")["prerequisites"].append("maths"),
    "skill prerequisite twice": lambda d: _skill(d, "loops")["prerequisites"].append("conditionals"),
    "skill prerequisite cycle": lambda d: _skill(d, "variables-and-types")["prerequisites"].append("dictionaries"),
}


def _demo_data() -> dict:
    return yaml.safe_load((DEMO / "course.yaml").read_text())


def _api_body(data: dict) -> dict:
    return {key: copy.deepcopy(value) for key, value in data.items() if key in COURSE_FIELDS}


def _top_field(location: str) -> str:
    return re.match(r"[^.\[]*", location).group(0)


def test_the_demo_course_fields_pass_both():
    load_course(DEMO)
    data = _demo_data()
    checked = validate_course(_api_body(data), partial=False)
    assert checked["id"] == "intro-python"
    assert [s["id"] for s in checked["skills"]] == [s["id"] for s in data["skills"]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_api_and_course_yaml_refuse_the_same_value_for_the_same_reason(case, tmp_path):
    course_dir = tmp_path / "intro-python"
    shutil.copytree(DEMO, course_dir)
    data = _demo_data()
    CASES[case](data)
    (course_dir / "course.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    with pytest.raises(CourseFormatError) as from_yaml:
        load_course(course_dir)
    yaml_error = from_yaml.value
    assert yaml_error.path == course_dir / "course.yaml"
    assert yaml_error.field and yaml_error.fix

    with pytest.raises(CourseError) as from_api:
        validate_course(_api_body(data), partial=False)
    api_error = from_api.value
    assert api_error.status == 422
    assert api_error.details["field"] == _top_field(yaml_error.field)
    assert api_error.details.get("location", api_error.details["field"]) == yaml_error.field
    assert yaml_error.problem in api_error.message, (yaml_error.problem, api_error.message)
    assert " — " in api_error.message  # and says what to fix


def test_a_change_refuses_what_a_new_course_refuses():
    data = _demo_data()
    _skill(data, "loops")["prerequisites"].append("maths")
    with pytest.raises(CourseError) as refused:
        validate_course({"skills": data["skills"]}, partial=True)
    assert refused.value.details == {"field": "skills", "location": "skills[4].prerequisites[1]"}
    assert "skill 'loops' needs unknown skill 'maths'" in refused.value.message
