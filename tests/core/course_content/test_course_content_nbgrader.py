"""Releases through nbgrader's real generate_assignment, and nbgrader autograde of the results.

For every assignment: the released notebooks carry no solutions and no hidden tests, and — graded
by nbgrader's own autograde — the source notebooks (with solutions) score full marks on every
autograded cell while the released (blank) notebooks score zero.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from learnhub.course_content import Course, generate_release, load_course, self_check

DEMO = Path(__file__).resolve().parents[3] / "courses" / "intro-python"
ASSIGNMENTS = ["01-basics", "02-control-flow", "03-functions-and-data"]


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course(DEMO)


def test_the_demo_course_has_these_assignments(course):
    assert [a.id for a in course.assignments] == ASSIGNMENTS


def _hidden_lines(source: str) -> list[str]:
    inside, lines = False, []
    for line in source.splitlines():
        if "### BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "### END HIDDEN TESTS" in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_generate_release_strips_solutions_and_hidden_tests(course, tmp_path, assignment_id):
    assignment = course.assignment(assignment_id)
    release = generate_release(course, assignment_id, tmp_path / "release")

    assert release.assignment_id == assignment_id
    assert release.directory == tmp_path / "release" / assignment_id
    assert [p.name for p in release.notebooks] == list(assignment.notebooks)
    assert all(p.is_file() for p in release.notebooks)

    # per-cell max points from nbgrader's gradebook agree with course.yaml + the notebooks
    expected = {}
    for exercise in assignment.exercises:
        expected.setdefault(exercise.notebook, {})[exercise.grade_id] = exercise.points
    for cell in assignment.manual_cells:
        expected.setdefault(cell.notebook, {})[cell.grade_id] = cell.points
    assert release.max_points == expected
    assert release.total_points == assignment.max_score
    for exercise in assignment.exercises:
        assert release.kinds[exercise.notebook][exercise.grade_id] == "autograded"
    for cell in assignment.manual_cells:
        assert release.kinds[cell.notebook][cell.grade_id] == "manual"

    for path in release.notebooks:
        text = path.read_text()
        released = nbformat.read(path, as_version=4)
        source = nbformat.read(assignment.source_dir / path.name, as_version=4)
        assert "BEGIN HIDDEN TESTS" not in text and "END HIDDEN TESTS" not in text
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
        assert "Mark scheme" not in text
        released_by_id = {c.metadata.nbgrader.grade_id: c for c in released.cells if c.metadata.get("nbgrader")}
        for cell in source.cells:
            meta = cell.metadata.get("nbgrader")
            if not meta:
                continue
            out = released_by_id[meta.grade_id]
            if meta.get("grade") and not meta.get("solution"):
                hidden = _hidden_lines(cell.source)
                assert hidden
                # no hidden assertion survives in the released test cell
                assert not any(line in out.source for line in hidden if line.startswith("assert"))
                # the visible tests are still there, and the learner hint travels with the cell
                assert cell.source.split("### BEGIN HIDDEN TESTS")[0].strip() in out.source
                assert out.metadata.learnhub.hint == cell.metadata.learnhub.hint
                assert out.metadata.nbgrader.locked is True
                assert "checksum" in out.metadata.nbgrader
            elif meta.get("solution") and cell.cell_type == "code":
                assert "raise NotImplementedError()" in out.source
            elif meta.get("solution"):
                assert out.source.strip() == "YOUR ANSWER HERE"


def test_generate_release_keeps_the_gradebook_when_asked(course, tmp_path):
    from nbgrader.api import Gradebook

    db = tmp_path / "gradebook.db"
    generate_release(course, "01-basics", tmp_path / "release", db_url=f"sqlite:///{db}")
    with Gradebook(f"sqlite:///{db}", course.id) as gradebook:
        notebook = gradebook.find_notebook("basics", "01-basics")
        source_cell = gradebook.find_source_cell("initials", "basics", "01-basics")
        assert notebook.max_score == course.assignment("01-basics").max_score
        # the gradebook keeps the hidden tests, which nbgrader autograde puts back
        assert "BEGIN HIDDEN TESTS" in source_cell.source

    # releasing again replaces the previous release
    (tmp_path / "release" / "01-basics" / "stale.txt").write_text("old")
    generate_release(course, "01-basics", tmp_path / "release")
    assert not (tmp_path / "release" / "01-basics" / "stale.txt").exists()


def test_unknown_assignment(course, tmp_path):
    with pytest.raises(KeyError, match="no assignment '04-classes'"):
        generate_release(course, "04-classes", tmp_path)


def _self_check(args):
    course, assignment_id, work_dir = args
    return self_check(course, assignment_id, work_dir=work_dir)


@pytest.fixture(scope="module")
def self_checks(course, tmp_path_factory):
    """nbgrader autograde of every assignment, the assignments side by side in forked workers.

    Each worker runs one generate_assignment + one autograde (solution and blank submissions) in
    its own temporary nbgrader course; most of the time is spent waiting for kernels to start,
    so running the assignments in parallel keeps the suite quick.

    Workers are spawned, not forked: a fork of the test process carries whatever the earlier
    tests left in it (event loops, threads, zmq state) into the kernel start-up, and once in CI a
    forked worker's kernel died before replying to kernel_info.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    work_dir = tmp_path_factory.mktemp("self-check")
    jobs = [(course, assignment_id, work_dir) for assignment_id in ASSIGNMENTS]
    with ProcessPoolExecutor(len(jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(zip(ASSIGNMENTS, pool.map(_self_check, jobs)))


@pytest.mark.parametrize("assignment_id", ASSIGNMENTS)
def test_nbgrader_autograde_solutions_full_marks_blanks_zero(course, self_checks, assignment_id):
    assignment = course.assignment(assignment_id)
    check = self_checks[assignment_id]
    assert check.assignment_id == assignment_id

    solution = {(s.notebook, s.grade_id): s for s in check.solution}
    blank = {(s.notebook, s.grade_id): s for s in check.blank}
    exercises = {(e.notebook, e.grade_id): e for e in assignment.exercises}
    assert set(exercises) <= set(solution) and set(exercises) <= set(blank)

    for key, exercise in exercises.items():
        assert solution[key].kind == "autograded"
        assert solution[key].max_score == exercise.points
        assert solution[key].score == exercise.points, f"solution loses points on {key}"
        assert blank[key].score == 0, f"blank release earns points on {key}"
    autograded = [s for s in check.solution if s.kind == "autograded"]
    assert sum(s.score for s in autograded) == assignment.autograded_points
    assert sum(s.score or 0 for s in check.blank) == 0
    assert check.problems() == []
    # manually graded answers are left to the instructor
    for cell in assignment.manual_cells:
        assert solution[(cell.notebook, cell.grade_id)].kind == "manual"


def test_nbgrader_failure_raises_release_error(tmp_path):
    import json
    import shutil

    from learnhub.course_content import ReleaseError

    copy = tmp_path / "intro-python"
    shutil.copytree(DEMO, copy)
    course = load_course(copy)
    # broken after loading: nbgrader itself refuses a cell that is both locked and a solution
    path = copy / "source" / "01-basics" / "basics.ipynb"
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "shout-code":
            cell["metadata"]["nbgrader"]["locked"] = True
            cell["source"] = "### BEGIN SOLUTION\nx = 1\n"
    path.write_text(json.dumps(notebook))
    with pytest.raises(ReleaseError, match="generate_assignment 01-basics failed"):
        generate_release(course, "01-basics", tmp_path / "release")
    assert not (tmp_path / "release" / "01-basics").exists()
