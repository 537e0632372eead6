"""What the feedback service holds about one person — export and erasure (``api/data/*``) — and the
retention of archived courses' grading jobs and help requests (``api/data/retention``). No web code.

Erased: their help requests (question, code, answer), and in their grading jobs what came from their
work (the submitted files, outputs, errors, progress). Pseudonymised: the grading jobs themselves
(course, assignment, score, timings: the grading statistics), where they are named in regrades
(targets, problems, who asked) and as the staff member who answered someone's help request.
"""
from __future__ import annotations

import base64

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from learnhub.data_rights import mentions, replace_name
from learnhub.graders.models import QUEUED, RUNNING, GradingJob
from learnhub.timeutil import iso

from .models import GradingRegrade as Regrade
from .models import HelpRequest

JOB_FIELDS = ("id", "course_id", "assignment_id", "mode", "submission_id", "regrade_id", "status", "attempts",
              "result", "error", "score", "max_score", "created_at", "started_at", "finished_at")


class FeedbackData:
    def __init__(self, session: Session):
        self.session = session

    def export(self, user: str) -> dict:
        s = self.session
        jobs = s.scalars(select(GradingJob).where(GradingJob.learner_id == user).order_by(GradingJob.created_at)).all()
        files = [{"path": f"grading_jobs/{job.id}.zip", "content_b64": base64.b64encode(job.submission_blob).decode()}
                 for job in jobs if job.submission_blob]
        regrades = s.scalars(select(Regrade).where(
            (Regrade.requested_by == user) | mentions(Regrade.targets, user) | mentions(Regrade.problems, user))).all()
        data = {
            "help_requests": [r.to_dict() for r in s.scalars(select(HelpRequest).where(HelpRequest.learner == user))],
            "help_answered": [r.id for r in s.scalars(select(HelpRequest).where(HelpRequest.answered_by == user))],
            "grading_jobs": [{k: (iso(v) if hasattr(v, "tzinfo") else v) for k in JOB_FIELDS
                              for v in [getattr(job, k)]} for job in jobs],
            "regrades": [{"id": r.id, "course_id": r.course_id, "assignment_id": r.assignment_id,
                          "requested_by": r.requested_by, "created_at": iso(r.created_at),
                          "targets": [t for t in r.targets or [] if t.get("learner") == user]} for r in regrades],
        }
        return {"data": data, "files": files}

    def erase(self, user: str, pseudonym: str) -> dict:
        s = self.session
        erased = {"help_requests": s.execute(delete(HelpRequest).where(HelpRequest.learner == user)).rowcount}
        pseudonymised = {
            "help_requests": s.execute(update(HelpRequest).where(HelpRequest.answered_by == user)
                                       .values(answered_by=pseudonym)).rowcount,
            "grading_jobs": s.execute(update(GradingJob).where(GradingJob.learner_id == user).values(
                learner_id=pseudonym, submission_blob=None, submission_path=None, result=None, progress=None,
                error=None)).rowcount,
            "grading_regrades": 0,
        }
        for regrade in s.scalars(select(Regrade).where(
                (Regrade.requested_by == user) | mentions(Regrade.targets, user) | mentions(Regrade.problems, user))):
            if regrade.requested_by == user:
                regrade.requested_by = pseudonym
            for field in ("targets", "problems"):
                value, changed = replace_name(getattr(regrade, field), user, pseudonym)
                if changed:
                    setattr(regrade, field, value)
            pseudonymised["grading_regrades"] += 1
        return {"erased": erased, "pseudonymised": pseudonymised}

    def apply_retention(self, course_ids: list[str]) -> dict:
        """Retention (``c.DataRetention`` in the courses service, which says which courses are archived
        long enough): delete their grading jobs, help requests and regrades. Jobs still queued or running
        stay (a worker holds them), and so do the regrades they belong to: the next run takes them."""
        s = self.session
        result = {"grading_jobs": 0, "help_requests": 0, "grading_regrades": 0}
        if not course_ids:
            return result
        busy = GradingJob.status.in_((QUEUED, RUNNING))
        in_use = set(s.scalars(select(GradingJob.regrade_id).where(
            GradingJob.course_id.in_(course_ids), busy, GradingJob.regrade_id.is_not(None))))
        result["grading_jobs"] = s.execute(delete(GradingJob).where(
            GradingJob.course_id.in_(course_ids), ~busy)).rowcount
        result["help_requests"] = s.execute(delete(HelpRequest).where(HelpRequest.course_id.in_(course_ids))).rowcount
        regrades = delete(Regrade).where(Regrade.course_id.in_(course_ids))
        if in_use:
            regrades = regrades.where(Regrade.id.not_in(in_use))
        result["grading_regrades"] = s.execute(regrades).rowcount
        return result
