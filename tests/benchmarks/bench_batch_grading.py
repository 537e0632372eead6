"""A whole class: `learnhub grade --submissions` against `nbgrader autograde`, in one run, on the same submissions.

    python tests/benchmarks/bench_batch_grading.py [--n 50] [--single 5] [--workers 0]

The demo course's first assignment (courses/intro-python, 01-basics), released by nbgrader's own
`generate_assignment`, and --n submissions made from the release as a class hands them in
(learnhub.graders.testing.basics_submission: correct, partly wrong — some only in hidden tests —,
blank, error-raising, one in ten raising before any exercise), in nbgrader's submitted/ layout. Two
copies of that course directory, so each command starts from the same state:

(a) `nbgrader autograde 01-basics` over the whole class: one command, serially, as nbgrader works;
(b) `learnhub grade --source source/01-basics --submissions submitted` over the same class: in
    parallel on a warm pool, writing the gradebook and autograded/ as nbgrader does;
    run before and after (a), so a change of the machine's load during the run shows;
(c) one submission, --single times each, alternating: `nbgrader autograde 01-basics --student S`
    against `learnhub grade --source ... --submission ...` (each a new process, as an instructor runs it).

Prints wall times, the ratios and the load average; checks that the two gradebooks hold the same
scores for every learner (mismatches are printed, not hidden). Nothing is asserted about time.
Not part of the test run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "courses" / "intro-python" / "source" / "01-basics"
ASSIGNMENT = "01-basics"

from learnhub.graders import testing as T  # noqa: E402


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def nbgrader(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force", f"--CourseDirectory.root={root}",
            *args]


def learnhub(*args: str) -> list[str]:
    return [sys.executable, "-m", "learnhub", "grade", *args]


def scores(root: Path) -> dict:
    return {student: sum(nb["score"] for nb in notebooks.values())
            for student, notebooks in T.nbgrader_scores(root, ASSIGNMENT).items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="submissions in the class")
    parser.add_argument("--single", type=int, default=5, help="runs of each single-submission command")
    parser.add_argument("--workers", type=int, default=0, help="learnhub's --workers (0: the CPU count)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lh-bench-batch-"))
    load = [os.getloadavg()[0]]

    base = T.nbgrader_course(work / "base", SOURCE, ASSIGNMENT)
    kinds = {}
    for i in range(args.n):
        student = f"learner{i:03d}"
        kinds[student] = T.basics_submission(base / "release" / ASSIGNMENT, i, base / "submitted" / student / ASSIGNMENT)
    copies = {}
    for name in ("nbgrader", "learnhub-1", "learnhub-2", "single-nbgrader"):
        copies[name] = work / name
        subprocess.run(["cp", "-a", str(base), str(copies[name])], check=True)

    batch_cmd = ["--source", None, "--submissions", None, "--json"] + (["--workers", str(args.workers)]
                                                                      if args.workers else [])

    def learnhub_batch(root: Path) -> tuple[float, dict]:
        command = list(batch_cmd)
        command[1], command[3] = str(root / "source" / ASSIGNMENT), str(root / "submitted")
        seconds, proc = timed(learnhub(*command), root)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"learnhub grade failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return seconds, json.loads(proc.stdout)

    b1, report = learnhub_batch(copies["learnhub-1"])
    load.append(os.getloadavg()[0])
    a, proc = timed(nbgrader(copies["nbgrader"]), copies["nbgrader"])
    if proc.returncode != 0:
        raise SystemExit(f"nbgrader autograde failed:\n{proc.stderr[-3000:]}")
    load.append(os.getloadavg()[0])
    b2, _ = learnhub_batch(copies["learnhub-2"])
    load.append(os.getloadavg()[0])

    theirs, ours = scores(copies["nbgrader"]), scores(copies["learnhub-1"])
    mismatches = {s: (theirs.get(s), ours.get(s)) for s in sorted(set(theirs) | set(ours)) if theirs.get(s) != ours.get(s)}

    # (c) one submission, alternating the two commands
    student = "learner000"
    single_root = copies["single-nbgrader"]
    single_sub = single_root / "submitted" / student / ASSIGNMENT
    one_nbgrader, one_learnhub = [], []
    for _ in range(args.single):
        seconds, proc = timed(nbgrader(single_root, f"--student={student}"), single_root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        one_nbgrader.append(seconds)
        seconds, proc = timed(learnhub("--source", str(single_root / "source" / ASSIGNMENT), "--submission",
                                       str(single_sub)), single_root)
        assert proc.returncode == 0, proc.stderr[-2000:]
        one_learnhub.append(seconds)
    load.append(os.getloadavg()[0])

    summary = report["summary"]
    mix = {kind: list(kinds.values()).count(kind) for kind in sorted(set(kinds.values()))}
    print(f"\n{args.n} submissions of {ASSIGNMENT} ({', '.join(f'{n} {k}' for k, n in mix.items())}), "
          f"{os.cpu_count()} CPUs, load average {' → '.join(f'{x:.1f}' for x in load)}")
    print("| measurement | seconds |\n| --- | --- |")
    print(f"| (a) `nbgrader autograde {ASSIGNMENT}` over {args.n} (serial) | {a:.1f} |")
    print(f"| (b) `learnhub grade --submissions`, before (a) ({summary['workers']} workers) | {b1:.1f} |")
    print(f"| (b) `learnhub grade --submissions`, after (a) | {b2:.1f} |")
    print(f"| (c) one submission, `nbgrader autograde --student`, median of {args.single} | "
          f"{statistics.median(one_nbgrader):.2f} |")
    print(f"| (c) one submission, `learnhub grade --submission`, median of {args.single} | "
          f"{statistics.median(one_learnhub):.2f} |")
    print(f"\nclass: learnhub {a / b1:.1f}× faster than nbgrader (run before it), {a / b2:.1f}× (run after it); "
          f"one submission: {statistics.median(one_nbgrader) / statistics.median(one_learnhub):.1f}×")
    print(f"learnhub's own count: {summary['graded']} graded, {summary['failed']} failed, pool {summary['pool']}")
    print(f"gradebook scores equal to nbgrader's for {args.n - len(mismatches)} of {args.n} learners"
          + (f"; differing: {mismatches}" if mismatches else ""))
    print(json.dumps({"n": args.n, "nbgrader_class_s": a, "learnhub_class_s": [b1, b2],
                      "nbgrader_one_s": one_nbgrader, "learnhub_one_s": one_learnhub, "load": load,
                      "mismatches": mismatches, "cpus": os.cpu_count()}))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
