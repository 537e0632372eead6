"""In-app notifications: the notification becomes visible in the user's list (and live stream).

Delivery is a database write in the same transaction that marks the delivery sent, so the
in-app channel is exactly-once even if the sender dies at any point.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from . import Channel


class InAppChannel(Channel):
    """The JupyterLab notification centre, through ``api/notifications`` and its stream."""

    transactional = True

    def deliver(self, session: Session, notification, now: datetime) -> None:
        if notification.in_app_at is None:
            notification.in_app_at = now
