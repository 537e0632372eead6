"""Hostile submissions on the bubblewrap sandbox: each gets a clear result naming the limit
or reason, no secret is read, and the grader keeps serving afterwards."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from learnhub.graders import testing as T
from learnhub.graders.sandbox import bwrap_path

pytestmark = pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed")

from sandbox_tools import LIMITS, SECRET, assert_still_serving, cell_text, grade_with  # noqa: F401 (world: fixture)


def test_no_network(world):
    r = grade_with(world, "net", (
        "import socket\nres = []\nfor host in [('1.1.1.1', 80), ('127.0.0.1', 5432), ('10.0.0.1', 22)]:\n"
        "    try:\n        socket.create_connection(host, timeout=2); res.append('OPEN')\n"
        "    except OSError as e:\n        res.append('BLOCKED')\nprint(res)"))
    text = cell_text(r)
    assert "OPEN" not in text and text.count("BLOCKED") == 3
    assert r["score"] == 7.0  # the notebook itself is fine


def test_cannot_read_secrets(world):
    paths = ["/etc/shadow", str(world["data_dir"] / "learnhub.sqlite"), str(world["data_dir"] / "api_token"),
             str(world["other"] / "answer.txt"), str(world["source"] / "problem1.ipynb"),
             str(Path(world["engine"].workdir)), str(world["prepared"].gradebook_path), "/root/.bash_history",
             "/proc/1/environ", "/work/main/pyproject.toml"]
    code = ("import os\nfor p in %r:\n    try:\n        data = open(p).read() if os.path.isfile(p) else os.listdir(p)\n"
            "        print('LEAK', p, str(data)[:200])\n    except Exception as e:\n        print('DENIED', p, type(e).__name__)\n"
            # The python installation is bound read-only and holds no course file; walking it (a
            # virtual environment under /tmp, /work or /home) would only outlast the cell timeout.
            "import sys\nprefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix)}\n"
            "hits = []\nfor root in ['/tmp', '/etc', '/work', '/var', '/home']:\n"
            "    for d, dirs, files in os.walk(root):\n"
            "        if os.path.realpath(d) in prefixes:\n            dirs[:] = []\n            continue\n"
            "        for f in files:\n"
            "            try:\n                if 'BEGIN HIDDEN' in open(os.path.join(d, f), errors='ignore').read():\n"
            "                    hits.append(os.path.join(d, f))\n            except Exception:\n                pass\n"
            "print('HIDDEN FILES', hits)\nprint(sorted(os.environ))") % (paths,)
    r = grade_with(world, "secrets", code)
    text = cell_text(r)
    assert "LEAK" not in text, text
    assert text.count("DENIED") == len(paths)
    assert "HIDDEN FILES []" in text
    assert SECRET not in json.dumps(r, default=str)
    env_line = [line for line in text.splitlines() if line.startswith("[")][-1]
    import ast

    env = set(ast.literal_eval(env_line))
    # --clearenv: only what the sandbox sets, none of the grader's environment
    assert env <= {"PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                   "MPLCONFIGDIR", "IPYTHONDIR", "NBGRADER_EXECUTION", "MPLBACKEND", "PWD", "LC_CTYPE"}, env


def test_fork_bomb(world):
    r = grade_with(world, "forkbomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    nb = r["notebooks"][0]
    assert "processes" in nb["limits_hit"] or "cell_timeout" in nb["limits_hit"], nb["limits_hit"]
    assert nb["limit_messages"]
    assert_still_serving(world)


def test_unbounded_allocation(world):
    # a per-assignment limit (256 MiB): first-touching memory is slow on this VM, keep it small
    r = grade_with(world, "memory", "blocks = []\nwhile True:\n    blocks.append(bytearray(32 * 2**20))",
                   limits={"memory": 256 * 2**20})
    nb = r["notebooks"][0]
    assert "memory" in nb["limits_hit"]
    assert any("memory" in m for m in nb["limit_messages"])
    assert "MemoryError" in cell_text(r) or "died" in nb["limits_hit"]
    # later cells still ran: the tests pass for a correct answer
    assert r["score"] == 7.0 or "died" in nb["limits_hit"]


def test_infinite_loop(world):
    r = grade_with(world, "loop", "while True:\n    pass")
    nb = r["notebooks"][0]
    assert "cell_timeout" in nb["limits_hit"]
    assert "CellTimeoutError" in cell_text(r)
    assert r["score"] == 7.0  # nbgrader interrupts the cell and carries on


def test_printing_gigabytes(world):
    r = grade_with(world, "print", "while True:\n    print('x' * 1000000)")
    nb = r["notebooks"][0]
    assert "output" in nb["limits_hit"]
    assert len(json.dumps(nb["feedback"])) < 4 * LIMITS["max_output_bytes"]
    assert "output truncated" in cell_text(r)


def test_killing_its_parent(world):
    r = grade_with(world, "kill", "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept Exception as e:\n    print(e)\n"
                                  "os.kill(0, signal.SIGKILL)")
    nb = r["notebooks"][0]
    assert "died" in nb["limits_hit"]
    # the cells after the kill could not run: their tests score 0 instead of passing silently
    assert nb["score"] == 0
    # visible tests name the reason; hidden ones give pass/fail only, never an error name
    assert [t["error"] for t in nb["tests"]] == [None if t["hidden"] else "SandboxStopped" for t in nb["tests"]]
    assert any(t["hidden"] for t in nb["tests"]) and any(not t["hidden"] for t in nb["tests"])
    assert_still_serving(world)


def test_not_a_notebook(world):
    sub = T.make_submission(world["release"], "correct", world["base"] / "subs" / "garbage")
    (sub / "problem1.ipynb").write_text("this is not json {")
    r = world["engine"].grade(world["prepared"], sub)
    nb = r["notebooks"][0]
    assert nb["status"] == "invalid" and nb["score"] == 0 and "Not a valid Jupyter notebook" in nb["error"]
    assert r["notebooks"][1]["score"] == 1.0


def test_runtime_tampering_of_tests_cannot_help(world):
    # editing the test cells or their metadata in the file is undone by nbgrader's OverwriteCells
    # (see test_scores: tampered_test/tampered_meta); here the learner also tries to rewrite
    # the notebook file at run time, which is not visible to the grader.
    r = grade_with(world, "tamper", "open('problem1.ipynb', 'w').write('{}')\nimport builtins",
                   variant="wrong")
    assert r["notebooks"][0]["score"] == 0


def test_sandbox_is_never_reused(world):
    from learnhub.graders.sandbox import SandboxError

    sb = world["engine"].new_sandbox(LIMITS)
    try:
        sb.claim()
        with pytest.raises(SandboxError):
            sb.claim()
    finally:
        sb.close()
