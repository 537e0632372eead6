"""The feedback HTML that nbgrader's ``generate_feedback`` writes keeps hidden tests — their code,
messages and tracebacks; with learnhub's single-user nbgrader configuration it does not.

Real nbgrader throughout: the session's background ``nbgrader autograde`` of the test assignment
(conftest), then nbgrader's own command line generating feedback from it, once as nbgrader does by
itself and once with the configuration every learnhub server loads."""
from __future__ import annotations

import html
import re
import shutil

from learnhub.graders import testing as T

HIDDEN = ("hidden secret message", "squares(10)", "BEGIN HIDDEN TESTS")


def feedback_html(nbgrader_run, tmp_path, with_learnhub: bool) -> str:
    nbgrader_run.result()  # the autograde has finished
    root = next(root for root, students in nbgrader_run.roots if "hidden_fail" in students)
    course = tmp_path / ("learnhub" if with_learnhub else "plain")
    shutil.copytree(root, course)
    config = course / "nbgrader_config.py"
    config.write_text(f"c = get_config()\nc.CourseDirectory.root = {str(course)!r}\n")
    if with_learnhub:
        with open(config, "a") as fh:
            fh.write("from learnhub.extensions.singleuser import configure_nbgrader\nconfigure_nbgrader(c)\n")
    T.run_nbgrader(course, ["generate_feedback", T.ASSIGNMENT, "--student", "hidden_fail", "--force"])
    page = (course / "feedback" / "hidden_fail" / T.ASSIGNMENT / "problem1.html").read_text()
    # the code is highlighted, token by token: what a reader sees is the text between the tags
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_nbgraders_own_feedback_shows_hidden_tests(nbgrader_run, tmp_path):
    """What the redaction is for (and proof that the other test can fail)."""
    html = feedback_html(nbgrader_run, tmp_path, with_learnhub=False)
    assert all(fragment in html for fragment in HIDDEN)


def test_learnhubs_configuration_removes_them_and_says_pass_or_fail(nbgrader_run, tmp_path):
    html = feedback_html(nbgrader_run, tmp_path, with_learnhub=True)
    assert not any(fragment in html for fragment in HIDDEN)
    assert "Hidden tests did not pass." in html
    assert "assert squares(2) == [1, 4]" in html  # the visible part of the same cell stays
