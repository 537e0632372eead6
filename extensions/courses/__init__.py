"""The courses hub service: course catalogue, enrollment, learner profiles and the HTTP exchange for nbgrader."""
from __future__ import annotations

from learnhub.event_schemas import EventContract, Verb

# What this service writes to and reads from the event log (tests/core/test_event_contract.py).
EVENTS = EventContract(
    "courses service", "courses",
    produces=(Verb.COURSE_CREATED, Verb.COURSE_UPDATED, Verb.COURSE_DELETED, Verb.COURSE_IMPORTED, Verb.ENROLLED,
              Verb.UNENROLLED, Verb.PROFILE_UPDATED, Verb.RELEASED, Verb.UNRELEASED, Verb.FETCHED, Verb.SUBMITTED,
              Verb.COLLECTED, Verb.FEEDBACK_RELEASED, Verb.FEEDBACK_FETCHED),
    consumes=(Verb.GRADED, Verb.GRADING_FAILED, Verb.USER_DELETED),
    notes="keeps the autograding outcome on its submissions (grades.GradeRecorder); erases deleted users "
          "everywhere (learnhub.data_rights)")

__all__ = ["CoursesService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the service's engine modules (its tables,
    # its event listener) can be imported without tornado and the rest of the web layer.
    if name == "CoursesService":
        from .app import CoursesService

        return CoursesService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
