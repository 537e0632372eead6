"""Grading hostile submissions on a warm pool of real sandboxes (helpers of the grading suite;
the ``world`` fixture is in conftest.py)."""
from __future__ import annotations

import json

from learnhub.graders import testing as T

LIMITS = {"cell_timeout": 3, "wall_time": 20, "cpu_time": 15, "memory": 768 * 2**20,
          "max_processes": 32, "max_output_bytes": 64 * 1024}

SECRET = "s3cr3t-do-not-leak-4711"


def make_world(tmp_path_factory, nbgrader_run):
    base = tmp_path_factory.mktemp("hostile")
    data_dir = base / "data"
    data_dir.mkdir()
    (data_dir / "learnhub.sqlite").write_text(SECRET + "-db")
    (data_dir / "api_token").write_text(SECRET + "-token")
    other = base / "submissions" / "other-learner"
    other.mkdir(parents=True)
    (other / "answer.txt").write_text(SECRET + "-other")
    from learnhub.graders.engine import GradingEngine

    engine = GradingEngine(workdir=str(base / "engine"), limits=LIMITS)
    prepared = engine.prepare(nbgrader_run.source)
    from learnhub.graders.pool import WarmPool

    pool = WarmPool(engine, size=2, limits=LIMITS)
    return {"pool": pool, "base": base, "engine": engine, "prepared": prepared, "data_dir": data_dir, "other": other,
           "release": nbgrader_run.release, "source": nbgrader_run.source}


def grade_with(world, name, code, variant="correct", limits=None):
    sub = T.make_submission(world["release"], variant, world["base"] / "subs" / name, extra_code=code)
    return world["engine"].grade(world["prepared"], sub, sandbox_factory=world["pool"], limits=limits)


def cell_text(result, index=1):
    nb = result["notebooks"][0]["feedback"]
    out = []
    for o in nb["cells"][index].get("outputs", []):
        out.append(o.get("text") or o.get("evalue") or json.dumps(o.get("data", "")))
        if o.get("output_type") == "error":
            out.append(o["ename"])
    return "\n".join(out)


def assert_still_serving(world):
    r = world["engine"].grade(world["prepared"], T.make_submission(world["release"], "correct",
                                                                   world["base"] / "subs" / "good"),
                                 sandbox_factory=world["pool"])
    assert r["score"] == 7.0 and r["limits_hit"] == []


