"""``learnhub course ...``: manage course content from the command line."""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="learnhub course", description="Manage learnhub courses.")
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="create or update a course from a course folder (idempotent)")
    imp.add_argument("folder", help="a course folder with course.yaml and source/<assignment>/ (courses/README.md)")
    imp.add_argument("--data-dir", default=None, help="learnhub data dir (default: as `learnhub up`)")
    imp.add_argument("--db-url", default=None, help="learnhub database URL (default: from settings)")
    imp.add_argument("--status", choices=("draft", "published", "archived"), default=None,
                     help="set the course status (a new course is a draft otherwise)")
    imp.add_argument("--release", action="store_true", help="release every assignment to learners")
    args = parser.parse_args(argv)

    from learnhub import db as lhdb
    from learnhub.config import load_settings
    from learnhub.course_content import CourseFormatError, ReleaseError

    from .importer import import_course

    settings, _ = load_settings(args.data_dir)
    db_url = args.db_url or settings.db_url
    lhdb.upgrade(db_url)
    store = os.path.join(str(settings.data_path), "store")
    from sqlalchemy.engine import make_url

    print(f"importing {args.folder} into {make_url(lhdb.normalize_url(db_url)).render_as_string(hide_password=True)}")
    try:
        result = import_course(args.folder, db_url, store, status=args.status, release=args.release)
    except (CourseFormatError, ReleaseError, FileNotFoundError) as exc:
        print(f"learnhub course import: {exc}", file=sys.stderr)
        return 1
    print(f"{'created' if result.created else 'updated'} course {result.course_id}: "
          f"{len(result.assignments)} assignment(s), {result.exercises} exercise(s), {result.skills} skill(s)")
    return 0
