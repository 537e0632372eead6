"""``learnhub grade``: grade one submission, or a whole class, with the same engine and sandbox as the workers.

    learnhub grade --source SRC --submission SUB [--json] [--check] [--feedback DIR]
    learnhub grade --source SRC --submissions DIR [--workers N] [--json] [--gradebook URL] [--autograded DIR]

The second form is :mod:`.batch`: every learner folder of DIR graded in parallel on a warm pool of
sandboxes, one line per learner as they finish and a summary, nbgrader's gradebook and
``autograded/`` written as ``nbgrader autograde`` writes them.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys


def _print_text(result: dict) -> None:
    print(f"{result['assignment']}: {result['score']:g} / {result['max_score']:g}"
          + ("" if result.get("status") == "graded" else f"  [{result.get('status')}: {result.get('error')}]"))
    for nb in result["notebooks"]:
        print(f"  {nb['name']}: {nb['score']:g} / {nb['max_score']:g} ({nb['status']})"
              + (f" - {nb['error']}" if nb.get("error") else ""))
        for t in nb["tests"]:
            mark = "PASS" if t["passed"] else "FAIL"
            print(f"    [{mark}] {t['grade_id']}: {t['points']:g} / {t['max_points']:g}"
                  + (" (hidden tests)" if t["hidden"] else ""))
            for key in ("message", "explanation", "hint"):
                if t.get(key):
                    print(f"           {key}: {t[key]}")
        for m in nb["manual"]:
            if m["needs_manual_grade"]:
                print(f"    [TODO] {m['grade_id']}: needs a grader ({m['max_points']:g} points)")
        for msg in nb.get("limit_messages", []):
            print(f"    limit: {msg}")


def _number(value) -> str:
    return "-" if value is None else f"{value:g}"


def learner_line(outcome, done: int, total: int) -> str:
    """One learner, as they finish: ``[ 3/50] ada  7 / 10  (5 → 7)  0.41 s``."""
    width = len(str(total))
    head = f"[{done:>{width}}/{total}] {outcome.student:<16}"
    if outcome.status != "graded":
        return f"{head} FAILED: {outcome.error}"
    line = f"{head} {_number(outcome.score):>5} / {_number(outcome.max_score):<5}"
    if outcome.changed:
        line += f"  changed {_number(outcome.before)} → {_number(outcome.after)}"
    elif outcome.before is None and outcome.after is not None:
        line += "  new"
    line += f"  {outcome.duration:.2f} s"
    notes = list(outcome.limit_messages)
    if outcome.error:
        notes.append(outcome.error)
    if notes:
        line += "  (" + "; ".join(notes) + ")"
    return line


def print_summary(report: dict, out) -> None:
    s = report["summary"]
    print(f"\n{s['assignment']}: {s['total']} submissions in {s['duration']:.1f} s with {s['workers']} workers: "
          f"{s['graded']} graded, {s['failed']} failed, {s['changed']} changed, {s['new']} new", file=out)
    changed = [learner for learner in report["learners"] if learner["changed"]]
    if changed:
        print("  score changed (gradebook before → after):", file=out)
        for learner in changed:
            print(f"    {learner['student']}: {_number(learner['before'])} → {_number(learner['after'])}", file=out)
    failed = [learner for learner in report["learners"] if learner["status"] != "graded"]
    if failed:
        print("  not graded:", file=out)
        for learner in failed:
            print(f"    {learner['student']}: {learner['error']}", file=out)
    if s["gradebook"]:
        print(f"  gradebook: {s['gradebook']}" + (" (assignment updated from the source)"
                                                   if s["gradebook_updated_from_source"] else ""), file=out)
    if s["autograded"]:
        print(f"  autograded notebooks: {s['autograded']}/<student>/{s['assignment']}/", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="learnhub grade",
        description="Grade nbgrader submissions exactly as `nbgrader autograde` scores them, in sandboxes: "
                    "one (--submission) or a whole class in parallel (--submissions).",
    )
    parser.add_argument("--source", required=True, help="the instructor's source assignment directory")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--submission", help="the learner's submitted assignment directory")
    target.add_argument("--submissions", metavar="DIR",
                        help="a folder with one folder per learner: nbgrader's submitted/<student>/<assignment>/ "
                             "or DIR/<student>/")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--sandbox", default="", choices=["", "bubblewrap", "local", "docker"],
                        help="sandbox backend (default: bubblewrap when available)")
    parser.add_argument("--allow-unsafe-local", action="store_true",
                        help="allow --sandbox local (no isolation; trusted code only)")
    parser.add_argument("--check", action="store_true", help="run the visible tests only (--submission)")
    parser.add_argument("--feedback", help="write the feedback notebook(s) (hidden tests redacted) into this "
                                           "directory (--submission)")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="override a sandbox limit, e.g. --limit cell_timeout=10")
    batch = parser.add_argument_group("a whole class (--submissions)")
    batch.add_argument("--workers", type=int, default=0, help="submissions graded at once (default: the CPU count)")
    batch.add_argument("--gradebook", metavar="URL",
                       help="nbgrader's gradebook to record the grades in (default: gradebook.db of the nbgrader "
                            "course directory that holds --source, when it is <course>/source/<assignment>)")
    batch.add_argument("--no-gradebook", action="store_true", help="read and write no gradebook")
    batch.add_argument("--autograded", metavar="DIR",
                       help="where to write autograded/<student>/<assignment>/ (default: <course>/autograded)")
    batch.add_argument("--no-autograded", action="store_true", help="write no autograded notebooks")
    args = parser.parse_args(argv)
    if args.submissions and (args.check or args.feedback):
        parser.error("--check and --feedback grade one submission: use them with --submission")

    # Before anything imports jsonschema (nbformat, nbgrader): see _lazy.
    from ._lazy import defer_rfc3987_syntax

    defer_rfc3987_syntax()
    # nbgrader's own chatter (generate_assignment's INFO, checksum warnings about the
    # learner's edits, SQLAlchemy warnings from its API) is not for this output. The filter is on
    # the handler: each NbGraderAPI sets the "traitlets" logger's level back to its own log_level.
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    handler.addFilter(lambda record: record.levelno >= logging.ERROR or record.name.split(".")[0] != "traitlets")
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")

    limits = {}
    for item in args.limit:
        name, _, value = item.partition("=")
        try:
            limits[name] = int(value)
        except ValueError:
            parser.error(f"--limit {item}: the value must be a whole number")
    if args.submissions:
        return grade_class(args, limits)
    return grade_one(args, limits)


def grade_one(args, limits: dict) -> int:
    from pathlib import Path

    from .engine import GradingEngine, GradingError
    from .pool import WarmPool
    from .sandbox import SandboxError

    engine = GradingEngine(sandbox_class=args.sandbox, allow_unsafe_local=args.allow_unsafe_local,
                           include_feedback=bool(args.feedback))
    pool = None
    try:
        cls = engine.resolved_sandbox_class()  # refuse an unsafe or missing backend before starting anything
        from .sandbox.bubblewrap import BubblewrapSandbox

        if issubclass(cls, BubblewrapSandbox):
            # a warm parent pays off over many sandboxes; for one notebook it is a start-up more
            engine.sandbox_config = {**engine.sandbox_config, "zygote": False}
        source = Path(args.source)
        # One sandbox per notebook, started now, in processes of their own, while this process runs
        # nbgrader's generate_assignment: the grading does not wait for a python to start.
        notebooks = len(list(source.glob("*.ipynb"))) if source.is_dir() else 0
        if notebooks:
            pool = WarmPool(engine, size=notebooks, fillers=notebooks, budget=notebooks,
                            limits=engine.limits_for(source.resolve().name, limits))
        result = engine.grade(args.source, args.submission, mode="check" if args.check else "grade",
                              limits=limits, sandbox_factory=pool)
    except (GradingError, SandboxError, ValueError) as exc:
        print(f"learnhub grade: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if pool is not None:
            pool.close()
        engine.close()
    if args.feedback:
        import os

        import nbformat

        os.makedirs(args.feedback, exist_ok=True)
        for nb in result["notebooks"]:
            if nb.get("feedback") is not None:
                nbformat.write(nbformat.from_dict(nb["feedback"]), os.path.join(args.feedback, nb["name"] + ".ipynb"))
    for nb in result["notebooks"]:
        nb.pop("feedback", None)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print_text(result)
    return 0 if result.get("status") == "graded" else 1


def grade_class(args, limits: dict) -> int:
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from learnhub.course_content import ReleaseError

    from .batch import AutogradedEngine, BatchGrader, course_root_of
    from .engine import GradingError
    from .sandbox import SandboxError

    root = course_root_of(args.source)
    db_url = None if args.no_gradebook else args.gradebook or (f"sqlite:///{root / 'gradebook.db'}" if root else None)
    autograded = None if args.no_autograded else args.autograded or (root / "autograded" if root else None)
    # the JSON document is the only thing on stdout with --json; the progress goes to stderr then
    progress = sys.stderr if args.json else sys.stdout
    engine = AutogradedEngine(sandbox_class=args.sandbox, allow_unsafe_local=args.allow_unsafe_local,
                              include_feedback=False)

    def on_outcome(outcome, done, total):
        print(learner_line(outcome, done, total), file=progress, flush=True)

    try:
        engine.resolved_sandbox_class()
        grader = BatchGrader(engine, args.source, Path(args.submissions), db_url=db_url, autograded_dir=autograded,
                             limits=limits, on_outcome=on_outcome, workers=max(0, args.workers))
        report = grader.run()
    except (GradingError, SandboxError, ValueError, ReleaseError, SQLAlchemyError) as exc:
        # the source, the sandbox backend or the gradebook refused: nothing was graded
        print(f"learnhub grade: error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.close()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_summary(report, sys.stdout)
    if not report["learners"]:
        print(f"learnhub grade: no learner folder in {args.submissions}", file=sys.stderr)
        return 2
    return 0 if report["summary"]["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
