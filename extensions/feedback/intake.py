"""What a submission must be before it is stored: safe names, valid notebooks, bounded size.

No web code: the handlers turn :class:`IntakeError` into HTTP errors.
"""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat


class IntakeError(Exception):
    """A submission refused, with the HTTP status that says why and what to fix."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}


@dataclass
class Submission:
    """Validated files of one submission, as ``{relative posix path: bytes}``."""

    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return sum(len(data) for data in self.files.values())

    def to_zip(self) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(self.files):
                archive.writestr(name, self.files[name])
        return buffer.getvalue()


def safe_name(name: str) -> str:
    """A relative path inside the submission, or IntakeError(400) for traversal and odd names."""
    if not name or "\\" in name or "\x00" in name:
        raise IntakeError(400, f"File name {name!r} is not allowed.", {"file": name})
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in path.parts):
        raise IntakeError(400, f"File name {name!r} leaves the submission folder; use plain relative names.",
                          {"file": name})
    return path.as_posix()


def validate_notebook(name: str, data: bytes) -> None:
    """IntakeError(422) naming the file and the reason when ``data`` is not a valid notebook."""
    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(notebook)
    except UnicodeDecodeError:
        raise IntakeError(422, f"{name} is not a notebook: it is not UTF-8 text.", {"file": name})
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as exc:
        raise IntakeError(422, f"{name} is not a notebook: not valid JSON ({exc}).", {"file": name})
    except nbformat.ValidationError as exc:
        raise IntakeError(422, f"{name} is not a valid notebook: {exc.message}", {"file": name})
    except Exception as exc:  # nbformat raises several types for broken documents
        raise IntakeError(422, f"{name} is not a valid notebook: {exc}", {"file": name})


def accept_files(uploads: list[tuple[str, bytes]], max_bytes: int) -> Submission:
    """Check every uploaded ``(name, data)``; nothing is accepted unless everything is."""
    if not uploads:
        raise IntakeError(422, "A submission needs at least one notebook file (multipart field 'files').")
    submission = Submission()
    for name, data in uploads:
        name = safe_name(name)
        if name in submission.files:
            raise IntakeError(400, f"{name} is uploaded twice.", {"file": name})
        if name.endswith(".ipynb"):
            validate_notebook(name, data)
        submission.files[name] = data
        if submission.size > max_bytes:
            raise IntakeError(413, f"The submission is larger than the limit of {max_bytes} bytes.",
                              {"limit_bytes": max_bytes})
    if not any(name.endswith(".ipynb") for name in submission.files):
        raise IntakeError(422, "A submission needs at least one .ipynb notebook.")
    return submission


#: the checkout's (or installed package's) ``courses/`` folder, with the demo course's source
CHECKOUT_COURSES = Path(__file__).resolve().parents[2] / "courses"


def default_source_roots(data_dir: str | Path) -> list[str]:
    """Where services look for instructor sources unless configured: ``<data dir>/courses``, then
    the checkout's ``courses/``. The feedback and courses services both queue grading jobs with them."""
    return [str(Path(data_dir) / "courses"), str(CHECKOUT_COURSES)]


class SourceLocator:
    """Where an assignment's instructor source lives: ``<root>/<course>/source/<assignment>``."""

    def __init__(self, roots: list[str]):
        self.roots = [Path(root) for root in roots]

    def find(self, course_id: str, assignment_id: str) -> Path | None:
        for part in (course_id, assignment_id):
            safe_name(part)
            if "/" in part:
                raise IntakeError(400, f"{part!r} is not a course or assignment id.")
        for root in self.roots:
            candidate = root / course_id / "source" / assignment_id
            if candidate.is_dir() and any(candidate.glob("*.ipynb")):
                return candidate
        return None
