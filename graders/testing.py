"""A small nbgrader assignment and learner submissions, for tests, benchmarks and demos.

``write_source(dir)`` writes an instructor's source assignment (solution regions, visible
and hidden tests, a manual-graded cell, a hint in ``metadata.learnhub.hint``, a data file).
``make_submission(release_dir, variant, dest)`` turns the *released* notebooks (from
``nbgrader generate_assignment``) into what a learner would hand in.
"""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from learnhub.course_content import NbGraderCourse

ASSIGNMENT = "ps1"


def _md(grade_id, *, solution=False, grade=False, locked=False, points=None):
    md = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
          "solution": solution, "task": False}
    if grade:
        md["points"] = points
    return {"nbgrader": md}


def _answer(grade_id, source):
    return new_code_cell(source, metadata=_md(grade_id, solution=True))


def _test(grade_id, source, points, hint=None):
    cell = new_code_cell(source, metadata=_md(grade_id, grade=True, locked=True, points=points))
    if hint:
        cell.metadata["learnhub"] = {"hint": hint}
    return cell


SQUARES_SOLUTION = '''def squares(n):
    """Return the squares of 1..n."""
    ### BEGIN SOLUTION
    return [i * i for i in range(1, n + 1)]
    ### END SOLUTION'''

DIV_SOLUTION = '''def safe_div(a, b):
    """a / b, or None when b is 0."""
    ### BEGIN SOLUTION
    if b == 0:
        return None
    return a / b
    ### END SOLUTION'''

COUNT_SOLUTION = '''def count_words(path):
    """Number of words in a text file."""
    ### BEGIN SOLUTION
    with open(path) as fh:
        return len(fh.read().split())
    ### END SOLUTION'''


def problem1():
    return new_notebook(
        cells=[
            new_markdown_cell("# Problem 1\nWrite `squares` and `safe_div`.",
                              metadata=_md("intro", locked=True)),
            _answer("squares", SQUARES_SOLUTION),
            _test("test_squares", "assert squares(1) == [1]\nassert squares(3) == [1, 4, 9]", 2,
                  hint="squares(3) should be [1, 4, 9]: start at 1, not 0."),
            _test("test_squares_hidden",
                  "assert squares(2) == [1, 4]\n### BEGIN HIDDEN TESTS\n"
                  "assert squares(10)[-1] == 100, 'hidden secret message'\nassert squares(0) == []\n"
                  "### END HIDDEN TESTS", 3, hint="Think about n = 0."),
            _answer("safe_div", DIV_SOLUTION),
            _test("test_div", "assert safe_div(6, 3) == 2\nassert safe_div(1, 0) is None", 1),
            new_markdown_cell("A list comprehension over range(1, n + 1).",
                              metadata=_md("explain", solution=True, grade=True, points=2)),
        ],
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                  "language_info": {"name": "python"}},
    )


def problem2():
    return new_notebook(
        cells=[
            _answer("count_words", COUNT_SOLUTION),
            _test("test_count", "assert count_words('words.txt') == 5", 1),
        ],
        metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                  "language_info": {"name": "python"}},
    )


def write_source(dest: str | Path) -> Path:
    """Write the source assignment into ``dest`` (created) and return it."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    nbformat.write(problem1(), dest / "problem1.ipynb")
    nbformat.write(problem2(), dest / "problem2.ipynb")
    (dest / "words.txt").write_text("one two three four five\n")
    return dest


# ----- learner submissions -----

STUDENT_CODE = {
    "squares_ok": "def squares(n):\n    return [i * i for i in range(1, n + 1)]",
    "squares_wrong": "def squares(n):\n    return [i * i for i in range(n)]",
    "squares_hidden_wrong": "def squares(n):\n    return [i * i for i in range(1, n + 1)] if n else [0]",
    "squares_syntax": "def squares(n)\n    return n",
    "div_ok": "def safe_div(a, b):\n    return None if b == 0 else a / b",
    "div_zero": "def safe_div(a, b):\n    return a / b",
    "count_ok": "def count_words(path):\n    return len(open(path).read().split())",
}

VARIANTS = (
    "correct", "wrong", "blank", "erroring", "hidden_fail", "tampered_test", "tampered_meta",
    "deleted", "duplicated", "retyped", "stderr", "missing_notebook",
)


def _set(nb, grade_id, source):
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = source
            return cell
    raise KeyError(grade_id)


def _index(nb, grade_id):
    for i, cell in enumerate(nb.cells):
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            return i
    raise KeyError(grade_id)


def make_submission(release_dir: str | Path, variant: str, dest: str | Path, extra_code: str | None = None) -> Path:
    """A learner's submission of the released assignment, in ``dest``."""
    release_dir, dest = Path(release_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    nb1 = nbformat.read(release_dir / "problem1.ipynb", as_version=4)
    nb2 = nbformat.read(release_dir / "problem2.ipynb", as_version=4)
    if variant != "blank":
        _set(nb1, "squares", STUDENT_CODE["squares_ok"])
        _set(nb1, "safe_div", STUDENT_CODE["div_ok"])
        _set(nb1, "explain", "I used a list comprehension.")
        _set(nb2, "count_words", STUDENT_CODE["count_ok"])
    if variant == "wrong":
        _set(nb1, "squares", STUDENT_CODE["squares_wrong"])
        _set(nb1, "safe_div", STUDENT_CODE["div_zero"])
    elif variant == "erroring":
        _set(nb1, "squares", STUDENT_CODE["squares_syntax"])
        _set(nb2, "count_words", "count_words = lambda path: undefined_name")
    elif variant == "hidden_fail":
        _set(nb1, "squares", STUDENT_CODE["squares_hidden_wrong"])
    elif variant == "tampered_test":
        _set(nb1, "squares", STUDENT_CODE["squares_wrong"])
        _set(nb1, "test_squares", "pass")
        _set(nb1, "test_squares_hidden", "print('all good')")
    elif variant == "tampered_meta":
        _set(nb1, "squares", STUDENT_CODE["squares_wrong"])
        cell = nb1.cells[_index(nb1, "test_squares")]
        cell.metadata.nbgrader["points"] = 100
        cell = nb1.cells[_index(nb1, "test_div")]
        cell.metadata.nbgrader["grade"] = False
        cell.metadata.nbgrader["locked"] = False
    elif variant == "deleted":
        _set(nb1, "squares", STUDENT_CODE["squares_wrong"])
        del nb1.cells[_index(nb1, "test_squares")]
    elif variant == "duplicated":
        i = _index(nb1, "test_div")
        nb1.cells.insert(i + 1, copy.deepcopy(nb1.cells[i]))
        nb1.cells[i + 1].id = "dup-cell"
        j = _index(nb1, "squares")
        dup = copy.deepcopy(nb1.cells[j])
        dup.id = "dup-answer"
        dup.source = STUDENT_CODE["squares_wrong"]
        nb1.cells.insert(j + 1, dup)
    elif variant == "retyped":
        cell = nb1.cells[_index(nb1, "test_div")]
        cell.cell_type = "markdown"
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
        _set(nb1, "safe_div", STUDENT_CODE["div_zero"])
    elif variant == "stderr":
        _set(nb1, "squares", "import sys\ndef squares(n):\n    print('debug', file=sys.stderr)\n"
                             "    return [i * i for i in range(1, n + 1)]")
    if extra_code:
        nb1.cells.insert(1, new_code_cell(extra_code))
    nbformat.write(nb1, dest / "problem1.ipynb")
    if variant != "missing_notebook":
        nbformat.write(nb2, dest / "problem2.ipynb")
    return dest


# ----- running the real nbgrader -----


def nbgrader_course(root: str | Path, source_dir: str | Path, assignment: str = ASSIGNMENT) -> Path:
    """A course directory with the source assignment, after real ``nbgrader generate_assignment``.

    Laid out by :class:`~learnhub.course_content.NbGraderCourse` (source copy, exchange, empty
    gradebook); the release is made by nbgrader's own command line, which reads the
    ``nbgrader_config.py`` written here, as the command line does in an instructor's course.
    """
    root = NbGraderCourse(root, assignment, source_dir=source_dir).root
    (root / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.root = %r\n" % str(root))
    run_nbgrader(root, ["generate_assignment", assignment, "--force"])
    return root


def run_nbgrader(root: Path, args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


AUTOGRADE_SCRIPT = r"""
import json, sys
from learnhub.course_content import NbGraderCourse
root, assignment = sys.argv[1], sys.argv[2]
# the course directory nbgrader_course() made; its kernels on Unix sockets inside it
api = NbGraderCourse(root, assignment).api
out = {}
for student in sys.argv[3:]:
    res = api.autograde(assignment, student, force=True, create=True)
    out[student] = {"success": bool(res.get("success")), "error": (res.get("error") or "")[-500:]}
print("RESULT" + json.dumps(out))
"""


def nbgrader_autograde(root: str | Path, students: list[str], assignment: str = ASSIGNMENT) -> dict:
    """Real nbgrader autograde (its Python API, one process) of each student; {student: {success, error}}."""
    proc = subprocess.run([sys.executable, "-c", AUTOGRADE_SCRIPT, str(root), assignment, *students],
                          cwd=root, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            import json

            return json.loads(line[len("RESULT"):])
    raise RuntimeError(f"nbgrader autograde failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def nbgrader_scores(root: Path, assignment: str = ASSIGNMENT) -> dict:
    """{student: {notebook: {"score", "max_score", "grades": {grade_id: auto_score}}}} from the gradebook."""
    from nbgrader.api import Gradebook

    out = {}
    with Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(assignment):
            out[sub.student.id] = {
                nb.name: {
                    "score": float(nb.score), "max_score": float(nb.max_score),
                    "grades": {g.name: (None if g.auto_score is None else float(g.auto_score)) for g in nb.grades},
                }
                for nb in sub.notebooks
            }
    return out


# ----- the demo course's first assignment, as a class hands it in -----

#: ``courses/intro-python``'s ``01-basics``: per answer cell (grade_id), a few answers learners give
BASICS_ANSWERS = {
    "variables-code": {
        "right": 'course_name = "Introduction to Python"\nweek = 1\nhours_per_week = 3.5\nis_free = True',
        "wrong": 'course_name = "Introduction to Python"\nweek = "1"\nhours_per_week = 3\nis_free = "True"',
        "error": 'course_name = "Introduction to Python"\nweek = 1\nhours_per_week = three_and_a_half',
    },
    "celsius-to-fahrenheit-code": {
        "right": "def celsius_to_fahrenheit(celsius):\n    return celsius * 9 / 5 + 32",
        "wrong": "def celsius_to_fahrenheit(celsius):\n    return celsius * 9 / 5",
        "error": "def celsius_to_fahrenheit(celsius)\n    return celsius * 9 / 5 + 32",
    },
    "split-the-bill-code": {
        "right": ("def split_bill(total, people, tip_percent):\n    if people < 1:\n"
                  "        raise ValueError('people must be at least 1')\n"
                  "    return round(total * (1 + tip_percent / 100) / people, 2)"),
        # passes the visible tests, fails the hidden ones (no rounding of 10/3, no ValueError)
        "wrong": "def split_bill(total, people, tip_percent):\n    return round(total * (1 + tip_percent / 100) / people, 2) "
                 "if people != 3 else total / people",
        "error": "def split_bill(total, people, tip_percent):\n    return (total + tip) / people",
    },
    "shout-code": {
        "right": "def shout(text):\n    return text.strip().upper() + '!'",
        "wrong": "def shout(text):\n    return text.upper() + '!'",
        "error": "def shout(text):\n    return text.upper() + 1",
    },
    "initials-code": {
        "right": "def initials(first_name, last_name):\n    return first_name.strip()[0].upper() + '.' + "
                 "last_name.strip()[0].upper() + '.'",
        "wrong": "def initials(first_name, last_name):\n    return first_name[0] + '.' + last_name[0] + '.'",
        "error": "def initials(first_name, last_name):\n    return first_name.strip()[0].upper() + '.' + initial_of(last_name)",
    },
}
BASICS_EXPLANATION = ('"7" is a string and 7 is an int, so "7" + 7 raises a TypeError. '
                      'int("7") + 7 gives 14 and "7" + str(7) gives "77".')
#: the mix of a class: what fraction of the learners hand in which kind of work
BASICS_KINDS = ("correct", "partly-wrong", "correct", "partly-wrong", "blank", "error-raising",
                "partly-wrong", "correct", "error-raising", "partly-wrong")


def basics_submission(release_dir: str | Path, index: int, dest: str | Path) -> str:
    """The ``index``-th learner's submission of the demo course's ``01-basics`` (from its released
    notebook) in ``dest``; returns its kind. The class cycles through :data:`BASICS_KINDS`:

    * ``correct``: every exercise answered right (and the written answer);
    * ``partly-wrong``: one to three exercises wrong (some pass the visible tests and fail hidden ones),
      the others right;
    * ``blank``: handed in as fetched;
    * ``error-raising``: answers that raise (a syntax error, a NameError, a TypeError) and, for one
      learner in ten, code that raises at the top of the notebook before any exercise.
    Deterministic: the same index gives the same notebook."""
    import random

    release_dir, dest = Path(release_dir), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(release_dir / "basics.ipynb", as_version=4)
    kind = BASICS_KINDS[index % len(BASICS_KINDS)]
    rng = random.Random(index)
    cells = list(BASICS_ANSWERS)
    if kind == "correct":
        choice = {gid: "right" for gid in cells}
    elif kind == "partly-wrong":
        wrong = set(rng.sample(cells, rng.randint(1, 3)))
        choice = {gid: "wrong" if gid in wrong else "right" for gid in cells}
    elif kind == "error-raising":
        broken = set(rng.sample(cells, rng.randint(1, 2)))
        choice = {gid: "error" if gid in broken else rng.choice(["right", "wrong"]) for gid in cells}
    else:
        choice = {}
    for gid, answer in choice.items():
        _set(nb, gid, BASICS_ANSWERS[gid][answer])
    if choice:
        _set(nb, "explain-types", BASICS_EXPLANATION)
    if kind == "error-raising" and index % 20 == 5:
        nb.cells.insert(1, new_code_cell("import numpy_that_does_not_exist"))
    nbformat.write(nb, dest / "basics.ipynb")
    return kind
