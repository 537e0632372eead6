"""Learner-facing wording: plain-language explanations of common errors, test messages,
and the redaction of hidden tests in the feedback notebook."""
from __future__ import annotations

from learnhub.course_content.redaction import (  # noqa: F401 (the engine's feedback uses them from here)
    RedactHiddenTests, has_hidden_tests, redact_feedback,
)

#: What a beginner should understand from an error name. Short, no jargon, says what to check.
EXPLANATIONS = {
    "NameError": "Python does not know this name. Check the spelling, and that the cell defining it "
    "(a variable, function or import) ran before this one.",
    "IndentationError": "The indentation (spaces at the start of lines) is not consistent. Lines of the "
    "same block must start at the same column; use 4 spaces per level.",
    "TabError": "Tabs and spaces are mixed in the indentation. Use spaces only (4 per level).",
    "SyntaxError": "This is not valid Python. Look for a missing colon, bracket, quote or comma near "
    "the line shown.",
    "TypeError": "A value has the wrong type for this operation, for example adding a number to a "
    "string, or calling a function with the wrong number of arguments.",
    "ZeroDivisionError": "The code divided by zero. Check the value of the divisor, e.g. an empty "
    "list's length.",
    "IndexError": "A list (or string, tuple) was indexed past its end. Valid positions are 0 to "
    "len(x) - 1.",
    "KeyError": "The dictionary has no such key. Check the key's spelling and type, or use .get().",
    "AssertionError": "A test's expectation was not met: your code ran, but gave a different result "
    "than expected.",
    "AttributeError": "This object has no attribute or method with that name. Check the spelling "
    "and the object's type (maybe it is None).",
    "ValueError": "The type is right but the value is not acceptable, e.g. int('abc') or unpacking "
    "the wrong number of items.",
    "RecursionError": "A function calls itself without reaching a stopping case.",
    "MemoryError": "The code used more memory than allowed. Look for a list or string growing without end.",
    "ModuleNotFoundError": "This module is not available in the grading environment.",
    "ImportError": "This import failed; the module or name is not available in the grading environment.",
    "CellTimeoutError": "The cell took too long; look for a loop that never ends or an input() call.",
    "KeyboardInterrupt": "The cell took too long and was interrupted; look for a loop that never ends.",
    "FileNotFoundError": "The file does not exist in the grading environment; use paths relative to "
    "the notebook.",
    "SandboxStopped": "The notebook stopped before this cell could run (see the limit reported).",
}


def explain(ename: str | None) -> str | None:
    if not ename:
        return None
    return EXPLANATIONS.get(ename)


def first_error(cell) -> dict | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return out
    return None


def stderr_text(cell) -> str | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return out.get("text", "")
    return None


def test_message(cell, passed: bool, hidden: bool) -> tuple[str | None, str | None]:
    """(message, error name) for a test cell; hidden tests give pass/fail only."""
    if passed:
        return (None, None)
    err = first_error(cell) if cell is not None else None
    if hidden:
        # never the source, the traceback or the assertion text of a hidden test
        return ("The tests of this cell (some of them hidden) did not pass.", err.get("ename") if err else None)
    if err is not None:
        evalue = (err.get("evalue") or "").strip()
        text = f"{err.get('ename')}: {evalue}" if evalue else str(err.get("ename"))
        return (text[:2000], err.get("ename"))
    text = stderr_text(cell) if cell is not None else None
    if text is not None:
        return ("The test wrote to stderr (nbgrader counts a test that writes to stderr as failed): "
                + text.strip()[:500], None)
    if cell is None:
        return ("This test cell was not found in the submission.", None)
    return ("The test gave partial credit.", None)
