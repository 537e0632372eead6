"""Running nbgrader on course content, each run in a private nbgrader course directory.

:class:`NbGraderCourse` lays out an nbgrader course directory for one assignment and holds an
``NbGraderAPI`` on it; :func:`generate_release` and :func:`self_check` use it here, and the
grading engine (``learnhub.graders.engine.PreparedAssignment``) and its test baseline
(``learnhub.graders.testing``) use it too. nbgrader is imported only when a run starts: loading
a course does not need it.
"""
from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .model import SOURCE_DIR, Assignment, Course

if TYPE_CHECKING:  # pragma: no cover
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

__all__ = [
    "ReleaseError",
    "Release",
    "CellScore",
    "SelfCheck",
    "NbGraderCourse",
    "empty_gradebook",
    "use_unix_socket_kernels",
    "generate_release",
    "self_check",
]

log = logging.getLogger(__name__)


class ReleaseError(RuntimeError):
    """nbgrader could not generate or autograde an assignment; the message carries its log."""


# --------------------------------------------------------------------------- results


@dataclass
class Release:
    """The result of :func:`generate_release`."""

    assignment_id: str
    #: ``<dest_dir>/<assignment_id>``
    directory: Path
    #: released (student) notebooks, sorted
    notebooks: list[Path]
    #: notebook id -> grade_id -> max points, as recorded in nbgrader's gradebook
    max_points: dict[str, dict[str, float]]
    #: notebook id -> grade_id -> "autograded" | "manual" | "task"
    kinds: dict[str, dict[str, str]]
    #: nbgrader's captured log
    log: str = ""

    @property
    def total_points(self) -> float:
        return float(sum(p for cells in self.max_points.values() for p in cells.values()))


@dataclass(frozen=True)
class CellScore:
    notebook: str
    grade_id: str
    kind: str
    score: float | None
    max_score: float


@dataclass
class SelfCheck:
    """Scores nbgrader's autograde gave the solution and the blank notebooks of one assignment."""

    assignment_id: str
    solution: list[CellScore]
    blank: list[CellScore]

    def problems(self) -> list[str]:
        """Autograded cells where the solution loses points or the blank notebook earns some."""
        found = []
        for cell in self.solution:
            if cell.kind == "autograded" and (cell.score or 0.0) < cell.max_score:
                found.append(
                    f"{cell.notebook}/{cell.grade_id}: the solution scores {cell.score} of {cell.max_score}"
                )
        for cell in self.blank:
            if cell.kind == "autograded" and (cell.score or 0.0) > 0:
                found.append(
                    f"{cell.notebook}/{cell.grade_id}: the blank release scores {cell.score} "
                    f"(tests pass without an answer)"
                )
        return found


# --------------------------------------------------------------------------- kernels


# A Unix socket's path is limited to 107 bytes on Linux; "-<n>" is appended to the prefix.
_MAX_IPC_PREFIX = 96


def use_unix_socket_kernels(config, folder: Path | str) -> None:
    """Make the kernels nbgrader starts with ``config`` talk over Unix sockets in ``folder``, not TCP.

    A TCP port that jupyter_client found free may be taken by another process before the kernel
    binds it ("Address already in use", the kernel dies at start), as happens when autogrades run
    side by side (jupyter_client issue 487). The prefix is absolute: the kernel runs in the
    notebook's folder. TCP stays when the path would be too long for a Unix socket."""
    sockets = Path(folder).absolute() / "kernel"
    if len(str(sockets).encode()) <= _MAX_IPC_PREFIX:
        config.KernelManager.transport = "ipc"
        config.KernelManager.ip = str(sockets)


# --------------------------------------------------------------------------- gradebooks


_template_lock = threading.Lock()
_gradebook_template: Path | None = None


def empty_gradebook(target: Path | str) -> None:
    """Write an empty nbgrader gradebook (SQLite) at ``target``, replacing any file there.

    nbgrader creates a new gradebook by running the ``alembic heads`` command in a subprocess,
    which takes seconds (and needs ``alembic`` on ``PATH``); the first empty gradebook of the
    process is kept as a template and copied afterwards (same nbgrader, same schema and
    alembic version). Safe to call from several threads at once.
    """
    global _gradebook_template
    target = Path(target)
    with _template_lock:
        if _gradebook_template is None or not _gradebook_template.is_file():
            folder = Path(tempfile.mkdtemp(prefix="learnhub-gradebook-"))
            atexit.register(shutil.rmtree, folder, True)
            template = folder / "gradebook.db"
            _create_gradebook(template)
            _gradebook_template = template
        template = _gradebook_template
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)


def _create_gradebook(path: Path) -> None:
    """Create an empty gradebook at ``path`` with nbgrader's own ``Gradebook``, without its subprocess.

    ``Gradebook.__init__`` creates nbgrader's tables (its SQLAlchemy metadata) in any database,
    and *only in a database that has no table yet* it asks ``alembic heads`` (a subprocess) for
    the revision to record in an ``alembic_version`` table. Recording that revision first — the
    same table and row nbgrader writes, with the head read in-process from nbgrader's migration
    scripts — makes the database not new to it: it then creates its tables and skips the
    subprocess, and nothing in nbgrader is replaced, for this thread or any other.
    """
    from nbgrader.api import Gradebook
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{path}"
    head = _alembic_head()
    if head:
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                # the statements of nbgrader.api.Gradebook.__init__ for a new database
                connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);"))
                connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"),
                                   {"head": head})
        finally:
            engine.dispose()
    # course_id "": nbgrader's CourseDirectory default, which records no course; each run's
    # NbGraderAPI or Gradebook adds its own course to its copy
    Gradebook(url, "").close()


def _alembic_head() -> str | None:
    """The head revision of nbgrader's gradebook migrations, read in-process (None if unknown).

    Read from the scripts' ``revision`` / ``down_revision`` assignments, as Alembic's
    ``ScriptDirectory`` reads them, without importing Alembic: its import (every SQLAlchemy
    dialect's DDL module) costs ~0.5 s, a fifth of a one-shot ``learnhub grade``."""
    import ast

    try:
        import nbgrader

        revisions: dict[str, object] = {}
        for script in (Path(nbgrader.__file__).parent / "alembic" / "versions").glob("*.py"):
            values = {}
            for node in ast.parse(script.read_text()).body:
                if isinstance(node, (ast.Assign, ast.AnnAssign)):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                            values[target.id] = ast.literal_eval(node.value)
            if isinstance(values.get("revision"), str):
                revisions[values["revision"]] = values.get("down_revision")
        parents = set()
        for down in revisions.values():
            parents.update(down if isinstance(down, (tuple, list)) else [down])
        heads = [rev for rev in revisions if rev not in parents]
    except Exception:  # pragma: no cover - fall back to nbgrader's own subprocess
        log.debug("cannot read nbgrader's alembic head in-process", exc_info=True)
        return None
    return heads[0] if len(heads) == 1 else None


def _sqlite_file(db_url: str) -> Path | None:
    prefix = "sqlite:///"
    if db_url.startswith(prefix) and len(db_url) > len(prefix) and ":memory:" not in db_url:
        return Path(db_url[len(prefix):])
    return None


# --------------------------------------------------------------------------- the course directory


class NbGraderCourse:
    """An nbgrader course directory for one assignment, with an ``NbGraderAPI`` on it.

    Layout under ``root`` (nbgrader's own)::

        source/<assignment_id>/            the instructor's source notebooks and files (a copy)
        release/<assignment_id>/           written by generate_assignment
        submitted/<student>/<assignment_id>/
        autograded/<student>/<assignment_id>/
        exchange/                          nbgrader's filesystem exchange, kept inside the course
        gradebook.db                       unless ``db_url`` names another gradebook
        kernel-<n>                         Unix sockets of the kernels autograde starts

    Parameters:

    ``root``
        the course directory; created if missing. Without ``source_dir`` an existing course
        directory is used as it is (e.g. one nbgrader's command line laid out).
    ``assignment_id``
        the assignment, nbgrader's name for it (the folder name under ``source/``).
    ``source_dir``
        copied to ``source/<assignment_id>/`` (editor checkpoints and Python caches left out).
    ``course_id``
        nbgrader's ``CourseDirectory.course_id``; ``""``, its default, records no course.
    ``db_url``
        the gradebook; default ``<root>/gradebook.db``. A SQLite gradebook that does not exist
        yet is created empty from :func:`empty_gradebook` (nbgrader would spend seconds on it).
    ``log_level``
        ``NbGraderAPI.log_level`` (e.g. ``"WARN"``); ``None`` keeps nbgrader's default.

    Kernels use Unix sockets inside ``root`` (:func:`use_unix_socket_kernels`), so several
    courses can autograde side by side; nothing outside ``root`` (and the gradebook) is written.
    """

    def __init__(self, root: Path | str, assignment_id: str, *, source_dir: Path | str | None = None,
                 course_id: str = "", db_url: str | None = None, log_level: str | int | None = None):
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config

        self.root = Path(root).absolute()
        self.assignment_id = assignment_id
        self.course_id = course_id
        self.root.mkdir(parents=True, exist_ok=True)
        if source_dir is not None:
            shutil.copytree(source_dir, self.source_dir, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        self.exchange_dir.mkdir(exist_ok=True)
        self.db_url = db_url or f"sqlite:///{self.root / 'gradebook.db'}"
        gradebook_file = _sqlite_file(self.db_url)
        if gradebook_file is not None and not gradebook_file.exists():
            empty_gradebook(gradebook_file)

        config = Config()
        config.CourseDirectory.root = str(self.root)
        config.CourseDirectory.course_id = course_id
        config.CourseDirectory.db_url = self.db_url
        # nbgrader's filesystem exchange would otherwise be /srv/nbgrader/exchange, shared by all
        config.Exchange.root = str(self.exchange_dir)
        if log_level is not None:
            config.NbGraderAPI.log_level = log_level
        use_unix_socket_kernels(config, self.root)
        self.config = config
        self.api: NbGraderAPI = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)

    @property
    def source_dir(self) -> Path:
        return self.root / SOURCE_DIR / self.assignment_id

    @property
    def release_dir(self) -> Path:
        return self.root / "release" / self.assignment_id

    @property
    def exchange_dir(self) -> Path:
        return self.root / "exchange"

    def submitted_dir(self, student: str) -> Path:
        """Where nbgrader's autograde looks for ``student``'s submission of the assignment."""
        return self.root / "submitted" / student / self.assignment_id

    def gradebook(self) -> Gradebook:
        """nbgrader's ``Gradebook`` of this course (close it, or use it in a ``with``)."""
        from nbgrader.api import Gradebook

        return Gradebook(self.db_url, self.course_id)

    def run(self, method: str, *args: Any, **kwargs: Any) -> str:
        """Call ``NbGraderAPI.<method>(*args, **kwargs)``; its log, or :class:`ReleaseError` if it failed."""
        with warnings.catch_warnings():
            # nbgrader's autograde trips SQLAlchemy's "not in session" autoflush warnings; harmless
            warnings.filterwarnings("ignore", message=r".*not in session.*")
            result = getattr(self.api, method)(*args, **kwargs)
        if not result.get("success"):
            raise ReleaseError(
                f"nbgrader {method} {' '.join(map(str, args))} failed:\n"
                f"{result.get('error') or ''}\n{result.get('log') or ''}".strip()
            )
        return result.get("log") or ""


# --------------------------------------------------------------------------- releases and self-checks


def _gradebook_cells(nbgrader_course: NbGraderCourse):
    """notebook -> grade_id -> (max points, kind), read from nbgrader's gradebook."""
    max_points: dict[str, dict[str, float]] = {}
    kinds: dict[str, dict[str, str]] = {}
    with nbgrader_course.gradebook() as gradebook:
        assignment = gradebook.find_assignment(nbgrader_course.assignment_id)
        for notebook in assignment.notebooks:
            solution_ids = {cell.name for cell in notebook.solution_cells}
            max_points[notebook.name] = {}
            kinds[notebook.name] = {}
            for cell in notebook.grade_cells:
                max_points[notebook.name][cell.name] = float(cell.max_score)
                kinds[notebook.name][cell.name] = "manual" if cell.name in solution_ids else "autograded"
            for cell in notebook.task_cells:
                max_points[notebook.name][cell.name] = float(cell.max_score)
                kinds[notebook.name][cell.name] = "task"
    return max_points, kinds


def _assignment_of(course: Course, assignment_id: str) -> Assignment:
    try:
        return course.assignment(assignment_id)
    except KeyError:
        raise KeyError(f"course {course.id!r} has no assignment {assignment_id!r}; "
                       f"it has: {', '.join(a.id for a in course.assignments)}") from None


def generate_release(course: Course, assignment_id: str, dest_dir: Path | str, *,
                     db_url: str | None = None) -> Release:
    """Run nbgrader's ``generate_assignment`` for one assignment into ``dest_dir/<assignment_id>``.

    nbgrader works in a temporary course directory (``source/<assignment_id>`` copied from the
    course); solutions and hidden tests are stripped, cells locked and checksummed exactly as
    ``nbgrader generate_assignment`` does. An existing ``dest_dir/<assignment_id>`` is replaced.

    ``db_url``: where nbgrader writes the gradebook (which keeps the hidden tests and is what
    ``nbgrader autograde`` needs); by default a throw-away SQLite file in the temporary folder.
    Returns the released notebooks' paths and each graded cell's max points from the gradebook.
    """
    assignment = _assignment_of(course, assignment_id)
    dest_dir = Path(dest_dir).absolute()
    with tempfile.TemporaryDirectory(prefix="learnhub-release-") as tmp:
        nbgrader_course = NbGraderCourse(Path(tmp) / "course", assignment_id, source_dir=assignment.source_dir,
                                         course_id=course.id, db_url=db_url, log_level="WARN")
        nbgrader_log = nbgrader_course.run("generate_assignment", assignment_id)
        max_points, kinds = _gradebook_cells(nbgrader_course)
        target = dest_dir / assignment_id
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(nbgrader_course.release_dir, target)
    return Release(
        assignment_id=assignment_id,
        directory=target,
        notebooks=sorted(target.glob("*.ipynb")),
        max_points=max_points,
        kinds=kinds,
        log=nbgrader_log,
    )


def self_check(course: Course, assignment_id: str, work_dir: Path | str | None = None) -> SelfCheck:
    """Autograde the assignment's solutions and its blank release with nbgrader.

    In one temporary nbgrader course directory: ``generate_assignment``, then ``autograde`` of a
    submission made of the source notebooks (student ``solution``) and one made of the released
    notebooks (student ``blank``). Use :meth:`SelfCheck.problems` to see cells where a solution
    loses points or a blank notebook earns some. Executes the notebooks (a few seconds each).
    """
    assignment = _assignment_of(course, assignment_id)
    with tempfile.TemporaryDirectory(prefix="learnhub-selfcheck-", dir=work_dir) as tmp:
        nbgrader_course = NbGraderCourse(Path(tmp) / "course", assignment_id, source_dir=assignment.source_dir,
                                         course_id=course.id, log_level="WARN")
        nbgrader_course.run("generate_assignment", assignment_id)
        submissions = {
            "solution": nbgrader_course.source_dir,
            "blank": nbgrader_course.release_dir,
        }
        for student, origin in submissions.items():
            shutil.copytree(origin, nbgrader_course.submitted_dir(student))
        # one nbgrader autograde run over both submissions (student "*", as `nbgrader autograde <id>`)
        nbgrader_course.run("autograde", assignment_id, "*")
        _, kinds = _gradebook_cells(nbgrader_course)
        scores: dict[str, list[CellScore]] = {}
        with nbgrader_course.gradebook() as gradebook:
            for student in submissions:
                rows = []
                for notebook_file in assignment.notebooks:
                    name = Path(notebook_file).stem
                    submitted = gradebook.find_submission_notebook(name, assignment_id, student)
                    for grade in submitted.grades:
                        rows.append(CellScore(
                            notebook=name,
                            grade_id=grade.name,
                            kind=kinds.get(name, {}).get(grade.name, "autograded"),
                            score=None if grade.score is None else float(grade.score),
                            max_score=float(grade.max_score),
                        ))
                scores[student] = rows
    return SelfCheck(assignment_id=assignment_id, solution=scores["solution"], blank=scores["blank"])
