"""The analytics hub service: the event log, course and platform reports, dashboards."""
from __future__ import annotations

__all__ = ["AnalyticsService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the service's engine modules (its tables,
    # its event listener) can be imported without tornado and the rest of the web layer.
    if name == "AnalyticsService":
        from .app import AnalyticsService

        return AnalyticsService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
