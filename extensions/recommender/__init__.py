"""The recommender hub service: per-skill mastery and explained recommendations."""
from __future__ import annotations

from learnhub.event_schemas import EventContract, Verb

# What this service writes to and reads from the event log (tests/core/test_event_contract.py).
EVENTS = EventContract(
    "recommender service", "recommender",
    produces=(Verb.RECOMMENDED,),
    consumes=(Verb.GRADED, Verb.ENROLLED, Verb.UNENROLLED),
    notes="learner histories for mastery; a changed top recommendation is announced (announcements.py)")

__all__ = ["RecommenderService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the engine, its sources, the reasons'
    # renderer and the announcer can be imported without tornado and the rest of the web layer.
    if name == "RecommenderService":
        from .app import RecommenderService

        return RecommenderService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
