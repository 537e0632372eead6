"""Course content: the course folder format, its checks, nbgrader runs on it, and its JSON view.

A course is a folder::

    <course>/
      course.yaml                       # metadata, skills, assignments, exercises
      source/<assignment>/<name>.ipynb  # nbgrader *source* notebooks (with solutions)

The format is documented in ``courses/README.md``. This package is core: it has no web code.
One module per concern:

- :mod:`.model` — what a loaded course is (:class:`Course`, :class:`Assignment`, :class:`Exercise`,
  :class:`Skill`, ...) and the format's constants (:data:`LEVELS`, :data:`SLUG_RE`, ...).
- :mod:`.checks` — the field rules (:class:`FieldChecker`, :func:`check_course_metadata`), shared by
  ``course.yaml`` and the courses API; :class:`CourseFormatError`.
- :mod:`.loader` — :func:`load_course`, :func:`load_courses`, :func:`read_graded_cells`: reading
  course folders and their notebooks.
- :mod:`.nbgrader` — running nbgrader: :class:`NbGraderCourse` (a private nbgrader course
  directory), :func:`generate_release`, :func:`self_check`.
- :mod:`.serialize` — :func:`course_to_dict`.

Every name is importable from the package itself (``from learnhub.course_content import
load_course``).
"""
from __future__ import annotations

from .checks import (
    COURSE_METADATA_FIELDS,
    CourseFormatError,
    FieldChecker,
    check_course_metadata,
    check_skills,
)
from .loader import load_course, load_courses, read_graded_cells
from .model import (
    COURSE_FILE,
    DIFFICULTIES,
    GRADE_ID_RE,
    LEVELS,
    LIMIT_FIELDS,
    NBGRADER_SCHEMA_VERSION,
    SLUG_RE,
    SOURCE_DIR,
    Assignment,
    Course,
    Exercise,
    GradedCell,
    Limits,
    Skill,
)
from .nbgrader import (
    CellScore,
    NbGraderCourse,
    Release,
    ReleaseError,
    SelfCheck,
    empty_gradebook,
    generate_release,
    self_check,
    use_unix_socket_kernels,
)
from .serialize import course_to_dict

# The name this function had in the single-module course_content; kept for code that imports it.
_empty_gradebook = empty_gradebook

__all__ = [
    "COURSE_FILE",
    "SOURCE_DIR",
    "LEVELS",
    "DIFFICULTIES",
    "LIMIT_FIELDS",
    "NBGRADER_SCHEMA_VERSION",
    "SLUG_RE",
    "GRADE_ID_RE",
    "COURSE_METADATA_FIELDS",
    "CourseFormatError",
    "ReleaseError",
    "Skill",
    "Limits",
    "GradedCell",
    "Exercise",
    "Assignment",
    "Course",
    "Release",
    "CellScore",
    "SelfCheck",
    "FieldChecker",
    "check_course_metadata",
    "check_skills",
    "load_course",
    "load_courses",
    "read_graded_cells",
    "NbGraderCourse",
    "empty_gradebook",
    "use_unix_socket_kernels",
    "generate_release",
    "self_check",
    "course_to_dict",
]
