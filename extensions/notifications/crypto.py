"""Encryption of contact details (email addresses, phone numbers) at rest, with Fernet.

The key comes from config (``NotificationsService.encryption_key``) or the environment
(``LEARNHUB_NOTIFICATIONS_KEY``); failing both, one is generated once into the data dir with
mode 0600, so the embedded default works and keeps working across restarts. Losing the key
loses the stored addresses (users re-enter them), never anything else.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_ENV = "LEARNHUB_NOTIFICATIONS_KEY"
KEY_FILE = "notifications.key"


def load_or_create_key(configured: str = "", data_dir: str | os.PathLike | None = None) -> bytes:
    """The Fernet key: configured, else from the environment, else the data dir's file (made if absent)."""
    key = configured or os.environ.get(KEY_ENV, "")
    if key:
        return key.encode() if isinstance(key, str) else key
    if data_dir is None:
        raise ValueError(f"no notifications key: set {KEY_ENV} or give a data dir")
    path = Path(data_dir) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of two processes starting at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(Fernet.generate_key())
    return path.read_bytes().strip()


class ContactCipher:
    """Encrypt and decrypt contact details; a value that does not decrypt reads as absent.

    ``key`` may be a callable returning the key: it is then read (or generated) on first use,
    so merely constructing the service (as the OpenAPI test does) writes no key file.
    """

    def __init__(self, key):
        self._key = key
        self._fernet_instance = None

    @property
    def _fernet(self) -> Fernet:
        if self._fernet_instance is None:
            self._fernet_instance = Fernet(self._key() if callable(self._key) else self._key)
        return self._fernet_instance

    def encrypt(self, value: str | None) -> str | None:
        if not value:
            return None
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        if not token:
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            # Key rotated or lost: treat as "no address on file" rather than failing every send.
            return None


def mask_email(address: str | None) -> str | None:
    """What the API shows back: enough to recognise, not enough to harvest."""
    if not address:
        return None
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(number: str | None) -> str | None:
    if not number:
        return None
    return f"{number[:3]}***{number[-2:]}"
