"""The courses hub service: course catalogue, enrollment, learner profiles and the HTTP exchange for nbgrader."""
from __future__ import annotations

__all__ = ["CoursesService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the service's engine modules (its tables,
    # its event listener) can be imported without tornado and the rest of the web layer.
    if name == "CoursesService":
        from .app import CoursesService

        return CoursesService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
