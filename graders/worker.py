"""Grading worker: claims jobs from the queue and grades them with warm sandboxes.

Run several (processes, machines, Kubernetes replicas) against one database:
``python -m learnhub.graders.worker --db-url postgresql://... --pool-size 2``.
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Callable

from traitlets import Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from .engine import GradingEngine
from .pool import WarmPool
from .queue import Claim, JobQueue

log = logging.getLogger(__name__)

MAX_BLOB_FILES = 200
MAX_BLOB_BYTES = 64 * 1024 * 1024


def extract_blob(blob: bytes, dest: Path) -> Path:
    """Unzip a submission blob safely: no absolute paths, no '..', no links, bounded size."""
    total = 0
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_BLOB_FILES:
            raise ValueError("too many files in submission")
        for info in infos:
            name = info.filename
            if name.startswith("/") or ".." in Path(name).parts or info.is_dir():
                continue
            total += info.file_size
            if total > MAX_BLOB_BYTES:
                raise ValueError("submission too large")
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
    return dest


def make_blob(directory: str | os.PathLike) -> bytes:
    """Zip a submission directory (for ``JobQueue.enqueue(submission_blob=...)``)."""
    buf = io.BytesIO()
    root = Path(directory)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


class Worker(LoggingConfigurable):
    """Claims grading jobs, grades them, stores results exactly once."""

    worker_id = Unicode(help="Name of this worker in job leases.").tag(config=True)

    @default("worker_id")
    def _worker_id_default(self):
        return f"{socket.gethostname()}:{os.getpid()}"

    lease_seconds = Float(60.0, help="Lease length; renewed every third of it while grading.").tag(config=True)
    poll_interval = Float(0.5, help="Seconds between polls of an empty queue.").tag(config=True)
    pool_size = Integer(2, help="Warm sandboxes kept by this worker (0: cold start each time).").tag(config=True)

    def __init__(self, db_url_or_queue, engine: GradingEngine | None = None,
                 on_event: Callable[[dict], None] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.queue = db_url_or_queue if isinstance(db_url_or_queue, JobQueue) else JobQueue(db_url_or_queue)
        self.engine = engine or GradingEngine(parent=self)
        self.on_event = on_event
        self.pool = WarmPool(self.engine, size=self.pool_size) if self.pool_size > 0 else None
        self._stop = threading.Event()
        self.processed = 0

    def stop(self) -> None:
        self._stop.set()

    def _heartbeat(self, claim: Claim, done: threading.Event, lost: threading.Event) -> None:
        while not done.wait(self.lease_seconds / 3):
            if not self.queue.renew(claim, self.lease_seconds):
                lost.set()
                return

    def process(self, claim: Claim) -> bool:
        """Grade one claimed job; True if this worker's result was stored."""
        done, lost = threading.Event(), threading.Event()
        hb = threading.Thread(target=self._heartbeat, args=(claim, done, lost), daemon=True)
        hb.start()
        tmp = Path(tempfile.mkdtemp(prefix="learnhub-job-"))

        def emit(event: dict) -> None:
            event = {**event, "job_id": claim.job_id}
            if event.get("type") in ("started", "test"):
                self.queue.report_progress(claim, event)
            if self.on_event:
                self.on_event(event)

        try:
            if claim.submission_blob is not None:
                submission = extract_blob(claim.submission_blob, tmp / "submission")
            else:
                submission = Path(claim.submission_path)
            if claim.mode == "execute":
                return self._execute(claim, submission)
            result = self.engine.grade(
                claim.source_path, submission, mode=claim.mode, on_event=emit,
                sandbox_factory=self.pool.take if self.pool else None,
                assignment_id=claim.assignment_id,
            )
            result.pop("duration", None)
            for nb in result["notebooks"]:
                fbnb = nb.pop("feedback", None)
                if fbnb is not None:
                    nb["feedback"] = dict(fbnb)
            stored = self.queue.complete(claim, result)
            if not stored:
                self.log.warning("job %s: lease lost, result discarded (another worker owns it)", claim.job_id)
            elif self.on_event:
                self.on_event({"type": "done", "job_id": claim.job_id, "score": result["score"],
                               "max_score": result["max_score"]})
            return stored
        except Exception as exc:  # noqa: BLE001 - a job failure must not kill the worker
            self.log.exception("job %s failed", claim.job_id)
            from .sandbox import SandboxError

            # a sandbox that would not start is our problem, not the submission's: retry
            self.queue.fail(claim, f"{type(exc).__name__}: {exc}", retry=isinstance(exc, SandboxError))
            if self.on_event:
                self.on_event({"type": "failed", "job_id": claim.job_id, "error": str(exc)})
            return False
        finally:
            done.set()
            shutil.rmtree(tmp, ignore_errors=True)
            self.processed += 1

    def _execute(self, claim: Claim, folder: Path) -> bool:
        """An ``execute`` job: run the notebook for an nbgrader autograde elsewhere; outputs only.

        What the job carries that is not a notebook an execution can run (none or several notebooks,
        unreadable JSON) fails it at once, without retries: sending it again will not help."""
        from .execute import execute_notebook, read_execution

        try:
            notebook, files = read_execution(folder)
        except Exception as exc:  # noqa: BLE001 - the caller's upload, reported back to it
            self.queue.fail(claim, f"not a notebook to execute: {exc}")
            return False
        result = execute_notebook(self.engine, notebook, files, assignment_id=claim.assignment_id,
                                  sandbox_factory=self.pool.take if self.pool else None)
        stored = self.queue.complete(claim, result)
        if not stored:
            self.log.warning("job %s: lease lost, result discarded (another worker owns it)", claim.job_id)
        return stored

    def run_once(self) -> bool:
        claim = self.queue.claim(self.worker_id, self.lease_seconds)
        if claim is None:
            return False
        self.process(claim)
        return True

    def run(self, exit_when_idle: bool = False, max_jobs: int | None = None) -> int:
        n = 0
        while not self._stop.is_set():
            if max_jobs is not None and n >= max_jobs:
                break
            if self.run_once():
                n += 1
                continue
            if exit_when_idle:
                break
            self._stop.wait(self.poll_interval)
        return n

    def close(self) -> None:
        if self.pool:
            self.pool.close()
        self.engine.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="learnhub-grader-worker", description=__doc__)
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--sandbox", default="")
    parser.add_argument("--allow-unsafe-local", action="store_true")
    parser.add_argument("--exit-when-idle", action="store_true")
    parser.add_argument("--max-jobs", type=int, default=None)
    parser.add_argument("--worker-id", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", message=".*not in session.*")
    engine = GradingEngine(sandbox_class=args.sandbox, allow_unsafe_local=args.allow_unsafe_local)
    kwargs = {"lease_seconds": args.lease, "poll_interval": args.poll, "pool_size": args.pool_size}
    if args.worker_id:
        kwargs["worker_id"] = args.worker_id
    worker = Worker(args.db_url, engine=engine, **kwargs)
    import signal

    # SIGTERM (Kubernetes, systemd): finish the current job, then close the pool cleanly
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    try:
        if worker.pool:
            worker.pool.wait_ready(timeout=60)
        print(f"READY {worker.worker_id}", flush=True)
        n = worker.run(exit_when_idle=args.exit_when_idle, max_jobs=args.max_jobs)
        print(f"PROCESSED {n}", flush=True)
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
