"""Delivery channels: one class per way of reaching a person, chosen by config.

A channel turns an :class:`OutgoingMessage` into a delivery and reports failures as
:class:`TransientError` (try again later: network down, provider 5xx/429) or
:class:`PermanentError` (will never work: refused address, bad request). Channels never
log recipient addresses: :attr:`OutgoingMessage.to` is for the provider only.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from traitlets import Float
from traitlets.config import LoggingConfigurable


class DeliveryError(Exception):
    """A delivery failed; ``str()`` is the reason recorded (and shown to admins)."""


class TransientError(DeliveryError):
    """Worth retrying later."""


class PermanentError(DeliveryError):
    """Retrying will not help: goes to the dead letters at once."""


@dataclass
class OutgoingMessage:
    to: str = field(repr=False)  # an address or number: never in reprs, so never in logs
    subject: str
    text: str
    html: str | None
    idempotency_key: str
    notification_id: str
    type: str


class Channel(LoggingConfigurable):
    """Base class. Subclasses set :attr:`contact` and implement :meth:`send`."""

    #: which contact detail the channel needs: "email", "phone", or None (in-app)
    contact: str | None = None
    #: True for the in-app channel: delivered inside the sender's database transaction
    transactional = False

    timeout = Float(20.0, help="Seconds to wait for the provider before calling the attempt failed "
                               "(keep well under the sender's lease).").tag(config=True)

    @property
    def configured(self) -> bool:
        """Whether the channel can send at all; an unconfigured channel gets no deliveries."""
        return True

    def send(self, message: OutgoingMessage) -> str | None:
        """Deliver ``message``; return the provider's id for it, if any."""
        raise NotImplementedError


def transient_for_status(status: int) -> bool:
    """HTTP statuses worth retrying: timeouts, rate limits, provider trouble."""
    return status in (408, 409, 425, 429) or status >= 500
