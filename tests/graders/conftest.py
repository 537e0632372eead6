"""Fixtures of the grading suite: a real nbgrader course built from learnhub.graders.testing.

Real ``nbgrader autograde`` is slow (a kernel per notebook), so it starts in the
background as soon as the session starts (two processes) and the tests that compare
against it wait for it.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # sandbox_tools

from learnhub.graders import testing as T
from learnhub.graders.sandbox import bwrap_path

warnings.filterwarnings("ignore", message=".*not in session.*")

COMPARED = list(T.VARIANTS)


class NbgraderRun:
    def __init__(self, base: Path):
        self.base = base
        self.source = T.write_source(base / "src" / T.ASSIGNMENT)
        self.root = T.nbgrader_course(base / "course", self.source)
        self.release = self.root / "release" / T.ASSIGNMENT
        for v in COMPARED:
            T.make_submission(self.release, v, self.root / "submitted" / v / T.ASSIGNMENT)
        self.procs = []
        self.roots = []
        self._result = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start real nbgrader autograde of every submission, in the background."""
        if self.procs:
            return
        half = len(COMPARED) // 2
        # two processes; a gradebook is not safe for two writers, so each gets its own copy
        # of the course directory
        for i, students in enumerate((COMPARED[:half], COMPARED[half:])):
            root = self.base / f"course{i}"
            subprocess.run(["cp", "-a", str(self.root), str(root)], check=True)
            self.roots.append((root, students))
            self.procs.append(subprocess.Popen(
                [sys.executable, "-c", T.AUTOGRADE_SCRIPT, str(root), T.ASSIGNMENT, *students],
                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            ))

    def result(self) -> tuple[dict, dict]:
        """({student: {success, error}}, {student: {notebook: scores}}) of real nbgrader autograde."""
        self.start()
        with self._lock:
            if self._result is None:
                status, scores = {}, {}
                for proc, (root, _students) in zip(self.procs, self.roots):
                    out, _ = proc.communicate(timeout=600)
                    line = [x for x in out.splitlines() if x.startswith("RESULT")]
                    assert line, f"nbgrader autograde failed: {out[-2000:]}"
                    status.update(json.loads(line[0][len("RESULT"):]))
                    scores.update(T.nbgrader_scores(root))
                self._result = (status, scores)
            return self._result


@pytest.fixture(scope="session")
def nbgrader_run(tmp_path_factory):
    return NbgraderRun(tmp_path_factory.mktemp("nbgrader"))


@pytest.fixture(autouse=True, scope="session")
def _start_nbgrader_early(request):
    # the background autograde starts with the first test of this folder, when the
    # comparison with nbgrader is among the selected tests
    if any("test_scores.py" in item.nodeid for item in request.session.items):
        request.getfixturevalue("nbgrader_run").start()
    yield


@pytest.fixture(scope="session")
def engine(tmp_path_factory):
    from learnhub.graders.engine import GradingEngine

    eng = GradingEngine(workdir=str(tmp_path_factory.mktemp("engine")))
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def prepared(engine, nbgrader_run):
    return engine.prepare(nbgrader_run.source)


requires_bwrap = pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed")


@pytest.fixture(scope="module")
def world(tmp_path_factory, nbgrader_run):
    """An engine and a warm pool of bubblewrap sandboxes with tight limits, secrets planted around
    them, and the test assignment prepared (``sandbox_tools``)."""
    from sandbox_tools import make_world

    made = make_world(tmp_path_factory, nbgrader_run)
    yield made
    made["pool"].close()
    made["engine"].close()
