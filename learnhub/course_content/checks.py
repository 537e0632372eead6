"""The rules for course metadata, in one place: for ``course.yaml`` and for the courses API.

:class:`FieldChecker` checks one value at a time (a slug, a list of ids, a date, ...) and raises
:class:`CourseFormatError` naming the field, the problem and the fix. :func:`check_course_metadata`
applies the rules of a course's own fields — id, title, description, level, tags, prerequisites,
open_enrollment and skills — and is what both :func:`~learnhub.course_content.load_course` (a
``course.yaml``) and the courses service's ``validate_course`` (a JSON body) call, so a value one
of them refuses the other refuses too, for the same reason.

What differs between the two is only the document: which fields it must have (a ``course.yaml``
needs skills with titles; the API may create a course with no skills yet), and the syntax a fix
is written in (``FieldChecker(syntax="yaml")`` or ``"json"``).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping, NoReturn

from .model import DIFFICULTIES, LEVELS, SLUG_RE

__all__ = [
    "CourseFormatError",
    "FieldChecker",
    "COURSE_METADATA_FIELDS",
    "SKILL_FIELDS",
    "check_course_metadata",
    "check_skills",
    "find_cycle",
]

# Sizes a course's fields may have. The courses API has always held request bodies to them; a
# course.yaml is imported into the same catalogue tables (extensions/courses/models.py), so it is
# held to them too. Skill ids had no limit before: 128 is the width of their column.
MAX_COURSE_ID_LENGTH = 64
MAX_SKILL_ID_LENGTH = 128
MAX_TITLE_LENGTH = 300
MAX_DESCRIPTION_LENGTH = 20000
MAX_TAGS = 100
MAX_TAG_LENGTH = 64
MAX_PREREQUISITES = 100
MAX_SKILLS = 500

#: the fields of a course that both a course.yaml and the courses API describe
COURSE_METADATA_FIELDS = ("id", "title", "description", "level", "tags", "prerequisites", "open_enrollment",
                          "skills")
SKILL_FIELDS = ("id", "title", "prerequisites")


class CourseFormatError(ValueError):
    """A course folder, or course metadata, that does not follow the format.

    ``path`` is the file at fault (``None`` for metadata that came from no file, such as an API
    request body), ``field`` the dotted location inside it (for example
    ``assignments[1].exercises[0].skills``), ``problem`` what is wrong and ``fix`` what to do.
    """

    def __init__(self, path: Path | str | None, field: str | None, problem: str, fix: str = ""):
        self.path = Path(path) if path is not None else None
        self.field = field
        self.problem = problem
        self.fix = fix
        parts = [str(self.path)] if self.path is not None else []
        if field:
            parts.append(field)
        parts.append(problem)
        message = ": ".join(parts)
        if fix:
            message += f" — {fix}"
        super().__init__(message)


# How to write a value in each syntax, for the fixes the checker suggests.
_HOW_TO_WRITE = {
    "yaml": {
        "mapping": "write it as 'key: value' lines",
        "list": "write it as [a, b] or as '- a' lines",
        "text": "put the value in quotes if YAML reads it as something else",
    },
    "json": {
        "mapping": 'send a JSON object such as {"id": "..."}',
        "list": 'send a JSON list such as ["a", "b"]',
        "text": "send it as a JSON string",
    },
}


class FieldChecker:
    """Checks values of one document, raising :class:`CourseFormatError` with its path and field.

    ``path``: the file the values come from (``None``: no file, e.g. a request body).
    ``syntax``: ``"yaml"`` or ``"json"``, the language of the document. It decides how the fixes
    are worded and two YAML habits: an empty value (``tags:``) reads as null and means an empty
    list, and an unquoted id made of digits (``id: 101``) reads as a number and means that text.
    """

    def __init__(self, path: Path | str | None = None, *, syntax: str = "yaml"):
        if syntax not in _HOW_TO_WRITE:
            raise ValueError(f"syntax is 'yaml' or 'json', not {syntax!r}")
        self.path = path
        self.syntax = syntax
        self._how = _HOW_TO_WRITE[syntax]

    def fail(self, where: str | None, problem: str, fix: str = "") -> NoReturn:
        raise CourseFormatError(self.path, where, problem, fix)

    def mapping(self, value: Any, where: str, allowed: set[str] | tuple[str, ...],
                required: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            self.fail(where or None, f"expected a mapping of fields, got {type(value).__name__}",
                      self._how["mapping"])
        for key in value:
            if key not in allowed:
                self.fail(_join(where, str(key)), f"unknown field {key!r}",
                          f"remove it or use one of: {', '.join(sorted(allowed))}")
        for key in required:
            if key not in value:
                self.fail(_join(where, key), "is missing", "this field is required")
        return value

    def string(self, value: Any, where: str, *, empty_ok: bool = False, max_length: int | None = None) -> str:
        if not isinstance(value, str):
            self.fail(where, f"expected text, got {type(value).__name__} {value!r}", self._how["text"])
        if not empty_ok and not value.strip():
            self.fail(where, "is empty", "give it a value")
        if max_length is not None and len(value) > max_length:
            self.fail(where, f"is {len(value)} characters long, more than the {max_length} allowed",
                      f"shorten it to at most {max_length} characters")
        return value

    def slug(self, value: Any, where: str, what: str, *, max_length: int | None = None) -> str:
        if self.syntax == "yaml" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        self.string(value, where)
        if not SLUG_RE.match(value):
            self.fail(where, f"{what} {value!r} is not a valid id",
                      "use lower-case letters and digits with words joined by '-' or '_', "
                      "e.g. 'intro-python' or '01-basics'")
        if max_length is not None and len(value) > max_length:
            self.fail(where, f"{what} {value!r} is {len(value)} characters long, more than the {max_length} allowed",
                      f"use an id of at most {max_length} characters")
        return value

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"expected true or false, got {value!r}", "write true or false")
        return value

    def choice(self, value: Any, where: str, what: str, allowed: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in allowed:
            self.fail(where, f"{what} {value!r} is not allowed", f"use one of: {', '.join(allowed)}")
        return value

    def difficulty(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or value not in DIFFICULTIES:
            self.fail(where, f"difficulty must be 1, 2 or 3, got {value!r}",
                      "use 1 (easy), 2 (medium) or 3 (challenge)")
        return int(value)

    def list_items(self, value: Any, where: str, expected: str, max_items: int | None = None) -> list:
        """``value`` as a list (``expected`` names what it lists, for the message)."""
        if value is None and self.syntax == "yaml":
            return []
        if not isinstance(value, list):
            self.fail(where, f"expected {expected}, got {type(value).__name__} {value!r}", self._how["list"])
        if max_items is not None and len(value) > max_items:
            self.fail(where, f"lists {len(value)} items, more than the {max_items} allowed",
                      f"list at most {max_items}")
        return value

    def string_list(self, value: Any, where: str, *, max_items: int | None = None,
                    max_length: int | None = None) -> list[str]:
        items = self.list_items(value, where, "a list", max_items)
        for index, item in enumerate(items):
            self.string(item, f"{where}[{index}]", max_length=max_length)
        return list(items)

    def slug_list(self, value: Any, where: str, what: str, *, max_items: int | None = None,
                  max_length: int | None = None) -> list[str]:
        items = self.list_items(value, where, "a list of ids", max_items)
        result = [self.slug(item, f"{where}[{index}]", what, max_length=max_length)
                  for index, item in enumerate(items)]
        duplicates = sorted({item for item in result if result.count(item) > 1})
        if duplicates:
            self.fail(where, f"lists {', '.join(map(repr, duplicates))} more than once",
                      "list each id once")
        return result

    def unique(self, ids: list[str], where: str, what: str, key: str = "id") -> None:
        """Refuse a repeated id among the items of the list at ``where`` (``key`` names the id field)."""
        seen: dict[str, int] = {}
        for index, value in enumerate(ids):
            if value in seen:
                self.fail(f"{where}[{index}].{key}",
                          f"duplicate {what} {value!r} (also {where}[{seen[value]}])",
                          f"every {what} must be unique")
            seen[value] = index

    def due(self, value: Any, where: str) -> datetime | None:
        if value is None:
            return None
        example = "write an ISO 8601 date and time in UTC, e.g. \"2026-09-14T23:59:00Z\""
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            self.fail(where, f"{value.isoformat()} is a date without a time", example)
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip())
            except ValueError:
                self.fail(where, f"{value!r} is not an ISO 8601 date and time", example)
            if len(value.strip()) <= 10:
                self.fail(where, f"{value!r} is a date without a time", example)
        else:
            self.fail(where, f"expected a date and time, got {value!r}", example)
        if parsed.tzinfo is None:
            self.fail(where, f"{value!s} has no time zone", example + " (note the Z)")
        if parsed.utcoffset().total_seconds() != 0:
            self.fail(where, f"{value!s} is not in UTC", example)
        return parsed.astimezone(timezone.utc)


def _join(where: str, key: str) -> str:
    """The location of field ``key`` inside the location ``where`` ("" is the document itself)."""
    return f"{where}.{key}" if where else key


def find_cycle(graph: Mapping[str, tuple[str, ...] | list[str]]) -> list[str] | None:
    """A cycle in ``graph`` (node -> prerequisites) as a path ``[a, b, ..., a]``, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in graph}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for dep in graph.get(node, ()):
            if dep not in colour:
                continue
            if colour[dep] == GREY:
                return stack[stack.index(dep):] + [dep]
            if colour[dep] == WHITE:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in graph:
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def check_skills(check: FieldChecker, value: Any, where: str = "skills", *,
                 required_fields: tuple[str, ...] = ("id", "title")) -> list[dict[str, Any]]:
    """A course's skill list: ``[{"id", "title", "prerequisites"}]``, checked.

    Each skill's id is a slug, unique in the course; its prerequisites are other skills of the
    same course, with no cycle. ``required_fields``: the fields every skill must have; a skill
    without a title comes back with ``"title": None``.
    """
    items = check.list_items(value, where, "a list of skills", MAX_SKILLS)
    skills = []
    for index, raw_skill in enumerate(items):
        item_where = f"{where}[{index}]"
        item = check.mapping(raw_skill, item_where, SKILL_FIELDS, required_fields)
        skill_id = check.slug(item["id"], f"{item_where}.id", "skill id", max_length=MAX_SKILL_ID_LENGTH)
        title = (check.string(item["title"], f"{item_where}.title", max_length=MAX_TITLE_LENGTH)
                 if "title" in item else None)
        prerequisites = check.slug_list(item.get("prerequisites", []), f"{item_where}.prerequisites", "skill id",
                                        max_items=MAX_PREREQUISITES, max_length=MAX_SKILL_ID_LENGTH)
        skills.append({"id": skill_id, "title": title, "prerequisites": prerequisites})
    check.unique([s["id"] for s in skills], where, "skill id")
    skill_ids = {s["id"] for s in skills}
    for index, skill in enumerate(skills):
        for p_index, prerequisite in enumerate(skill["prerequisites"]):
            if prerequisite not in skill_ids:
                check.fail(f"{where}[{index}].prerequisites[{p_index}]",
                           f"skill {skill['id']!r} needs unknown skill {prerequisite!r}",
                           f"declare {prerequisite!r} under skills or use one of: {', '.join(sorted(skill_ids))}")
    cycle = find_cycle({s["id"]: s["prerequisites"] for s in skills})
    if cycle:
        check.fail(where, f"prerequisite cycle between skills: {' -> '.join(cycle)}",
                   "a skill cannot (even indirectly) be its own prerequisite; remove one of these links")
    return skills


def check_course_metadata(check: FieldChecker, data: Mapping[str, Any], *,
                          required_skill_fields: tuple[str, ...] = ("id", "title")) -> dict[str, Any]:
    """Check the fields of :data:`COURSE_METADATA_FIELDS` that ``data`` has; return them checked.

    Which fields must be present and which others may be is the caller's to check (it differs
    between a course.yaml and an API request); every field that is present follows the same
    rules. Values come back as given (no stripping or de-duplication), skills as
    :func:`check_skills` returns them.
    """
    out: dict[str, Any] = {}
    if "id" in data:
        out["id"] = check.slug(data["id"], "id", "course id", max_length=MAX_COURSE_ID_LENGTH)
    if "title" in data:
        out["title"] = check.string(data["title"], "title", max_length=MAX_TITLE_LENGTH)
    if "description" in data:
        out["description"] = check.string(data["description"], "description", empty_ok=True,
                                          max_length=MAX_DESCRIPTION_LENGTH)
    if "level" in data:
        out["level"] = check.choice(data["level"], "level", "level", LEVELS)
    if "tags" in data:
        out["tags"] = check.string_list(data["tags"], "tags", max_items=MAX_TAGS, max_length=MAX_TAG_LENGTH)
    if "prerequisites" in data:
        prerequisites = check.slug_list(data["prerequisites"], "prerequisites", "course id",
                                        max_items=MAX_PREREQUISITES, max_length=MAX_COURSE_ID_LENGTH)
        if out.get("id") in prerequisites:
            check.fail("prerequisites", f"course {out['id']!r} lists itself as a prerequisite", "remove it")
        out["prerequisites"] = prerequisites
    if "open_enrollment" in data:
        out["open_enrollment"] = check.boolean(data["open_enrollment"], "open_enrollment")
    if "skills" in data:
        out["skills"] = check_skills(check, data["skills"], "skills", required_fields=required_skill_fields)
    return out
