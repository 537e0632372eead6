"""The analytics hub service: the event log, course and platform reports, dashboards."""
from .app import AnalyticsService

__all__ = ["AnalyticsService"]
