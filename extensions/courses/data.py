"""What the courses service holds about one person — export and erasure (``api/data/*``), and the
retention of archived courses. No web code (the service kit's handlers call it).

Erased: the person's enrollments, profile, fetches, extensions, submissions with their feedback and
the files in the store no other row refers to (a release notebook shared with the class stays).
Pseudonymised: where they appear as staff in others' rows (who released feedback, granted an
extension, created a course), so those rows stay true without naming them.
"""
from __future__ import annotations

import base64

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from learnhub.timeutil import iso

from . import models as m
from .store import FileStore, StoreError


def _row(obj) -> dict:
    return {c.key: (iso(v) if hasattr(v, "tzinfo") else v)
            for c in obj.__table__.columns for v in [getattr(obj, c.key)]}


class CoursesData:
    def __init__(self, session: Session, store: FileStore):
        self.session = session
        self.store = store

    def export(self, user: str) -> dict:
        s = self.session
        submissions = s.scalars(select(m.Submission).where(m.Submission.user_name == user)
                                .order_by(m.Submission.submitted_at)).all()
        ids = [sub.id for sub in submissions]
        feedback = s.scalars(select(m.FeedbackFile).where(m.FeedbackFile.submission_id.in_(ids))).all() if ids else []
        files = []
        for sub in submissions:
            for f in sub.files or []:
                files.append(self._file(f"submissions/{sub.course_id}/{sub.assignment_id}/{sub.attempt}/{f['path']}",
                                        f["sha256"]))
        by_id = {sub.id: sub for sub in submissions}
        for fb in feedback:
            sub = by_id[fb.submission_id]
            files.append(self._file(f"feedback/{sub.course_id}/{sub.assignment_id}/{sub.attempt}/{fb.path}", fb.sha256))
        profile = s.get(m.LearnerProfile, user)
        data = {
            "profile": _row(profile) if profile else None,
            "enrollments": [_row(r) for r in s.scalars(select(m.Enrollment).where(m.Enrollment.user_name == user))],
            "fetches": [_row(r) for r in s.scalars(select(m.Fetch).where(m.Fetch.user_name == user))],
            "extensions": [_row(r) for r in s.scalars(select(m.Extension).where(m.Extension.user_name == user))],
            "submissions": [_row(r) for r in submissions],
            "feedback_files": [_row(r) for r in feedback],
            "as_staff": {
                "courses_created": [r for r in s.scalars(select(m.Course.id).where(m.Course.created_by == user))],
                "feedback_released": s.scalar(select(func.count()).select_from(m.FeedbackFile)
                                              .where(m.FeedbackFile.released_by == user)),
                "extensions_granted": s.scalar(select(func.count()).select_from(m.Extension)
                                               .where(m.Extension.granted_by == user)),
            },
        }
        return {"data": data, "files": [f for f in files if f]}

    def _file(self, path: str, sha256: str) -> dict | None:
        try:
            content = self.store.get(sha256)
        except StoreError:
            return None  # a missing blob is not the person's data any more
        return {"path": path, "content_b64": base64.b64encode(content).decode("ascii")}

    def erase(self, user: str, pseudonym: str) -> dict:
        s = self.session
        submissions = s.scalars(select(m.Submission).where(m.Submission.user_name == user)).all()
        ids = [sub.id for sub in submissions]
        blobs = {f["sha256"] for sub in submissions for f in sub.files or []}
        erased = {}
        if ids:
            feedback = s.scalars(select(m.FeedbackFile).where(m.FeedbackFile.submission_id.in_(ids))).all()
            blobs |= {fb.sha256 for fb in feedback}
            erased["feedback_files"] = s.execute(delete(m.FeedbackFile).where(
                m.FeedbackFile.submission_id.in_(ids))).rowcount
        erased["submissions"] = s.execute(delete(m.Submission).where(m.Submission.user_name == user)).rowcount
        for name, model in (("enrollments", m.Enrollment), ("assignment_fetches", m.Fetch),
                            ("assignment_extensions", m.Extension)):
            erased[name] = s.execute(delete(model).where(model.user_name == user)).rowcount
        erased["learner_profiles"] = s.execute(delete(m.LearnerProfile).where(m.LearnerProfile.user_name == user)).rowcount
        pseudonymised = {
            "courses": s.execute(update(m.Course).where(m.Course.created_by == user).values(created_by=pseudonym)).rowcount,
            "feedback_files": s.execute(update(m.FeedbackFile).where(m.FeedbackFile.released_by == user)
                                        .values(released_by=pseudonym)).rowcount,
            "assignment_extensions": s.execute(update(m.Extension).where(m.Extension.granted_by == user)
                                               .values(granted_by=pseudonym)).rowcount,
        }
        s.flush()
        erased["store_files"] = self.remove_unreferenced(blobs)
        return {"erased": erased, "pseudonymised": pseudonymised}

    def remove_unreferenced(self, blobs: set[str]) -> int:
        """Delete the blobs of ``blobs`` no submission, feedback file or release still refers to."""
        if not blobs:
            return 0
        s = self.session
        used = set(s.scalars(select(m.FeedbackFile.sha256).where(m.FeedbackFile.sha256.in_(blobs))))
        # files and release_files are JSON lists: read the (few) rows that could refer to a blob
        for files in s.scalars(select(m.Submission.files)):
            used |= {f["sha256"] for f in files or []} & blobs
        for files in s.scalars(select(m.Assignment.release_files)):
            used |= {f["sha256"] for f in files or []} & blobs
        return sum(self.store.remove(sha) for sha in blobs - used)

    def apply_retention(self, cutoff) -> dict:
        """Delete the learners' work in courses archived (last changed) before ``cutoff``; returns
        ``{"courses": [ids], "submissions": n, "store_files": n}``."""
        s = self.session
        courses = list(s.scalars(select(m.Course.id).where(m.Course.status == "archived", m.Course.updated_at < cutoff)))
        result = {"courses": courses, "submissions": 0, "store_files": 0}
        if not courses:
            return result
        submissions = s.scalars(select(m.Submission).where(m.Submission.course_id.in_(courses))).all()
        ids = [sub.id for sub in submissions]
        blobs = {f["sha256"] for sub in submissions for f in sub.files or []}
        if ids:
            blobs |= set(s.scalars(select(m.FeedbackFile.sha256).where(m.FeedbackFile.submission_id.in_(ids))))
            s.execute(delete(m.FeedbackFile).where(m.FeedbackFile.submission_id.in_(ids)))
        result["submissions"] = s.execute(delete(m.Submission).where(m.Submission.course_id.in_(courses))).rowcount
        for model in (m.Fetch, m.Extension):
            s.execute(delete(model).where(model.course_id.in_(courses)))
        s.flush()
        result["store_files"] = self.remove_unreferenced(blobs)
        return result
