"""The analytics hub service: the event log, course and platform reports, dashboards."""
from __future__ import annotations

from learnhub.event_schemas import EventContract, Verb

# What this service writes to and reads from the event log (tests/core/test_event_contract.py).
EVENTS = EventContract(
    "analytics service", "analytics",
    consumes=(Verb.ENROLLED, Verb.UNENROLLED, Verb.FETCHED, Verb.SUBMITTED, Verb.GRADED, Verb.ATTEMPTED,
              Verb.ASKED_HELP, Verb.ACTIVE, Verb.SERVER_SPAWNED),
    notes="every event is counted; these verbs feed the reports' summaries (aggregates)")

#: Other programs write to the log through ``POST api/events`` (and ``synthetic`` makes demo data).
EXTERNAL_EVENTS = EventContract(
    "other tools (POST api/events)", "api", produces=(Verb.ATTEMPTED,),
    notes="exercise attempts graded elsewhere; analytics also derives them from graded submissions")

__all__ = ["AnalyticsService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the service's engine modules (its tables,
    # its event listener) can be imported without tornado and the rest of the web layer.
    if name == "AnalyticsService":
        from .app import AnalyticsService

        return AnalyticsService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
