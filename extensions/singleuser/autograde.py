"""nbgrader's autograde in learnhub's servers: the learner's code runs in a grading sandbox, never here.

``nbgrader autograde`` — Formgrader's "autograde" button, or the command in an instructor's terminal —
executes each collected notebook in a kernel it starts in the instructor's own server: the learner's
code would run as the instructor, with the instructor's files and ``JUPYTERHUB_API_TOKEN`` (which
acts as the instructor on every learnhub service). :class:`SandboxedExecute` takes the place of
nbgrader's ``Execute`` in ``Autograde.autograde_preprocessors`` (the shipped ``nbgrader_config.py``
sets it, :func:`learnhub.extensions.singleuser.configure_nbgrader`): it sends the notebook — as
nbgrader's sanitize step left it, tests restored from the gradebook — and the data files of its
folder to the feedback service (``POST api/courses/{course}/assignments/{assignment}/executions``),
whose grading workers run it in a sandbox with the assignment's limits, and writes the outputs they
send back into the cells. nbgrader then scores those outputs here, with its own code, as usual:
scoring reads outputs, it runs nothing of the learner's.

The token goes to the feedback service in the ``Authorization`` header, as every call of this
server's does; the sandbox gets cells and files only. Nothing here falls back to running the
notebook locally: when the service cannot execute it, that notebook's autograde fails with the
reason, as nbgrader's own does when its kernel dies.
"""
from __future__ import annotations

import fnmatch
import json
import os
import time
from pathlib import Path

import requests
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Integer, List, Unicode, default

#: What nbgrader's autograde does not copy into the autograded folder (CourseDirectory.ignore), and
#: the notebooks themselves: the data files sent with a notebook are the others.
IGNORED = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.ipynb"]


class SandboxedExecutionError(Exception):
    """The feedback service did not execute the notebook; the message says why."""


def feedback_service_url() -> str:
    """$LEARNHUB_FEEDBACK_URL, else $LEARNHUB_SERVICES_URL/feedback/, else $LEARNHUB_PUBLIC_URL/services/feedback/."""
    if os.environ.get("LEARNHUB_FEEDBACK_URL"):
        return os.environ["LEARNHUB_FEEDBACK_URL"]
    services = os.environ.get("LEARNHUB_SERVICES_URL") or \
        os.environ.get("LEARNHUB_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/") + "/services/"
    return services.rstrip("/") + "/feedback/"


class SandboxedExecute(NbGraderPreprocessor):
    """nbgrader's Execute step, done by learnhub's grading sandboxes (see the module's docstring)."""

    service_url = Unicode(help="The feedback service, e.g. https://hub.example.org/services/feedback/. Default: "
                               "$LEARNHUB_FEEDBACK_URL, else $LEARNHUB_SERVICES_URL/feedback/, else "
                               "$LEARNHUB_PUBLIC_URL/services/feedback/.").tag(config=True)

    @default("service_url")
    def _default_service_url(self):
        return feedback_service_url()

    api_token = Unicode(help="The token the feedback service is called with: this server's own. Default: "
                             "$LEARNHUB_API_TOKEN, else $JUPYTERHUB_API_TOKEN.").tag(config=True)

    @default("api_token")
    def _default_api_token(self):
        return os.environ.get("LEARNHUB_API_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")

    course_id = Unicode(help="The learnhub course the assignment belongs to (its staff may execute). Default: "
                             "nbgrader's CourseDirectory.course_id.").tag(config=True)

    timeout = Float(900.0, help="Seconds to wait for one notebook's execution, queue included (the sandbox's "
                                "own wall-time limit stops a notebook much sooner).").tag(config=True)
    poll_interval = Float(0.2, help="Seconds between two looks at the execution's status.").tag(config=True)
    request_timeout = Float(60.0, help="Seconds to wait for one answer of the feedback service.").tag(config=True)
    max_file_bytes = Integer(16 * 1024 * 1024, help="Data files larger than this are not sent with the notebook "
                                                    "(as the grading engine leaves them out).").tag(config=True)
    ignore = List(Unicode(), IGNORED, help="File name globs not sent with the notebook.").tag(config=True)

    # -- what the notebook is ---------------------------------------------------------------

    def _course(self) -> str:
        if self.course_id:
            return self.course_id
        parent = self.parent
        while parent is not None:  # the exporter, then nbgrader's Autograde converter and its coursedir
            coursedir = getattr(parent, "coursedir", None)
            if coursedir is not None and getattr(coursedir, "course_id", ""):
                return coursedir.course_id
            parent = getattr(parent, "parent", None)
        course = self.config.get("CourseDirectory", {}).get("course_id", "")
        if not course:
            raise SandboxedExecutionError(
                "learnhub runs autograding in a grading sandbox of the course: set c.CourseDirectory.course_id "
                "to the learnhub course's id in nbgrader_config.py")
        return course

    def _files(self, folder: str) -> list[tuple[str, bytes]]:
        """The data files next to the notebook: what its kernel would see in its working directory."""
        root = Path(folder)
        files = []
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_symlink() or not path.is_file() or any(
                    fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in self.ignore):
                continue
            if path.stat().st_size <= self.max_file_bytes:
                files.append((rel.as_posix(), path.read_bytes()))
        return files

    # -- the feedback service -------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs) -> dict:
        if not self.api_token:
            raise SandboxedExecutionError("no JupyterHub token (JUPYTERHUB_API_TOKEN): this server cannot reach "
                                          "learnhub's grading sandboxes, and learner code is not run here")
        url = self.service_url.rstrip("/") + "/api/" + path.lstrip("/")
        try:
            response = requests.request(method, url, headers={"Authorization": f"token {self.api_token}"},
                                        timeout=self.request_timeout, allow_redirects=False, **kwargs)
        except requests.RequestException as exc:
            raise SandboxedExecutionError(f"the feedback service at {self.service_url} is not answering: {exc}") \
                from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400 or not isinstance(body, dict):
            message = (body or {}).get("error", {}).get("message") if isinstance(body, dict) else None
            raise SandboxedExecutionError(f"the feedback service answered {response.status_code} to {method} "
                                          f"{path}: {message or response.text[:300]}")
        return body

    def execute(self, nb, course: str, assignment: str, name: str, folder: str) -> dict:
        """Send the notebook, wait for the execution; its result (``cells``, ``limits_hit``, ...)."""
        files = [("files", (f"{name}.ipynb", json.dumps(nb).encode(), "application/x-ipynb+json"))]
        files += [("files", (rel, data, "application/octet-stream")) for rel, data in self._files(folder)]
        accepted = self._call("POST", f"courses/{_quote(course)}/assignments/{_quote(assignment)}/executions",
                              files=files)
        deadline = time.monotonic() + self.timeout
        while True:
            job = self._call("GET", f"executions/{_quote(accepted['id'])}")
            if job["status"] == "graded":
                return job
            if job["status"] == "failed":
                raise SandboxedExecutionError(f"the grading sandbox could not execute {name}: {job.get('error')}")
            if time.monotonic() > deadline:
                raise SandboxedExecutionError(f"{name} was not executed within {self.timeout:.0f} s "
                                              f"(execution {accepted['id']})")
            time.sleep(self.poll_interval)

    # -- nbgrader's preprocessor --------------------------------------------------------------

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        folder = resources.get("metadata", {}).get("path") or os.getcwd()
        result = self.execute(nb, self._course(), info["assignment"], info["notebook"], folder)
        for entry in result.get("cells", []):
            index = entry.get("index")
            if not isinstance(index, int) or not 0 <= index < len(nb.cells) or nb.cells[index].cell_type != "code":
                raise SandboxedExecutionError(f"the execution answered for a cell {index!r} that is not a code cell")
            from nbformat import from_dict

            cell = nb.cells[index]
            cell.outputs = [from_dict(output) for output in entry.get("outputs", [])]
            cell.execution_count = entry.get("execution_count")
        for message in result.get("limit_messages", []):
            self.log.warning("%s/%s: %s", info["student"], info["notebook"], message)
        return nb, resources


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
