"""The exchange engine: released files, fetches, submissions and feedback, over the file store.

Every upload is checked whole before anything is written (names, sizes, notebooks), then the
blobs go to the content-addressed store and one database transaction records the metadata. A
failed upload therefore leaves no row behind, and a blob nothing refers to is invisible.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from typing import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from learnhub.course_content import SLUG_RE
from learnhub.course_sources import SourceLocator
from learnhub.events import Verb
from learnhub.models import new_id
from learnhub.timeutil import iso, utcnow
from learnhub.uploads import UploadError, check_upload

from . import models as m
from .catalog import Caller, CourseError, acting_role, get_course, is_instructor, is_staff, record_event
from .policy import SubmissionPolicy
from .store import FileStore

log = logging.getLogger("learnhub.courses")

#: nbgrader's delimiter of hidden tests: feedback that still holds it would show them
HIDDEN_TESTS_MARK = b"BEGIN HIDDEN TESTS"

#: nbgrader's timestamp format (``timestamp.txt``), always in UTC here
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"


def check_files(files: Mapping[str, bytes], max_bytes: int) -> dict[str, bytes]:
    """The upload checked by learnhub's one checker (:mod:`learnhub.uploads`), or a CourseError."""
    try:
        return check_upload(files, max_bytes).files
    except UploadError as exc:
        raise CourseError(exc.status, exc.message, exc.details) from None


def nbgrader_timestamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


class AssignmentExchange:
    """Releases, fetches, submissions and feedback of one transaction (``session``).

    ``sources`` says which assignments the feedback service autogrades (those with an instructor
    source); a submission to one is recorded with ``autograde`` in its ``submitted`` event, which the
    feedback service grades, and its result comes back as a ``graded`` event
    (:mod:`.grades`)."""

    def __init__(self, session: Session, store: FileStore, max_upload_bytes: int,
                 sources: SourceLocator | None = None, policy: SubmissionPolicy | None = None):
        self.session = session
        self.policy = policy or SubmissionPolicy(session)
        self.store = store
        self.max_upload_bytes = max_upload_bytes
        self.sources = sources

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
        assignment.released_at = utcnow()
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

    @staticmethod
    def submission_dict(sub: m.Submission, feedback: list[m.FeedbackFile] | None = None) -> dict:
        grading = None
        if sub.grading_job_id:
            # the per-test result is the feedback service's: GET /services/feedback/api/submissions/<id>
            grading = {"id": sub.grading_job_id, "status": sub.autograde_status, "score": sub.autograde_score,
                       "max_score": sub.autograde_max_score, "graded_at": iso(sub.autograded_at)}
        out = {"id": sub.id, "course_id": sub.course_id, "assignment_id": sub.assignment_id, "user": sub.user_name,
               "attempt": sub.attempt, "submitted_at": iso(sub.submitted_at), "timestamp": sub.timestamp,
               "files": [{k: f[k] for k in ("path", "sha256", "size")} for f in sub.files or []],
               "score": sub.score, "max_score": sub.max_score, "graded_at": iso(sub.graded_at), "grading": grading,
               "late": sub.minutes_late is not None, "minutes_late": sub.minutes_late}
        if feedback is not None:
            out["feedback"] = [{"path": f.path, "sha256": f.sha256, "size": f.size,
                                "released_at": iso(f.released_at)} for f in feedback]
        return out

    def check_can_submit(self, caller: Caller, course_id: str, assignment_id: str) -> m.Assignment:
        """The assignment if the caller may submit to it now (:class:`.policy.SubmissionPolicy`),
        else a CourseError."""
        return self._check(caller, course_id, assignment_id)[0]

    def _check(self, caller: Caller, course_id: str, assignment_id: str, now=None):
        course, role = get_course(self.session, caller, course_id)
        if not role:
            raise CourseError(403, f"enroll in {course_id} to submit to it")
        assignment = self._assignment(course_id, assignment_id)
        standing = self.policy.check(course, assignment, caller.name, now)
        return assignment, standing

    def submit(self, caller: Caller, course_id: str, assignment_id: str, files: Mapping[str, bytes]) -> dict:
        """Record a submission (call :meth:`check_can_submit` first, in its own transaction or not).

        The attempt number comes from counting existing rows; the unique constraint on
        (course, assignment, user, attempt) turns a race between two concurrent submissions of
        the same learner into an IntegrityError, which the caller retries in a new transaction.
        """
        now = utcnow()
        _assignment, standing = self._check(caller, course_id, assignment_id, now)
        clean = check_files(files, self.max_upload_bytes)
        used = standing.attempts_used
        entries = self._store_all(clean)
        sub = m.Submission(id=new_id(), course_id=course_id, assignment_id=assignment_id, user_name=caller.name,
                           attempt=used + 1, submitted_at=now, timestamp=nbgrader_timestamp(now), files=entries,
                           minutes_late=standing.minutes_late(now))
        # Autograded when there is an instructor source to grade against and a notebook to grade.
        autograde = (self.sources is not None and any(path.endswith(".ipynb") for path in clean)
                     and self.sources.find(course_id, assignment_id) is not None)
        if autograde:
            # The feedback service grades it under this id (the job's id is the submission's).
            sub.grading_job_id, sub.autograde_status = sub.id, "queued"
        self.session.add(sub)
        self.session.flush()  # the IntegrityError of a lost race surfaces here
        record_event(self.session, caller.name, Verb.SUBMITTED, "submission", sub.id, course_id,
                     result={"attempt": sub.attempt, "files": [e["path"] for e in entries], "autograde": autograde},
                     context={"assignment_id": assignment_id, "role": "learner"})
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
        return [self.submission_dict(s, feedback.get(s.id, [])) for s in subs]

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
        return {**self.submission_dict(sub), "files": files}

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
        for path, data in clean.items():
            if HIDDEN_TESTS_MARK in data:
                # nbgrader's own generate_feedback keeps hidden tests in the HTML; learnhub's
                # single-user configuration removes them (learnhub.course_content.redaction)
                raise CourseError(422, f"{path} shows hidden tests to the learner; generate the feedback in "
                                       "a learnhub server (its nbgrader configuration removes them)", {"file": path})
        entries = self._store_all(clean)
        existing = {f.path: f for f in self.session.scalars(select(m.FeedbackFile).where(
            m.FeedbackFile.submission_id == sub.id))}
        now = utcnow()
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
        for sub in subs:
            rows = self.session.scalars(select(m.FeedbackFile).where(m.FeedbackFile.submission_id == sub.id)
                                        .order_by(m.FeedbackFile.path)).all()
            if not rows:
                continue
            files = self._read_all([{"path": r.path, "sha256": r.sha256, "size": r.size} for r in rows])
            out.append({**self.submission_dict(sub), "feedback": files})
        if out and who == caller.name:
            record_event(self.session, caller.name, Verb.FEEDBACK_FETCHED, "assignment", assignment_id, course_id,
                         context={"assignment_id": assignment_id})
        return {"course_id": course_id, "assignment_id": assignment_id, "user": who, "items": out}
