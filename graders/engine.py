"""The grading engine: nbgrader's autograde pipeline with execution moved into a sandbox.

``nbgrader autograde`` = sanitize (ClearOutput, DeduplicateIds, OverwriteKernelspec,
OverwriteCells, CheckCellMetadata) -> execute (a fresh kernel per notebook) -> score
(IgnorePattern, ClearMetadata, LimitOutput, SaveAutoGrades, AssignLatePenalties,
CheckCellMetadata) against a gradebook made by ``generate_assignment``. We run exactly
those nbgrader preprocessors, in that order, in this (trusted) process; only the
*execute* step is replaced by :class:`SandboxExecute`, which sends the cells one by one
to a runner inside a sandbox. The scores are then read back from nbgrader's gradebook,
so every rule (checksums, partial credit, stderr = failure, deleted/duplicated/retyped
cells, manual grading) is nbgrader's own.

What makes it fast: the gradebook and released notebooks are made once per source
assignment (:class:`PreparedAssignment`, cached) and copied per submission; no nbgrader
app starts per submission; and the sandbox's python is started before the submission
arrives (see :class:`~learnhub.graders.pool.WarmPool`).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import nbformat
from nbconvert.preprocessors import ClearMetadataPreprocessor
from nbformat import NotebookNode
from nbgrader import utils as nbutils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, ClearOutput, DeduplicateIds, IgnorePattern,
    LimitOutput, OverwriteCells, OverwriteKernelspec, SaveAutoGrades,
)
from nbgrader.preprocessors.base import NbGraderPreprocessor
from traitlets import Bool, Dict, Integer, Unicode, Union, default
from traitlets.config import LoggingConfigurable

from . import feedback as fb
from .sandbox import resolve_sandbox_class, sandbox_trait
from .sandbox.base import Sandbox, SandboxError

log = logging.getLogger(__name__)

from ._speedups import ENGINES as _ENGINES, ENGINES_LOCK as _ENGINES_LOCK, PRIVATE_URL_PREFIXES as _PRIVATE_URL_PREFIXES  # noqa: E402

EventHook = Callable[[dict], None]


class GradingError(Exception):
    """The grading could not be done (bad source assignment, sandbox unavailable)."""


def _emit(hook: EventHook | None, event: dict) -> None:
    if hook is None:
        return
    try:
        hook(event)
    except Exception:  # a broken listener must not break grading
        log.warning("on_event hook failed", exc_info=True)


class _DeferredCommit:
    """``gradebook.db`` for nbgrader's SaveAutoGrades inside one learner's transaction: it commits after
    every cell; here those commits wait, and the learner's grades are flushed and committed once,
    together (one transaction for all of a learner's grades, not one per cell)."""

    def __init__(self, session):
        self._session = session

    def commit(self):
        pass

    def __getattr__(self, name):
        return getattr(self._session, name)


class _OneTransaction:
    """A Gradebook as nbgrader's preprocessors see it inside one learner's transaction: commits are
    deferred (:class:`_DeferredCommit`), and the learner's grades and comments are read once (two
    queries per notebook) instead of by two joined queries per cell. Rows not read ahead are
    looked up by the Gradebook itself."""

    def __init__(self, gradebook):
        self._gradebook = gradebook
        self.db = _DeferredCommit(gradebook.db)
        self._grades: dict[tuple, object] = {}
        self._comments: dict[tuple, object] = {}

    def read_ahead(self, notebook: str, assignment: str, student: str) -> None:
        from nbgrader.api import Comment, Grade
        from sqlalchemy.orm import joinedload

        submitted = self._gradebook.find_submission_notebook(notebook, assignment, student)
        for row in self.db.query(Grade).options(joinedload(Grade.cell)).filter(Grade.notebook_id == submitted.id):
            self._grades[(row.cell.name, notebook, assignment, student)] = row
        for row in self.db.query(Comment).options(joinedload(Comment.cell)).filter(
                Comment.notebook_id == submitted.id):
            self._comments[(row.cell.name, notebook, assignment, student)] = row

    def find_grade(self, grade_id, notebook, assignment, student):
        row = self._grades.get((grade_id, notebook, assignment, student))
        return row if row is not None else self._gradebook.find_grade(grade_id, notebook, assignment, student)

    def find_comment(self, grade_id, notebook, assignment, student):
        row = self._comments.get((grade_id, notebook, assignment, student))
        return row if row is not None else self._gradebook.find_comment(grade_id, notebook, assignment, student)

    def __getattr__(self, name):
        return getattr(self._gradebook, name)


class _SaveAutoGradesOnce(SaveAutoGrades):
    """nbgrader's SaveAutoGrades (its cell loop and rules) on the engine's scratch gradebook, in one
    transaction: its commit after every cell is made once, at the end, and the submission's grades
    and comments are read in two queries (:class:`_OneTransaction`). Same rows, same values."""

    def preprocess(self, nb, resources):
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.student_id = resources["nbgrader"]["student"]
        self.db_url = resources["nbgrader"]["db_url"]
        with Gradebook(self.db_url) as gb:
            view = _OneTransaction(gb)
            view.read_ahead(self.notebook_id, self.assignment_id, self.student_id)
            self.gradebook = view
            try:
                nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
                gb.db.commit()
            except Exception:
                gb.db.rollback()
                raise
        return nb, resources


# ---------------------------------------------------------------------------------------
# The source assignment, prepared once
# ---------------------------------------------------------------------------------------


class PreparedAssignment:
    """An instructor's source assignment turned into nbgrader's gradebook + release, once.

    Runs nbgrader's real ``generate_assignment`` (through the ``NbGraderAPI`` of a
    :class:`learnhub.course_content.NbGraderCourse`) in a private course directory. Keeps: the gradebook file (template, copied for every
    submission), the released notebooks (hidden tests stripped: for check mode and the
    feedback), per test cell whether it has hidden tests and the instructor's hint, and
    the non-notebook files nbgrader copies next to the notebooks when autograding.
    """

    def __init__(self, source_dir: str | os.PathLike, workdir: str | os.PathLike | None = None,
                 assignment_id: str | None = None):
        self.source_dir = Path(source_dir).resolve()
        if not self.source_dir.is_dir():
            raise GradingError(f"source assignment {self.source_dir} is not a directory")
        self.assignment_id = assignment_id or self.source_dir.name
        self.root = Path(workdir or tempfile.mkdtemp(prefix="learnhub-assignment-"))
        self.gradebook_path = self.root / "gradebook.db"
        self.db_url = f"sqlite:///{self.gradebook_path}"
        _PRIVATE_URL_PREFIXES.add(self.db_url)
        # nbgrader's bookkeeping for this assignment is serialized; execution is not
        self.lock = threading.RLock()
        self.has_duedate = False
        self.notebooks: list[str] = []
        self.release: dict[str, NotebookNode] = {}
        self.cells: dict[str, dict[str, dict]] = {}  # notebook -> grade_id -> info
        self.files: dict[str, bytes] = {}
        self._generate()

    def _generate(self) -> None:
        from learnhub.course_content import NbGraderCourse

        # The course directory is nbgrader's working copy; the gradebook lives next to it, in
        # self.root, and outlives it.
        course = NbGraderCourse(self.root / "course", self.assignment_id, source_dir=self.source_dir,
                                db_url=self.db_url)
        result = course.api.generate_assignment(self.assignment_id)
        if not result.get("success"):
            raise GradingError(
                "nbgrader generate_assignment failed for "
                f"{self.source_dir}: {result.get('error') or result.get('log')}"
            )
        with Gradebook(self.db_url) as gb:
            self.has_duedate = gb.find_assignment(self.assignment_id).duedate is not None
        # Files and notebooks are read from the instructor's folder itself: the course copy
        # leaves out Python caches, which this engine has always shipped with the data files.
        src = self.source_dir
        for path in sorted(src.rglob("*")):
            rel = path.relative_to(src)
            if path.is_file() and not path.name.endswith(".ipynb") and ".ipynb_checkpoints" not in rel.parts:
                self.files[rel.as_posix()] = path.read_bytes()
        for path in sorted(src.glob("*.ipynb")):
            name = path.stem
            self.notebooks.append(name)
            source_nb = nbformat.read(path, as_version=4)
            self.release[name] = nbformat.read(course.release_dir / path.name, as_version=4)
            info = {}
            for cell in source_nb.cells:
                md = cell.metadata.get("nbgrader", {})
                gid = md.get("grade_id")
                if not gid:
                    continue
                lh = cell.metadata.get("learnhub", {}) or {}
                info[gid] = {
                    "grade": bool(md.get("grade")),
                    "solution": bool(md.get("solution")),
                    "task": bool(md.get("task")),
                    "cell_type": cell.cell_type,
                    "points": float(md.get("points", 0) or 0),
                    "hidden": cell.cell_type == "code" and fb.has_hidden_tests(cell.source),
                    "hint": lh.get("hint"),
                }
            self.cells[name] = info
        # the course copy holds the solutions; keep only what grading needs
        shutil.rmtree(course.root, ignore_errors=True)

    def release_sources(self, notebook: str) -> dict[str, str]:
        return {
            c.metadata.nbgrader.grade_id: c.source
            for c in self.release.get(notebook, nbformat.v4.new_notebook()).cells
            if c.metadata.get("nbgrader", {}).get("grade_id")
        }

    def close(self) -> None:
        with _ENGINES_LOCK:
            engine = _ENGINES.pop(self.db_url, None)
        if engine is not None:
            from ._speedups import _INITIALIZED, dispose

            _INITIALIZED.discard(id(engine))
            dispose(engine)
        shutil.rmtree(self.root, ignore_errors=True)


def source_fingerprint(source_dir: str | os.PathLike) -> str:
    """Changes whenever a file of the source assignment changes (cache key)."""
    h = hashlib.sha256()
    root = Path(source_dir).resolve()
    h.update(str(root).encode())
    for path in sorted(root.rglob("*")):
        if path.is_file():
            st = path.stat()
            h.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# The execute step, in a sandbox
# ---------------------------------------------------------------------------------------


#: What a learner is told about a test that tampering kept from being graded (the details are staff's).
TAMPERED_MESSAGE = ("This test could not be graded automatically. Your instructor has been asked to review "
                    "your submission.")


def is_test_cell(cell) -> bool:
    """nbgrader's autograder tests: graded code cells that are not answers."""
    return cell.cell_type == "code" and nbutils.is_grade(cell) and not nbutils.is_solution(cell)


class SandboxExecute(NbGraderPreprocessor):
    """nbgrader's Execute, with the kernel replaced by a sandboxed runner.

    Follows nbclient/nbgrader semantics: empty cells and cells tagged ``skip-execution``
    are not run, errors do not stop the notebook (``allow_errors``), a reply error with
    no matching error output is appended (``Execute.on_cell_executed``), a timed-out cell
    gets nbgrader's ``CellTimeoutError`` output. Cells that cannot run because the
    sandbox stopped (a limit) get an error output, so their tests score 0 instead of
    passing silently.

    Test cells run in the sandbox's trusted interpreter, every other cell in the learner's
    (``sandbox/runner.py``). Once the learner's interpreter reports tampering (``tampered``), every
    later test cell gets an error output instead of its result — 0 points — and is listed in
    :attr:`tampered_tests`; :attr:`tampered` says what was seen, for the instructor's review.
    """

    skip_cells_with_tag = Unicode("skip-execution", help="As nbclient's.").tag(config=True)

    def __init__(self, sandbox: Sandbox, on_cell: Callable | None = None, **kw):
        super().__init__(**kw)
        self.sandbox = sandbox
        self.on_cell = on_cell
        self.tampered: list[str] = []
        self.tampered_tests: list[str] = []
        #: grade ids of test cells whose failure came from the learner's own exception
        self.learner_raised: set[str] = set()

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if self.skip_cells_with_tag in cell.metadata.get("tags", []):
            return cell, resources
        test = is_test_cell(cell)
        reply = self.sandbox.execute(cell.source, kind="test" if test else "learner")
        for sign in reply.get("tampered") or []:
            if sign not in self.tampered:
                self.tampered.append(sign)
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if test and reply.get("origin") == "learner":
            self.learner_raised.add(gid)
        if test and self.tampered:
            reply = {"type": "result", "status": "error", "ename": "TamperedGrading", "evalue": TAMPERED_MESSAGE,
                     "traceback": [TAMPERED_MESSAGE], "outputs": [], "execution_count": reply.get("execution_count")}
            self.tampered_tests.append(gid)
        outputs = [nbformat.from_dict(o) for o in reply.get("outputs", [])]
        for out in outputs:
            if out.output_type == "execute_result":
                out.setdefault("metadata", {})
            if out.output_type == "display_data":
                out.setdefault("metadata", {})
        cell.outputs = outputs
        if reply.get("execution_count") is not None:
            cell.execution_count = reply["execution_count"]
        if reply.get("status") == "error":
            ename = reply.get("ename")
            if reply.get("timed_out") or not any(
                o.output_type == "error" and o.get("ename") == ename for o in cell.outputs
            ):
                if reply.get("timed_out"):
                    ename, evalue = "CellTimeoutError", ""
                    tb = ["CellTimeoutError: No reply from kernel before timeout"]
                else:
                    evalue, tb = reply.get("evalue", ""), reply.get("traceback") or [
                        "ERROR: An error occurred while showtraceback was disabled"]
                cell.outputs.append(nbformat.from_dict(
                    {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": tb}))
        if self.on_cell is not None:
            self.on_cell(cell, reply)
        return cell, resources


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------


class GradingEngine(LoggingConfigurable):
    """Grades nbgrader submissions with nbgrader's rules, executing them in sandboxes."""

    sandbox_class = Union(
        [Unicode(), sandbox_trait()],
        default_value="",
        help="""The sandbox backend, like JupyterHub's spawner_class: a Sandbox subclass, its
        import string, or a learnhub.sandboxes entry point name ("bubblewrap", "docker", "local").
        Empty: bubblewrap when bwrap exists, otherwise an error (LocalSandbox is never chosen
        silently).""",
    ).tag(config=True)

    sandbox_config = Dict(
        help="Extra traits for every sandbox (e.g. {'python': '/opt/py/bin/python'})."
    ).tag(config=True)

    allow_unsafe_local = Bool(
        False, help="Allow LocalSandbox (no isolation at all). Only for trusted code."
    ).tag(config=True)

    limits = Dict(
        help="Default sandbox limits for every assignment, e.g. {'cell_timeout': 10, 'memory': 2**29}; "
        "names are those of Sandbox.LIMIT_TRAITS."
    ).tag(config=True)

    assignment_limits = Dict(
        help="Per-assignment overrides: {assignment_id: {limit: value}}."
    ).tag(config=True)

    student_id = Unicode("learner", help="Student id used inside the per-submission gradebook.").tag(config=True)

    include_feedback = Bool(True, help="Include the redacted feedback notebook in results.").tag(config=True)

    parallel_notebooks = Bool(
        True, help="Grade the notebooks of a submission concurrently (each in its own sandbox)."
    ).tag(config=True)

    cache_size = Integer(32, help="Prepared source assignments kept in memory.").tag(config=True)

    workdir = Unicode(help="Where prepared assignments and per-submission gradebooks live (private).").tag(config=True)

    @default("workdir")
    def _workdir_default(self):
        return tempfile.mkdtemp(prefix="learnhub-grading-")

    def __init__(self, **kw):
        super().__init__(**kw)
        self._prepared: dict[str, PreparedAssignment] = {}
        self._lock = threading.Lock()
        self._closing: list[threading.Thread] = []
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        os.chmod(self.workdir, 0o700)  # prepared assignments hold the solutions

    # ----- sandboxes -----
    def resolved_sandbox_class(self) -> type[Sandbox]:
        cls = resolve_sandbox_class(self.sandbox_class)
        if getattr(cls, "requires_unsafe_opt_in", False) and not self.allow_unsafe_local:
            raise GradingError(
                "LocalSandbox runs student code without any isolation; set allow_unsafe_local=True to use it"
            )
        return cls

    def limits_for(self, assignment_id: str | None, extra: dict | None = None) -> dict:
        limits = dict(self.limits)
        limits.update(self.assignment_limits.get(assignment_id or "", {}))
        limits.update(extra or {})
        return limits

    def new_sandbox(self, limits: dict | None = None) -> Sandbox:
        """A started, cold sandbox."""
        cls = self.resolved_sandbox_class()
        kwargs = dict(self.sandbox_config)
        if cls.__name__ == "LocalSandbox":
            kwargs["allow_unsafe_local"] = self.allow_unsafe_local
        sandbox = cls(parent=self, **kwargs)
        sandbox.apply_limits(limits or {})
        return sandbox.start()

    # ----- assignments -----
    def prepare(self, source_dir: str | os.PathLike, assignment_id: str | None = None) -> PreparedAssignment:
        """The prepared form of a source assignment (generate_assignment), cached."""
        key = source_fingerprint(source_dir) + ":" + (assignment_id or "")
        with self._lock:
            prepared = self._prepared.get(key)
            if prepared is None:
                prepared = PreparedAssignment(
                    source_dir, Path(self.workdir) / f"a-{uuid.uuid4().hex[:10]}", assignment_id
                )
                if len(self._prepared) >= self.cache_size:
                    old_key = next(iter(self._prepared))
                    self._prepared.pop(old_key).close()
                self._prepared[key] = prepared
            return prepared

    # ----- grading -----
    def grade(
        self,
        source_dir: str | os.PathLike | PreparedAssignment,
        submission_dir: str | os.PathLike,
        *,
        mode: str = "grade",
        sandbox_factory: Callable[[dict], Sandbox] | None = None,
        on_event: EventHook | None = None,
        limits: dict | None = None,
        assignment_id: str | None = None,
    ) -> dict:
        """Grade one submission directory (the learner's notebooks and files).

        ``mode="grade"`` restores tests from the source (hidden tests included) and scores
        exactly as ``nbgrader autograde``; ``mode="check"`` runs the released (visible) tests
        only. ``sandbox_factory(limits)`` returns a started sandbox (a warm pool's ``take``);
        by default a cold one is started. ``on_event`` receives dicts with a ``type`` of
        ``started``, ``notebook``, ``test``, ``done``.
        """
        if mode not in ("grade", "check"):
            raise ValueError("mode is 'grade' or 'check'")
        t0 = time.monotonic()
        if sandbox_factory is None:
            self.resolved_sandbox_class()  # refuse an unsafe/missing backend before any work
        prepared = source_dir if isinstance(source_dir, PreparedAssignment) else self.prepare(source_dir, assignment_id)
        aid = prepared.assignment_id
        limits = self.limits_for(aid, limits)
        factory = sandbox_factory or self.new_sandbox
        submission_dir = Path(submission_dir)
        _emit(on_event, {"type": "started", "assignment": aid, "mode": mode,
                         "notebooks": list(prepared.notebooks)})

        # One gradebook per prepared assignment; each submission is a student of its own in
        # it, removed afterwards, so nbgrader's queries stay warm.
        db_url = prepared.db_url
        student = f"{self.student_id}-{uuid.uuid4().hex[:12]}"
        try:
            with prepared.lock, Gradebook(db_url) as gb:
                gb.update_or_create_student(student)
                gb.update_or_create_submission(aid, student)
            files = self._submission_files(prepared, submission_dir)
            # Notebooks are independent (a fresh sandbox each, as nbgrader uses a fresh kernel
            # each): one notebook's execution overlaps the other's nbgrader bookkeeping.
            def one(name):
                return self._grade_notebook(prepared, name, submission_dir / f"{name}.ipynb", db_url, student,
                                            mode, factory, limits, files, on_event)

            if len(prepared.notebooks) > 1 and self.parallel_notebooks:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(max_workers=min(len(prepared.notebooks), 4)) as ex:
                    results = list(ex.map(one, prepared.notebooks))
            else:
                results = [one(name) for name in prepared.notebooks]
            failed = [r for r in results if r["status"] == "error"]
            if failed:
                # nbgrader's autograde fails the whole submission when one notebook fails its
                # checks (its gradebook then holds no scores): same outcome, reported.
                for r in results:
                    r["score"] = 0.0
                    for t in r["tests"]:
                        t["points"], t["passed"] = 0.0, False
            score = sum(r["score"] for r in results)
            max_score = sum(r["max_score"] for r in results)
            limits_hit = sorted({h for r in results for h in r["limits_hit"]})
            tampered = sorted({sign for r in results for sign in r.get("tampered") or []})
            result = {
                "assignment": aid,
                "mode": mode,
                "status": "failed" if failed else "graded",
                "tampered": tampered,
                "error": failed[0]["error"] if failed else None,
                "score": score,
                "max_score": max_score,
                "needs_manual_grade": any(r["needs_manual_grade"] for r in results),
                "limits_hit": limits_hit,
                "notebooks": results,
                "duration": round(time.monotonic() - t0, 4),
            }
            _emit(on_event, {"type": "done", "assignment": aid, "score": score, "max_score": max_score,
                             "limits_hit": limits_hit})
            return result
        finally:
            with prepared.lock, Gradebook(db_url) as gb:
                try:
                    gb.remove_submission(aid, student)
                    gb.remove_student(student)
                except MissingEntry:
                    pass

    def _submission_files(self, prepared: PreparedAssignment, submission_dir: Path) -> dict[str, bytes]:
        """Files placed next to the notebook in the sandbox: the learner's non-notebook files,
        overwritten by the source's (as nbgrader's autograde copies source files over)."""
        files: dict[str, bytes] = {}
        if submission_dir.is_dir():
            for path in sorted(submission_dir.rglob("*")):
                if path.is_file() and not path.is_symlink() and not path.name.endswith(".ipynb") \
                        and ".ipynb_checkpoints" not in path.parts:
                    if path.stat().st_size <= 16 * 1024 * 1024:
                        files[path.relative_to(submission_dir).as_posix()] = path.read_bytes()
        files.update(prepared.files)
        return files

    def _zero_notebook(self, db_url, name, aid, student):
        # nbgrader's autograde gives a missing notebook 0 on every grade
        with Gradebook(db_url) as gb:
            sub = gb.find_submission_notebook(name, aid, student)
            for grade in sub.grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
            gb.db.commit()

    def _grade_notebook(self, prepared, name, path, db_url, student, mode, factory, limits, files, on_event):
        aid = prepared.assignment_id
        info = prepared.cells.get(name, {})
        status, error, nb = "graded", None, None
        limits_hit: list[str] = []
        limit_messages: list[str] = []
        executor = None
        _emit(on_event, {"type": "notebook", "notebook": name})
        if path.is_symlink() or not path.is_file():
            status, error = "missing", "This notebook was not submitted."
        else:
            try:
                if path.stat().st_size > 32 * 1024 * 1024:
                    raise ValueError("notebook file larger than 32 MB")
                nb = nbformat.read(str(path), as_version=4)
                if not isinstance(nb, dict) or "cells" not in nb:
                    raise ValueError("no cells")
            except Exception as exc:  # noqa: BLE001 - anything unreadable is "not a notebook"
                status, error, nb = "invalid", f"Not a valid Jupyter notebook: {str(exc)[:300]}", None

        if nb is not None:
            resources = {"nbgrader": {"db_url": db_url, "assignment": aid, "notebook": name,
                                      "student": student, "course_id": "default_course"}}
            try:
                with prepared.lock:
                    # --- nbgrader's sanitize pass (Autograde.sanitize_preprocessors) ---
                    for pp in (ClearOutput(), DeduplicateIds(), OverwriteKernelspec(), OverwriteCells(),
                               CheckCellMetadata()):
                        nb, resources = pp(nb, resources)
                # nbgrader writes the sanitized notebook and reads it back for the second pass
                nb = nbformat.reads(nbformat.writes(nb), as_version=4)
                if mode == "check":
                    released = prepared.release_sources(name)
                    for cell in nb.cells:
                        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                        if gid in released and nbutils.is_grade(cell) and not nbutils.is_solution(cell):
                            cell.source = released[gid]
                # --- execute, in the sandbox (outside the lock: this is the slow part) ---
                sandbox = factory(limits)
                try:
                    sandbox.apply_limits({k: v for k, v in limits.items() if k in ("cell_timeout", "wall_time")})
                    sandbox.claim()
                    self._put_files(sandbox, files)

                    def on_cell(cell, reply):
                        md = cell.metadata.get("nbgrader", {})
                        if md.get("grade") and not md.get("solution") and cell.cell_type == "code":
                            points, max_points = nbutils.determine_grade(cell, self.log)
                            gid = md.get("grade_id")
                            _emit(on_event, {"type": "test", "notebook": name, "grade_id": gid,
                                             "points": points, "max_points": max_points,
                                             "passed": points is not None and points >= max_points,
                                             "hidden": mode != "check" and info.get(gid, {}).get("hidden", False)})

                    executor = SandboxExecute(sandbox, on_cell=on_cell)
                    nb, resources = executor(nb, resources)
                    limits_hit = list(sandbox.limit_hits)
                    limit_messages = [sandbox.explain(h) for h in limits_hit]
                finally:
                    # killing and cleaning up takes a few ms to a second; the result does not wait
                    closer = threading.Thread(target=sandbox.close, daemon=True, name=f"close-{sandbox.id}")
                    closer.start()
                    self._closing = [t for t in self._closing if t.is_alive()] + [closer]
                # --- nbgrader's scoring pass (Autograde.autograde_preprocessors minus Execute) ---
                scoring = [IgnorePattern(), ClearMetadataPreprocessor(), LimitOutput(), _SaveAutoGradesOnce()]
                if prepared.has_duedate:
                    # without a due date AssignLatePenalties changes nothing; it is skipped for speed
                    scoring.append(AssignLatePenalties())
                scoring.append(CheckCellMetadata())
                with prepared.lock:
                    for pp in scoring:
                        nb, resources = pp(nb, resources)
            except (SandboxError, GradingError):
                raise  # not the submission's fault: the job fails (and can be retried)
            except Exception as exc:  # noqa: BLE001 - nbgrader refused the notebook (e.g. bad metadata)
                self.log.info("autograde of %s failed: %s", name, exc, exc_info=True)
                status, error = "error", f"nbgrader could not grade this notebook: {type(exc).__name__}: {exc}"
                nb = None
        with prepared.lock:
            if nb is None:
                self._zero_notebook(db_url, name, aid, student)
            return self._notebook_result(prepared, name, nb, db_url, student, status, error,
                                         limits_hit, limit_messages, mode, executor)

    def _put_files(self, sandbox: Sandbox, files: dict[str, bytes]) -> None:
        # Sent through the pipe, not bound from the host: the sandbox never sees the
        # source directory (solutions) or the submission directory itself.
        files = {rel: data for rel, data in files.items() if not rel.startswith("/") and ".." not in rel.split("/")}
        if files and not sandbox.put_files(files):
            self.log.warning("could not place the assignment's files in sandbox %s", sandbox.id)

    def _notebook_result(self, prepared, name, nb, db_url, student, status, error, limits_hit,
                         limit_messages, mode, executor: SandboxExecute | None = None) -> dict:
        aid = prepared.assignment_id
        info = prepared.cells.get(name, {})
        tampered_tests = set(executor.tampered_tests) if executor else set()
        learner_raised = executor.learner_raised if executor else set()
        cells_by_id = {}
        #: test cells that ran after a cell with hidden tests: learner code there may have seen the
        #: hidden tests' inputs, so what it raised is not repeated to the learner
        after_hidden: set[str] = set()
        hidden_seen = False
        if nb is not None:
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid and gid not in cells_by_id:
                    cells_by_id[gid] = cell
                if gid and hidden_seen:
                    after_hidden.add(gid)
                if gid and mode != "check" and info.get(gid, {}).get("hidden") and is_test_cell(cell):
                    hidden_seen = True
        tests, manual = [], []
        with Gradebook(db_url) as gb:
            sub = gb.find_submission_notebook(name, aid, student)
            score, max_score = float(sub.score), float(sub.max_score)
            needs_manual = bool(sub.needs_manual_grade)
            grades = sorted(sub.grades, key=lambda g: list(info).index(g.name) if g.name in info else 1e9)
            for grade in grades:
                cinfo = info.get(grade.name, {})
                entry_points = float(grade.score)
                max_points = float(grade.max_score)
                is_test = not cinfo.get("solution") and cinfo.get("cell_type", "code") == "code"
                if not is_test:
                    manual.append({
                        "grade_id": grade.name, "points": entry_points, "max_points": max_points,
                        "needs_manual_grade": bool(grade.needs_manual_grade),
                        "cell_type": cinfo.get("cell_type"),
                    })
                    continue
                cell = cells_by_id.get(grade.name)
                has_hidden = bool(cinfo.get("hidden"))
                # A check runs the released cell, whose hidden region is gone: what failed there is
                # a visible test, safe to show. Only a graded run's hidden cells are pass/fail only.
                hidden = has_hidden and mode != "check"
                passed = grade.auto_score is not None and entry_points >= max_points and status == "graded"
                message, ename = fb.test_message(cell, passed, hidden)
                if not hidden and grade.name in learner_raised and grade.name in after_hidden and ename:
                    # the learner's own words, after it could see hidden tests' inputs: the kind only
                    message = f"{ename} (raised by your code)"
                if status != "graded":
                    message = error
                tampered = grade.name in tampered_tests
                if tampered:
                    message, ename = TAMPERED_MESSAGE, None
                hidden_error = None
                if hidden:
                    # pass/fail and the points: no error name, no explanation derived from it (the
                    # name is kept apart, for staff and the course's analytics only)
                    hidden_error, ename = ename, None
                entry = {
                    "grade_id": grade.name, "points": entry_points, "max_points": max_points,
                    "passed": passed, "hidden": hidden, "message": message,
                    "error": ename, "explanation": None if passed or hidden or tampered else fb.explain(ename),
                    "hint": None if passed or tampered else cinfo.get("hint"),
                    "hidden_error": hidden_error,
                }
                if mode == "check" and has_hidden:
                    entry["message"] = (message or "Visible tests passed.") + \
                        " Hidden tests are not run when checking; they count when the assignment is graded."
                tests.append(entry)
        result = {
            "name": name, "status": status, "error": error, "score": score, "max_score": max_score,
            "needs_manual_grade": needs_manual, "tests": tests, "manual": manual,
            "limits_hit": limits_hit, "limit_messages": limit_messages,
            # for the instructor's review: what the learner's interpreter did to the grading machinery
            "tampered": list(executor.tampered) if executor else [],
        }
        if self.include_feedback and nb is not None:
            hidden_ids = {gid for gid, c in info.items() if c.get("hidden")} if mode != "check" else set()
            passed = {t["grade_id"]: t["passed"] for t in tests}
            messages = {t["grade_id"]: t["message"] for t in tests}
            result["feedback"] = fb.redact_feedback(nb, hidden_ids, prepared.release_sources(name), passed,
                                                    tampered=tampered_tests, messages=messages)
        return result

    def close(self) -> None:
        for closer in list(self._closing):
            closer.join(timeout=10)
        with self._lock:
            for prepared in self._prepared.values():
                prepared.close()
            self._prepared.clear()
