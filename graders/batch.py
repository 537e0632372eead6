"""Grade a whole class: every submission of one assignment, in parallel, on a warm pool of sandboxes.

``learnhub grade --source SRC --submissions DIR`` (:mod:`.cli`). DIR holds one folder per learner:
nbgrader's ``submitted/<student>/<assignment>/`` layout or a plain ``DIR/<student>/``. Each submission
is graded by :class:`~learnhub.graders.engine.GradingEngine` — the same engine, scores and sandboxes
as the platform's workers — ``workers`` at a time, the sandboxes started ahead by a
:class:`~learnhub.graders.pool.WarmPool`.

When the source is inside an nbgrader course directory (``<course>/source/<assignment>``), or a
gradebook is named, the outcome is also written as ``nbgrader autograde`` writes it, so that
nbgrader's Formgrader shows it: :class:`CourseOutput` records the student, the submission (with
``timestamp.txt``), each grade and comment through nbgrader's own ``SaveAutoGrades`` and its late
penalty plugin, and ``autograded/<student>/<assignment>/`` with the executed notebooks and the
files nbgrader copies. Scores are read from the gradebook before and after, so a regrade after a
test fix says, per learner, whose score changed.

One learner's problem never stops the batch: a notebook nbgrader refuses, a timeout, a sandbox
that dies or will not start, a gradebook row that cannot be written — that learner is reported
with the reason and the others are graded.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
from traitlets import Bool, Integer
from traitlets.config import LoggingConfigurable

from .engine import GradingEngine, GradingError, PreparedAssignment, _OneTransaction
from .pool import WarmPool
from .sandbox.base import SandboxError

#: nbgrader's ``CourseDirectory.ignore``: what its autograde does not copy into ``autograded/``
NBGRADER_IGNORE = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
#: nbgrader's permissions for the files autograde writes (``BaseConverter.permissions``, not groupshared)
AUTOGRADED_PERMISSIONS = 0o444


class AutogradedEngine(GradingEngine):
    """The engine, also keeping each notebook as nbgrader's autograde leaves it (sanitized, executed
    in the sandbox, scored): what ``autograded/<student>/<assignment>/`` holds. Scores and results are
    the engine's own; the notebook is handed on under the private key ``_autograded``, which
    :class:`BatchGrader` removes before anyone sees the result."""

    def _notebook_result(self, prepared, name, nb, *args, **kwargs):
        result = super()._notebook_result(prepared, name, nb, *args, **kwargs)
        if nb is not None:
            # the last use of the notebook in the engine: handed on as is, not copied
            result["_autograded"] = nb
        return result


# --------------------------------------------------------------------------- submissions


@dataclass(frozen=True)
class LearnerSubmission:
    """One learner's folder: ``student`` is nbgrader's student id (the folder's name)."""

    student: str
    path: Path
    layout: str  # "nbgrader" (DIR/<student>/<assignment>/) or "plain" (DIR/<student>/)


def find_submissions(folder: str | os.PathLike, assignment_id: str) -> list[LearnerSubmission]:
    """Every learner folder of ``folder``, sorted by student id.

    ``<student>/<assignment_id>/`` (nbgrader's ``submitted/`` layout) wins over ``<student>/``
    itself; a plain folder counts when it holds any file (a folder with no notebook is graded:
    every notebook is missing, 0, as nbgrader does). Hidden folders and links are left out."""
    root = Path(folder)
    if not root.is_dir():
        raise GradingError(f"{root} is not a folder of submissions")
    found = []
    for child in sorted(root.iterdir(), key=lambda p: p.name):
        if child.name.startswith(".") or child.is_symlink() or not child.is_dir():
            continue
        nested = child / assignment_id
        if nested.is_dir() and not nested.is_symlink():
            found.append(LearnerSubmission(child.name, nested, "nbgrader"))
        elif any(p.is_file() for p in child.iterdir()):
            found.append(LearnerSubmission(child.name, child, "plain"))
    return found


def course_root_of(source_dir: str | os.PathLike) -> Path | None:
    """The nbgrader course directory that holds ``source_dir`` as ``<root>/source/<assignment>``."""
    source = Path(source_dir).resolve()
    if source.parent.name == "source":
        return source.parent.parent
    return None


def read_timestamp(submission: Path):
    """nbgrader's ``timestamp.txt`` of a submission (what its collect writes), as a datetime, or None."""
    from nbgrader.utils import parse_utc

    path = submission / "timestamp.txt"
    if not path.is_file():
        return None
    text = path.read_text(errors="replace").strip()
    if not text:
        return None
    try:
        return parse_utc(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- nbgrader's records


def assignment_definition(gradebook, assignment_id: str) -> dict | None:
    """What ``generate_assignment`` recorded of an assignment — per notebook its graded cells
    (type, points), task cells and source cells (checksum, locked) — or None when it has none."""
    from nbgrader.api import MissingEntry

    try:
        assignment = gradebook.find_assignment(assignment_id)
    except MissingEntry:
        return None
    return {
        notebook.name: {
            "grade": sorted((c.name, c.cell_type, float(c.max_score)) for c in notebook.grade_cells),
            "task": sorted((c.name, float(c.max_score)) for c in notebook.task_cells),
            "source": sorted((c.name, c.cell_type, c.checksum or "", bool(c.locked)) for c in notebook.source_cells),
        }
        for notebook in assignment.notebooks
    }


class CourseOutput:
    """nbgrader's records of an autograde: the gradebook and ``autograded/<student>/<assignment>/``.

    ``db_url`` is the instructor's gradebook (any URL nbgrader takes); ``autograded_dir`` the
    folder nbgrader's ``CourseDirectory.autograded_directory`` names (``<course>/autograded``).
    Either may be None: that record is not written. Used from one thread.
    """

    def __init__(self, prepared: PreparedAssignment, source_dir: Path, *, db_url: str | None,
                 autograded_dir: Path | None, course_id: str = "", log=None):
        self.prepared = prepared
        self.source_dir = Path(source_dir)
        self.db_url = db_url
        self.autograded_dir = Path(autograded_dir) if autograded_dir else None
        self.course_id = course_id
        self.log = log
        self.aid = prepared.assignment_id
        self.gradebook = None
        self.synced = False  # whether the assignment's definition was written (generate_assignment)

    # -- the assignment's definition ----------------------------------------------------------

    def open(self) -> None:
        """Open the gradebook, bringing the assignment's definition up to date with the source.

        nbgrader's autograde needs what ``generate_assignment`` records (notebooks, graded cells,
        points, source cells); after a test fix the recorded cells are the old ones. When they
        differ from the source's — or the assignment is not there — nbgrader's own
        ``generate_assignment`` records them, in a private course directory pointed at this
        gradebook: the gradebook is updated as ``nbgrader generate_assignment --force`` would,
        and the course's ``release/`` is not touched."""
        if not self.db_url:
            return
        from nbgrader.api import Gradebook

        from learnhub.course_content import NbGraderCourse

        with Gradebook(self.prepared.db_url) as private:
            wanted = assignment_definition(private, self.aid)
        current = None
        if not self._new_sqlite_file():
            with Gradebook(self.db_url, self.course_id) as gradebook:
                current = assignment_definition(gradebook, self.aid)
        if current != wanted:
            with tempfile.TemporaryDirectory(prefix="learnhub-definition-") as tmp:
                # A new SQLite gradebook is created by NbGraderCourse from learnhub's template
                # (nbgrader's own creation runs `alembic heads` in a subprocess).
                course = NbGraderCourse(Path(tmp) / "course", self.aid, source_dir=self.source_dir,
                                        course_id=self.course_id, db_url=self.db_url, log_level="ERROR")
                course.run("generate_assignment", self.aid)
            self.synced = True
        self.gradebook = Gradebook(self.db_url, self.course_id)

    def _new_sqlite_file(self) -> bool:
        prefix = "sqlite:///"
        return self.db_url.startswith(prefix) and not Path(self.db_url[len(prefix):]).exists()

    def close(self) -> None:
        if self.gradebook is not None:
            self.gradebook.close()
            self.gradebook = None

    # -- before and after -----------------------------------------------------------------------

    def score(self, student: str) -> float | None:
        """The student's total in the gradebook (what Formgrader shows), or None when not graded."""
        if self.gradebook is None:
            return None
        from nbgrader.api import MissingEntry

        try:
            submission = self.gradebook.find_submission(self.aid, student)
        except MissingEntry:
            return None
        return float(submission.score) if submission.score is not None else None

    def scores(self, students: list[str]) -> dict[str, float | None]:
        return {student: self.score(student) for student in students}

    # -- writing --------------------------------------------------------------------------------

    def write(self, learner: LearnerSubmission, result: dict, autograded: dict) -> float | None:
        """Record one learner's grading as nbgrader's autograde does; their new total (or None).

        ``autograded``: notebook name -> the notebook as autograde leaves it (absent for missing,
        unreadable or refused notebooks)."""
        failed = result.get("status") != "graded"
        if self.gradebook is not None:
            self._write_gradebook(learner, result, autograded, failed)
        if self.autograded_dir is not None:
            self._write_folder(learner, autograded, failed)
        return self.score(learner.student) if self.gradebook is not None else None

    def _write_gradebook(self, learner, result, autograded, failed) -> None:
        from nbgrader.preprocessors import AssignLatePenalties, SaveAutoGrades
        from nbgrader.preprocessors.base import NbGraderPreprocessor

        gb = self.gradebook
        view = _OneTransaction(gb)
        try:
            # Autograde.init_assignment: the student, the submission with its timestamp
            gb.update_or_create_student(learner.student)
            timestamp = read_timestamp(learner.path)
            if timestamp:
                gb.update_or_create_submission(self.aid, learner.student, timestamp=timestamp)
            else:
                gb.update_or_create_submission(self.aid, learner.student)
            if failed:
                # nbgrader stops at the notebook it refuses and keeps no grades of it; so do we.
                gb.db.commit()
                return
            states = {nb["name"]: nb["status"] for nb in result["notebooks"]}
            for name in self.prepared.notebooks:
                nb = autograded.get(name)
                if nb is None or states.get(name) != "graded":
                    # A notebook that is not there scores 0 on every grade (Autograde.init_assignment);
                    # one that is not a notebook scores 0 here too, as the engine reports it.
                    submitted = gb.find_submission_notebook(name, self.aid, learner.student)
                    for grade in submitted.grades:
                        grade.auto_score = 0
                        grade.needs_manual_grade = False
                    continue
                resources = {"nbgrader": {"db_url": self.db_url, "assignment": self.aid, "notebook": name,
                                          "student": learner.student}}
                # nbgrader's SaveAutoGrades: its cell loop and rules, on this learner's transaction
                saver = SaveAutoGrades()
                saver.notebook_id, saver.assignment_id, saver.student_id = name, self.aid, learner.student
                saver.db_url, saver.gradebook = self.db_url, view
                view.read_ahead(name, self.aid, learner.student)
                # SaveAutoGrades only reads the cells: the notebook itself is given
                NbGraderPreprocessor.preprocess(saver, nb, resources)
                gb.db.flush()
                self._late_penalty(AssignLatePenalties(), view, name, learner.student)
            gb.db.commit()
        except Exception:
            gb.db.rollback()
            raise

    def _late_penalty(self, penalties, gb, name: str, student: str) -> None:
        """nbgrader's AssignLatePenalties (its plugin and its bounds), on this transaction."""
        penalties.init_plugin()
        submission = gb.find_submission(self.aid, student)
        notebook = gb.find_submission_notebook(name, self.aid, student)
        notebook.late_submission_penalty = None
        if submission.total_seconds_late > 0:
            penalty = penalties.plugin_inst.late_submission_penalty(student, notebook.score,
                                                                    submission.total_seconds_late)
            if penalty is not None:
                notebook.late_submission_penalty = penalties._check_late_penalty(notebook, penalty)  # noqa: SLF001

    def _write_folder(self, learner, autograded, failed) -> None:
        """``autograded/<student>/<assignment>/``: the submission's other files, the source's files
        over them, the autograded notebooks; read-only, as nbgrader leaves them. Built aside and
        renamed into place, so a folder is never half-written. A refused submission has none
        (nbgrader removes it)."""
        from nbgrader.utils import find_all_files

        dest = self.autograded_dir / learner.student / self.aid
        if failed:
            _remove_tree(dest)
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.aid}-", dir=dest.parent))
        try:
            for origin in (learner.path, self.source_dir):
                for filename in find_all_files(str(origin), NBGRADER_IGNORE + ["*.ipynb"]):
                    target = tmp / os.path.relpath(filename, origin)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if target.exists():
                        target.unlink()
                    shutil.copy(filename, target)
            for name, nb in autograded.items():
                # what nbconvert's NotebookExporter (nbgrader's writer) writes, without its defensive copy
                text = nbformat.writes(nb, version=4)
                (tmp / f"{name}.ipynb").write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
            for dirname, _dirs, filenames in os.walk(tmp):
                for filename in filenames:
                    os.chmod(os.path.join(dirname, filename), AUTOGRADED_PERMISSIONS)
            os.chmod(tmp, 0o755)
            _remove_tree(dest)
            os.replace(tmp, dest)
        except BaseException:
            _remove_tree(tmp)
            raise


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


# --------------------------------------------------------------------------- the batch


@dataclass
class LearnerOutcome:
    """One learner's line of the report."""

    student: str
    submission: str
    status: str  # graded | failed
    score: float | None = None
    max_score: float | None = None
    error: str | None = None
    limits_hit: list = field(default_factory=list)
    limit_messages: list = field(default_factory=list)
    needs_manual_grade: bool = False
    before: float | None = None
    after: float | None = None
    duration: float = 0.0
    notebooks: list = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.before is not None and self.after is not None and abs(self.after - self.before) > 1e-9

    def to_dict(self) -> dict:
        return {"student": self.student, "submission": self.submission, "status": self.status,
                "score": self.score, "max_score": self.max_score, "error": self.error,
                "limits_hit": self.limits_hit, "limit_messages": self.limit_messages,
                "needs_manual_grade": self.needs_manual_grade, "before": self.before, "after": self.after,
                "changed": self.changed, "duration": round(self.duration, 3), "notebooks": self.notebooks}


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class BatchGrader(LoggingConfigurable):
    """Grades every submission of one assignment in parallel and records them as nbgrader does."""

    workers = Integer(
        0, help="Submissions graded at the same time (0: the CPUs this process may use)."
    ).tag(config=True)
    pool_size = Integer(
        0, help="Submissions whose sandboxes are kept warm ahead of their grading (0: two per worker)."
    ).tag(config=True)
    sandbox_retries = Integer(
        1, help="Times a learner is graded again when a sandbox would not start (not their fault)."
    ).tag(config=True)
    processes = Bool(
        True,
        help="""Grade in worker processes forked from this one once the source is prepared (one per
        worker, each with its own warm pool), this process only recording: nbgrader's bookkeeping
        around each notebook is Python holding one interpreter lock, so in threads of one process
        the workers wait for each other. False (or where fork is unavailable): threads.""",
    ).tag(config=True)

    def __init__(self, engine: GradingEngine, source_dir, submissions_dir, *, db_url: str | None = None,
                 autograded_dir=None, limits: dict | None = None, course_id: str = "",
                 on_outcome: Callable[[LearnerOutcome, int, int], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.engine = engine
        self.source_dir = Path(source_dir).resolve()
        self.submissions_dir = Path(submissions_dir)
        self.db_url = db_url
        self.autograded_dir = Path(autograded_dir) if autograded_dir else None
        self.limits = dict(limits or {})
        self.course_id = course_id
        self.on_outcome = on_outcome

    def run(self) -> dict:
        started = time.monotonic()
        aid = self.source_dir.name
        learners = find_submissions(self.submissions_dir, aid)
        workers = self.workers or _default_workers()
        pool = None
        output = None
        if learners and self._can_fork():
            return self._run_in_processes(started, aid, learners, workers)
        try:
            prepared = None
            if learners:
                # Sandboxes start (in processes of their own) while this process prepares the source
                # and reads the gradebook; at most one per notebook to grade, none wasted.
                notebooks = max(1, sum(1 for _ in self.source_dir.glob("*.ipynb")))
                limits = self.engine.limits_for(aid, self.limits)
                # Two submissions' sandboxes per worker wait warm, started two per worker at once (a
                # start-up is partly waiting: namespaces, mounts, a python reading its files). More
                # warm ones do not help: on the CPUs the graders use, they only start sooner and
                # slow this process's nbgrader work down (measured on 2 CPUs, docs/grading.md).
                ahead = min(len(learners), self.pool_size or 2 * workers) * notebooks
                pool = WarmPool(self.engine, size=ahead, limits=limits, fillers=min(ahead, 2 * workers),
                                budget=len(learners) * notebooks, parent=self)
            prepared = self.engine.prepare(self.source_dir)
            output = CourseOutput(prepared, self.source_dir, db_url=self.db_url, autograded_dir=self.autograded_dir,
                                  course_id=self.course_id, log=self.log)
            output.open()
            before = output.scores([learner.student for learner in learners])
            outcomes = self._grade_all(prepared, learners, workers, pool, output, before)
        finally:
            if pool is not None:
                pool.close()
            if output is not None:
                output.close()
        return self._report(started, aid, outcomes, workers, output, dict(pool.stats) if pool is not None else {})

    def _report(self, started, aid, outcomes, workers, output, pool_stats) -> dict:
        graded = [o for o in outcomes if o.status == "graded"]
        summary = {
            "assignment": aid, "source": str(self.source_dir), "submissions_dir": str(self.submissions_dir),
            "total": len(outcomes), "graded": len(graded), "failed": len(outcomes) - len(graded),
            "changed": sum(o.changed for o in outcomes),
            "new": sum(1 for o in outcomes if o.before is None and o.after is not None),
            "workers": workers, "duration": round(time.monotonic() - started, 3),
            "gradebook": self.db_url, "autograded": str(self.autograded_dir) if self.autograded_dir else None,
            "gradebook_updated_from_source": bool(output and output.synced),
            "pool": pool_stats,
        }
        return {"summary": summary, "learners": [o.to_dict() for o in outcomes]}

    # -- in worker processes ------------------------------------------------------------------

    def _can_fork(self) -> bool:
        # A fork copies only the calling thread: it is safe while this process has no other thread
        # (none is started before the workers are forked; an embedding application may have some).
        return self.processes and hasattr(os, "fork") and threading.active_count() == 1

    def _run_in_processes(self, started, aid, learners, workers) -> dict:
        import multiprocessing

        notebooks = max(1, sum(1 for _ in self.source_dir.glob("*.ipynb")))
        limits = self.engine.limits_for(aid, self.limits)
        workers = min(workers, len(learners))
        output = None
        outcomes: dict[str, LearnerOutcome] = {}
        stats: dict[str, int] = {}
        prepared = self.engine.prepare(self.source_dir)
        # forked now, before this process starts any thread: each worker inherits the prepared
        # assignment (and every import), starts its own warm pool, and grades what it is given
        context = multiprocessing.get_context("fork")
        import gc

        # What the workers inherit is frozen first: their collectors then leave it alone (walking it
        # would cost CPU and copy every page they share with this process).
        gc.collect()
        gc.freeze()
        try:
            procs = context.Pool(workers, initializer=_worker_start,
                                 initargs=(self, prepared, limits, notebooks, len(learners), workers))
        finally:
            gc.unfreeze()
        try:
            output = CourseOutput(prepared, self.source_dir, db_url=self.db_url, autograded_dir=self.autograded_dir,
                                  course_id=self.course_id, log=self.log)
            output.open()
            before = output.scores([learner.student for learner in learners])
            by_student = {learner.student: learner for learner in learners}
            done = 0
            for student, value, error, pool_stats in procs.imap_unordered(_worker_grade, learners):
                learner = by_student[student]
                future = Future()
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(value)
                for key, n in pool_stats.items():
                    stats[key] = stats.get(key, 0) + n
                outcome = self._record(learner, future, output, before.get(student))
                outcomes[student] = outcome
                done += 1
                if self.on_outcome is not None:
                    self.on_outcome(outcome, done, len(learners))
            procs.close()
            procs.join()
        finally:
            procs.terminate()
            if output is not None:
                output.close()
        return self._report(started, aid, [outcomes[learner.student] for learner in learners], workers, output,
                            stats)

    def _grade_one(self, prepared, learner: LearnerSubmission, pool) -> tuple[dict, float]:
        attempts = 0
        t0 = time.monotonic()
        while True:
            try:
                return self.engine.grade(prepared, learner.path, sandbox_factory=pool, limits=self.limits), \
                    time.monotonic() - t0
            except SandboxError:
                attempts += 1
                if attempts > self.sandbox_retries:
                    raise
                self.log.warning("a sandbox for %s would not start; trying again", learner.student)

    def _grade_all(self, prepared, learners, workers, pool, output: CourseOutput, before) -> list[LearnerOutcome]:
        outcomes: dict[str, LearnerOutcome] = {}
        done = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grade") as executor:
            pending = {executor.submit(self._grade_one, prepared, learner, pool): learner for learner in learners}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    learner = pending.pop(future)
                    # Recorded here, in this one thread, while the others grade: nbgrader's gradebook
                    # has one writer, and the learner's line is printed when it is final.
                    outcome = self._record(learner, future, output, before.get(learner.student))
                    outcomes[learner.student] = outcome
                    done += 1
                    if self.on_outcome is not None:
                        self.on_outcome(outcome, done, len(learners))
        return [outcomes[learner.student] for learner in learners]

    def _record(self, learner, future, output: CourseOutput, before) -> LearnerOutcome:
        outcome = LearnerOutcome(learner.student, str(learner.path), "failed", before=before)
        try:
            result, outcome.duration = future.result()
        except SandboxError as exc:
            outcome.error = f"no sandbox could be started: {exc}"
            return outcome
        except Exception as exc:  # noqa: BLE001 - one learner's failure is reported, the batch goes on
            self.log.debug("grading %s failed", learner.student, exc_info=True)
            outcome.error = f"{type(exc).__name__}: {exc}"
            return outcome
        autograded = {}
        for nb in result["notebooks"]:
            notebook = nb.pop("_autograded", None)
            nb.pop("feedback", None)
            if notebook is not None and nb["status"] == "graded":
                autograded[nb["name"]] = notebook
        outcome.status = "graded" if result["status"] == "graded" else "failed"
        outcome.score, outcome.max_score = result["score"], result["max_score"]
        outcome.limits_hit = list(result.get("limits_hit", []))
        outcome.limit_messages = [m for nb in result["notebooks"] for m in nb.get("limit_messages", [])]
        outcome.needs_manual_grade = bool(result.get("needs_manual_grade"))
        outcome.notebooks = result["notebooks"]
        if outcome.status == "failed":
            outcome.error = result.get("error")
        problems = [nb for nb in result["notebooks"] if nb["status"] in ("missing", "invalid")]
        if outcome.status == "graded" and problems:
            outcome.error = "; ".join(f"{nb['name']}: {nb['error']}" for nb in problems)
        try:
            outcome.after = output.write(learner, result, autograded)
        except Exception as exc:  # noqa: BLE001 - the gradebook refused this learner's rows
            self.log.debug("recording %s failed", learner.student, exc_info=True)
            outcome.status, outcome.error = "failed", f"could not record the grades: {type(exc).__name__}: {exc}"
            outcome.after = None
        if outcome.status == "failed":
            outcome.after = None
        return outcome


# --------------------------------------------------------------------------- worker processes

#: the worker process's own state (set by _worker_start in each forked worker)
_WORKER: dict = {}


def _worker_start(grader: BatchGrader, prepared: PreparedAssignment, limits: dict, notebooks: int, learners: int,
                  workers: int) -> None:
    """In a forked worker: a private gradebook of its own (nbgrader's scratch records; SQLite has one
    writer at a time) and a warm pool of its own (two submissions ahead, two start-ups at once)."""
    import copy
    import multiprocessing.util

    from ._speedups import PRIVATE_URL_PREFIXES

    mine = copy.copy(prepared)
    mine.lock = threading.RLock()
    mine.gradebook_path = prepared.root / f"gradebook-{os.getpid()}.db"
    shutil.copyfile(prepared.gradebook_path, mine.gradebook_path)
    mine.db_url = f"sqlite:///{mine.gradebook_path}"
    PRIVATE_URL_PREFIXES.add(mine.db_url)
    ahead = min(learners, grader.pool_size or 2) * notebooks
    share = -(-learners // workers) * notebooks  # a worker grades about its share; a little more at most
    pool = WarmPool(grader.engine, size=ahead, limits=limits, fillers=min(ahead, 2),
                    budget=share + ahead, parent=grader)
    _WORKER.update(grader=grader, prepared=mine, pool=pool)

    def finish():
        # the warm sandboxes left (and their cgroups) go before this process ends
        pool.close()
        pool.join()
        for closer in list(grader.engine._closing):  # noqa: SLF001 - sandboxes closing in the background
            closer.join(timeout=10)

    multiprocessing.util.Finalize(None, finish, exitpriority=10)


def _worker_grade(learner: LearnerSubmission):
    """One learner, in a worker: (student, (result, seconds) or None, exception or None, pool start-ups)."""
    grader, prepared, pool = _WORKER["grader"], _WORKER["prepared"], _WORKER["pool"]
    before = dict(pool.stats)
    try:
        value, error = grader._grade_one(prepared, learner, pool), None  # noqa: SLF001
    except Exception as exc:  # noqa: BLE001 - reported by the recording process, as in threads
        value, error = None, _picklable(exc)
    return learner.student, value, error, {k: pool.stats[k] - before.get(k, 0) for k in pool.stats}


def _picklable(exc: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - an exception that does not cross processes crosses as its text
        return (SandboxError if isinstance(exc, SandboxError) else RuntimeError)(f"{type(exc).__name__}: {exc}")
