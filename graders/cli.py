"""``learnhub grade``: grade one submission with the same engine and sandbox as the workers."""
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="learnhub grade",
        description="Grade one nbgrader submission exactly as `nbgrader autograde` scores it, in a sandbox.",
    )
    parser.add_argument("--source", required=True, help="the instructor's source assignment directory")
    parser.add_argument("--submission", required=True, help="the learner's submitted assignment directory")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--sandbox", default="", choices=["", "bubblewrap", "local", "docker"],
                        help="sandbox backend (default: bubblewrap when available)")
    parser.add_argument("--allow-unsafe-local", action="store_true",
                        help="allow --sandbox local (no isolation; trusted code only)")
    parser.add_argument("--check", action="store_true", help="run the visible tests only")
    parser.add_argument("--feedback", help="write the feedback notebook(s) (hidden tests redacted) into this directory")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="override a sandbox limit, e.g. --limit cell_timeout=10")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # nbgrader's own chatter (generate_assignment's INFO, checksum warnings about the
    # learner's edits, SQLAlchemy warnings from its API) is not for this output
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")

    from .engine import GradingEngine, GradingError
    from .sandbox import SandboxError

    limits = {}
    for item in args.limit:
        name, _, value = item.partition("=")
        limits[name] = int(value)
    engine = GradingEngine(sandbox_class=args.sandbox, allow_unsafe_local=args.allow_unsafe_local,
                           include_feedback=bool(args.feedback))
    try:
        result = engine.grade(args.source, args.submission, mode="check" if args.check else "grade",
                              limits=limits)
    except (GradingError, SandboxError, ValueError) as exc:
        print(f"learnhub grade: error: {exc}", file=sys.stderr)
        return 2
    finally:
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


if __name__ == "__main__":
    sys.exit(main())
