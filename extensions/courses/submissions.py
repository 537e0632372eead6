"""The exchange engine: released files, fetches, submissions and feedback, over the file store.

Every upload is checked whole before anything is written (names, sizes, notebooks), then the
blobs go to the content-addressed store and one database transaction records the metadata. A
failed upload therefore leaves no row behind, and a blob nothing refers to is invisible.
"""
from __future__ import annotations

import logging
import posixpath
import re
from datetime import datetime, timezone
from typing import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnhub.course_content import SLUG_RE
from learnhub.db import session_scope
from learnhub.events import Verb
from learnhub.extensions.feedback.intake import IntakeError, SourceLocator, accept_files
from learnhub.graders.models import GradingJob
from learnhub.graders.queue import JobQueue

from . import models as m
from .catalog import (Caller, CourseError, acting_role, get_course, iso, is_instructor, is_staff, record_event,
                      utc)
from .store import FileStore

log = logging.getLogger("learnhub.courses")

#: nbgrader's timestamp format (``timestamp.txt``), always in UTC here
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
MAX_FILES = 500
_BAD_CHARS = re.compile(r"[\x00-\x1f\\:*?\"<>|]")


def check_path(name: str) -> str:
    """A safe relative POSIX path, or 400: no absolute paths, no '..', no control characters."""
    if not isinstance(name, str) or not name or len(name) > 255:
        raise CourseError(400, f"bad file name {name!r}: give a relative path of 1-255 characters",
                          {"file": name})
    if (name.startswith("/") or _BAD_CHARS.search(name)
            or any(part in ("", ".", "..") for part in name.split("/"))):
        raise CourseError(400, f"bad file name {name!r}: absolute paths, '..', backslashes and control "
                               "characters are refused", {"file": name})
    return posixpath.normpath(name)


def check_notebook(name: str, data: bytes) -> None:
    """422 naming the file when ``data`` is not a valid Jupyter notebook."""
    import nbformat

    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
    except UnicodeDecodeError:
        raise CourseError(422, f"{name} is not a valid notebook: not UTF-8 text", {"file": name})
    except Exception as exc:  # nbformat raises several kinds of errors
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise CourseError(422, f"{name} is not a valid notebook: {reason}", {"file": name, "reason": reason})


def check_files(files: Mapping[str, bytes], max_bytes: int) -> dict[str, bytes]:
    if not files:
        raise CourseError(400, "no files uploaded: send them as multipart form fields named 'files'")
    if len(files) > MAX_FILES:
        raise CourseError(413, f"too many files ({len(files)}); at most {MAX_FILES}")
    total = sum(len(v) for v in files.values())
    if total > max_bytes:
        raise CourseError(413, f"upload is {total} bytes; the limit is {max_bytes}", {"limit": max_bytes})
    clean: dict[str, bytes] = {}
    for name, data in files.items():
        path = check_path(name)
        if path in clean:
            raise CourseError(400, f"file {path} is uploaded twice", {"file": path})
        clean[path] = data
    for path, data in sorted(clean.items()):
        if path.endswith(".ipynb"):
            check_notebook(path, data)
    return clean


def nbgrader_timestamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def queue_grading(queue: JobQueue, sources: SourceLocator, session_factory, submission: dict,
                  files: Mapping[str, bytes], max_bytes: int) -> dict | None:
    """Queue the autograding (mode "grade") of a submission already committed, and link the job to it.

    The files are checked as the feedback service checks its uploads and the job is the one its
    ``POST api/submissions`` queues; its workers grade it and it serves the result. No second
    "submitted" event: the exchange recorded one with the submission. Returns
    ``{"id", "status": "queued"}``, or None (and a warning) when the assignment has no instructor
    source, the files cannot be graded or the queue cannot be written: the submission stands.
    """
    course_id, assignment_id, learner = submission["course_id"], submission["assignment_id"], submission["user"]
    where = f"submission {submission['id']} of {learner} to {course_id}/{assignment_id}"
    try:
        source = sources.find(course_id, assignment_id)
        if source is None:
            log.warning("%s is recorded but not autograded: no instructor source in %s", where,
                        ", ".join(str(root) for root in sources.roots))
            return None
        blob = accept_files(sorted(files.items()), max_bytes).to_zip()
    except IntakeError as exc:
        log.warning("%s is recorded but not autograded: %s", where, exc.message)
        return None
    try:
        job_id = queue.enqueue(course_id=course_id, assignment_id=assignment_id, learner_id=learner,
                               source_path=str(source), submission_blob=blob, mode="grade")
    except Exception:
        log.exception("%s is recorded but its grading job could not be queued", where)
        return None
    try:
        with session_scope(session_factory) as session:
            session.get(m.Submission, submission["id"]).grading_job_id = job_id
    except Exception:
        # The job runs anyway and the answer names it; only the listing will not show it.
        log.exception("grading job %s of %s is queued but could not be linked to it", job_id, where)
    return {"id": job_id, "status": "queued"}


class AssignmentExchange:
    def __init__(self, session: Session, store: FileStore, max_upload_bytes: int):
        self.session = session
        self.store = store
        self.max_upload_bytes = max_upload_bytes

    # -- helpers ------------------------------------------------------------------------------

    def _assignment(self, course_id: str, assignment_id: str) -> m.Assignment:
        assignment = self.session.get(m.Assignment, (course_id, assignment_id))
        if assignment is None:
            raise CourseError(404, f"course {course_id!r} has no assignment {assignment_id!r}",
                              {"course_id": course_id, "assignment_id": assignment_id})
        return assignment

    def _store_all(self, files: dict[str, bytes]) -> list[dict]:
        return [{"path": path, "sha256": self.store.put(data), "size": len(data)}
                for path, data in sorted(files.items())]

    def _read_all(self, entries: list[dict]) -> list[dict]:
        # Read (and verify) everything before answering: a corrupted blob is our 500, never bad data.
        return [{"path": e["path"], "sha256": e["sha256"], "size": e["size"], "content": self.store.get(e["sha256"])}
                for e in entries]

    # -- instructor: release ------------------------------------------------------------------

    def release(self, caller: Caller, course_id: str, assignment_id: str, files: Mapping[str, bytes], *,
                force: bool = False) -> dict:
        _course, role = get_course(self.session, caller, course_id)
        if not is_instructor(caller, role):
            raise CourseError(403, "only the course's instructors and admins may release assignments")
        if not SLUG_RE.match(assignment_id) and not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", assignment_id):
            raise CourseError(400, f"bad assignment id {assignment_id!r}")
        clean = check_files(files, self.max_upload_bytes)
        assignment = self.session.get(m.Assignment, (course_id, assignment_id))
        if assignment is not None and assignment.released and not force:
            raise CourseError(409, f"{assignment_id} is already released; release again with --force "
                                   "(force=1) to replace its files", {"assignment_id": assignment_id})
        entries = self._store_all(clean)
        if assignment is None:
            position = self.session.scalar(select(func.count()).select_from(m.Assignment)
                                           .where(m.Assignment.course_id == course_id)) or 0
            assignment = m.Assignment(course_id=course_id, id=assignment_id, title=assignment_id, position=position,
                                      hard_deadline=False, difficulty=1, release_files=[])
            self.session.add(assignment)
        assignment.release_files = entries
        assignment.released = True
        assignment.released_at = datetime.now(timezone.utc)
        record_event(self.session, caller.name, Verb.RELEASED, "assignment", assignment_id, course_id,
                     result={"title": assignment.title or assignment_id, "due": iso(assignment.due),
                             "files": [e["path"] for e in entries]},
                     context={"assignment_id": assignment_id, "role": acting_role(caller, role)})
        self.session.flush()
        return {"course_id": course_id, "assignment_id": assignment_id, "released": True,
                "released_at": iso(assignment.released_at),
                "files": [{k: e[k] for k in ("path", "sha256", "size")} for e in entries]}

    def unrelease(self, caller: Caller, course_id: str, assignment_id: str) -> dict:
        _course, role = get_course(self.session, caller, course_id)
        if not is_instructor(caller, role):
            raise CourseError(403, "only the course's instructors and admins may withdraw assignments")
        assignment = self._assignment(course_id, assignment_id)
        assignment.released = False
        record_event(self.session, caller.name, Verb.UNRELEASED, "assignment", assignment_id, course_id,
                     context={"assignment_id": assignment_id, "role": acting_role(caller, role)})
        return {"course_id": course_id, "assignment_id": assignment_id, "released": False}

    # -- learner: fetch -----------------------------------------------------------------------

    def download(self, caller: Caller, course_id: str, assignment_id: str) -> dict:
        _course, role = get_course(self.session, caller, course_id)
        if not (role or caller.manager):
            raise CourseError(403, f"enroll in {course_id} to fetch its assignments")
        assignment = self._assignment(course_id, assignment_id)
        if not assignment.released:
            # Nobody fetches an unreleased assignment, staff included (they have the source).
            raise CourseError(404, f"{assignment_id} of {course_id} is not released",
                              {"course_id": course_id, "assignment_id": assignment_id})
        files = self._read_all(assignment.release_files or [])
        self.session.add(m.Fetch(course_id=course_id, assignment_id=assignment_id, user_name=caller.name))
        record_event(self.session, caller.name, Verb.FETCHED, "assignment", assignment_id, course_id,
                     context={"assignment_id": assignment_id, "role": acting_role(caller, role)})
        return {"course_id": course_id, "assignment_id": assignment_id, "files": files}

    # -- learner: submit ----------------------------------------------------------------------

    def grading_statuses(self, subs: list[m.Submission]) -> dict[str, str]:
        """The current status of the autograding jobs of ``subs`` (one query)."""
        ids = [s.grading_job_id for s in subs if s.grading_job_id]
        if not ids:
            return {}
        return dict(self.session.execute(select(GradingJob.id, GradingJob.status).where(GradingJob.id.in_(ids))).all())

    @staticmethod
    def submission_dict(sub: m.Submission, feedback: list[m.FeedbackFile] | None = None,
                        grading_statuses: dict[str, str] | None = None) -> dict:
        grading = None
        if sub.grading_job_id:
            # the result is the feedback service's: GET /services/feedback/api/submissions/<id>
            grading = {"id": sub.grading_job_id, "status": (grading_statuses or {}).get(sub.grading_job_id)}
        out = {"id": sub.id, "course_id": sub.course_id, "assignment_id": sub.assignment_id, "user": sub.user_name,
               "attempt": sub.attempt, "submitted_at": iso(sub.submitted_at), "timestamp": sub.timestamp,
               "files": [{k: f[k] for k in ("path", "sha256", "size")} for f in sub.files or []],
               "score": sub.score, "max_score": sub.max_score, "graded_at": iso(sub.graded_at), "grading": grading}
        if feedback is not None:
            out["feedback"] = [{"path": f.path, "sha256": f.sha256, "size": f.size,
                                "released_at": iso(f.released_at)} for f in feedback]
        return out

    def check_can_submit(self, caller: Caller, course_id: str, assignment_id: str) -> m.Assignment:
        course, role = get_course(self.session, caller, course_id)
        if not role:
            raise CourseError(403, f"enroll in {course_id} to submit to it")
        assignment = self._assignment(course_id, assignment_id)
        if not assignment.released:
            raise CourseError(404, f"{assignment_id} of {course_id} is not released")
        if course.status == "archived":
            raise CourseError(409, f"course {course_id} is archived and takes no more submissions",
                              {"reason": "archived"})
        due = utc(assignment.due)
        if assignment.hard_deadline and due is not None and datetime.now(timezone.utc) > due:
            raise CourseError(409, f"the hard deadline of {assignment_id} ({iso(due)}) has passed",
                              {"reason": "hard_deadline", "due": iso(due)})
        return assignment

    def submit(self, caller: Caller, course_id: str, assignment_id: str, files: Mapping[str, bytes]) -> dict:
        """Record a submission (call :meth:`check_can_submit` first, in its own transaction or not).

        The attempt number comes from counting existing rows; the unique constraint on
        (course, assignment, user, attempt) turns a race between two concurrent submissions of
        the same learner into an IntegrityError, which the caller retries in a new transaction.
        """
        assignment = self.check_can_submit(caller, course_id, assignment_id)
        clean = check_files(files, self.max_upload_bytes)
        used = self.session.scalar(select(func.count()).select_from(m.Submission).where(
            m.Submission.course_id == course_id, m.Submission.assignment_id == assignment_id,
            m.Submission.user_name == caller.name)) or 0
        if assignment.max_attempts is not None and used >= assignment.max_attempts:
            raise CourseError(409, f"all {assignment.max_attempts} attempts at {assignment_id} are used",
                              {"reason": "attempt_limit", "max_attempts": assignment.max_attempts,
                               "attempts_used": used})
        entries = self._store_all(clean)
        now = datetime.now(timezone.utc)
        sub = m.Submission(course_id=course_id, assignment_id=assignment_id, user_name=caller.name,
                           attempt=used + 1, submitted_at=now, timestamp=nbgrader_timestamp(now), files=entries)
        self.session.add(sub)
        self.session.flush()  # the IntegrityError of a lost race surfaces here
        record_event(self.session, caller.name, Verb.SUBMITTED, "submission", sub.id, course_id,
                     result={"attempt": sub.attempt, "files": [e["path"] for e in entries]},
                     context={"assignment_id": assignment_id})
        return self.submission_dict(sub)

    # -- staff: collect -----------------------------------------------------------------------

    def _visible_user(self, caller: Caller, role: str | None, user: str | None) -> str | None:
        """None = every learner (staff); otherwise the one user whose work the caller may see."""
        staff = is_staff(caller, role) or caller.can_read_grades
        if user and user != caller.name and not staff:
            raise CourseError(403, "you may only see your own submissions and feedback")
        if not staff:
            return caller.name
        return user or None

    def list_submissions(self, caller: Caller, course_id: str, assignment_id: str, *, user: str | None = None,
                         latest: bool = False) -> list[dict]:
        _course, role = get_course(self.session, caller, course_id)
        if not (role or caller.manager or caller.can_read_grades):
            raise CourseError(403, f"enroll in {course_id} to see submissions")
        self._assignment(course_id, assignment_id)
        who = self._visible_user(caller, role, user)
        query = select(m.Submission).where(m.Submission.course_id == course_id,
                                           m.Submission.assignment_id == assignment_id)
        if who:
            query = query.where(m.Submission.user_name == who)
        subs = self.session.scalars(query.order_by(m.Submission.user_name, m.Submission.attempt)).all()
        if latest:
            by_user: dict[str, m.Submission] = {}
            for sub in subs:
                by_user[sub.user_name] = sub
            subs = list(by_user.values())
        feedback: dict[str, list[m.FeedbackFile]] = {}
        if subs:
            for f in self.session.scalars(select(m.FeedbackFile).where(
                    m.FeedbackFile.submission_id.in_([s.id for s in subs])).order_by(m.FeedbackFile.path)):
                feedback.setdefault(f.submission_id, []).append(f)
        statuses = self.grading_statuses(subs)
        return [self.submission_dict(s, feedback.get(s.id, []), statuses) for s in subs]

    def _submission(self, caller: Caller, course_id: str, assignment_id: str, submission_id: str
                    ) -> tuple[m.Submission, str | None]:
        _course, role = get_course(self.session, caller, course_id)
        sub = self.session.get(m.Submission, submission_id)
        if sub is None or sub.course_id != course_id or sub.assignment_id != assignment_id:
            raise CourseError(404, f"no submission {submission_id} of {course_id}/{assignment_id}")
        if sub.user_name != caller.name and not (is_staff(caller, role) or caller.can_read_grades):
            # Another learner's submission: the same answer as one that does not exist.
            raise CourseError(404, f"no submission {submission_id} of {course_id}/{assignment_id}")
        return sub, role

    def submission_files(self, caller: Caller, course_id: str, assignment_id: str, submission_id: str) -> dict:
        sub, _role = self._submission(caller, course_id, assignment_id, submission_id)
        files = self._read_all(sub.files or [])
        if sub.user_name != caller.name:
            record_event(self.session, sub.user_name, Verb.COLLECTED, "submission", sub.id, course_id,
                         context={"assignment_id": assignment_id, "by": caller.name})
        return {**self.submission_dict(sub, grading_statuses=self.grading_statuses([sub])), "files": files}

    # -- feedback -----------------------------------------------------------------------------

    def release_feedback(self, caller: Caller, course_id: str, assignment_id: str, *, submission_id: str | None,
                         user: str | None, timestamp: str | None, files: Mapping[str, bytes],
                         score: float | None = None, max_score: float | None = None,
                         cell_scores: dict | None = None) -> dict:
        _course, role = get_course(self.session, caller, course_id)
        if not is_staff(caller, role):
            raise CourseError(403, "only the course's instructors, TAs and admins may release feedback")
        assignment = self._assignment(course_id, assignment_id)
        if submission_id:
            sub = self.session.get(m.Submission, submission_id)
        elif user and timestamp:
            sub = self.session.scalar(select(m.Submission).where(
                m.Submission.course_id == course_id, m.Submission.assignment_id == assignment_id,
                m.Submission.user_name == user, m.Submission.timestamp == timestamp.strip()))
        else:
            raise CourseError(400, "say which submission: 'submission' (its id) or 'user' and 'timestamp'")
        if sub is None or sub.course_id != course_id or sub.assignment_id != assignment_id:
            raise CourseError(404, "no such submission of this assignment",
                              {"submission": submission_id, "user": user, "timestamp": timestamp})
        clean = check_files(files, self.max_upload_bytes)
        entries = self._store_all(clean)
        existing = {f.path: f for f in self.session.scalars(select(m.FeedbackFile).where(
            m.FeedbackFile.submission_id == sub.id))}
        now = datetime.now(timezone.utc)
        for e in entries:
            row = existing.get(e["path"])
            if row is None:
                self.session.add(m.FeedbackFile(submission_id=sub.id, path=e["path"], sha256=e["sha256"],
                                                size=e["size"], released_by=caller.name, released_at=now))
            else:  # feedback may be regenerated and released again; the submission itself never changes
                row.sha256, row.size, row.released_by, row.released_at = e["sha256"], e["size"], caller.name, now
        if score is not None:
            sub.score, sub.max_score, sub.cell_scores, sub.graded_at = score, max_score, cell_scores, now
        elif sub.graded_at is None:
            sub.graded_at = now
        record_event(self.session, sub.user_name, Verb.FEEDBACK_RELEASED, "submission", sub.id, course_id,
                     result={"score": score, "max_score": max_score, "title": assignment.title or assignment_id},
                     context={"assignment_id": assignment_id, "by": caller.name,
                              "files": [e["path"] for e in entries]})
        self.session.flush()
        return {"submission": sub.id, "user": sub.user_name, "timestamp": sub.timestamp,
                "files": [{k: e[k] for k in ("path", "sha256", "size")} for e in entries]}

    def fetch_feedback(self, caller: Caller, course_id: str, assignment_id: str, user: str | None = None) -> dict:
        _course, role = get_course(self.session, caller, course_id)
        if not (role or caller.manager or caller.can_read_grades):
            raise CourseError(403, f"enroll in {course_id} to fetch feedback")
        self._assignment(course_id, assignment_id)
        who = self._visible_user(caller, role, user) or caller.name
        subs = self.session.scalars(select(m.Submission).where(
            m.Submission.course_id == course_id, m.Submission.assignment_id == assignment_id,
            m.Submission.user_name == who).order_by(m.Submission.attempt)).all()
        out = []
        statuses = self.grading_statuses(subs)
        for sub in subs:
            rows = self.session.scalars(select(m.FeedbackFile).where(m.FeedbackFile.submission_id == sub.id)
                                        .order_by(m.FeedbackFile.path)).all()
            if not rows:
                continue
            files = self._read_all([{"path": r.path, "sha256": r.sha256, "size": r.size} for r in rows])
            out.append({**self.submission_dict(sub, grading_statuses=statuses), "feedback": files})
        if out and who == caller.name:
            record_event(self.session, caller.name, Verb.FEEDBACK_FETCHED, "assignment", assignment_id, course_id,
                         context={"assignment_id": assignment_id})
        return {"course_id": course_id, "assignment_id": assignment_id, "user": who, "items": out}
