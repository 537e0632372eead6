"""The notifications hub service: in-app, email and SMS notifications with user preferences."""
from .app import NotificationsService

__all__ = ["NotificationsService"]
