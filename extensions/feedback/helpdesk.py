"""Help requests: learners ask about an assignment (and a cell), course staff answer."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from learnhub import db as lhdb
from learnhub.events import Verb, record
from learnhub.timeutil import utcnow

from .models import ANSWERED, OPEN, HelpRequest

SOURCE = "feedback"
MAX_QUESTION = 5_000
MAX_CODE = 50_000


class HelpDeskError(ValueError):
    """A help request or answer refused; the message says what to fix."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def _text(payload: dict, name: str, limit: int, required: bool) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise HelpDeskError(f"'{name}' is required.", name)
        return None
    if not isinstance(value, str):
        raise HelpDeskError(f"'{name}' must be text.", name)
    if len(value) > limit:
        raise HelpDeskError(f"'{name}' is longer than {limit} characters.", name)
    return value


class HelpDesk:
    """Store and answer help requests; each change is also an event in the event log."""

    def __init__(self, session_factory):
        self.sessions = session_factory

    def ask(self, learner: str, payload: dict) -> dict:
        course = _text(payload, "course", 128, True)
        assignment = _text(payload, "assignment", 128, True)
        request = HelpRequest(course_id=course, assignment_id=assignment, learner=learner,
                              question=_text(payload, "question", MAX_QUESTION, True),
                              cell_id=_text(payload, "cell_id", 255, False),
                              code=_text(payload, "code", MAX_CODE, False), status=OPEN)
        with lhdb.session_scope(self.sessions) as session:
            session.add(request)
            session.flush()
            record(session, learner, Verb.ASKED_HELP, "help-request", request.id, course_id=course,
                   context={"assignment_id": assignment, "role": "learner"}, source=SOURCE,
                   id=f"help-asked:{request.id}")
            return request.to_dict()

    def answer(self, request_id: str, staff: str, payload: dict, role: str = "instructor") -> dict | None:
        text = _text(payload, "answer", MAX_QUESTION, True)
        with lhdb.session_scope(self.sessions) as session:
            request = session.get(HelpRequest, request_id)
            if request is None:
                return None
            request.answer, request.answered_by = text, staff
            request.status, request.answered_at = ANSWERED, utcnow()
            record(session, staff, Verb.ANSWERED_HELP, "help-request", request.id, course_id=request.course_id,
                   context={"assignment_id": request.assignment_id, "learner": request.learner, "role": role},
                   source=SOURCE, id=f"help-answered:{request.id}:{int(request.answered_at.timestamp() * 1000)}")
            return request.to_dict()

    def get(self, request_id: str) -> dict | None:
        with self.sessions() as session:
            request = session.get(HelpRequest, request_id)
            return request.to_dict() if request else None

    def list(self, *, learner: str | None = None, course: str | None = None, status: str | None = None,
             limit: int = 50, before: str | None = None) -> list[dict]:
        query = select(HelpRequest).order_by(HelpRequest.created_at.desc(), HelpRequest.id.desc())
        if learner:
            query = query.where(HelpRequest.learner == learner)
        if course:
            query = query.where(HelpRequest.course_id == course)
        if status:
            query = query.where(HelpRequest.status == status)
        if before:
            query = query.where(HelpRequest.created_at < datetime.fromisoformat(before.replace("Z", "+00:00")))
        with self.sessions() as session:
            return [request.to_dict() for request in session.scalars(query.limit(limit))]
