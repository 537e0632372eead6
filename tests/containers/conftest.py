"""Fixtures of the container tests: the grading suite's nbgrader course, graded in the Docker
sandbox (the ``grader`` image), and the Docker checks of ``dockertools``."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "graders"))  # sandbox_tools, test_hostile

from dockertools import need_docker  # noqa: E402

# the grading suite's real nbgrader course (tests/graders/conftest.py), under a name of its own
_spec = importlib.util.spec_from_file_location("learnhub_graders_conftest", HERE.parent / "graders" / "conftest.py")
_graders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_graders)

GRADER_IMAGE = "learnhub/grader:latest"


@pytest.fixture(scope="session")
def nbgrader_run(tmp_path_factory):
    return _graders.NbgraderRun(tmp_path_factory.mktemp("nbgrader"))


@pytest.fixture(scope="module")
def world(tmp_path_factory, nbgrader_run):
    """The hostile suite's world (``sandbox_tools.make_world``: secrets planted around an engine,
    the test assignment prepared) with every sandbox a container of the grader image, from a warm
    pool of two started containers."""
    need_docker(GRADER_IMAGE)
    from learnhub.graders.engine import GradingEngine
    from learnhub.graders.pool import WarmPool
    from sandbox_tools import LIMITS, SECRET

    base = tmp_path_factory.mktemp("hostile-docker")
    data_dir = base / "data"
    data_dir.mkdir()
    (data_dir / "learnhub.sqlite").write_text(SECRET + "-db")
    (data_dir / "api_token").write_text(SECRET + "-token")
    other = base / "submissions" / "other-learner"
    other.mkdir(parents=True)
    (other / "answer.txt").write_text(SECRET + "-other")
    engine = GradingEngine(workdir=str(base / "engine"), limits=LIMITS, sandbox_class="docker")
    engine.config.DockerSandbox.image = GRADER_IMAGE
    prepared = engine.prepare(nbgrader_run.source)
    pool = WarmPool(engine, size=2, limits=LIMITS)
    made = {"pool": pool, "base": base, "engine": engine, "prepared": prepared, "data_dir": data_dir,
            "other": other, "release": nbgrader_run.release, "source": nbgrader_run.source}
    yield made
    pool.close()
    engine.close()
