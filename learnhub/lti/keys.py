"""The tool's signing keys: RSA keys generated on first start, kept in the data dir (mode 0600), rotatable.

``DATA_DIR/lti/keys.json`` holds a list of keys, newest first; the newest signs (client assertions for
the LMS's token endpoint, deep linking responses), and every key stays in the published JWKS until it is
retired, so an LMS that cached the old JWKS keeps verifying what was signed just before a rotation.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"


def _new_key() -> dict:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return {"kid": uuid.uuid4().hex, "created": int(time.time()), "private_pem": pem}


class ToolKeys:
    """The key file of one data dir. Several processes (the hub, the courses service) share it: creation
    and rotation hold an exclusive lock on ``keys.lock`` and write the file atomically, readable by its
    owner only."""

    def __init__(self, data_dir: str | os.PathLike):
        self.folder = Path(data_dir) / "lti"
        self.path = self.folder / "keys.json"

    def _write(self, keys: list[dict]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"keys": keys}, handle)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def _locked(self):
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(self.folder / "keys.lock", "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        return handle

    def keys(self) -> list[dict]:
        """Every key, newest first; the first call in a new data dir generates one."""
        if self.path.is_file():
            return json.loads(self.path.read_text())["keys"]
        with self._locked():
            if not self.path.is_file():
                self._write([_new_key()])
        return json.loads(self.path.read_text())["keys"]

    def rotate(self, keep: int = 2) -> str:
        """A new signing key; the ``keep`` newest keys (the new one included) stay published. Returns its kid."""
        if keep < 1:
            raise ValueError("keep must be at least 1 (the new key)")
        with self._locked():
            old = json.loads(self.path.read_text())["keys"] if self.path.is_file() else []
            keys = [_new_key()] + old
            self._write(keys[:keep])
        return keys[0]["kid"]

    def retire(self, keep: int = 1) -> list[str]:
        """Stop publishing all but the ``keep`` newest keys (no new key). Returns the kids retired."""
        if keep < 1:
            raise ValueError("keep must be at least 1 (the signing key)")
        with self._locked():
            keys = json.loads(self.path.read_text())["keys"] if self.path.is_file() else []
            self._write(keys[:keep] or [_new_key()])
        return [k["kid"] for k in keys[keep:]]

    @property
    def current(self) -> dict:
        return self.keys()[0]

    def jwks(self) -> dict:
        """The public keys, as the JWKS URL serves them."""
        out = []
        for key in self.keys():
            private = serialization.load_pem_private_key(key["private_pem"].encode(), password=None)
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
            public.update({"kid": key["kid"], "alg": ALGORITHM, "use": "sig"})
            out.append(public)
        return {"keys": out}

    def sign(self, claims: dict, headers: dict | None = None) -> str:
        key = self.current
        return jwt.encode(claims, key["private_pem"], algorithm=ALGORITHM,
                          headers={"kid": key["kid"], **(headers or {})})
