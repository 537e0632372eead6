"""``learnhub recommender ...``: the recommender's command line."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: learnhub recommender evaluate [--data-dir DIR] [--json] [--only tracing|ranking]")
        return 0 if argv else 2
    if argv[0] == "evaluate":
        from .evaluate import main as evaluate

        return evaluate(argv[1:])
    print(f"learnhub recommender: unknown command {argv[0]!r} (use: evaluate)", file=sys.stderr)
    return 2
