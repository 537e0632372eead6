"""NbGraderCourse: a private nbgrader course directory, and the empty gradebook it starts from.

The gradebook template is made with nbgrader's own ``Gradebook`` and must equal what nbgrader
makes itself; making it must not replace anything in nbgrader (an earlier version patched
``nbgrader.api.get_alembic_version`` for the whole process while it ran) nor need nbgrader's
``alembic heads`` subprocess.
"""
from __future__ import annotations

import sqlite3
import sys
import threading
import types
from pathlib import Path

import pytest

from learnhub.course_content import NbGraderCourse, empty_gradebook, load_course
from learnhub.course_content import nbgrader as nbgrader_runs

DEMO = Path(__file__).resolve().parents[3] / "courses" / "intro-python"
ASSIGNMENT = "01-basics"


def _nbgrader_modules() -> dict[str, types.ModuleType]:
    return {name: module for name, module in sys.modules.items()
            if (name == "nbgrader" or name.startswith("nbgrader.")) and isinstance(module, types.ModuleType)}


def _attributes(modules: dict[str, types.ModuleType]) -> dict[tuple[str, str], int]:
    return {(name, attr): id(value) for name, module in modules.items() for attr, value in vars(module).items()}


@pytest.fixture
def fresh_template(monkeypatch, tmp_path):
    """No gradebook template yet in this process, and no ``alembic`` command to run.

    With PATH empty, nbgrader's own way of stamping a new gradebook (``alembic heads`` in a
    subprocess) fails with FileNotFoundError: a test passes only if it was not needed.
    """
    monkeypatch.setattr(nbgrader_runs, "_gradebook_template", None)
    empty_path = tmp_path / "empty-path"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))


@pytest.fixture
def module_assignments(monkeypatch):
    """Records every attribute set on an nbgrader module, from any thread, while the test runs."""
    import nbgrader.api  # noqa: F401 - the module the old template code patched
    import nbgrader.apps  # noqa: F401

    assignments: list[tuple[str, str]] = []

    for name, module in _nbgrader_modules().items():
        class Watched(types.ModuleType):
            def __setattr__(self, attr, value, _name=name):
                # importing a submodule for the first time sets it on its package: not a patch
                if not (isinstance(value, types.ModuleType) and value.__name__ == f"{_name}.{attr}"):
                    assignments.append((_name, attr))
                super().__setattr__(attr, value)

        monkeypatch.setattr(module, "__class__", Watched)
    return assignments


def _gradebook_rows(db_file: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(db_file)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def _alembic_head() -> str:
    import nbgrader
    from alembic.script import ScriptDirectory

    (head,) = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_heads()
    return head


def test_two_courses_side_by_side_each_get_a_gradebook_and_nothing_in_nbgrader_is_patched(
        tmp_path, fresh_template, module_assignments):
    source = load_course(DEMO).assignment(ASSIGNMENT).source_dir
    before = _attributes(_nbgrader_modules())
    courses: dict[str, NbGraderCourse] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def make(course_id: str) -> None:
        try:
            start.wait(timeout=30)
            course = NbGraderCourse(tmp_path / course_id, ASSIGNMENT, source_dir=source, course_id=course_id)
            course.run("generate_assignment", ASSIGNMENT)
            courses[course_id] = course
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=make, args=(course_id,)) for course_id in ("course-a", "course-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert set(courses) == {"course-a", "course-b"}

    for course_id, course in courses.items():
        gradebook_file = course.root / "gradebook.db"
        assert course.db_url == f"sqlite:///{gradebook_file}"
        assert gradebook_file.is_file()
        assert _gradebook_rows(gradebook_file, "SELECT version_num FROM alembic_version") == [(_alembic_head(),)]
        # each course wrote its own gradebook: its course, its release
        with course.gradebook() as gradebook:
            assignment = gradebook.find_assignment(ASSIGNMENT)
            assert assignment.course_id == course_id
            assert [n.name for n in assignment.notebooks] == ["basics"]
        assert (course_id,) in _gradebook_rows(gradebook_file, "SELECT id FROM course")
        assert (course.release_dir / "basics.ipynb").is_file()
        assert course.exchange_dir.is_dir()
        assert course.config.Exchange.root == str(course.exchange_dir)
        assert course.config.KernelManager.transport == "ipc"
        assert course.config.KernelManager.ip.startswith(str(course.root))

    assert module_assignments == [], f"nbgrader module attributes were set: {module_assignments}"
    after = _attributes(_nbgrader_modules())
    assert {key: after.get(key) for key in before} == before


def test_the_template_is_the_gradebook_nbgrader_creates_itself(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setattr(nbgrader_runs, "_gradebook_template", None)
    ours = tmp_path / "ours.db"
    empty_gradebook(ours)

    # nbgrader's own: a new database, stamped by its `alembic heads` subprocess
    theirs = tmp_path / "theirs.db"
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{Path(sys.executable).resolve().parent}:"
                               "/usr/local/bin:/usr/bin:/bin")
    Gradebook(f"sqlite:///{theirs}", "").close()

    schema = "SELECT type, name, sql FROM sqlite_master ORDER BY type, name"
    assert _gradebook_rows(ours, schema) == _gradebook_rows(theirs, schema)
    version = "SELECT version_num FROM alembic_version"
    assert _gradebook_rows(ours, version) == _gradebook_rows(theirs, version) == [(_alembic_head(),)]
    assert _gradebook_rows(ours, "SELECT id FROM course") == []


def test_an_existing_course_directory_is_used_as_it_is(tmp_path, fresh_template):
    source = load_course(DEMO).assignment(ASSIGNMENT).source_dir
    made = NbGraderCourse(tmp_path / "course", ASSIGNMENT, source_dir=source, course_id="demo")
    made.run("generate_assignment", ASSIGNMENT)

    again = NbGraderCourse(tmp_path / "course", ASSIGNMENT, course_id="demo")
    # the gradebook generate_assignment wrote is kept, not replaced by an empty one
    with again.gradebook() as gradebook:
        assert gradebook.find_assignment(ASSIGNMENT).notebooks
    assert again.source_dir == made.source_dir and (again.source_dir / "basics.ipynb").is_file()


def test_a_gradebook_elsewhere_is_created_there(tmp_path, fresh_template):
    elsewhere = tmp_path / "keep" / "gradebook.db"
    course = NbGraderCourse(tmp_path / "course", ASSIGNMENT, db_url=f"sqlite:///{elsewhere}")
    assert elsewhere.is_file()
    assert not (course.root / "gradebook.db").exists()
    assert course.api.coursedir.db_url == f"sqlite:///{elsewhere}"
