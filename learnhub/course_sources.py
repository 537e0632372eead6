"""Where instructors' source assignments are on disk: ``<root>/<course>/source/<assignment>/``.

The source (solutions and hidden tests included) is what the grading engine grades against and what
``learnhub course import`` reads; learners never see it. The courses service uses it to say whether a
submission will be autograded, the feedback service to grade it — both find it here, with the same
roots, so neither needs the other's code.
"""
from __future__ import annotations

import os
from pathlib import Path

from .uploads import UploadError

#: the checkout's ``courses/`` folder, with the demo course's source
CHECKOUT_COURSES = Path(__file__).resolve().parents[1] / "courses"
#: where an installation without the checkout keeps that folder (the hub image: images/hub/Dockerfile)
SHIPPED_COURSES_ENV = "LEARNHUB_SHIPPED_COURSES"


def shipped_courses() -> Path:
    """learnhub's own ``courses/`` folder (the demo course): ``$LEARNHUB_SHIPPED_COURSES``, else the
    checkout's. It is not package data on purpose: the sources hold the solutions and hidden tests,
    and learnhub's wheel is also installed in the learners' image (images/singleuser), where they
    must not be. The hub image copies the folder in and sets the variable."""
    return Path(os.environ.get(SHIPPED_COURSES_ENV) or CHECKOUT_COURSES)


def default_source_roots(data_dir: str | Path) -> list[str]:
    """Where services look for instructor sources unless configured: ``<data dir>/courses``, then
    learnhub's own ``courses/`` (:func:`shipped_courses`)."""
    return [str(Path(data_dir) / "courses"), str(shipped_courses())]


class SourceLocator:
    """Finds an assignment's instructor source under ``roots`` (the first root that has it wins)."""

    def __init__(self, roots: list[str]):
        self.roots = [Path(root) for root in roots]

    def find(self, course_id: str, assignment_id: str) -> Path | None:
        """The source folder (holding at least one notebook), or None. Ids that are not one plain
        folder name are refused with UploadError(400): they come from requests."""
        for part in (course_id, assignment_id):
            if not isinstance(part, str) or not part or part in (".", "..") or "/" in part or "\\" in part \
                    or "\x00" in part:
                raise UploadError(400, f"{part!r} is not a course or assignment id.", {"id": part})
        for root in self.roots:
            candidate = root / course_id / "source" / assignment_id
            if candidate.is_dir() and any(candidate.glob("*.ipynb")):
                return candidate
        return None
