"""The Compose deployment (deploy/compose/) brought up for real with the test override (every
container on the host's network, PostgreSQL on a port of its own): PostgreSQL, the migrations, the
hub with learnhub's services and the demo course the hub image carries, and grading workers as
containers that grade in Docker sandboxes.

A learner goes the whole way through it as a person would: signs up and logs in at the hub's pages,
enrolls in the demo course, starts their server (a ``learnhub/singleuser`` container DockerSpawner
starts), fetches the assignment with nbgrader's CLI inside that container, writes the solution in
through the server's contents API, submits with nbgrader, and follows the per-test results on the
feedback service's WebSocket; a worker container grades it in a Docker sandbox.

For the drain, crash and restart tests jobs are queued straight into the deployment's PostgreSQL
with ``JobQueue`` (what the feedback service does on a submission) from a directory shared with the
workers; the workers are real ``learnhub/worker`` containers scaled with ``--scale worker=N``.
Skips without Docker unless LEARNHUB_REQUIRE_DOCKER=1.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from dockertools import REPO_ROOT, image_missing, need_docker
from hubtools import feedback_events, log_in, personal_token, sign_up

from learnhub.graders import testing as T

COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
DRAIN_JOBS = int(os.environ.get("LEARNHUB_DRAIN_JOBS", "100"))
#: where the drain times are written as well as printed (.ci/run prints the file at the end)
DRAIN_REPORT = os.environ.get("LEARNHUB_DRAIN_REPORT", "")
SINGLEUSER_IMAGE = "learnhub/singleuser:latest"
# the demo course (courses/intro-python), which the hub image carries and loads on first start
COURSE, ASSIGNMENT, NOTEBOOK = "intro-python", "01-basics", "basics.ipynb"
SOLUTION = REPO_ROOT / "courses" / COURSE / "source" / ASSIGNMENT / NOTEBOOK
# a loaded machine starts JupyterLab in a container more slowly than JupyterHub's defaults allow
TEST_CONFIG = "c = get_config()\nc.Spawner.start_timeout = 240\nc.Spawner.http_timeout = 180\n"


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
        self.url = f"http://127.0.0.1:{self.hub_port}"  # (hubtools' sign_up and log_in read it)
        self.learners: list[str] = []  # whose containers and volumes the fixture removes

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
    need_docker("learnhub/hub:latest", "learnhub/worker:latest", "learnhub/grader:latest", SINGLEUSER_IMAGE)
    if subprocess.run(["docker-compose", "version"], capture_output=True).returncode != 0:
        pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
    base = tmp_path_factory.mktemp("compose")
    base.chmod(0o755)
    s = Stack(base)
    s.source = T.write_source(base / "source" / T.ASSIGNMENT)
    s.release = T.nbgrader_course(base / "course", s.source) / "release" / T.ASSIGNMENT
    (base / "learnhub_config.py").write_text(TEST_CONFIG)
    (base / "learnhub_config.py").chmod(0o644)  # the hub runs as uid 1000
    try:
        t0 = time.monotonic()
        s.compose("up", "-d", "--scale", "worker=0")
        s.wait_hub()
        s.up_seconds = time.monotonic() - t0
        print(f"compose: stack up and the hub healthy in {s.up_seconds:.1f} s")
        yield s
    finally:
        s.compose("down", "-v", "--remove-orphans", check=False)
        # learners' containers and volumes are the engine's, not the project's: Compose leaves them
        for name in s.learners:
            subprocess.run(["docker", "rm", "-f", f"jupyter-{name}"], capture_output=True)
            subprocess.run(["docker", "volume", "rm", "-f", f"learnhub-user-{name}"], capture_output=True)
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


def _docker(*args, timeout=300) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"docker {' '.join(args)}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
    return out.stdout


def _answered(fetched: dict, solution: dict) -> dict:
    """The fetched notebook with the learner's answers typed into its answer cells: each solution
    cell gets the code of the instructor's cell of the same grade_id (without nbgrader's solution
    markers), as a learner who solved it would write; every other cell stays as fetched."""
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in solution["cells"]
               if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    written = 0
    for cell in fetched["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and meta.get("grade_id") in answers:
            source = answers[meta["grade_id"]]
            source = "".join(source) if isinstance(source, list) else source
            cell["source"] = "\n".join(line for line in source.splitlines()
                                       if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            written += 1
    assert written >= 5, f"only {written} answer cells in the fetched notebook"
    return fetched


def test_learner_signs_up_fetches_submits_and_gets_results_live(stack):
    """The learner flow on the deployment: sign-up and login at the hub's pages, enrollment in the
    demo course, their server in a singleuser container, nbgrader's fetch and submit inside it, the
    per-test results over the feedback service's WebSocket, graded by a worker container in a Docker
    sandbox of the grader image."""
    import requests

    from learnhub.graders.queue import GRADED

    name = f"lena{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    stack.learners.append(name)
    # one grading worker (the hub grades nothing: LEARNHUB_GRADER_WORKERS=0); its start, with its
    # warm sandbox, overlaps the learner's sign-up and spawn
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=1", "worker")

    # sign-up (the native authenticator's form, open sign-up as in the embedded default), then login
    signed = sign_up(stack, name, password)
    assert signed.status_code == 200, (signed.status_code, signed.text[-500:])
    session = log_in(stack, name, password)  # (fails unless the sign-up made an account that may log in)
    token = personal_token(stack, session, name, note="compose e2e")
    auth = {"Authorization": f"token {token}"}

    # the demo course is in the catalogue (the hub image's copy of courses/), open for enrollment;
    # `learnhub up` loads it once the hub answers, so right after the start it may not be there yet
    courses = f"{stack.url}/services/courses/api/courses"
    deadline = time.monotonic() + 120
    while True:
        catalogue = requests.get(courses, headers=auth, timeout=30)
        assert catalogue.status_code == 200, catalogue.text
        if COURSE in [c["id"] for c in catalogue.json()["items"]]:
            break
        assert time.monotonic() < deadline, f"no demo course in the catalogue: {catalogue.text}\n{stack.logs()}"
        time.sleep(1)
    enrolled = requests.post(f"{courses}/{COURSE}/enrollments", headers=auth, json={}, timeout=30)
    assert enrolled.status_code == 201 and enrolled.json()["mirrored"] is True, enrolled.text

    # the learner starts their own server: DockerSpawner's container of the singleuser image
    spawn_t0 = time.monotonic()
    started = requests.post(f"{stack.url}/hub/api/users/{name}/server", headers=auth, timeout=60)
    assert started.status_code in (201, 202), started.text
    deadline = time.monotonic() + 300
    while not requests.get(f"{stack.url}/hub/api/users/{name}", headers=auth,
                           timeout=30).json()["servers"].get("", {}).get("ready"):
        assert time.monotonic() < deadline, f"{name}'s server never got ready\n{stack.logs()}"
        time.sleep(1)
    spawn_seconds = time.monotonic() - spawn_t0
    container = f"jupyter-{name}"
    (inspected,) = json.loads(_docker("inspect", container))
    assert inspected["Config"]["Image"] == SINGLEUSER_IMAGE
    assert inspected["Config"]["Labels"].get("com.docker.compose.project") is None  # DockerSpawner's, not Compose's

    def nbgrader(*args) -> str:
        # inside the learner's container, with its own environment (the server's token, the exchange
        # configured by the image) and work folder, as in a terminal of their JupyterLab
        out = subprocess.run(["docker", "exec", "-w", "/home/jovyan/work", container, "nbgrader", *args,
                              "--course", COURSE], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"nbgrader {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
        return out.stdout + out.stderr

    nbgrader("fetch_assignment", ASSIGNMENT)
    found = _docker("exec", container, "find", "/home/jovyan/work", "-name", NOTEBOOK).split()
    assert found == [f"/home/jovyan/work/{COURSE}/{ASSIGNMENT}/{NOTEBOOK}"], found

    # the learner writes their answers and saves (the server's contents API, what JupyterLab does)
    contents = f"{stack.url}/user/{name}/api/contents/{COURSE}/{ASSIGNMENT}/{NOTEBOOK}"
    fetched = requests.get(contents, headers=auth, timeout=60)
    assert fetched.status_code == 200, fetched.text
    notebook = _answered(fetched.json()["content"], json.loads(SOLUTION.read_text()))
    saved = requests.put(contents, headers=auth, json={"type": "notebook", "format": "json", "content": notebook},
                         timeout=60)
    assert saved.status_code == 200, saved.text

    submit_started = int(time.time()) - 1
    submit_t0 = time.monotonic()
    output = nbgrader("submit", ASSIGNMENT)
    link = re.search(r"/services/feedback/api/submissions/([A-Za-z0-9_-]+)", output)
    assert link, output
    job_id = link.group(1)

    # the feedback service's intake queues the submission the courses service recorded: the
    # learner's socket opens once the service knows the job (404 before)
    job_url = f"{stack.url}/services/feedback/api/submissions/{job_id}"
    deadline = time.monotonic() + 120
    while (known := requests.get(job_url, headers=auth, timeout=30)).status_code == 404:
        assert time.monotonic() < deadline, f"the feedback service never queued {job_id}\n{stack.logs()}"
        time.sleep(0.2)
    assert known.status_code == 200, known.text
    # the per-test results, live, over the feedback service's WebSocket, as the learner
    events = asyncio.run(feedback_events(stack.url, token, f"submissions/{job_id}/events", timeout=300))
    graded_seconds = time.monotonic() - submit_t0
    print(f"compose: learner's container ready {spawn_seconds:.1f} s after the spawn request; nbgrader submit "
          f"to the last WebSocket event {graded_seconds:.1f} s")
    types = [event["type"] for event in events]
    assert types[0] == "queued" and "started" in types and types[-1] == "done", types
    done = events[-1]
    tests = [event for event in events if event["type"] == "test"]
    assert done["status"] == "graded", done
    assert len(tests) == len(done["tests"]) >= 5
    assert {t["grade_id"] for t in tests} == {t["grade_id"] for t in done["tests"]}
    assert all(t["passed"] for t in done["tests"]), done["tests"]
    # every autograded point; the written answer (explain-types) waits for a person's grade
    assert done["score"] == sum(t["max_points"] for t in done["tests"]) > 0
    assert done["needs_manual_grade"] is True and done["max_score"] > done["score"]

    # graded by the worker container, in a Docker sandbox: the job's lease names the worker that
    # printed READY, that worker runs with the docker sandbox, and a sandbox container of the grader
    # image was taken from its warm pool and removed after this submission (containers are never reused)
    job = _queue(stack).get(job_id)
    assert job.status == GRADED and job.attempts == 1
    (worker,) = stack.containers("worker")
    assert f"READY {job.lease_owner}" in _docker("logs", worker), (job.lease_owner, stack.logs())
    (worker_inspected,) = json.loads(_docker("inspect", worker))
    assert "LEARNHUB_GRADER_SANDBOX=docker" in worker_inspected["Config"]["Env"]
    # (the engine closes a used sandbox in the background, after the result: the removal may come later)
    deadline = time.monotonic() + 90
    while "learnhub/grader:latest" not in (removed := _docker(
            "events", "--since", str(submit_started), "--until", str(int(time.time()) + 1),
            "--filter", "type=container", "--filter", "label=learnhub.sandbox", "--filter", "event=destroy",
            "--format", "{{.From}}").split()):
        assert time.monotonic() < deadline, f"no sandbox container removed since the submission: {removed}"
        time.sleep(1)

    # the hub keeps it: the courses service shows the attempt graded with that score
    deadline = time.monotonic() + 60
    while True:
        (mine,) = [a for a in requests.get(f"{courses}/{COURSE}/assignments", headers=auth, timeout=30)
                   .json()["items"] if a["id"] == ASSIGNMENT]
        if mine["status"] == "graded" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (mine["status"], mine["score"]) == ("graded", done["score"]), mine

    stopped = requests.delete(f"{stack.url}/hub/api/users/{name}/server", headers=auth, timeout=60)
    assert stopped.status_code in (202, 204), stopped.text
    # the next tests start from no worker (the drain measures starting them)
    stack.compose("up", "-d", "--no-recreate", "--scale", "worker=0", "worker")


#: the Docker engine's parent cgroup (cgroup v1): its CPU time includes that of containers since removed
DOCKER_CPUACCT = Path("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage")


def _cpu_seconds() -> tuple[float | None, float]:
    """CPU seconds used so far by every Docker container (None where the engine's cgroup is not
    found: cgroup v2 or another layout) and by the whole machine, everyone's processes included
    (/proc/stat: all but idle and iowait). To say where a drain's time goes, not to assert on it."""
    containers = int(DOCKER_CPUACCT.read_text()) / 1e9 if DOCKER_CPUACCT.is_file() else None
    with open("/proc/stat") as stat:
        ticks = [int(x) for x in stat.readline().split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]
    return containers, busy / os.sysconf("SC_CLK_TCK")


def test_drain_with_one_and_three_workers(stack):
    """DRAIN_JOBS (100) correct submissions queued, then drained by 1 worker container, then as many
    again by 3: every one graded once with the full score; both drain times printed."""
    q = _queue(stack)
    times = {}
    for workers in (1, 3):
        ids = [_enqueue(stack, q, f"drain{workers}-{i}") for i in range(DRAIN_JOBS)]
        t0, (containers0, machine0) = time.monotonic(), _cpu_seconds()
        stack.compose("up", "-d", "--no-recreate", "--scale", f"worker={workers}", "worker")
        jobs = _wait_graded(q, ids, timeout=60 + DRAIN_JOBS * 8, stack=stack)
        times[workers] = elapsed = time.monotonic() - t0
        containers1, machine1 = _cpu_seconds()
        assert all(j.score == 7.0 and j.attempts == 1 for j in jobs), [(j.score, j.attempts) for j in jobs][:5]
        assert len(stack.containers("worker")) == workers
        owners = {j.lease_owner for j in jobs}
        # where the time went: CPU of the containers (workers, sandboxes, PostgreSQL, hub) and of the
        # whole machine (other tenants too), in cores busy on average over the drain
        cores = os.cpu_count()
        cpu = (f"; containers {(containers1 - containers0) / elapsed:.2f} cores busy, "
               if containers0 is not None else "; ")
        cpu += f"the machine {(machine1 - machine0) / elapsed:.2f} of {cores}"
        line = (f"compose: {DRAIN_JOBS} submissions drained by {workers} worker(s) in {elapsed:.1f} s "
                f"({len(owners)} workers took jobs{cpu})")
        print(line)
        if DRAIN_REPORT:  # (CI prints this file: -q hides a passing test's output)
            with open(DRAIN_REPORT, "a") as report:
                report.write(line + "\n")
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
