"""Regrades: an assignment's staff grade it again after fixing a test, on the grading workers.

``POST api/courses/{course}/assignments/{assignment}/regrades`` (:mod:`.handlers`) asks the courses
service — the owner of submissions — for the assignment's submissions and keeps, per learner, the
latest one this service autograded (graded or failed), with the score its grading gave: the
regrade's *targets*, stored in one ``grading_regrades`` row before the instructor hears 202.

:class:`RegradeIntake` then queues one grading job per target, in the background and driven by
what is stored (as the grading intake is): it fetches the submission's files from the courses
service and queues a ``grade`` job whose id is derived from the regrade and the submission, so a
target is queued once however often the intake runs or restarts. The jobs are graded by the same
workers and warm pools as learners' submissions, in parallel; each job carries ``submission_id``
and ``regrade_id``, so its ``graded`` event (:func:`.workers.graded_event`) names the submission and
the courses service's GradeRecorder updates that submission's score.

:func:`regrade_payload` is the progress: total, done, failed, and per finished target the score
before and after — the changes.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from urllib.parse import quote

from sqlalchemy import or_, select

from learnhub import db as lhdb
from learnhub.graders.models import FAILED, GRADED, GradingJob
from learnhub.graders.queue import JobExists, JobQueue
from learnhub.hubapi import APIClientError, PeerUnavailable, ServiceAPI
from learnhub.timeutil import iso, utcnow
from learnhub.uploads import UploadError, check_upload

from .models import FINISHED, QUEUED_ALL, QUEUEING, GradingRegrade

log = logging.getLogger("learnhub.feedback.regrades")

#: the namespace of regrade jobs' ids: uuid5(namespace, "<regrade>/<submission>")
JOB_NAMESPACE = uuid.UUID("3f6c2a0e-6a4e-4f4b-9d43-6a2b1c9f0a77")


def job_id_for(regrade_id: str, submission_id: str) -> str:
    return str(uuid.uuid5(JOB_NAMESPACE, f"{regrade_id}/{submission_id}"))


def gradings_of(session, submission_ids: list[str]) -> dict[str, tuple[GradingJob, GradingJob | None]]:
    """Per submission, ``(its latest grading job here, its latest one that graded it)`` (a first
    grading's id is the submission's; later ones name it in ``submission_id``)."""
    latest: dict[str, tuple[GradingJob, GradingJob | None]] = {}
    ids = list(submission_ids)
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        rows = session.scalars(select(GradingJob).where(
            GradingJob.mode == "grade",
            or_(GradingJob.submission_id.in_(chunk), GradingJob.id.in_(chunk))).order_by(GradingJob.created_at))
        for job in rows:
            key = job.submission_id or job.id
            graded = job if job.status == GRADED else latest.get(key, (None, None))[1]
            latest[key] = (job, graded)
    return latest


def latest_autograded(submissions: list[dict], gradings: dict) -> tuple[list[dict], list[dict]]:
    """Per learner, the latest submission that was autograded: ``(targets, skipped)``.

    ``submissions`` as the courses service lists them; ``gradings`` as :func:`gradings_of` gives them —
    this service knows at once what it graded, the courses service a moment later. The score before is
    that of the submission's latest grading that graded it (a regrade that failed left it so). A
    learner whose newer submission is still being graded is skipped: its grading reads the source when
    it runs, so it has the fixed tests already."""
    by_learner: dict[str, list[dict]] = {}
    for sub in submissions:
        by_learner.setdefault(sub["user"], []).append(sub)
    targets, skipped = [], []
    for learner in sorted(by_learner):
        subs = sorted(by_learner[learner], key=lambda s: (s.get("attempt") or 0, s.get("submitted_at") or ""))
        for sub in reversed(subs):
            job, graded = gradings.get(sub["id"], (None, None))
            if job is not None and job.status in (GRADED, FAILED):
                targets.append({"submission": sub["id"], "learner": learner, "attempt": sub.get("attempt"),
                                "score": graded.score if graded else None,
                                "max_score": graded.max_score if graded else None})
                break
            if job is not None or (sub.get("grading") or {}).get("status") == "queued":
                skipped.append({"submission": sub["id"], "learner": learner,
                                "reason": "being graded now, with the current tests"})
                break
            # a submission that is not autograded (no notebook, no source then): look at the one before
    return targets, skipped


async def list_submissions(courses: ServiceAPI, course: str, assignment: str) -> list[dict]:
    """Every submission of an assignment, from the courses service (all pages)."""
    path = f"courses/{quote(course, safe='')}/assignments/{quote(assignment, safe='')}/submissions"
    items, cursor = [], None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = await courses.request("GET", path, params=params)
        items.extend(page.get("items", []))
        cursor = page.get("next")
        if not cursor:
            return items


def create_regrade(sessions, course: str, assignment: str, requested_by: str, targets: list[dict],
                   skipped: list[dict]) -> str:
    """Store a regrade with its targets (and the learners left out on purpose, who are reported
    with it, not as failures); its jobs are queued by :class:`RegradeIntake`."""
    now = utcnow()
    regrade = GradingRegrade(id=str(uuid.uuid4()), course_id=course, assignment_id=assignment,
                             requested_by=requested_by, status=QUEUEING if targets else QUEUED_ALL,
                             targets=targets, problems=[{**item, "skipped": True} for item in skipped],
                             created_at=now, queued_at=None if targets else now)
    with lhdb.session_scope(sessions) as session:
        session.add(regrade)
    return regrade.id


def regrade_payload(session, regrade: GradingRegrade) -> dict:
    """A regrade's progress and, for every target that finished, its score before and after."""
    jobs = {job.submission_id: job for job in session.scalars(
        select(GradingJob).where(GradingJob.regrade_id == regrade.id))}
    problems = {p["submission"]: p for p in regrade.problems or [] if not p.get("skipped")}
    skipped = [p for p in regrade.problems or [] if p.get("skipped")]
    results, failures = [], []
    running = 0
    for target in regrade.targets or []:
        sid = target["submission"]
        job, problem = jobs.get(sid), problems.get(sid)
        if problem is not None:
            failures.append({"learner": target["learner"], "submission": sid, "job": None,
                             "error": problem["error"]})
        elif job is None or job.status not in (GRADED, FAILED):
            running += 1
        elif job.status == FAILED:
            failures.append({"learner": target["learner"], "submission": sid, "job": job.id,
                             "error": (job.error or "")[:500]})
        else:
            results.append({"learner": target["learner"], "submission": sid, "job": job.id,
                            "before": {"score": target.get("score"), "max_score": target.get("max_score")},
                            "after": {"score": job.score, "max_score": job.max_score}})
    total = len(regrade.targets or [])
    done = len(results) + len(failures)
    status = FINISHED if regrade.status != QUEUEING and done == total else regrade.status
    changes = [r for r in results if r["before"]["score"] != r["after"]["score"]
               or r["before"]["max_score"] != r["after"]["max_score"]]
    return {
        "id": regrade.id, "course": regrade.course_id, "assignment": regrade.assignment_id,
        "requested_by": regrade.requested_by, "created_at": iso(regrade.created_at),
        "status": status, "total": total, "done": done, "failed": len(failures), "running": running,
        "changes": changes, "unchanged": len(results) - len(changes), "failures": failures, "skipped": skipped,
    }


class RegradeIntake:
    """Queue the jobs of regrades that are not all queued yet (see the module's docstring)."""

    def __init__(self, session_factory, queue: JobQueue, sources, courses: ServiceAPI, max_upload_bytes: int,
                 concurrency: int = 4):
        self.sessions = session_factory
        self.queue = queue
        self.sources = sources
        self.courses = courses
        self.max_upload_bytes = max_upload_bytes
        self.concurrency = concurrency
        # problems are appended to one JSON list: one writer at a time (this service's loop is the only one)
        self._problems_lock = asyncio.Lock()

    def _open_regrades(self) -> list[tuple[str, str, str, list[dict]]]:
        with self.sessions() as session:
            regrades = list(session.scalars(select(GradingRegrade).where(GradingRegrade.status == QUEUEING)
                                            .order_by(GradingRegrade.created_at)))
            out = []
            for regrade in regrades:
                queued = set(session.scalars(select(GradingJob.submission_id).where(
                    GradingJob.regrade_id == regrade.id)))
                handled = queued | {p["submission"] for p in regrade.problems or []}
                out.append((regrade.id, regrade.course_id, regrade.assignment_id,
                            [t for t in regrade.targets or [] if t["submission"] not in handled]))
            return out

    def _problem(self, regrade_id: str, target: dict, error: str) -> None:
        with lhdb.session_scope(self.sessions) as session:
            regrade = session.get(GradingRegrade, regrade_id)
            problems = [p for p in regrade.problems or [] if p["submission"] != target["submission"]]
            regrade.problems = problems + [{"submission": target["submission"], "learner": target["learner"],
                                            "error": error}]

    async def problem(self, regrade_id: str, target: dict, error: str) -> None:
        async with self._problems_lock:
            await asyncio.get_running_loop().run_in_executor(None, self._problem, regrade_id, target, error)

    def _all_queued(self, regrade_id: str) -> None:
        with lhdb.session_scope(self.sessions) as session:
            regrade = session.get(GradingRegrade, regrade_id)
            regrade.status, regrade.queued_at = QUEUED_ALL, utcnow()

    async def run_once(self) -> int:
        """Queue what is waiting; returns how many jobs were queued. Stops at a courses service that
        does not answer (the rest is queued on a later round)."""
        loop = asyncio.get_running_loop()
        queued = 0
        for regrade_id, course, assignment, waiting in await loop.run_in_executor(None, self._open_regrades):
            try:
                source = self.sources.find(course, assignment)
            except UploadError:
                source = None
            if source is None:
                for target in waiting:
                    await self.problem(regrade_id, target, "the assignment has no instructor source to grade against")
                waiting = []
            limit = asyncio.Semaphore(self.concurrency)

            async def one(target):
                async with limit:
                    return await self.queue_one(regrade_id, course, assignment, source, target)

            try:
                queued += sum(await asyncio.gather(*(one(target) for target in waiting)))
            except PeerUnavailable as exc:
                log.warning("the courses service is not answering (%s); regrade %s is queued later",
                            exc.reason, regrade_id)
                return queued
            await loop.run_in_executor(None, self._all_queued, regrade_id)
        return queued

    async def queue_one(self, regrade_id: str, course: str, assignment: str, source, target: dict) -> bool:
        loop = asyncio.get_running_loop()
        sid = target["submission"]
        path = (f"courses/{quote(course, safe='')}/assignments/{quote(assignment, safe='')}"
                f"/submissions/{quote(sid, safe='')}/files")
        try:
            answer = await self.courses.request("GET", path)
            files = [(f["path"], base64.b64decode(f["content_b64"])) for f in answer["files"]]
            upload = check_upload(files, self.max_upload_bytes, require_notebook=True)
        except APIClientError as exc:
            await self.problem(regrade_id, target,
                               f"the courses service did not give its files: {exc.status} {exc.message}")
            return False
        except UploadError as exc:
            await self.problem(regrade_id, target, f"cannot be graded: {exc.message}")
            return False

        def enqueue() -> bool:
            try:
                self.queue.enqueue(course_id=course, assignment_id=assignment, learner_id=target["learner"],
                                   source_path=str(source), submission_blob=upload.to_zip(), mode="grade",
                                   job_id=job_id_for(regrade_id, sid), submission_id=sid, regrade_id=regrade_id)
                return True
            except JobExists:  # queued by an earlier round
                return False

        return await loop.run_in_executor(None, enqueue)
