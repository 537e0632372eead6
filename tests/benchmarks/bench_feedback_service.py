"""Submit → graded through the feedback service, against nbgrader's own autograde, in one run.

    python tests/benchmarks/bench_feedback_service.py [--n 20] [--queue 100] [--baseline 5]

Starts a real platform (`learnhub up`, SQLite, 2 grading workers with warm bubblewrap pools),
then measures, on the demo course's first assignment (the instructor's solution submitted as is):

(a) `nbgrader autograde` from the command line, one submission at a time (the baseline);
(c) one submission at a time through the service: POST submissions → the WebSocket's `done`
    (client latency) and the job row's created → finished (server time);
(d) --queue submissions posted at once and drained by the workers, against nbgrader grading
    the same number in sequence (extrapolated from the measured (a) median; said in the output).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from hubtools import LearnhubProcess, log_in, sign_up  # noqa: E402

from learnhub import db  # noqa: E402
from learnhub.graders.models import GradingJob  # noqa: E402
from learnhub.graders.testing import nbgrader_course, run_nbgrader  # noqa: E402

COURSE, ASSIGNMENT, NOTEBOOK = "intro-python", "01-basics", "basics.ipynb"
SOURCE = REPO / "courses" / COURSE / "source" / ASSIGNMENT


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def line(name, values):
    return f"| {name} | {len(values)} | {pct(values, 50):.3f} | {pct(values, 95):.3f} |"


def baseline(n: int, work: Path) -> list[float]:
    root = nbgrader_course(work / "nbgrader", SOURCE, ASSIGNMENT)
    times = []
    for i in range(n):
        student = f"s{i}"
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / NOTEBOOK).write_bytes((SOURCE / NOTEBOOK).read_bytes())
        start = time.perf_counter()
        run_nbgrader(root, ["autograde", ASSIGNMENT, f"--student={student}", "--force"])
        times.append(time.perf_counter() - start)
    return times


def post(hub, token, notebook):
    response = requests.post(f"{hub.url}/services/feedback/api/submissions",
                             headers={"Authorization": f"token {token}"},
                             data={"course": COURSE, "assignment": ASSIGNMENT},
                             files=[("files", (NOTEBOOK, notebook))], timeout=60)
    response.raise_for_status()
    return response.json()["id"]


async def submit_and_wait(hub, token, notebook) -> tuple[float, str]:
    start = time.perf_counter()
    job_id = post(hub, token, notebook)
    url = hub.url.replace("http", "ws") + f"/services/feedback/api/submissions/{job_id}/events"
    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    while True:
        message = await connection.read_message()
        if message is None or json.loads(message)["type"] == "done":
            return time.perf_counter() - start, job_id


def server_times(db_url, job_ids):
    engine = db.make_engine(db_url)
    with db.make_session_factory(engine)() as session:
        jobs = [session.get(GradingJob, job_id) for job_id in job_ids]
    engine.dispose()
    return jobs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="sequential submissions through the service")
    parser.add_argument("--queue", type=int, default=100, help="submissions queued at once")
    parser.add_argument("--baseline", type=int, default=5, help="nbgrader autograde runs")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lh-bench-"))
    notebook = (SOURCE / NOTEBOOK).read_bytes()

    a = baseline(args.baseline, work)
    hub = LearnhubProcess(work / "data", f"sqlite:///{work / 'learnhub.sqlite'}",
                          f"sqlite:///{work / 'hub.sqlite'}",
                          extra_env={"LEARNHUB_GRADER_WORKERS": "2", "LEARNHUB_GRADER_POOL_SIZE": "2",
                                     # one learner makes every measured submission: lift the
                                     # per-learner rate limit (0: none), which is not what is measured
                                     "LEARNHUB_SUBMISSIONS_PER_MINUTE": "0"},
                          demo=True).start()  # the demo course is the one measured
    try:
        sign_up(hub, "bench", "correct-horse-battery")
        log_in(hub, "bench", "correct-horse-battery")
        token = hub.user_token("bench")
        # learners enroll through the courses service (as in JupyterLab)
        enrolled = hub.api("POST", f"/services/courses/api/courses/{COURSE}/enrollments", token=token)
        assert enrolled.status_code == 201, enrolled.text
        for _ in range(3):  # warm-up: prepare the assignment in each worker, fill the pools
            asyncio.run(submit_and_wait(hub, token, notebook))
        time.sleep(2)
        client, ids = [], []
        for _ in range(args.n):
            seconds, job_id = asyncio.run(submit_and_wait(hub, token, notebook))
            client.append(seconds)
            ids.append(job_id)
            time.sleep(0.3)  # let the pool refill, as between two learners' submissions
        jobs = server_times(hub.db_url, ids)
        server = [(job.finished_at - job.created_at).total_seconds() for job in jobs]
        # The solution passes every autograded test (its manually graded answer waits for a person,
        # so score < max_score by those points).
        from learnhub.extensions.feedback.workers import flatten_tests

        wrong = [(job.status, job.score, job.max_score) for job in jobs
                 if job.status != "graded" or not all(t["passed"] for t in flatten_tests(job.result))]
        assert not wrong, wrong

        start = time.perf_counter()
        queued = [post(hub, token, notebook) for _ in range(args.queue)]
        while True:
            jobs = server_times(hub.db_url, queued)
            if all(job.status in ("graded", "failed") for job in jobs):
                break
            time.sleep(0.5)
        drain = time.perf_counter() - start
        failed = sum(job.status != "graded" for job in jobs)
    finally:
        hub.stop()

    a50 = statistics.median(a)
    print("| measurement | n | p50 s | p95 s |\n|---|---|---|---|")
    print(line("(a) nbgrader autograde CLI", a))
    print(line("(c) service, client: POST → WebSocket done", client))
    print(line("(c) service, server: queued → graded", server))
    print(f"\n(c) vs (a) at p50: {a50 / pct(client, 50):.1f}× faster (client), "
          f"{a50 / pct(server, 50):.1f}× (server)")
    sequential = a50 * args.queue
    print(f"(d) {args.queue} queued submissions drained in {drain:.1f} s by 2 workers ({failed} failed); "
          f"nbgrader in sequence: {sequential:.1f} s (= {args.queue} × the measured (a) median) → "
          f"{sequential / drain:.1f}× faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
