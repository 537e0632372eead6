"""What uploaded files must be before anything is stored: safe names, valid notebooks, bounded size.

One checker for every path files come in by — a release, a submission through nbgrader's exchange,
a submission or a check through the feedback service, feedback an instructor releases — so a file
refused on one path is refused on all of them, with the same message. Nothing is accepted unless
everything is; no web code (callers turn :class:`UploadError` into their HTTP error).
"""
from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Iterable, Mapping

MAX_FILES = 500
MAX_NAME = 255
# Control characters and the characters other file systems reserve: a name a learner gives must be
# a plain relative path on every machine the files will be written to.
_BAD_CHARS = re.compile(r"[\x00-\x1f\\:*?\"<>|]")


class UploadError(Exception):
    """Files refused, with the HTTP status that says why and details naming what to fix."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or {}


@dataclass
class Upload:
    """Checked files, as ``{relative POSIX path: bytes}``."""

    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())

    def notebooks(self) -> list[str]:
        return sorted(name for name in self.files if name.endswith(".ipynb"))

    def to_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(self.files):
                archive.writestr(name, self.files[name])
        return buffer.getvalue()


def check_name(name: str) -> str:
    """A safe relative POSIX path (normalised), or UploadError(400): no absolute paths, no '.' or
    '..' segments, no control or reserved characters, at most 255 characters."""
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise UploadError(400, f"bad file name {name!r}: give a relative path of 1-{MAX_NAME} characters",
                          {"file": name})
    if (name.startswith("/") or _BAD_CHARS.search(name)
            or any(part in ("", ".", "..") for part in name.split("/"))):
        raise UploadError(400, f"bad file name {name!r}: absolute paths, '.' or '..' segments, backslashes "
                               "and control characters are refused", {"file": name})
    return posixpath.normpath(name)


def check_notebook(name: str, data: bytes) -> None:
    """UploadError(422) naming the file and the reason when ``data`` is not a valid Jupyter notebook."""
    import nbformat

    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
    except UnicodeDecodeError:
        raise UploadError(422, f"{name} is not a valid notebook: not UTF-8 text", {"file": name}) from None
    except Exception as exc:  # nbformat raises several kinds of errors for broken documents
        text = str(exc).strip()
        reason = text.splitlines()[0][:300] if text else type(exc).__name__
        raise UploadError(422, f"{name} is not a valid notebook: {reason}", {"file": name, "reason": reason}) from None


def check_upload(files: Mapping[str, bytes] | Iterable[tuple[str, bytes]], max_bytes: int, *,
                 max_files: int = MAX_FILES, require_notebook: bool = False) -> Upload:
    """Check every ``(name, data)``: names, count, total size, every ``.ipynb`` a valid notebook, and
    with ``require_notebook`` at least one of them. Returns the files under their normalised names."""
    items = list(files.items()) if isinstance(files, Mapping) else list(files)
    if not items:
        raise UploadError(400, "no files uploaded: send them as multipart form fields named 'files'")
    if len(items) > max_files:
        raise UploadError(413, f"too many files ({len(items)}); at most {max_files}", {"limit_files": max_files})
    total = sum(len(data) for _name, data in items)
    if total > max_bytes:
        raise UploadError(413, f"the upload is {total} bytes; the limit is {max_bytes}",
                          {"limit_bytes": max_bytes})
    upload = Upload()
    for name, data in items:
        path = check_name(name)
        if path in upload.files:
            raise UploadError(400, f"file {path} is uploaded twice", {"file": path})
        upload.files[path] = data
    for path in upload.notebooks():
        check_notebook(path, upload.files[path])
    if require_notebook and not upload.notebooks():
        raise UploadError(422, "a submission needs at least one .ipynb notebook")
    return upload
