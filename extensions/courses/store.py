"""A content-addressed file store: ``<root>/<sha[:2]>/<sha>``, sha256 of the content.

Writes are atomic (a temporary file in the same folder, fsync, ``os.replace``), so a reader
never sees half a file and a crash leaves at most an unreferenced temporary file. Every read
checks the content against its name: a corrupted or tampered blob is an error, never data.
Identical files (the same release notebook fetched by 500 learners, an unchanged resubmission)
are stored once.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


class StoreError(RuntimeError):
    """A blob is missing or does not match its checksum."""


class FileStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, sha256: str) -> Path:
        if not _SHA_RE.match(sha256 or ""):
            raise StoreError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256

    @staticmethod
    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def put(self, data: bytes) -> str:
        """Store ``data``; returns its sha256. Idempotent."""
        sha = self.digest(data)
        path = self._path(sha)
        if path.is_file() and path.stat().st_size == len(data):
            return sha
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        return sha

    def get(self, sha256: str) -> bytes:
        """The content stored under ``sha256``, verified."""
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {sha256} is missing from the store at {self.root}") from None
        if self.digest(data) != sha256:
            raise StoreError(f"blob {sha256} is corrupted (checksum mismatch) in the store at {self.root}")
        return data

    def has(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def remove(self, sha256: str) -> bool:
        """Delete one blob (erasure, retention: the caller checked no row still refers to it)."""
        try:
            self._path(sha256).unlink()
            return True
        except FileNotFoundError:
            return False
