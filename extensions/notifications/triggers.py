"""What to notify about: event-log triggers, due-soon reminders, and who is in a course.

:class:`EventTriggers` reads the event log (``events``) after a cursor kept in
``notification_cursors`` and turns events into notifications. It reads only events stored at
least ``settle_seconds`` ago, because a writer's transaction may commit after a later-stamped
one; each notification's ``dedupe_key`` (derived from the event id) makes re-reading an event
harmless, and the cursor moves in the same transaction as the notifications it produced.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
from sqlalchemy import Boolean, DateTime, String, and_, column, inspect, or_, select
from sqlalchemy import table as sa_table

from learnhub.db import session_scope
from learnhub.models import Event

from .models import TriggerCursor, aware
from .outbox import NewNotification, Outbox

log = logging.getLogger("learnhub.notifications.triggers")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- who is in a course ---------------------------------------------------------------------

class RecipientResolver:
    """Who gets a course-wide notification. Subclass for another source of membership."""

    def learners(self, course_id: str) -> list[str]:
        raise NotImplementedError


class StaticRecipients(RecipientResolver):
    """A fixed mapping course id → user names (tests, small deployments)."""

    def __init__(self, mapping: dict[str, list[str]]):
        self.mapping = mapping

    def learners(self, course_id):
        return list(self.mapping.get(course_id, []))


class HubGroupRecipients(RecipientResolver):
    """Members of the hub group ``course-<id>-learners`` (which the courses service keeps in sync),
    read with the service's own token (it holds ``read:groups``)."""

    def __init__(self, hub_api_url: str, api_token: str, template: str = "course-{course_id}-learners",
                 timeout: float = 10):
        self.hub_api_url, self.api_token, self.template, self.timeout = hub_api_url.rstrip("/"), api_token, template, timeout

    def learners(self, course_id):
        group = self.template.format(course_id=course_id)
        response = requests.get(f"{self.hub_api_url}/groups/{group}", timeout=self.timeout,
                                headers={"Authorization": f"token {self.api_token}"})
        if response.status_code == 404:
            return []  # no such group: nobody enrolled yet
        if 400 <= response.status_code < 500:
            # Our token may not read it: retrying will not help, and must not stall the triggers.
            log.warning("cannot read hub group %s: %s", group, response.status_code)
            return []
        response.raise_for_status()  # 5xx: RequestException, the caller retries later
        return list(response.json().get("users", []))


# -- event-log triggers ---------------------------------------------------------------------

def _learner_of(event: Event) -> str | None:
    """The person an event is about: producers name them in context/result; else the actor."""
    for bag in (event.context or {}, event.result or {}):
        for key in ("learner", "user", "user_name", "asker", "recipient"):
            if isinstance(bag.get(key), str) and bag[key]:
                return bag[key]
    return None


def _assignment_of(event: Event) -> tuple[str, str]:
    context, result = event.context or {}, event.result or {}
    # The courses service names it assignment_id; the feedback service's graded events, assignment.
    assignment = context.get("assignment_id") or result.get("assignment_id") or context.get("assignment")
    if not assignment and event.object_type == "assignment":
        assignment = event.object_id.split("/", 1)[-1]
    title = context.get("assignment_title") or result.get("assignment_title") or assignment or event.object_id
    return assignment or event.object_id, title


class EventTriggers:
    """Turn event-log entries into notifications. ``handle`` maps verb → method."""

    cursor_name = "event-triggers"

    def __init__(self, session_factory, outbox: Outbox, resolver: RecipientResolver,
                 settle_seconds: float = 2.0, batch_size: int = 500,
                 first_run_lookback: timedelta = timedelta(hours=1)):
        self.session_factory, self.outbox, self.resolver = session_factory, outbox, resolver
        self.settle_seconds, self.batch_size = settle_seconds, batch_size
        #: on the very first run (no cursor yet) only this much history is read: deploying the
        #: service on a platform with years of events must not send years of notifications.
        self.first_run_lookback = first_run_lookback

    # verb → notifications
    def feedback_ready(self, e: Event) -> list[NewNotification]:
        if e.object_type != "submission":
            return []
        learner = _learner_of(e) or e.actor
        assignment, title = _assignment_of(e)
        result = e.result or {}
        return [NewNotification(learner, "feedback_ready", f"Feedback ready: {title}",
                                "Your submission was graded; the feedback is in JupyterLab.", e.course_id,
                                {"assignment_id": assignment, "assignment_title": title, "submission_id": e.object_id,
                                 "score": result.get("score"), "max_score": result.get("max_score"),
                                 "event_id": e.id},
                                dedupe_key=f"feedback_ready:{e.object_id}:{learner}")]  # graded + "feedback released": one

    def assignment_released(self, e: Event) -> list[NewNotification]:
        if e.object_type != "assignment" or not e.course_id:
            return []
        assignment, title = _assignment_of(e)
        return [NewNotification(user, "assignment_released", f"New assignment: {title}",
                                f"{title} was released in {e.course_id}.", e.course_id,
                                {"assignment_id": assignment, "assignment_title": title, "event_id": e.id},
                                dedupe_key=f"assignment_released:{e.id}:{user}")
                for user in self.resolver.learners(e.course_id)]

    def help_answered(self, e: Event) -> list[NewNotification]:
        asker = _learner_of(e)
        if not asker or asker == e.actor:
            return []
        return [NewNotification(asker, "help_answered", "Your question was answered",
                                f"{e.actor} answered your question.", e.course_id,
                                {"question_id": e.object_id, "answered_by": e.actor, "event_id": e.id},
                                dedupe_key=f"help_answered:{e.id}:{asker}")]

    def recommendations(self, e: Event) -> list[NewNotification]:
        learner = _learner_of(e)
        if not learner:
            return []
        reason = (e.result or {}).get("reason") or "New learning recommendations are ready for you."
        return [NewNotification(learner, "recommendations", "New recommendations", reason, e.course_id,
                                {"object_type": e.object_type, "object_id": e.object_id, "event_id": e.id},
                                dedupe_key=f"recommendations:{e.id}:{learner}")]

    @property
    def handlers(self):
        return {"graded": self.feedback_ready, "feedback released": self.feedback_ready,
                "released": self.assignment_released, "answered": self.help_answered,
                "answered-help": self.help_answered,
                "recommended": self.recommendations}

    def run_once(self, now: datetime | None = None) -> int:
        """Process one batch of settled events; returns how many notifications were queued."""
        now = now or utcnow()
        horizon = now - timedelta(seconds=self.settle_seconds)
        queued = 0
        with session_scope(self.session_factory) as session:
            cursor = session.get(TriggerCursor, self.cursor_name)
            if cursor is None:
                cursor = TriggerCursor(name=self.cursor_name)
                session.add(cursor)
            query = select(Event).where(Event.stored_at <= horizon)
            if cursor.last_stored_at is None:
                query = query.where(Event.stored_at >= now - self.first_run_lookback)
            else:
                last = aware(cursor.last_stored_at)
                query = query.where(or_(Event.stored_at > last,
                                        and_(Event.stored_at == last, Event.id > cursor.last_event_id)))
            events = session.scalars(query.order_by(Event.stored_at, Event.id).limit(self.batch_size)).all()
            for event in events:
                handler = self.handlers.get(event.verb)
                if handler is not None:
                    try:
                        items = handler(event)
                    except requests.RequestException as exc:
                        # Membership unknown right now: stop here, the cursor stays, try again next round.
                        log.warning("event %s: cannot resolve recipients yet (%s)", event.id, type(exc).__name__)
                        break
                    for item in items:
                        queued += self.outbox.add(session, item, now) is not None
                cursor.last_stored_at, cursor.last_event_id = event.stored_at, event.id
            cursor.updated_at = now
        if queued and self.outbox.on_enqueued:
            self.outbox.on_enqueued()
        return queued


# -- due-soon reminders ---------------------------------------------------------------------

@dataclass
class DueItem:
    course_id: str
    assignment_id: str
    title: str
    due: datetime


class DueDateSource:
    """Where due dates come from."""

    def due_between(self, start: datetime, end: datetime) -> list[DueItem]:
        raise NotImplementedError


class StaticDueDates(DueDateSource):
    def __init__(self, items: list[DueItem]):
        self.items = items

    def due_between(self, start, end):
        return [i for i in self.items if start <= i.due <= end]


class CourseTablesDueDates(DueDateSource):
    """Released assignments' due dates from the courses service's ``course_assignments`` table,
    read with plain SQL (no import of its code); nothing if the table does not exist."""

    def __init__(self, engine):
        self.engine = engine

    def due_between(self, start, end):
        if not inspect(self.engine).has_table("course_assignments"):
            return []
        # A lightweight table description (not the courses service's model): typed columns make
        # datetimes bind and compare the same way they were stored, on SQLite and PostgreSQL.
        table = sa_table("course_assignments", column("course_id", String()), column("id", String()),
                         column("title", String()), column("due", DateTime(timezone=True)),
                         column("released", Boolean()))
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.c.course_id, table.c.id, table.c.title, table.c.due).where(
                table.c.released.is_(True), table.c.due.is_not(None), table.c.due >= start,
                table.c.due <= end)).all()
        return [DueItem(r[0], r[1], r[2], aware(r[3])) for r in rows]


class DueSoonScheduler:
    """Remind learners of assignments due within ``window`` (once per assignment, due date and learner)."""

    def __init__(self, session_factory, outbox: Outbox, source: DueDateSource, resolver: RecipientResolver,
                 window: timedelta = timedelta(hours=24)):
        self.session_factory, self.outbox, self.source, self.resolver, self.window = (
            session_factory, outbox, source, resolver, window)

    def run_once(self, now: datetime | None = None) -> int:
        now = now or utcnow()
        items = []
        for due in self.source.due_between(now, now + self.window):
            hours = max(1, round((due.due - now).total_seconds() / 3600))
            for user in self.resolver.learners(due.course_id):
                items.append(NewNotification(
                    user, "due_soon", f"Due soon: {due.title}", f"{due.title} is due in about {hours} h.",
                    due.course_id, {"assignment_id": due.assignment_id, "assignment_title": due.title,
                                    "due": due.due.isoformat().replace("+00:00", "Z")},
                    # The due date is in the key: moving the deadline earns a fresh reminder.
                    dedupe_key=f"due_soon:{due.course_id}:{due.assignment_id}:{due.due.isoformat()}:{user}"))
        return len(self.outbox.add_many(self.session_factory, items)) if items else 0
