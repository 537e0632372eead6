"""The engine's scores equal real `nbgrader autograde`'s on the same source and submissions; the
sandbox backends it can be given.

Only the tests that grade in the default sandbox need bubblewrap (``requires_bwrap``); the choice of
backend, the local backend and Docker's command do not."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from learnhub.graders import testing as T
from learnhub.graders.engine import GradingEngine

from learnhub.graders.sandbox import bwrap_path

# tests/ is on sys.path (tests/conftest.py): the one check of a Docker engine, tests/containers' own
from containers.dockertools import docker_missing as docker_engine_missing

COMPARED = list(T.VARIANTS)
requires_bwrap = pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed")


@pytest.fixture(scope="module")
def graded(engine, prepared, nbgrader_run):
    events = {}
    out = {}
    for variant in COMPARED:
        evs = events.setdefault(variant, [])
        out[variant] = engine.grade(prepared, nbgrader_run.root / "submitted" / variant / T.ASSIGNMENT,
                                    on_event=evs.append)
    return out, events


@requires_bwrap
@pytest.mark.parametrize("variant", COMPARED)
def test_scores_equal_nbgrader_autograde(graded, nbgrader_run, variant):
    results, _ = graded
    result = results[variant]
    status, scores = nbgrader_run.result()
    if not status[variant]["success"]:
        # nbgrader refuses the whole submission (e.g. duplicated grade cells, edited
        # checksummed metadata): so do we, with its reason, and no points
        assert result["status"] == "failed", result
        assert result["score"] == 0
        assert result["error"]
        return
    assert result["status"] == "graded"
    expected = scores[variant]
    for nb in result["notebooks"]:
        exp = expected[nb["name"]]
        assert nb["score"] == exp["score"], (variant, nb["name"], nb, exp)
        assert nb["max_score"] == exp["max_score"]
        for test in nb["tests"]:
            exp_points = exp["grades"][test["grade_id"]] or 0.0
            assert test["points"] == exp_points, (variant, test, exp)
    assert result["score"] == sum(e["score"] for e in expected.values())


@requires_bwrap
def test_correct_submission_details(graded):
    results, events = graded
    r = results["correct"]
    assert r["score"] == r["max_score"] - 2  # the manual-graded answer waits for a grader
    assert r["needs_manual_grade"] is True
    p1 = r["notebooks"][0]
    assert [t["grade_id"] for t in p1["tests"]] == ["test_squares", "test_squares_hidden", "test_div"]
    assert all(t["passed"] for t in p1["tests"])
    assert [t["hidden"] for t in p1["tests"]] == [False, True, False]
    manual = p1["manual"]
    assert manual == [{"grade_id": "explain", "points": 0.0, "max_points": 2.0,
                       "needs_manual_grade": True, "cell_type": "markdown"}]
    types = [e["type"] for e in events["correct"]]
    assert types[0] == "started" and types[-1] == "done"
    assert types.count("test") == 4


@requires_bwrap
def test_messages_hints_and_explanations(graded):
    results, _ = graded
    wrong = {t["grade_id"]: t for t in results["wrong"]["notebooks"][0]["tests"]}
    visible = wrong["test_squares"]
    assert not visible["passed"] and visible["error"] == "AssertionError"
    assert visible["message"].startswith("AssertionError")
    assert "expectation" in visible["explanation"]
    assert visible["hint"] == "squares(3) should be [1, 4, 9]: start at 1, not 0."
    div = wrong["test_div"]
    assert div["error"] == "ZeroDivisionError" and "divided by zero" in div["explanation"]

    hidden = {t["grade_id"]: t for t in results["hidden_fail"]["notebooks"][0]["tests"]}["test_squares_hidden"]
    assert hidden["hidden"] and not hidden["passed"]
    assert "hidden secret message" not in json.dumps(hidden)
    assert "squares(10)" not in json.dumps(hidden)
    assert hidden["hint"] == "Think about n = 0."

    erroring = results["erroring"]["notebooks"]
    assert erroring[1]["tests"][0]["error"] == "NameError"
    assert "does not know this name" in erroring[1]["tests"][0]["explanation"]
    stderr = {t["grade_id"]: t for t in results["stderr"]["notebooks"][0]["tests"]}["test_squares"]
    assert "stderr" in stderr["message"]


@requires_bwrap
def test_feedback_notebook_redacts_hidden_tests(graded):
    results, _ = graded
    for variant in ("correct", "hidden_fail", "tampered_test"):
        fb = results[variant]["notebooks"][0]["feedback"]
        text = json.dumps(fb)
        assert "BEGIN HIDDEN TESTS" not in text
        assert "hidden secret message" not in text
        assert "squares(10)" not in text
    # visible tests stay visible
    assert "squares(3) == [1, 4, 9]" in json.dumps(results["correct"]["notebooks"][0]["feedback"])


@requires_bwrap
def test_missing_notebook_scores_zero(graded):
    r = graded[0]["missing_notebook"]
    p2 = r["notebooks"][1]
    assert p2["status"] == "missing" and p2["score"] == 0


@requires_bwrap
def test_check_mode_runs_visible_tests_only(engine, prepared, nbgrader_run):
    r = engine.grade(prepared, nbgrader_run.root / "submitted" / "hidden_fail" / T.ASSIGNMENT, mode="check")
    tests = {t["grade_id"]: t for t in r["notebooks"][0]["tests"]}
    # the hidden part is what fails; with visible tests only, the cell passes
    assert tests["test_squares_hidden"]["passed"]
    assert "Hidden tests are not run" in tests["test_squares_hidden"]["message"]
    # only visible tests ran, so the result is not a hidden one: a visible failure may be shown in full
    assert tests["test_squares_hidden"]["hidden"] is False
    graded = engine.grade(prepared, nbgrader_run.root / "submitted" / "hidden_fail" / T.ASSIGNMENT)
    hidden = {t["grade_id"]: t for t in graded["notebooks"][0]["tests"]}["test_squares_hidden"]
    assert hidden["hidden"] is True and not hidden["passed"] and "assert" not in (hidden["message"] or "")


def test_sandbox_class_choices(monkeypatch):
    import learnhub.graders.sandbox as sandboxes
    from learnhub.graders.engine import GradingError
    from learnhub.graders.sandbox import BubblewrapSandbox, DockerSandbox, LocalSandbox, resolve_sandbox_class

    # The default is bubblewrap where it is installed, and never a silent fallback where it is not:
    # both cases, whichever this machine is.
    monkeypatch.setattr(sandboxes, "bwrap_path", lambda: "/usr/bin/bwrap")
    assert resolve_sandbox_class("") is BubblewrapSandbox
    monkeypatch.setattr(sandboxes, "bwrap_path", lambda: None)
    with pytest.raises(sandboxes.SandboxError, match="install bubblewrap"):
        resolve_sandbox_class("")
    assert resolve_sandbox_class("docker") is DockerSandbox
    assert resolve_sandbox_class("learnhub.graders.sandbox.LocalSandbox") is LocalSandbox
    assert GradingEngine(sandbox_class=DockerSandbox).resolved_sandbox_class() is DockerSandbox
    with pytest.raises(GradingError):
        GradingEngine(sandbox_class="local").resolved_sandbox_class()


def test_local_sandbox_needs_opt_in(engine, prepared, nbgrader_run, tmp_path):
    eng = GradingEngine(sandbox_class="local", allow_unsafe_local=True, workdir=str(tmp_path))
    with pytest.warns(RuntimeWarning):
        r = eng.grade(nbgrader_run.source, nbgrader_run.root / "submitted" / "correct" / T.ASSIGNMENT)
    assert r["score"] == 7.0
    eng.close()


def test_docker_command_is_locked_down():
    from learnhub.graders.sandbox import DockerSandbox

    sb = DockerSandbox(memory=2**29, max_processes=32, tmp_size=2**24, cpu_time=20)
    cmd = sb.build_command()
    joined = " ".join(cmd[:cmd.index(sb.image)])
    for flag in ("--network none", "--read-only", "--cap-drop ALL", "--security-opt no-new-privileges",
                 "--user 65534:65534", f"--memory {2**29}", "--pids-limit 32", "--ulimit cpu=20:22",
                 f"size={2**24}", "run -i"):
        assert flag in joined, flag
    assert "-v" not in cmd and "--volume" not in cmd  # nothing of the host is mounted


def test_docker_real_run(nbgrader_run, tmp_path):
    """A submission graded in a real container of the grader image: the same scores as in the other
    sandboxes, the notebook running as the unprivileged user and without a network."""
    from learnhub.graders.sandbox import DockerSandbox

    missing = docker_engine_missing()
    if missing:
        pytest.skip(f"{missing}; DockerSandbox's command is tested in test_docker_command_is_locked_down")
    image = DockerSandbox().image
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60).returncode != 0:
        pytest.skip(f"the grader image {image} is not built here (docker build -t {image} images/grader)")

    engine = GradingEngine(sandbox_class="docker", workdir=str(tmp_path / "engine"))
    try:
        probe = ("import os, socket\nprint('uid', os.getuid())\n"
                 "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); print('network OPEN')\n"
                 "except OSError:\n    print('network BLOCKED')")
        correct = T.make_submission(nbgrader_run.release, "correct", tmp_path / "correct", extra_code=probe)
        result = engine.grade(nbgrader_run.source, correct)
        wrong = engine.grade(nbgrader_run.source, nbgrader_run.root / "submitted" / "wrong" / T.ASSIGNMENT)
    finally:
        engine.close()
    assert result["status"] == "graded" and result["score"] == 7.0, result
    assert result["limits_hit"] == []
    probed = json.dumps(result["notebooks"][0]["feedback"]["cells"][1].get("outputs", []))
    assert "uid 65534" in probed and "network BLOCKED" in probed, probed
    failed = {t["grade_id"]: t for t in wrong["notebooks"][0]["tests"]}
    assert not failed["test_squares"]["passed"] and failed["test_squares"]["error"] == "AssertionError"
    assert wrong["score"] < result["score"]
