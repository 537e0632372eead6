"""The recommender hub service: per-skill mastery and explained recommendations."""
from __future__ import annotations

__all__ = ["RecommenderService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the engine, its sources, the reasons'
    # renderer and the announcer can be imported without tornado and the rest of the web layer.
    if name == "RecommenderService":
        from .app import RecommenderService

        return RecommenderService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
