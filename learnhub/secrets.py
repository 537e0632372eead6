"""The keys that encrypt personal data at rest: contact details (the notifications service's email
addresses and phone numbers) and, with an LMS or OIDC login, the hub's ``auth_state`` (the LMS/OIDC
identifiers and tokens JupyterHub keeps per user).

Where they are (:func:`load_keys`), first found wins:

1. ``$LEARNHUB_SECRET_KEYS``: Fernet keys separated by commas, newest first (a secret manager's way);
2. the key file, ``c.LearnhubSettings.key_file`` / ``$LEARNHUB_KEY_FILE``: one key a line, newest first.
   By default ``<data dir>-keys/contacts.key`` — beside the data dir, never in it, so a copy of the
   data dir (or of its database) does not carry the key that opens it. Made (mode 0600) on first use.

Rotation (``learnhub keys rotate``): a new key goes first; every key still decrypts, the first
encrypts; the notifications service re-encrypts every stored address under the newest key when it
starts; ``learnhub keys rotate --drop-old`` then removes the old ones (docs/data-rights.md).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

KEYS_ENV = "LEARNHUB_SECRET_KEYS"
KEY_FILE_ENV = "LEARNHUB_KEY_FILE"
#: where learnhub 0.x kept the notifications key (in the data dir): moved out on first use
LEGACY_KEY_FILE = "notifications.key"


def default_key_file(data_dir: str | os.PathLike) -> Path:
    data = Path(data_dir).resolve()
    return data.parent / f"{data.name}-keys" / "contacts.key"


def configured_key_file(data_dir: str | os.PathLike) -> Path:
    return Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else default_key_file(data_dir)


def _read(path: Path) -> list[bytes]:
    return [line.strip().encode() for line in path.read_text().splitlines() if line.strip()
            and not line.startswith("#")]


def _write(path: Path, keys: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# learnhub's keys for personal data at rest, newest first (docs/data-rights.md)\n")
        handle.write("".join(k.decode() + "\n" for k in keys))
    os.replace(tmp, path)


def load_keys(key_file: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> list[bytes]:
    """The keys, newest first; the key file is created with a new key when there is none."""
    from cryptography.fernet import Fernet

    if os.environ.get(KEYS_ENV):
        return [k.strip().encode() for k in os.environ[KEYS_ENV].split(",") if k.strip()]
    if key_file is None:
        if data_dir is None:
            raise ValueError(f"no key: set {KEYS_ENV} or {KEY_FILE_ENV}, or give a data dir")
        key_file = configured_key_file(data_dir)
    path = Path(key_file)
    if path.is_file():
        return _read(path)
    legacy = Path(data_dir) / LEGACY_KEY_FILE if data_dir else None
    if legacy is not None and legacy.is_file():
        # learnhub 0.x kept the key in the data dir: move it out (the addresses it encrypted stay readable).
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _write(path, [legacy.read_bytes().strip()])
        legacy.unlink()
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: of two processes starting at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(Fernet.generate_key().decode() + "\n")
    return _read(path)


def rotate_key(settings, drop_old: bool = False) -> tuple[Path, int]:
    """Put a new key first in the settings' key file (or, ``drop_old``, keep only the first)."""
    from cryptography.fernet import Fernet

    if os.environ.get(KEYS_ENV):
        raise SystemExit(f"learnhub: the keys come from ${KEYS_ENV}: rotate them there (new key first)")
    path = Path(settings.key_file)
    keys = load_keys(path, settings.data_dir)
    keys = keys[:1] if drop_old else [Fernet.generate_key()] + keys
    if path.exists():
        shutil.copy2(path, path.with_suffix(".previous"))
        os.chmod(path.with_suffix(".previous"), 0o600)
    _write(path, keys)
    return path, len(keys)


def hub_crypt_keys(keys: list[bytes]) -> list[bytes]:
    """The same keys as JupyterHub's ``CryptKeeper.keys`` (raw 32 bytes) for ``auth_state``."""
    import base64

    return [base64.urlsafe_b64decode(k) for k in keys]
