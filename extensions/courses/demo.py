"""Load the demo course when ``learnhub up`` starts on an empty catalogue (entry point ``learnhub.after_start``)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from learnhub.course_sources import CHECKOUT_COURSES, shipped_courses

DEMO_COURSE = "intro-python"
#: the checkout's demo course (what the tests import)
DEMO_FOLDER = CHECKOUT_COURSES / DEMO_COURSE


def demo_folder() -> Path:
    """The demo course's folder where learnhub runs: the checkout's, or the copy an image carries
    ($LEARNHUB_SHIPPED_COURSES, as the hub image sets it)."""
    return shipped_courses() / DEMO_COURSE


def schedule_from_today(folder: Path, first_due_in_days: int = 7) -> timedelta | None:
    """How far to move the demo course's due dates so that its first assignment is due a week from
    today at the same time of day, and the others keep their spacing: a newcomer meets a course in
    progress, not one whose deadlines passed months ago."""
    from learnhub.course_content import load_course

    dues = [a.due for a in load_course(folder).assignments if a.due is not None]
    if not dues:
        return None
    first = min(dues)
    target = (datetime.now(timezone.utc) + timedelta(days=first_due_in_days)).replace(
        hour=first.hour, minute=first.minute, second=0, microsecond=0)
    return target - first


def load_demo_course(settings, url: str | None = None, folder: Path | None = None) -> str | None:
    """Import courses/intro-python (:func:`demo_folder`), published with open enrollment and every assignment released,
    when ``settings.demo_course`` is on and the catalogue is empty. Returns the course id loaded, if any."""
    if not getattr(settings, "demo_course", False):
        return None
    from .importer import catalogue_is_empty, import_course

    if not catalogue_is_empty(settings.db_url):
        return None  # never touch a catalogue someone has started
    folder = folder or demo_folder()
    result = import_course(folder, settings.db_url, Path(settings.data_dir) / "store", status="published",
                           release=True, actor="learnhub-demo", log=lambda *_: None,
                           due_shift=schedule_from_today(folder))
    print(f"learnhub: demo course {result.course_id} loaded ({len(result.assignments)} assignments, "
          f"{result.exercises} exercises)", flush=True)
    return result.course_id
