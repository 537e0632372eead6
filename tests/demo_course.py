"""The demo course (courses/intro-python) as tests change it: its first assignment with a wrong test,
which an instructor then fixes and regrades."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
COURSE_DIR = REPO / "courses" / "intro-python"
COURSE, ASSIGNMENT, NOTEBOOK = "intro-python", "01-basics", "basics.ipynb"


def wrong_test_source(dest: Path) -> None:
    """The demo assignment with a wrong test: shout("hello") is expected to give "HELLO!!" (the
    instructor's solution loses that test's point)."""
    shutil.copytree(COURSE_DIR / "source" / ASSIGNMENT, dest, dirs_exist_ok=True)
    nb = nbformat.read(dest / NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "shout")
    assert 'shout("hello") == "HELLO!"' in cell.source
    cell.source = cell.source.replace('shout("hello") == "HELLO!"', 'shout("hello") == "HELLO!!"')
    nbformat.write(nb, dest / NOTEBOOK)


def fixed_test_source(dest: Path) -> None:
    """The instructor fixes the test: the course's own source again."""
    shutil.rmtree(dest)
    shutil.copytree(COURSE_DIR / "source" / ASSIGNMENT, dest)
