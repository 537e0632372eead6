"""The feedback hub service: submissions, live autograding feedback and help requests."""
from __future__ import annotations

from learnhub.event_schemas import EventContract, Verb

# What this service writes to and reads from the event log (tests/core/test_event_contract.py).
EVENTS = EventContract(
    "feedback service", "feedback",
    produces=(Verb.GRADED, Verb.GRADING_FAILED, Verb.ASKED_HELP, Verb.ANSWERED_HELP),
    consumes=(Verb.SUBMITTED,),
    notes="grades the submissions the courses service records (intake.GradingIntake)")

__all__ = ["FeedbackService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the service's engine modules (its tables,
    # its event listener) can be imported without tornado and the rest of the web layer.
    if name == "FeedbackService":
        from .app import FeedbackService

        return FeedbackService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
