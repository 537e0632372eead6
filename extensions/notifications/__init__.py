"""The notifications hub service: in-app, email and SMS notifications with user preferences."""
from __future__ import annotations

__all__ = ["NotificationsService"]


def __getattr__(name: str):
    # The application is imported on first use, so that the service's engine modules (its tables,
    # its event listener) can be imported without tornado and the rest of the web layer.
    if name == "NotificationsService":
        from .app import NotificationsService

        return NotificationsService
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
