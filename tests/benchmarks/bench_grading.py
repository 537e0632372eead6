"""Grading benchmark: nbgrader autograde vs learnhub's engine (cold, warm pool, queue).

    python tests/benchmarks/bench_grading.py [--samples 10] [--queue-jobs 100] [--db-url URL]

Same source assignment and submissions (learnhub.graders.testing: 2 notebooks, 5 test
cells with visible and hidden tests, one manual cell), same run:

(a) ``nbgrader autograde ps1 --student S`` CLI, one submission per invocation (baseline)
(b) ``learnhub grade`` CLI (cold: new process, generate_assignment, cold sandboxes), and
    the engine in-process with cold sandboxes (prepared assignment cached)
(c) the engine with a warm pool (submissions arriving while the pool is full)
(d) N queued submissions drained by 2 worker processes with warm pools, vs nbgrader
    grading them in sequence (extrapolated from the (a) sample: mean x N).
Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
logging.getLogger("traitlets").setLevel(logging.ERROR)

from learnhub.graders import testing as T  # noqa: E402

VARIANTS = ["correct", "wrong", "hidden_fail", "erroring", "blank", "stderr", "tampered_test", "deleted",
            "retyped", "missing_notebook"]


def pct(values, q):
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def summary(name, times):
    return {"name": name, "n": len(times), "p50": pct(times, 0.5), "p95": pct(times, 0.95),
            "mean": statistics.mean(times)}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--queue-jobs", type=int, default=100)
    ap.add_argument("--db-url", default="")
    ap.add_argument("--pool-size", type=int, default=4)
    args = ap.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="lh-bench-"))
    source = T.write_source(base / "src" / T.ASSIGNMENT)
    root = T.nbgrader_course(base / "course", source)
    release = root / "release" / T.ASSIGNMENT
    subs = []
    for i in range(args.samples):
        v = VARIANTS[i % len(VARIANTS)]
        student = f"s{i:03d}"
        subs.append((student, T.make_submission(release, v, root / "submitted" / student / T.ASSIGNMENT)))
    results = []

    # (a) nbgrader autograde CLI, one submission per call
    a_times = []
    for student, _ in subs:
        t = time.perf_counter()
        T.run_nbgrader(root, ["autograde", T.ASSIGNMENT, "--student", student, "--force"])
        a_times.append(time.perf_counter() - t)
    results.append(summary("(a) nbgrader autograde CLI", a_times))
    expected = T.nbgrader_scores(root)

    # (b) learnhub grade CLI, cold
    b_times = []
    for student, sub in subs[: max(3, args.samples // 2)]:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "learnhub.graders.cli", "--source", str(source),
                               "--submission", str(sub), "--json"], capture_output=True, text=True)
        b_times.append(time.perf_counter() - t)
        if proc.returncode not in (0, 1):
            raise SystemExit(proc.stderr)
    results.append(summary("(b) learnhub grade CLI (cold process + cold sandbox)", b_times))

    from learnhub.graders.engine import GradingEngine
    from learnhub.graders.pool import WarmPool

    engine = GradingEngine(include_feedback=True)
    prepared = engine.prepare(source)
    engine.grade(prepared, subs[0][1])  # warm the grader process itself (imports, caches)
    b2_times, mismatches = [], 0
    for student, sub in subs:
        t = time.perf_counter()
        r = engine.grade(prepared, sub)
        b2_times.append(time.perf_counter() - t)
        mismatches += r["score"] != sum(nb["score"] for nb in expected.get(student, {}).values())
    results.append(summary("(b') engine in-process, cold sandbox", b2_times))

    # (c) warm pool: each submission arrives while the pool is full
    pool = WarmPool(engine, size=args.pool_size)
    c_times = []
    for rep in range(2):
        for student, sub in subs:
            pool.wait_ready(timeout=60)
            t = time.perf_counter()
            r = engine.grade(prepared, sub, sandbox_factory=pool)
            c_times.append(time.perf_counter() - t)
            mismatches += r["score"] != sum(nb["score"] for nb in expected.get(student, {}).values())
    pool.close()
    results.append(summary("(c) engine + warm pool", c_times))
    engine.close()

    # (d) queue: N submissions, 2 workers with warm pools
    from learnhub import db as lhdb
    from learnhub.graders.queue import JobQueue

    db_url = args.db_url or f"sqlite:///{base / 'learnhub.sqlite'}"
    lhdb.upgrade(db_url)
    q = JobQueue(db_url)
    workers = [subprocess.Popen([sys.executable, "-m", "learnhub.graders.worker", "--db-url", db_url,
                                 "--pool-size", "2", "--poll", "0.05", "--worker-id", f"bench{i}"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
               for i in range(2)]
    for w in workers:  # started, assignment not yet prepared, pools warm
        assert w.stdout.readline().startswith("READY")
    # let each worker prepare the assignment once (generate_assignment), as a running service would have
    warm_ids = [q.enqueue(course_id="bench", assignment_id=T.ASSIGNMENT, learner_id=f"warm{i}",
                          source_path=str(source), submission_path=str(subs[0][1])) for i in range(4)]
    while any(q.get(j).status not in ("graded", "failed") for j in warm_ids):
        time.sleep(0.2)
    time.sleep(3)  # pools refilled
    t = time.perf_counter()
    ids = [q.enqueue(course_id="bench", assignment_id=T.ASSIGNMENT, learner_id=f"l{i}",
                     source_path=str(source), submission_path=str(subs[i % len(subs)][1]))
           for i in range(args.queue_jobs)]
    while True:
        counts = q.counts()
        if counts.get("graded", 0) + counts.get("failed", 0) >= args.queue_jobs + len(warm_ids):
            break
        time.sleep(0.1)
    drain = time.perf_counter() - t
    for w in workers:
        w.terminate()
        w.wait(30)
    failed = sum(1 for j in ids if q.get(j).status != "graded")
    seq_nbgrader = statistics.mean(a_times) * args.queue_jobs

    print("\n== grading latency per submission (seconds) ==")
    for r in results:
        print(f"{r['name']:<55} n={r['n']:>3}  p50={r['p50']:.3f}  p95={r['p95']:.3f}  mean={r['mean']:.3f}")
    a50 = results[0]["p50"]
    for r in results[1:]:
        print(f"  speed-up vs (a) at p50: {r['name']:<52} {a50 / r['p50']:.1f}x")
    print(f"\n== {args.queue_jobs} queued submissions ==")
    print(f"2 workers with warm pools drained them in {drain:.1f} s ({args.queue_jobs / drain:.2f} submissions/s), "
          f"{failed} not graded")
    print(f"nbgrader autograde in sequence (extrapolated: mean of {len(a_times)} measured x {args.queue_jobs}): "
          f"{seq_nbgrader:.1f} s -> {seq_nbgrader / drain:.1f}x")
    print(f"score mismatches vs nbgrader: {mismatches}")
    print(json.dumps({"results": results, "queue_drain_s": drain, "nbgrader_sequence_s": seq_nbgrader,
                      "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
