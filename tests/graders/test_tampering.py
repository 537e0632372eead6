"""Submissions that try to raise their own score by tampering with the grader, on real sandboxes.

Every one is a *wrong* answer (``squares`` and ``safe_div`` wrong, as the ``wrong`` variant) plus a
cell of tampering code that would make nbgrader's own autograde report passing tests — IPython's
transformers, ``run_cell``, the traceback machinery, custom exception handlers, the protocol, objects
that claim to equal anything, rebound built-ins. None may score more than the honest wrong answer,
and those that change the grading machinery are marked ``tampered`` for the instructor, with what was
seen, while the learner reads a neutral message. Honest notebooks keep nbgrader's exact scores
(``test_scores.py``). Needs bubblewrap, like every test of real sandboxes here.
"""
from __future__ import annotations

import json

import pytest

from learnhub.graders.engine import TAMPERED_MESSAGE
from learnhub.graders.sandbox import bwrap_path

from sandbox_tools import cell_text, grade_with

pytestmark = pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed")

HIDDEN_TEXT = ("hidden secret message", "squares(10)", "squares(0)")

MACHINERY = {
    "input_transformers": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
    "ast_transformers": (
        "import ast\nclass NoAsserts(ast.NodeTransformer):\n"
        "    def visit_Assert(self, node):\n        return ast.Pass()\n"
        "get_ipython().ast_transformers.append(NoAsserts())"),
    "run_cell": ("ip = get_ipython()\n_real = ip.run_cell\n"
                 "ip.run_cell = lambda *a, **k: _real('pass', store_history=False)"),
    "run_cell_class": ("from IPython.core.interactiveshell import InteractiveShell\n_real = InteractiveShell.run_cell\n"
                       "InteractiveShell.run_cell = lambda self, *a, **k: _real(self, 'pass')"),
    "showtraceback": ("ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
                      "ip._showtraceback = lambda *a, **k: None"),
    "custom_exc": "get_ipython().set_custom_exc((AssertionError, Exception), lambda *a, **k: None)",
    "settrace": "import sys\nsys.settrace(lambda frame, event, arg: None)",
    "setprofile": "import sys\nsys.setprofile(lambda frame, event, arg: None)",
    "builtins_module": "import builtins\nbuiltins.AssertionError = KeyError",
    "json_patch": "import json\n_dumps = json.dumps\njson.dumps = lambda obj, **k: _dumps(obj, **k)",
}


@pytest.fixture(scope="module")
def honest_wrong(world):
    """The score of the same wrong answer without tampering."""
    return grade_with(world, "honest-wrong", "x = 1", variant="wrong")


def assert_no_gain(result, honest):
    assert result["score"] <= honest["score"], (result["score"], honest["score"])
    for mine, theirs in zip(result["notebooks"], honest["notebooks"]):
        assert mine["score"] <= theirs["score"]
        for test in mine["tests"]:
            assert not test["passed"] or test["grade_id"] not in ("test_squares", "test_squares_hidden", "test_div"), test


def assert_nothing_hidden_leaks(result):
    text = json.dumps(result, default=str)
    for fragment in HIDDEN_TEXT:
        assert fragment not in text, fragment


def test_the_honest_wrong_answer_fails_the_tests(honest_wrong):
    nb = honest_wrong["notebooks"][0]
    assert nb["score"] == 0 and not any(t["passed"] for t in nb["tests"]) and honest_wrong["tampered"] == []


@pytest.mark.parametrize("technique", sorted(MACHINERY))
def test_tampering_with_the_machinery_gains_nothing_and_is_marked(world, honest_wrong, technique):
    result = grade_with(world, f"tamper-{technique}", MACHINERY[technique], variant="wrong")
    assert_no_gain(result, honest_wrong)
    assert_nothing_hidden_leaks(result)
    nb = result["notebooks"][0]
    assert result["tampered"] and nb["tampered"], f"{technique} was not seen"
    # the learner reads a neutral message; what was seen is for the instructor (result["tampered"])
    later = [t for t in nb["tests"] if t["message"] == TAMPERED_MESSAGE]
    assert later and all(t["points"] == 0 and t["error"] is None for t in later)
    assert not any(sign in (t["message"] or "") for t in nb["tests"] for sign in result["tampered"])


OBJECTS = {
    # an answer that claims to equal anything: in a shared kernel, `squares(3) == [1, 4, 9]` is True
    "always_equal": ("class Anything:\n    def __eq__(self, other):\n        return True\n"
                     "    def __ne__(self, other):\n        return False\n"
                     "    def __getitem__(self, i):\n        return Anything()\n"
                     "    def __bool__(self):\n        return True\n"
                     "def squares(n):\n    return Anything()\ndef safe_div(a, b):\n    return Anything()\n"),
    "list_subclass": ("class Yes(list):\n    def __eq__(self, other):\n        return True\n"
                      "def squares(n):\n    return Yes()\n"),
    "arithmetic": ("class Zero:\n    def __sub__(self, other):\n        return 0\n    __rsub__ = __sub__\n"
                   "    def __abs__(self):\n        return 0\n"
                   "def safe_div(a, b):\n    return Zero()\n"),
    "shadowed_builtins": ("isinstance = lambda *a, **k: True\nlen = lambda *a: 0\nAssertionError = KeyboardInterrupt\n"
                          "__builtins__ = {}\n"),
}


def grade_with_cell_after_the_answers(world, name, code, variant="wrong"):
    """Grade ``variant`` with ``code`` in a cell right after the last answer, so that its
    definitions are the ones the tests meet."""
    import nbformat

    from learnhub.graders import testing as T

    sub = T.make_submission(world["release"], variant, world["base"] / "subs" / name)
    nb = nbformat.read(sub / "problem1.ipynb", as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "safe_div")
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(code))
    nbformat.write(nb, sub / "problem1.ipynb")
    return world["engine"].grade(world["prepared"], sub, sandbox_factory=world["pool"])


def grade_with_answer(world, name, grade_id, code, variant="wrong"):
    """Grade ``variant`` with the answer cell ``grade_id`` replaced by ``code``."""
    import nbformat

    from learnhub.graders import testing as T

    sub = T.make_submission(world["release"], variant, world["base"] / "subs" / name)
    nb = nbformat.read(sub / "problem1.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]
    cell.source = code
    nbformat.write(nb, sub / "problem1.ipynb")
    return world["engine"].grade(world["prepared"], sub, sandbox_factory=world["pool"])


@pytest.mark.parametrize("technique", sorted(OBJECTS))
def test_objects_that_lie_cannot_pass_a_test(world, honest_wrong, technique):
    """What ``==``, truth, arithmetic and the built-ins mean in a test is never the learner's code's."""
    result = grade_with_cell_after_the_answers(world, f"lie-{technique}", OBJECTS[technique])
    assert_no_gain(result, honest_wrong)
    assert_nothing_hidden_leaks(result)


def test_answering_the_protocol_itself_gains_nothing(world, honest_wrong):
    """Learner code finds the interpreter's connection (gc) and sends replies of its own."""
    code = ("import gc\nconns = [o for o in gc.get_objects() if type(o).__name__ == 'Connection' and hasattr(o, 'waiting')]\n"
            "for c in conns:\n"
            "    for ident in range(1, 50):\n"
            "        c.send({'reply': ident, 'ok': True, 'status': 'ok', 'outputs': [], 'value': True})\n"
            "print('sent', len(conns))")
    result = grade_with(world, "protocol", code, variant="wrong")
    assert_no_gain(result, honest_wrong)
    assert "protocol" in result["tampered"]


def test_writing_to_every_pipe_gains_nothing(world, honest_wrong):
    code = ("import os, stat\nfor name in os.listdir('/proc/self/fd'):\n"
            "    try:\n        fd = int(name)\n        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
            "            os.write(fd, b'{\"type\": \"result\", \"status\": \"ok\", \"reply\": 2, \"ok\": true}\\n')\n"
            "    except OSError:\n        pass")
    result = grade_with(world, "pipes", code, variant="wrong")
    assert_no_gain(result, honest_wrong)


def test_hooks_never_see_a_test_cell(world, honest_wrong):
    """nbgrader runs tests in the learner's kernel: a pre_run_cell hook reads each test's source (and
    an exception named after it carried hidden tests back). Here no test cell is run there."""
    code = ("seen = []\nip = get_ipython()\n"
            "ip.events.register('pre_run_cell', lambda info: seen.append(info.raw_cell))\n"
            "def squares(n):\n    raise type('Leak_' + str(len(seen)), (Exception,), {})(' | '.join(seen))\n")
    result = grade_with_answer(world, "hooks", "squares", code)
    assert_no_gain(result, honest_wrong)
    assert_nothing_hidden_leaks(result)
    messages = [t["message"] or "" for nb in result["notebooks"] for t in nb["tests"]]
    assert any("Leak_" in m for m in messages)  # the learner's exception, raised in a visible test
    assert not any("assert " in m for m in messages), messages  # ...which never saw a test's code


def test_the_trusted_interpreter_cannot_be_read(world):
    """The learner's code runs as the same user as the tests' interpreter, which is not dumpable:
    its memory, environment and file descriptors (the pipe to the grader) are out of reach."""
    code = ("import os\nparent = os.getppid()\n"
            "for what in ('mem', 'environ', 'fd', 'maps'):\n"
            "    path = f'/proc/{parent}/{what}'\n"
            "    try:\n        data = os.listdir(path) if what == 'fd' else open(path, 'rb').read(4096)\n"
            "        print('LEAK', what, len(data))\n"
            "    except OSError as e:\n        print('DENIED', what, type(e).__name__)\n"
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "print('PTRACE', libc.ptrace(16, parent, 0, 0), ctypes.get_errno())")
    result = grade_with(world, "read-trusted", code)
    text = cell_text(result)
    assert "LEAK" not in text and text.count("DENIED") == 4, text
    assert "PTRACE -1" in text, text  # PTRACE_ATTACH refused
    assert result["score"] == 7.0  # the correct answer's score, untouched


def test_a_learner_function_that_ends_its_interpreter_scores_nothing(world, honest_wrong):
    result = grade_with_cell_after_the_answers(world, "exit", "import os\ndef safe_div(a, b):\n    os._exit(0)\n")
    assert_no_gain(result, honest_wrong)
    assert "died" in result["notebooks"][0]["limits_hit"]


def test_visible_tests_after_hidden_ones_do_not_repeat_what_learner_code_says(world):
    """Learner code can see the arguments hidden tests pass to it; what it raises in a later visible
    test is reported by its kind only, and the outputs of later cells stay out of the feedback."""
    code = ("seen = []\ndef squares(n):\n    seen.append(n)\n    return [i * i for i in range(1, n + 1)]\n"
            "def safe_div(a, b):\n    raise ValueError('hidden inputs were: %r' % seen)\n")
    from learnhub.graders import testing as T

    import nbformat

    sub = T.make_submission(world["release"], "correct", world["base"] / "subs" / "smuggle")
    nb = nbformat.read(sub / "problem1.ipynb", as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "safe_div")
    nb.cells[index].source = code
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell("print('later', seen)"))
    nbformat.write(nb, sub / "problem1.ipynb")
    result = world["engine"].grade(world["prepared"], sub, sandbox_factory=world["pool"])
    # squares saw 1, 3 and 2 (visible), then 10 and 0 (hidden): neither list reaches the learner
    outputs = json.dumps([[c.get("outputs") for c in nb["feedback"]["cells"] if c["cell_type"] == "code"]
                          for nb in result["notebooks"]])
    messages = json.dumps([t["message"] for nb in result["notebooks"] for t in nb["tests"]])
    for text in (outputs, messages):
        assert "10, 0" not in text and "hidden inputs were" not in text, text
    (div,) = [t for t in result["notebooks"][0]["tests"] if t["grade_id"] == "test_div"]
    assert div["message"] == "ValueError (raised by your code)" and div["error"] == "ValueError"
