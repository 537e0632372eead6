"""Encryption of contact details (email addresses, phone numbers) at rest, with Fernet.

The key comes from config (``NotificationsService.encryption_key``) or the environment
(``LEARNHUB_NOTIFICATIONS_KEY``); failing both, learnhub's keys (:mod:`learnhub.secrets`: the key
file beside the data dir, never in it, or ``$LEARNHUB_SECRET_KEYS``), newest first: the newest
encrypts, every one decrypts, so a rotated key keeps old addresses readable until
:meth:`ContactCipher.reencrypt` moved them to the newest. Losing the keys loses the stored
addresses (users re-enter them), never anything else.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from learnhub.secrets import load_keys

KEY_ENV = "LEARNHUB_NOTIFICATIONS_KEY"
KEY_FILE = "notifications.key"


def load_or_create_key(configured: str = "", data_dir: str | os.PathLike | None = None,
                       key_file: str | os.PathLike | None = None) -> list[bytes]:
    """The Fernet keys, newest first: configured, else from the environment, else learnhub's keys."""
    key = configured or os.environ.get(KEY_ENV, "")
    if key:
        return [key.encode() if isinstance(key, str) else key]
    if data_dir is None and key_file is None and not os.environ.get("LEARNHUB_SECRET_KEYS"):
        raise ValueError(f"no notifications key: set {KEY_ENV} or give a data dir")
    return load_keys(key_file, data_dir)


class ContactCipher:
    """Encrypt and decrypt contact details; a value that does not decrypt reads as absent.

    ``key`` may be a callable returning the key: it is then read (or generated) on first use,
    so merely constructing the service (as the OpenAPI test does) writes no key file.
    """

    def __init__(self, key):
        self._key = key
        self._fernet_instance = None

    @property
    def _fernet(self) -> MultiFernet:
        if self._fernet_instance is None:
            keys = self._key() if callable(self._key) else self._key
            keys = [keys] if isinstance(keys, (str, bytes)) else list(keys)
            self._fernet_instance = MultiFernet([Fernet(k) for k in keys])
            self._newest = self._fernet_instance._fernets[0]
        return self._fernet_instance

    def reencrypt(self, token: str | None) -> str | None:
        """``token`` under the newest key; None when it already is (or does not decrypt at all)."""
        if not token:
            return None
        fernet = self._fernet
        try:
            self._newest.decrypt(token.encode())
            return None
        except InvalidToken:
            pass
        try:
            return fernet.rotate(token.encode()).decode()
        except InvalidToken:
            return None

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
