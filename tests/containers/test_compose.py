"""The Compose deployment (deploy/compose/) brought up for real with the test override (every
container on the host's network, PostgreSQL on a port of its own): PostgreSQL, the migrations, the
hub with learnhub's services, and grading workers as containers that grade in Docker sandboxes.

Jobs are queued straight into the deployment's PostgreSQL with ``JobQueue`` (what the feedback
service does on a submission) from a directory shared with the workers; the workers are real
``learnhub/worker`` containers scaled with ``--scale worker=N``. Skips without Docker unless
LEARNHUB_REQUIRE_DOCKER=1.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from dockertools import REPO_ROOT, image_missing, need_docker

from learnhub.graders import testing as T

COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
DRAIN_JOBS = int(os.environ.get("LEARNHUB_DRAIN_JOBS", "100"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    def __init__(self, base: Path):
        self.project = f"learnhub-test-{os.getpid()}"
        self.share = base
        self.db_port = _free_port()
        self.hub_port = _free_port()
        password = secrets.token_urlsafe(16)
        postgres_image = "postgres:16-bookworm"
        if image_missing(postgres_image):
            postgres_image = "learnhub/postgres:latest"  # images/build.sh makes it where no registry answers
        self.env = {**os.environ, "POSTGRES_PASSWORD": password, "LEARNHUB_DB_PORT": str(self.db_port),
                    "LEARNHUB_DB_HOST": "127.0.0.1", "LEARNHUB_PORT": str(self.hub_port),
                    "LEARNHUB_TEST_SHARE": str(base), "LEARNHUB_POSTGRES_IMAGE": postgres_image,
                    "LEARNHUB_GRADER_LEASE": "6",
                    "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid)}
        self.db_url = f"postgresql+psycopg://learnhub:{password}@127.0.0.1:{self.db_port}/learnhub"

    def compose(self, *args, timeout=600, check=True) -> subprocess.CompletedProcess:
        cmd = ["docker-compose", "-p", self.project, "-f", "docker-compose.yml", "-f", "docker-compose.test.yml", *args]
        out = subprocess.run(cmd, cwd=COMPOSE_DIR, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return out

    def containers(self, service: str) -> list[str]:
        return self.compose("ps", "-q", service).stdout.split()

    def logs(self) -> str:
        return self.compose("logs", "--tail", "60", check=False).stdout[-8000:]

    def wait_hub(self, timeout=240):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.hub_port}/hub/health", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"the hub did not answer /hub/health:\n{self.logs()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    need_docker("learnhub/hub:latest", "learnhub/worker:latest", "learnhub/grader:latest")
    if subprocess.run(["docker-compose", "version"], capture_output=True).returncode != 0:
        pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
    base = tmp_path_factory.mktemp("compose")
    base.chmod(0o755)
    s = Stack(base)
    s.source = T.write_source(base / "source" / T.ASSIGNMENT)
    s.release = T.nbgrader_course(base / "course", s.source) / "release" / T.ASSIGNMENT
    try:
        t0 = time.monotonic()
        s.compose("up", "-d", "--scale", "worker=0")
        s.wait_hub()
        s.up_seconds = time.monotonic() - t0
        print(f"compose: stack up and the hub healthy in {s.up_seconds:.1f} s")
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", check=False)
        # the sandboxes of the worker killed mid-job: exited when their docker CLI went away
        subprocess.run("docker ps -aq --filter label=learnhub.sandbox --filter status=exited | xargs -r docker rm",
                       shell=True, capture_output=True)


def _queue(stack):
    from learnhub.graders.queue import JobQueue

    return JobQueue(stack.db_url)


def _enqueue(stack, q, name, variant="correct", extra_code=""):
    sub = T.make_submission(stack.release, variant, stack.share / "subs" / name, extra_code=extra_code)
    for path in [sub, *sub.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return q.enqueue(course_id="c1", assignment_id=T.ASSIGNMENT, learner_id=name,
                     source_path=str(stack.source), submission_path=str(sub))


def _wait_graded(q, ids, timeout, stack):
    from learnhub.graders.queue import GRADED

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = [q.get(i) for i in ids]
        if all(j.status == GRADED for j in jobs):
            return jobs
        failed = [j for j in jobs if j.status == "failed"]
        assert not failed, (failed[0].error, stack.logs())
        time.sleep(0.5)
    counts = q.counts()
    raise AssertionError(f"not drained in {timeout} s: {counts}\n{stack.logs()}")


def test_migrations_ran_once_and_the_hub_serves(stack):
    from learnhub import db as lhdb

    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(str(Path(lhdb.__file__).with_name("migrations"))).get_heads()
    assert [lhdb.current_revision(stack.db_url)] == heads
    migrate = stack.compose("ps", "-a", "migrate").stdout
    assert "Exit 0" in migrate, migrate
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.hub_port}/hub/api", timeout=10) as r:
        assert "version" in json.loads(r.read())


def test_drain_with_one_and_three_workers(stack):
    """DRAIN_JOBS (100) correct submissions queued, then drained by 1 worker container, then as many
    again by 3: every one graded once with the full score; both drain times printed."""
    q = _queue(stack)
    times = {}
    for workers in (1, 3):
        ids = [_enqueue(stack, q, f"drain{workers}-{i}") for i in range(DRAIN_JOBS)]
        t0 = time.monotonic()
        stack.compose("up", "-d", "--no-recreate", "--scale", f"worker={workers}", "worker")
        jobs = _wait_graded(q, ids, timeout=60 + DRAIN_JOBS * 8, stack=stack)
        times[workers] = time.monotonic() - t0
        assert all(j.score == 7.0 and j.attempts == 1 for j in jobs), [(j.score, j.attempts) for j in jobs][:5]
        assert len(stack.containers("worker")) == workers
        owners = {j.lease_owner for j in jobs}
        print(f"compose: {DRAIN_JOBS} submissions drained by {workers} worker(s) in {times[workers]:.1f} s "
              f"({len(owners)} workers took jobs)")
        if workers == 3:
            assert len(owners) >= 2, owners
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=0", "worker")


def test_killed_worker_job_is_graded_once_by_another(stack):
    """A worker container killed while it grades: its lease runs out (6 s here) and another worker
    grades the job; exactly one result, two attempts."""
    from learnhub.graders.queue import RUNNING

    q = _queue(stack)
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=1", "worker")
    job_id = _enqueue(stack, q, "slow", extra_code="import time\ntime.sleep(8)")
    deadline = time.monotonic() + 120
    while q.get(job_id).status != RUNNING:
        assert time.monotonic() < deadline, f"no worker claimed the job\n{stack.logs()}"
        time.sleep(0.2)
    doomed_owner = q.get(job_id).lease_owner
    (doomed,) = stack.containers("worker")
    subprocess.run(["docker", "kill", doomed], check=True, capture_output=True)
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=2", "worker")
    (job,) = _wait_graded(q, [job_id], timeout=180, stack=stack)
    assert job.score == 7.0 and job.attempts == 2, (job.score, job.attempts)
    assert job.lease_owner != doomed_owner


def test_restart_keeps_the_data(stack):
    """The whole stack stopped and started again: the graded jobs are still there and the hub serves."""
    q = _queue(stack)
    before = q.counts()
    assert before.get("graded", 0) > 0
    stack.compose("stop")
    stack.compose("up", "-d", "--scale", "worker=0")
    stack.wait_hub()
    assert _queue(stack).counts() == before
