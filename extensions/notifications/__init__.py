"""The notifications hub service: in-app, email and SMS notifications with user preferences."""
from __future__ import annotations

from learnhub.event_schemas import EventContract, Verb

# What this service writes to and reads from the event log (tests/core/test_event_contract.py).
EVENTS = EventContract(
    "notifications service", "notifications",
    produces=(Verb.NOTIFICATION_SENT, Verb.NOTIFICATION_READ),
    consumes=(Verb.RELEASED, Verb.GRADED, Verb.FEEDBACK_RELEASED, Verb.ANSWERED_HELP, Verb.RECOMMENDED),
    notes="turns them into notifications (triggers.EventTriggers)")

__all__ = ["NotificationsService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the service's engine modules (its tables,
    # its event listener) can be imported without tornado and the rest of the web layer.
    if name == "NotificationsService":
        from .app import NotificationsService

        return NotificationsService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
