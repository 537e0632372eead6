"""`learnhub grade --submissions`: a whole class graded in parallel, recorded as `nbgrader autograde` records it.

Real parts: the bubblewrap sandboxes and warm pool, nbgrader's gradebook, and real `nbgrader autograde`
(the session's background run, tests/graders/conftest.py) on the same course and submissions — its
gradebook and autograded/ folder are what ours must equal. Formgrader's view is NbGraderAPI's, which
its pages call.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from learnhub.graders import testing as T
from learnhub.graders.batch import AutogradedEngine, BatchGrader, find_submissions
from learnhub.graders.cli import main
from learnhub.graders.sandbox import SandboxError, bwrap_path

pytestmark = pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed")


def copy_course(nbgrader_run, dest: Path) -> Path:
    """The session's course directory (source, release, submitted/ of every variant), not yet autograded."""
    subprocess.run(["cp", "-a", str(nbgrader_run.root), str(dest)], check=True)
    shutil.rmtree(dest / "autograded", ignore_errors=True)
    return dest


def gradebook_rows(root: Path, students=None) -> dict:
    """Everything nbgrader's autograde records per student: per notebook each grade's auto score and
    needs-manual flag, each comment's auto comment, the late penalty; the submission's timestamp."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(T.ASSIGNMENT):
            if students is not None and sub.student.id not in students:
                continue
            out[sub.student.id] = {
                "timestamp": str(sub.timestamp),
                "notebooks": {nb.name: {
                    "grades": {g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades},
                    "comments": {c.name: c.auto_comment for c in nb.comments},
                    "late": nb.late_submission_penalty} for nb in sub.notebooks},
            }
    return out


def outputs(path: Path) -> list:
    """The cells of an autograded notebook as Formgrader shows them: source, outputs (tracebacks by their
    error), nbgrader metadata. nbclient's timing metadata and a kernel's language_info are not compared,
    nor the file name a kernel compiles a cell under (ipykernel: "1771823592.py", IPython's shell in the
    sandbox: "<ipython-input-1-…>"), which a SyntaxError's message quotes."""
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        outs = []
        for out in cell.get("outputs", []):
            out = dict(out)
            if out.get("output_type") == "error":
                out["traceback"] = out["ename"]
                out["evalue"] = re.sub(r"\((?:<ipython-input-[^>]*>|\d+\.py), line", "(<cell>, line", out["evalue"])
            outs.append(out)
        cells.append((cell.cell_type, cell.source, outs, cell.metadata.get("nbgrader")))
    return cells


def run(argv, capsys) -> tuple[int, dict, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, nbgrader_run):
    """The session's course graded by `learnhub grade --submissions` (a course directory of its own)."""
    root = copy_course(nbgrader_run, tmp_path_factory.mktemp("batch") / "course")
    (root / "submitted" / "correct" / T.ASSIGNMENT / "timestamp.txt").write_text("2026-01-02 10:00:00.000000 UTC")
    proc = subprocess.run([sys.executable, "-m", "learnhub", "grade", "--source", str(root / "source" / T.ASSIGNMENT),
                           "--submissions", str(root / "submitted"), "--json", "--workers", "2"],
                          capture_output=True, text=True, timeout=600)
    return root, proc


def test_the_gradebook_and_autograded_notebooks_are_nbgraders(graded_class, nbgrader_run):
    root, proc = graded_class
    report = json.loads(proc.stdout)
    status, _scores = nbgrader_run.result()
    assert proc.returncode == 1, proc.stderr  # nbgrader refuses two of the variants: so do we, and say so
    learners = {learner["student"]: learner for learner in report["learners"]}
    assert set(learners) == set(T.VARIANTS)
    for variant, outcome in status.items():
        assert (learners[variant]["status"] == "graded") == outcome["success"], (variant, learners[variant])
        if not outcome["success"]:
            assert learners[variant]["error"], variant

    # nbgrader's own records of the same submissions, from the session's real `nbgrader autograde`
    # (two course copies, half of the students each)
    theirs = {}
    for course, students in nbgrader_run.roots:
        theirs.update(gradebook_rows(course, students))
    ours = gradebook_rows(root)
    for student in T.VARIANTS:
        if student == "correct":  # its timestamp.txt was added here only
            assert ours[student]["timestamp"].startswith("2026-01-02 10:00:00")
            ours[student]["timestamp"] = theirs[student]["timestamp"]
        assert ours[student] == theirs[student], student

    # autograded/<student>/<assignment>/: the same files, the same cells and outputs, read-only
    for course, students in nbgrader_run.roots:
        for student in students:
            theirs_dir = course / "autograded" / student / T.ASSIGNMENT
            ours_dir = root / "autograded" / student / T.ASSIGNMENT
            assert theirs_dir.exists() == ours_dir.exists(), student
            if not theirs_dir.exists():
                continue  # a refused submission has none, in nbgrader and here
            names = sorted(p.name for p in theirs_dir.iterdir() if p.name != "timestamp.txt")
            assert sorted(p.name for p in ours_dir.iterdir() if p.name != "timestamp.txt") == names, student
            for notebook in theirs_dir.glob("*.ipynb"):
                assert outputs(ours_dir / notebook.name) == outputs(notebook), (student, notebook.name)
                assert (ours_dir / notebook.name).stat().st_mode & 0o777 == 0o444


def test_formgrader_shows_the_scores(graded_class):
    """What Formgrader's pages show comes from NbGraderAPI on the course directory and its gradebook."""
    from learnhub.course_content import NbGraderCourse

    root, proc = graded_class
    report = {learner["student"]: learner for learner in json.loads(proc.stdout)["learners"]}
    api = NbGraderCourse(root, T.ASSIGNMENT).api
    shown = {s["student"]: s for s in api.get_submissions(T.ASSIGNMENT)}
    for student, learner in report.items():
        assert shown[student]["autograded"] == (learner["status"] == "graded"), student
        if learner["status"] == "graded":
            assert shown[student]["score"] == learner["after"] == learner["score"], (student, shown[student])
    assert shown["correct"]["needs_manual_grade"]


def test_progress_lines_and_the_summary(graded_class):
    root, proc = graded_class
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert len(lines) == len(T.VARIANTS)  # one per learner as they finish, on stderr with --json
    assert any("FAILED" in line and "tampered_meta" in line for line in lines)
    summary = json.loads(proc.stdout)["summary"]
    assert summary["total"] == len(T.VARIANTS) and summary["failed"] == 2 and summary["graded"] == 10
    assert summary["new"] == 10 and summary["changed"] == 0
    assert summary["gradebook"] == f"sqlite:///{root / 'gradebook.db'}"


def test_regrading_after_a_test_fix_reports_whose_score_changed(tmp_path, nbgrader_run, capsys):
    """A wrong test (safe_div(6, 3) == 3) graded everybody down; after the fix, a second run says per
    learner whose score changed (the gradebook before → after), and the gradebook ends as nbgrader's."""
    root = copy_course(nbgrader_run, tmp_path / "course")
    source = root / "source" / T.ASSIGNMENT
    good = (source / "problem1.ipynb").read_text()
    (source / "problem1.ipynb").write_text(good.replace("safe_div(6, 3) == 2", "safe_div(6, 3) == 3"))
    argv = ["--source", str(source), "--submissions", str(root / "submitted"), "--json"]
    code, buggy, _ = run(argv, capsys)
    assert code == 1 and buggy["summary"]["gradebook_updated_from_source"]  # the wrong test is recorded
    (source / "problem1.ipynb").write_text(good)
    code, fixed, err = run(argv, capsys)
    assert code == 1
    before = {learner["student"]: learner for learner in buggy["learners"]}
    after = {learner["student"]: learner for learner in fixed["learners"]}
    changed = {student for student, learner in after.items() if learner["changed"]}
    # exactly those whose safe_div is right had lost test_div's point to the wrong test
    div_right = {student for student, learner in after.items() if learner["status"] == "graded" and any(
        t["grade_id"] == "test_div" and t["passed"] for nb in learner["notebooks"] for t in nb["tests"])}
    assert changed == div_right and {"correct", "hidden_fail", "stderr"} <= changed and "wrong" not in changed
    for student in changed:
        assert after[student]["before"] == before[student]["after"]
        assert after[student]["after"] == before[student]["after"] + 1
        assert f"changed {before[student]['after']:g} → {after[student]['after']:g}" in err
    assert fixed["summary"]["changed"] == len(changed)
    _status, scores = nbgrader_run.result()
    rows = T.nbgrader_scores(root)
    for student, learner in after.items():
        if learner["status"] == "graded":
            assert rows[student] == scores[student], student


def test_the_plain_layout_into_a_new_gradebook(tmp_path, nbgrader_run, capsys):
    """DIR/<student>/ with the notebooks in it, a source outside any course directory, a gradebook that
    does not exist yet: the assignment is recorded in it as generate_assignment would, then the grades."""
    plain = tmp_path / "handed-in"
    for student in ("correct", "wrong", "blank"):
        shutil.copytree(nbgrader_run.root / "submitted" / student / T.ASSIGNMENT, plain / student)
    source = tmp_path / "elsewhere" / T.ASSIGNMENT
    shutil.copytree(nbgrader_run.source, source)
    gradebook = tmp_path / "grades" / "gradebook.db"
    code, report, _ = run(["--source", str(source), "--submissions", str(plain), "--json",
                           "--gradebook", f"sqlite:///{gradebook}", "--autograded", str(tmp_path / "out")], capsys)
    assert code == 0
    assert [learner["submission"] for learner in report["learners"]] == [str(plain / s) for s in ("blank", "correct", "wrong")]
    _status, scores = nbgrader_run.result()
    rows = T.nbgrader_scores(gradebook.parent)
    assert {s: rows[s] for s in ("blank", "correct", "wrong")} == {s: scores[s] for s in ("blank", "correct", "wrong")}
    assert (tmp_path / "out" / "correct" / T.ASSIGNMENT / "problem1.ipynb").is_file()
    assert (tmp_path / "out" / "correct" / T.ASSIGNMENT / "words.txt").is_file()  # the source's data file
    # without a course directory and without --gradebook nothing is written
    code, report, _ = run(["--source", str(source), "--submissions", str(plain), "--json"], capsys)
    assert code == 0 and report["summary"]["gradebook"] is None and report["summary"]["autograded"] is None
    assert all(learner["before"] is None and learner["after"] is None for learner in report["learners"])


def test_one_learners_trouble_never_stops_the_batch(tmp_path, nbgrader_run, capsys):
    """A notebook that is not JSON, a cell that never ends, a learner whose code kills its sandbox: each is
    reported with the reason, and everybody else is graded."""
    release = nbgrader_run.release
    folder = tmp_path / "submitted"
    T.make_submission(release, "correct", folder / "ann" / T.ASSIGNMENT)
    T.make_submission(release, "correct", folder / "ben" / T.ASSIGNMENT, extra_code="while True:\n    pass")
    T.make_submission(release, "correct", folder / "cid" / T.ASSIGNMENT,
                      extra_code="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    T.make_submission(release, "correct", folder / "dot" / T.ASSIGNMENT)
    (folder / "dot" / T.ASSIGNMENT / "problem1.ipynb").write_text("{ this is not a notebook")
    T.make_submission(release, "correct", folder / "eve" / T.ASSIGNMENT)
    code, report, err = run(["--source", str(nbgrader_run.source), "--submissions", str(folder), "--json",
                             "--no-gradebook", "--no-autograded", "--limit", "cell_timeout=3"], capsys)
    learners = {learner["student"]: learner for learner in report["learners"]}
    assert learners["ann"]["status"] == learners["eve"]["status"] == "graded"
    assert learners["ann"]["score"] == learners["eve"]["score"] == 7.0
    # the endless cell is interrupted and the cells after it run: only that cell's time is lost
    assert learners["ben"]["status"] == "graded" and "cell_timeout" in learners["ben"]["limits_hit"]
    assert learners["ben"]["limit_messages"] and learners["ben"]["score"] == 7.0
    # a sandbox that dies takes the rest of its notebook with it; the other notebook has a sandbox of its own
    assert learners["cid"]["status"] == "graded" and "died" in learners["cid"]["limits_hit"]
    assert learners["cid"]["score"] == 1.0
    assert learners["dot"]["score"] == 1.0 and "Not a valid Jupyter notebook" in learners["dot"]["error"]
    assert code == 0  # everybody graded, each with the reason for what was lost
    assert "[5/5]" in err


def test_a_sandbox_that_will_not_start_fails_only_that_learner(tmp_path, nbgrader_run):
    folder = tmp_path / "submitted"
    for student in ("amy", "bo", "cal"):
        T.make_submission(nbgrader_run.release, "correct", folder / student / T.ASSIGNMENT)

    class Flaky(AutogradedEngine):
        def grade(self, source_dir, submission_dir, **kwargs):
            if "bo" in Path(submission_dir).parts:
                raise SandboxError("bwrap: setting up uid map: Permission denied")
            return super().grade(source_dir, submission_dir, **kwargs)

    engine = Flaky(workdir=str(tmp_path / "engine"), include_feedback=False)
    seen = []
    try:
        report = BatchGrader(engine, nbgrader_run.source, folder, workers=2,
                             on_outcome=lambda outcome, done, total: seen.append((outcome.student, done, total))).run()
    finally:
        engine.close()
    learners = {learner["student"]: learner for learner in report["learners"]}
    assert learners["bo"]["status"] == "failed" and "no sandbox could be started" in learners["bo"]["error"]
    assert learners["amy"]["status"] == learners["cal"]["status"] == "graded"
    assert sorted(s for s, _, _ in seen) == ["amy", "bo", "cal"] and sorted(d for _, d, _ in seen) == [1, 2, 3]


def test_finding_learner_folders(tmp_path):
    (tmp_path / "ann" / "ps1").mkdir(parents=True)
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "problem1.ipynb").write_text("{}")
    (tmp_path / "empty").mkdir()
    (tmp_path / ".hidden" / "ps1").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "ann")
    found = find_submissions(tmp_path, "ps1")
    assert [(s.student, s.layout) for s in found] == [("ann", "nbgrader"), ("bob", "plain")]


def test_the_single_submission_command_keeps_working(nbgrader_run, capsys):
    sub = nbgrader_run.root / "submitted" / "wrong" / T.ASSIGNMENT
    assert main(["--source", str(nbgrader_run.source), "--submission", str(sub)]) == 0
    assert capsys.readouterr().out.startswith("ps1: 1 / 9")
