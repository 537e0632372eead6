"""What of a graded notebook a learner may see: hidden tests stay hidden.

One rule for every feedback a learner gets — the grading service's feedback notebooks
(:func:`redact_feedback`, used by ``learnhub.graders``) and the HTML that nbgrader's
``generate_feedback`` writes in an instructor's server (:class:`RedactHiddenTests`, which learnhub's
single-user nbgrader configuration puts first in ``c.GenerateFeedback.preprocessors``).
"""
from __future__ import annotations

import copy

from nbgrader.preprocessors import ClearHiddenTests
from nbgrader.preprocessors.base import NbGraderPreprocessor

_hidden = ClearHiddenTests()


def has_hidden_tests(source: str) -> bool:
    """Whether an instructor's test cell contains nbgrader's hidden-test region."""
    return _hidden.begin_test_delimeter in source


def redact_feedback(nb, hidden_ids: set[str], release_sources: dict[str, str], results: dict[str, bool],
                    tampered=(), messages: dict[str, str | None] | None = None):
    """A copy of the graded notebook safe to show the learner.

    * Test cells with hidden tests get the released source (hidden regions removed, as nbgrader's
      ClearHiddenTests does) and a single pass/fail line instead of outputs, since tracebacks and
      printed values would reveal the hidden code.
    * Every cell that ran after the first of them shows no outputs of its own but what the grader
      says of it: code that ran there could have seen the hidden tests' inputs and printed them.
    * Tests kept from being graded by tampering say only that (the details are the instructor's).
    """
    nb = copy.deepcopy(nb)
    messages = messages or {}
    hidden_ran = False
    for cell in nb.cells:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in hidden_ids:
            released = release_sources.get(gid)
            if released is None:
                clone = copy.deepcopy(cell)
                _hidden._remove_hidden_test_region(clone)  # noqa: SLF001 - nbgrader's own rule
                released = clone.source
            cell.source = released
        if gid in tampered and cell.cell_type == "code":
            cell.outputs = [{"output_type": "stream", "name": "stdout", "text": (messages.get(gid) or "") + "\n"}]
            hidden_ran = hidden_ran or gid in hidden_ids
            continue
        if gid in hidden_ids:
            if cell.cell_type == "code":
                cell.outputs = [
                    {"output_type": "stream", "name": "stdout",
                     "text": "Hidden tests passed.\n" if results.get(gid) else "Hidden tests did not pass.\n"}
                ]
                hidden_ran = True
            continue
        if hidden_ran and cell.cell_type == "code" and cell.get("outputs"):
            if gid in results:
                text = "Passed.\n" if results[gid] else (messages.get(gid) or "Did not pass.") + "\n"
            else:
                text = "(Outputs of cells that ran after hidden tests are not shown in feedback.)\n"
            cell.outputs = [{"output_type": "stream", "name": "stdout", "text": text}]
    return nb


class RedactHiddenTests(NbGraderPreprocessor):
    """nbgrader's ``generate_feedback`` keeps hidden tests — their code, assertion messages and
    tracebacks — in the HTML a learner fetches. Put first in ``c.GenerateFeedback.preprocessors``
    (learnhub's single-user nbgrader config does): the same redaction as the grading service's
    feedback notebooks (:func:`redact_feedback`), on the autograded notebook."""

    def preprocess(self, nb, resources):
        from nbgrader import utils as nbutils

        hidden, results = set(), {}
        for cell in nb.cells:
            gid = cell.metadata.get("nbgrader", {}).get("grade_id")
            if not gid or not nbutils.is_grade(cell) or nbutils.is_solution(cell):
                continue
            if cell.cell_type == "code" and has_hidden_tests(cell.source):
                hidden.add(gid)
            if cell.cell_type == "code":
                points, max_points = nbutils.determine_grade(cell, self.log)
                results[gid] = points is not None and max_points is not None and points >= max_points
        redacted = redact_feedback(nb, hidden, {}, results)
        nb.cells = redacted.cells
        return nb, resources
