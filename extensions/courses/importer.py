"""Import a course folder (``courses/README.md``) into the catalogue: idempotent create-or-update.

nbgrader's generate_assignment makes each assignment's student version; its files go to the
store and the course, skills, assignments and exercises to the database, in one transaction.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select

from learnhub import db as lhdb
from learnhub.course_content import generate_release, load_course
from learnhub.events import Verb
from learnhub.timeutil import iso, utcnow

from . import models as m
from .catalog import record_event
from .store import FileStore


@dataclass
class ImportResult:
    course_id: str
    created: bool
    assignments: list[str] = field(default_factory=list)
    exercises: int = 0
    skills: int = 0


def _release_files(directory: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not any(p in (".ipynb_checkpoints", "__pycache__") for p in path.parts):
            files[path.relative_to(directory).as_posix()] = path.read_bytes()
    return files


def import_course(folder: str | Path, db_url: str, store_path: str | Path, *, status: str | None = None,
                  release: bool = False, actor: str = "learnhub-cli", log=print,
                  due_shift: timedelta | None = None) -> ImportResult:
    """Create or update the course in ``folder``. ``status``: set the course status (new courses are
    drafts otherwise); ``release``: make every assignment fetchable by learners; ``due_shift``: move
    every due date by this much (the demo course keeps its schedule ahead of the day it is loaded)."""
    course = load_course(folder)
    store = FileStore(store_path)
    released: dict[str, tuple[list[dict], float]] = {}
    with tempfile.TemporaryDirectory(prefix="learnhub-import-") as tmp:
        for assignment in course.assignments:
            log(f"  generating the student version of {assignment.id} (nbgrader generate_assignment)")
            result = generate_release(course, assignment.id, tmp)
            files = _release_files(result.directory)
            entries = [{"path": p, "sha256": store.put(data), "size": len(data)} for p, data in files.items()]
            released[assignment.id] = (entries, result.total_points)

    engine = lhdb.make_engine(db_url)
    try:
        with lhdb.session_scope(lhdb.make_session_factory(engine)) as session:
            row = session.get(m.Course, course.id)
            created = row is None
            if created:
                row = m.Course(id=course.id, status=status or "draft", created_by=actor)
                session.add(row)
            elif status:
                row.status = status
            row.title, row.description, row.level = course.title, course.description, course.level
            row.tags, row.prerequisites = list(course.tags), list(course.prerequisites)
            row.open_enrollment = course.open_enrollment
            session.execute(delete(m.CourseSkill).where(m.CourseSkill.course_id == course.id))
            session.flush()
            for position, skill in enumerate(course.skills):
                session.add(m.CourseSkill(course_id=course.id, skill_id=skill.id, title=skill.title,
                                          prerequisites=list(skill.prerequisites), position=position))
            result = ImportResult(course.id, created, skills=len(course.skills))
            for position, assignment in enumerate(course.assignments):
                entries, total = released[assignment.id]
                a = session.get(m.Assignment, (course.id, assignment.id))
                if a is None:
                    a = m.Assignment(course_id=course.id, id=assignment.id, released=False)
                    session.add(a)
                due = assignment.due + due_shift if assignment.due is not None and due_shift else assignment.due
                a.title, a.position, a.due = assignment.title, position, due
                a.hard_deadline, a.max_attempts = assignment.hard_deadline, assignment.max_attempts
                a.difficulty, a.max_score, a.release_files = assignment.difficulty, total, entries
                if release and not a.released:
                    a.released, a.released_at = True, utcnow()
                    record_event(session, actor, Verb.RELEASED, "assignment", assignment.id, course.id,
                                 result={"title": a.title or assignment.id, "due": iso(a.due),
                                         "files": [e["path"] for e in entries]},
                                 context={"assignment_id": assignment.id, "role": "instructor"})
                session.flush()
                session.execute(delete(m.Exercise).where(m.Exercise.course_id == course.id,
                                                         m.Exercise.assignment_id == assignment.id))
                for exercise in assignment.exercises:
                    session.add(m.Exercise(course_id=course.id, assignment_id=assignment.id,
                                           grade_id=exercise.grade_id, notebook=exercise.notebook,
                                           title=exercise.title, skills=list(exercise.skills),
                                           difficulty=exercise.difficulty, points=exercise.points))
                result.assignments.append(assignment.id)
                result.exercises += len(assignment.exercises)
            record_event(session, actor, Verb.COURSE_IMPORTED, "course", course.id, course.id,
                         result={"created": created, "assignments": result.assignments},
                         context={"role": "instructor"})
    finally:
        engine.dispose()
    return result


def catalogue_is_empty(db_url: str) -> bool:
    engine = lhdb.make_engine(db_url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(m.Course.id).limit(1)).first() is None
    finally:
        engine.dispose()
