"""`learnhub grade` (learnhub.graders.cli.main) grades one submission and prints the result."""
from __future__ import annotations

import json

import pytest

from learnhub.graders import testing as T
from learnhub.graders.cli import main
from learnhub.graders.sandbox import bwrap_path


@pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed")
def test_cli_json(nbgrader_run, capsys, tmp_path):
    sub = nbgrader_run.root / "submitted" / "hidden_fail" / T.ASSIGNMENT
    code = main(["--source", str(nbgrader_run.source), "--submission", str(sub), "--json",
                 "--sandbox", "bubblewrap", "--feedback", str(tmp_path / "fb")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["score"] == 4.0 and out["max_score"] == 9.0
    nb = out["notebooks"][0]
    assert {"name", "score", "max_score", "tests", "limits_hit"} <= set(nb)
    hidden = [t for t in nb["tests"] if t["grade_id"] == "test_squares_hidden"][0]
    assert hidden["hidden"] and not hidden["passed"] and hidden["hint"]
    assert "BEGIN HIDDEN" not in (tmp_path / "fb" / "problem1.ipynb").read_text()


def test_cli_refuses_local_without_opt_in(nbgrader_run, capsys):
    code = main(["--source", str(nbgrader_run.source), "--submission", str(nbgrader_run.source),
                 "--sandbox", "local"])
    assert code == 2
    assert "allow_unsafe_local" in capsys.readouterr().err
