"""nbgrader exchange over HTTP: the courses service instead of a shared directory.

The client side of the exchange, run in learners' and instructors' own servers (by nbgrader's CLI,
its Assignments panel and Formgrader, and by this extension's fetch and submit): it imports nothing of
the courses service. Configure nbgrader with (the shipped ``jupyter-config/nbgrader_config.py`` does)::

    c.ExchangeFactory.exchange = "learnhub.extensions.singleuser.exchange.HTTPExchange"
    c.ExchangeFactory.release_assignment = "learnhub.extensions.singleuser.exchange.ExchangeReleaseAssignment"
    ... (fetch_assignment, submit, collect, list, release_feedback, fetch_feedback)

Every call carries the user's own JupyterHub token (``JUPYTERHUB_API_TOKEN`` in a single-user
server), so the service decides what this user may do; nothing is shared on disk. Files written
locally are checked to stay inside their destination and are written whole (temporary folder,
then rename), so a failed fetch or collect leaves nothing half-done.
"""
from __future__ import annotations

import base64
import fnmatch
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import requests
from nbgrader.exchange import abc
from traitlets import Bool, Float, Unicode, default

IGNORE = [".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store", "feedback"]


def _safe_target(root: Path, relpath: str) -> Path:
    target = (root / relpath).resolve()
    if not str(target).startswith(str(root.resolve()) + os.sep):
        raise ValueError(f"refusing to write {relpath!r} outside {root}")
    return target


def write_files(dest: Path, files: list[dict], *, only_missing: bool = False) -> list[Path]:
    """Write service files (``content_b64``) under ``dest``; whole or nothing when ``dest`` is new."""
    dest = Path(dest)
    if only_missing and dest.exists():
        written = []
        for f in files:
            target = _safe_target(dest, f["path"])
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(f["content_b64"]))
                written.append(target)
        return written
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        for f in files:
            target = _safe_target(tmp, f["path"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(f["content_b64"]))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [dest / f["path"] for f in files]


class HTTPExchange(abc.Exchange):
    """Common to all: where the courses service is and which token to send."""

    service_url = Unicode(help="""The courses service, e.g. https://hub.example.org/services/courses/.
        Default: $LEARNHUB_COURSES_URL, else $LEARNHUB_PUBLIC_URL + /services/courses/.""").tag(config=True)

    @default("service_url")
    def _default_service_url(self):
        from learnhub.extensions.singleuser import courses_service_url

        return courses_service_url()

    api_token = Unicode(help="The user's JupyterHub token. Default: $LEARNHUB_API_TOKEN, else $JUPYTERHUB_API_TOKEN."
                        ).tag(config=True)

    @default("api_token")
    def _default_api_token(self):
        return os.environ.get("LEARNHUB_API_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN", "")

    timeout = Float(120.0, help="Seconds to wait for the courses service.").tag(config=True)

    path_includes_course = Bool(False, help="Put fetched assignments in <course_id>/<assignment_id>, "
                                            "as nbgrader's own exchange option.").tag(config=True)

    def init_src(self):
        pass

    def init_dest(self):
        pass

    def copy_files(self):
        pass

    # -- HTTP ---------------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs):
        url = self.service_url.rstrip("/") + "/api/" + path.lstrip("/")
        headers = kwargs.pop("headers", {})
        if not self.api_token:
            self.fail("no JupyterHub token: set JUPYTERHUB_API_TOKEN (a single-user server has it)")
        headers["Authorization"] = f"token {self.api_token}"
        try:
            response = requests.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            self.fail(f"cannot reach the courses service at {self.service_url}: {exc}")
        if response.status_code >= 400:
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:300]
            self.fail(f"{method} {path}: {response.status_code}: {message}")
        return response.json() if response.content else None

    def api_all(self, path: str, params: dict | None = None) -> list:
        """Every item of a paginated list."""
        params = dict(params or {}, limit=200)
        items = []
        while True:
            page = self.api("GET", path, params=params)
            items.extend(page["items"])
            if not page.get("next"):
                return items
            params["cursor"] = page["next"]

    def course_path(self, course_id: str) -> str:
        return f"courses/{quote(course_id, safe='')}"

    def assignment_path(self, course_id: str | None = None, assignment_id: str | None = None) -> str:
        course_id = course_id or self.coursedir.course_id
        assignment_id = assignment_id or self.coursedir.assignment_id
        return f"{self.course_path(course_id)}/assignments/{quote(assignment_id, safe='')}"

    def need_course(self):
        if not self.coursedir.course_id:
            self.fail("No course id specified. Re-run with --course flag.")

    def local_assignment_dir(self, course_id: str, assignment_id: str) -> Path:
        if self.path_includes_course:
            return Path(self.assignment_dir, course_id, assignment_id)
        return Path(self.assignment_dir, assignment_id)

    def read_folder(self, folder: Path, ignore: list[str] | None = None) -> list[tuple]:
        """Multipart parts for every file under ``folder``; links are refused, not followed."""
        ignore = IGNORE if ignore is None else ignore
        parts = []
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not any(fnmatch.fnmatch(d, p) for p in ignore))
            for name in sorted(filenames):
                if any(fnmatch.fnmatch(name, p) for p in ignore):
                    continue
                path = Path(dirpath, name)
                if path.is_symlink():
                    self.fail(f"{path} is a link; copy the file instead (links are not uploaded)")
                rel = path.relative_to(folder).as_posix()
                parts.append(("files", (rel, path.read_bytes())))
            for d in dirnames:
                if Path(dirpath, d).is_symlink():
                    self.fail(f"{Path(dirpath, d)} is a link; links are not uploaded")
        return parts


class ExchangeReleaseAssignment(HTTPExchange, abc.ExchangeReleaseAssignment):
    def copy_files(self):
        self.need_course()
        src = Path(self.coursedir.format_path(self.coursedir.release_directory, ".", self.coursedir.assignment_id))
        if not src.is_dir():
            self.fail(f"Assignment not found: {src} (run nbgrader generate_assignment first)")
        parts = self.read_folder(src, ignore=self.coursedir.ignore)
        result = self.api("POST", self.assignment_path() + "/release", files=parts,
                          params={"force": "1" if self.force else "0"})
        self.log.info("Released %s of %s: %s", self.coursedir.assignment_id, self.coursedir.course_id,
                      ", ".join(f["path"] for f in result["files"]))


class ExchangeFetchAssignment(HTTPExchange, abc.ExchangeFetchAssignment):
    def copy_files(self):
        self.need_course()
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        dest = self.local_assignment_dir(course_id, assignment_id)
        if dest.exists() and not self.replace_missing_files:
            self.fail(f"You already have a copy of the assignment in this directory: {assignment_id}")
        result = self.api("GET", self.assignment_path() + "/download")
        write_files(dest, result["files"], only_missing=self.replace_missing_files)
        self.log.info("Fetched as: %s %s", course_id, assignment_id)


class ExchangeSubmit(HTTPExchange, abc.ExchangeSubmit):
    def copy_files(self):
        self.need_course()
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        src = self.local_assignment_dir(course_id, assignment_id)
        if not src.is_dir():
            self.fail(f"Assignment not found: {src}")
        parts = self.read_folder(src, ignore=IGNORE + list(self.coursedir.ignore))
        # Compare with the released notebooks, as nbgrader's own submit does.
        released = {a["id"]: a for a in self.api_all(self.course_path(course_id) + "/assignments")}
        if assignment_id in released:
            mine = {Path(name).name for _field, (name, _data) in parts if name.endswith(".ipynb")}
            missing = [n for n in released[assignment_id]["notebooks"] if Path(n).name not in mine]
            if missing:
                message = f"Notebooks missing from the submission: {', '.join(missing)}"
                if self.strict:
                    self.fail(message + " (strict: not submitted)")
                self.log.warning(message)
        result = self.api("POST", self.assignment_path() + "/submissions", files=parts)
        self.submission = result
        self.log.info("Submitted as: %s %s %s (attempt %s)", course_id, assignment_id, result["timestamp"],
                      result["attempt"])
        if result.get("grading"):
            self.log.info("Autograding queued: the result will be at /services/feedback/api/submissions/%s",
                          result["grading"]["id"])


class ExchangeCollect(HTTPExchange, abc.ExchangeCollect):
    def copy_files(self):
        self.need_course()
        assignment_id = self.coursedir.assignment_id
        student = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else None
        params = {"latest": "1"}
        if student:
            params["user"] = student
        submissions = self.api_all(self.assignment_path() + "/submissions", params)
        if not submissions:
            self.log.warning("No submissions of '%s' for course '%s' to collect", assignment_id,
                             self.coursedir.course_id)
        for sub in submissions:
            user = sub["user"]
            dest = Path(self.coursedir.format_path(self.coursedir.submitted_directory, user, assignment_id))
            if dest.is_dir():
                existing = self.coursedir.get_existing_timestamp(str(dest))
                from nbgrader.utils import parse_utc
                if not (self.update and (existing is None or parse_utc(sub["timestamp"]) > existing)):
                    self.log.info("Submission already exists, use --update to update: %s %s", user, assignment_id)
                    continue
            files = self.api("GET", f"{self.assignment_path()}/submissions/{quote(sub['id'])}/files")["files"]
            extra = [{"path": "timestamp.txt", "content_b64": base64.b64encode(sub["timestamp"].encode()).decode()},
                     # nbgrader carries this file to the feedback folder: it names the submission there.
                     {"path": "submission_secret.txt", "content_b64": base64.b64encode(sub["id"].encode()).decode()}]
            write_files(dest, [f for f in files if f["path"] not in ("timestamp.txt", "submission_secret.txt")] + extra)
            self.log.info("Collecting submission: %s %s (attempt %s)", user, assignment_id, sub["attempt"])


class ExchangeReleaseFeedback(HTTPExchange, abc.ExchangeReleaseFeedback):
    def _scores(self, student: str) -> dict:
        """Total and per-cell scores from the instructor's gradebook, when it has them."""
        try:
            from nbgrader.api import Gradebook

            with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
                submission = gb.find_submission(self.coursedir.assignment_id, student)
                cells = {g.name: g.score for nb in submission.notebooks for g in nb.grades}
                return {"score": str(submission.score), "max_score": str(submission.max_score),
                        "cell_scores": json.dumps(cells)}
        except Exception as exc:  # no gradebook entry: feedback without a score
            self.log.debug("no gradebook scores for %s: %s", student, exc)
            return {}

    def copy_files(self):
        self.need_course()
        student = self.coursedir.student_id if self.coursedir.student_id not in ("", "*") else "*"
        exclude = set(filter(None, (self.coursedir.student_id_exclude or "").split(",")))
        pattern = self.coursedir.format_path(self.coursedir.feedback_directory, student, self.coursedir.assignment_id)
        for folder in sorted(glob.glob(pattern)):
            folder = Path(folder)
            student_id = folder.parent.name
            if student_id in exclude:
                continue
            html = sorted(folder.glob("*.html"))
            if not html:
                continue
            data = {"user": student_id, **self._scores(student_id)}
            if (folder / "timestamp.txt").is_file():
                data["timestamp"] = (folder / "timestamp.txt").read_text().strip()
            if (folder / "submission_secret.txt").is_file():
                data["submission"] = (folder / "submission_secret.txt").read_text().strip()
            parts = [("files", (p.name, p.read_bytes())) for p in html]
            self.api("POST", self.assignment_path() + "/feedback", data=data, files=parts)
            self.log.info("Releasing feedback for student '%s' on assignment '%s/%s'", student_id,
                          self.coursedir.course_id, self.coursedir.assignment_id)


class ExchangeFetchFeedback(HTTPExchange, abc.ExchangeFetchFeedback):
    def copy_files(self):
        self.need_course()
        course_id, assignment_id = self.coursedir.course_id, self.coursedir.assignment_id
        result = self.api("GET", self.assignment_path() + "/feedback")
        if not result["items"]:
            self.log.warning("No feedback yet for %s/%s", course_id, assignment_id)
        for item in result["items"]:
            dest = self.local_assignment_dir(course_id, assignment_id) / "feedback" / item["timestamp"]
            write_files(dest, item["feedback"])
            self.log.info("Fetched feedback: %s", dest)


class ExchangeList(HTTPExchange, abc.ExchangeList):
    def _courses(self) -> list[str]:
        if self.coursedir.course_id:
            return [self.coursedir.course_id]
        return [c["id"] for c in self.api_all("courses", {"mine": "1"})]

    def _notebooks(self, folder: Path, names: list[str]) -> list[dict]:
        return [{"notebook_id": Path(n).stem, "path": str((folder / n).absolute())} for n in names]

    def parse_assignments(self) -> list[dict]:
        wanted = self.coursedir.assignment_id or None
        out = []
        for course_id in self._courses():
            for a in self.api_all(self.course_path(course_id) + "/assignments"):
                if wanted and a["id"] != wanted:
                    continue
                if self.inbound or self.cached:
                    out.extend(self._submitted(course_id, a))
                    continue
                if not a["released"]:
                    continue
                local = self.local_assignment_dir(course_id, a["id"])
                status = "fetched" if local.exists() else "released"
                out.append({"course_id": course_id, "assignment_id": a["id"], "status": status,
                            "path": str(local.absolute()) if local.exists() else f"{course_id}/{a['id']}",
                            "notebooks": self._notebooks(local, a["notebooks"])})
        return out

    def _submitted(self, course_id: str, a: dict) -> list[dict]:
        params = {}
        if self.coursedir.student_id and self.coursedir.student_id != "*":
            params["user"] = self.coursedir.student_id
        subs = self.api_all(f"{self.course_path(course_id)}/assignments/{quote(a['id'])}/submissions", params)
        by_user: dict[str, list] = {}
        for sub in subs:
            local = self.local_assignment_dir(course_id, a["id"])
            feedback_dir = local / "feedback" / sub["timestamp"]
            has_exchange = bool(sub.get("feedback"))
            has_local = feedback_dir.is_dir() and any(feedback_dir.glob("*.html"))
            info = {"course_id": course_id, "student_id": sub["user"], "assignment_id": a["id"],
                    "timestamp": sub["timestamp"], "status": "submitted", "path": f"submission {sub['id']}",
                    "notebooks": [{"notebook_id": Path(f["path"]).stem, "path": f["path"],
                                   "has_local_feedback": has_local, "has_exchange_feedback": has_exchange,
                                   "local_feedback_path": str(feedback_dir / (Path(f["path"]).stem + ".html"))
                                   if has_local else None, "feedback_updated": False}
                                  for f in sub["files"] if f["path"].endswith(".ipynb")],
                    "has_local_feedback": has_local, "has_exchange_feedback": has_exchange,
                    "feedback_updated": False, "local_feedback_path": str(feedback_dir) if has_local else None}
            by_user.setdefault(sub["user"], []).append(info)
        return [{"course_id": course_id, "student_id": user, "assignment_id": a["id"], "status": "submitted",
                 "submissions": sorted(items, key=lambda i: i["timestamp"])} for user, items in sorted(by_user.items())]

    def list_files(self):
        assignments = self.parse_assignments()
        if self.inbound or self.cached:
            self.log.info("Submitted assignments:")
            for assignment in assignments:
                for info in assignment["submissions"]:
                    feedback = " (feedback ready to be fetched)" if info["has_exchange_feedback"] else ""
                    self.log.info("%s %s %s %s%s", info["course_id"], info["student_id"], info["assignment_id"],
                                  info["timestamp"], feedback)
        else:
            self.log.info("Released assignments:")
            for info in assignments:
                suffix = " (already downloaded)" if info["status"] == "fetched" else ""
                self.log.info("%s %s%s", info["course_id"], info["assignment_id"], suffix)
        return assignments

    def remove_files(self):
        if self.inbound or self.cached:
            self.fail("submissions are kept by the courses service and cannot be removed")
        assignments = self.parse_assignments()
        for info in assignments:
            self.api("DELETE", self.assignment_path(info["course_id"], info["assignment_id"]) + "/release")
            self.log.info("Removed release of %s %s", info["course_id"], info["assignment_id"])
        return assignments
