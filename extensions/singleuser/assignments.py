"""Fetch, submit and check an assignment from the server's own files (no web framework here).

Layout: nbgrader's with ``path_includes_course`` — ``<server root>/<course>/<assignment>/<files>``, which
``jupyter-config/nbgrader_config.py`` sets for the ``nbgrader`` commands too and which
:func:`.activity.course_of` reads back. Fetch and submit run nbgrader's exchange (blocking) in a worker
thread; a check uploads one notebook to the feedback service.
"""
from __future__ import annotations

import asyncio
import re
from pathlib import Path, PurePosixPath

from .bridge import BridgeError, HubBridge, Relayed

_NAME = re.compile(r"^[^/\\\x00.][^/\\\x00]{0,199}$")
_SKIP_DIRS = {".ipynb_checkpoints", "__pycache__", "feedback"}


def check_name(kind: str, value: str) -> str:
    """A course or assignment id that is one folder name (no separators, no leading dot)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise BridgeError(422, f"{value!r} is not a valid {kind} id.", {"field": kind})
    return value


class Assignments:
    """An assignment's files in the server root, and the services that take them."""

    def __init__(self, bridge: HubBridge, root_dir: str, log):
        self.bridge = bridge
        self.root = Path(root_dir).resolve()
        self.log = log
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def relative(self, course: str, assignment: str) -> str:
        return f"{check_name('course', course)}/{check_name('assignment', assignment)}"

    def folder(self, course: str, assignment: str) -> Path:
        return self.root / self.relative(course, assignment)

    def notebooks(self, folder: Path) -> list[str]:
        found = []
        for path in folder.rglob("*.ipynb"):
            rel = path.relative_to(self.root)
            if not _SKIP_DIRS.intersection(rel.parts):
                found.append(rel.as_posix())
        return sorted(found)

    def _lock(self, course: str, assignment: str) -> asyncio.Lock:
        return self._locks.setdefault((course, assignment), asyncio.Lock())

    async def _exchange(self, kind: str, course: str, assignment: str):
        from . import nbgrader_exchange as nx  # nbgrader is imported on first use only

        self.bridge.auth_headers()  # no token: say so, rather than "not answering"

        def work():
            return nx.run_exchange(kind, str(self.root), course, assignment,
                                   service_url=self.bridge.service_url("courses"),
                                   api_token=self.bridge.api_token, timeout=self.bridge.upload_timeout,
                                   log=self.log)

        try:
            return await asyncio.get_running_loop().run_in_executor(None, work)
        except nx.Refused as refused:
            return refused.relayed
        except nx.ExchangeError as exc:
            raise BridgeError(409 if kind == "fetch" else 422, str(exc), {"path": self.relative(course, assignment)})

    async def fetch(self, course: str, assignment: str) -> dict | Relayed:
        """Download the released assignment into ``<course>/<assignment>/``: ``{"path", "notebooks"}``,
        or the courses service's refusal; 409 when it is already there (nothing is overwritten)."""
        relative = self.relative(course, assignment)
        async with self._lock(course, assignment):
            if self.folder(course, assignment).exists():
                raise BridgeError(409, f"You already have {relative}; rename or delete it to fetch a fresh copy.",
                                  {"path": relative})
            result = await self._exchange("fetch", course, assignment)
            if isinstance(result, Relayed):
                return result
            return {"path": relative, "notebooks": self.notebooks(self.folder(course, assignment))}

    async def open(self, course: str, assignment: str | None = None) -> str:
        """Where JupyterLab should open for someone arriving at a course (an LMS launch): the course's
        folder, made when it is missing; with an assignment, its folder, fetched first when it is not
        here yet. A fetch the courses service refuses (not released, not enrolled) or that fails opens
        the course's folder instead: the person lands in JupyterLab either way, where the Courses panel
        says why. Returns the path, relative to the server root."""
        check_name("course", course)
        if assignment is not None:
            relative = self.relative(course, assignment)
            if self.folder(course, assignment).is_dir():
                return relative
            try:
                fetched = await self.fetch(course, assignment)
            except BridgeError as exc:
                fetched = exc
            if isinstance(fetched, dict):
                return relative
            self.log.info("learnhub: %s not fetched on arrival: %s", relative,
                          fetched.message if isinstance(fetched, BridgeError) else fetched.status)
        try:
            (self.root / course).mkdir(exist_ok=True)
        except OSError as exc:  # a file of that name, a read-only home: JupyterLab says what is there
            self.log.warning("learnhub: no folder for course %s: %s", course, exc)
        return course

    async def submit(self, course: str, assignment: str) -> Relayed:
        """Upload ``<course>/<assignment>/`` (nbgrader's file selection) to the courses service's exchange."""
        relative = self.relative(course, assignment)
        if not self.folder(course, assignment).is_dir():
            raise BridgeError(404, f"There is no folder {relative} to submit; fetch the assignment first.",
                              {"path": relative})
        async with self._lock(course, assignment):
            result = await self._exchange("submit", course, assignment)
        if isinstance(result, Relayed):
            return result
        import json

        return Relayed(201, json.dumps(result.submission).encode())

    def notebook_path(self, path) -> Path:
        """A notebook inside the server root: relative, no ``..``, no link leading out (422), existing (404)."""
        if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or "\x00" in path \
                or ".." in PurePosixPath(path).parts:
            raise BridgeError(422, "'path' must be a notebook path relative to the server root, without '..'.",
                              {"field": "path"})
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root):
            raise BridgeError(422, "'path' leads outside the server root.", {"field": "path"})
        if not target.is_file():
            raise BridgeError(404, f"There is no file {path}.", {"field": "path", "path": path})
        return target

    async def check(self, course: str, assignment: str, path) -> Relayed:
        """Run the visible tests of ``path`` (one notebook) in the feedback service: its ``{"id", "status"}``."""
        folder = self.folder(course, assignment).resolve()
        target = self.notebook_path(path)
        # The name the grader matches with the assignment's notebooks: relative to the assignment folder.
        name = target.relative_to(folder).as_posix() if target.is_relative_to(folder) else target.name
        data = await asyncio.get_running_loop().run_in_executor(None, target.read_bytes)
        return await self.bridge.upload("feedback", "checks", {"course": course, "assignment": assignment},
                                        [(name, data)])
