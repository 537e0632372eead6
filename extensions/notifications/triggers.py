"""What to notify about: event-log triggers, due-soon reminders, and who is in a course.

:class:`EventTriggers` subscribes to the verbs it turns into notifications (released, graded,
feedback-released, answered-help, recommended) through the event log's
:class:`~learnhub.event_feed.EventFeed`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta


from learnhub.course_roles import LEARNER, group_name
from learnhub.event_feed import EventFeed, RetryLater
from learnhub.event_schemas import Verb
from learnhub.gradings import is_regrade, submission_of
from learnhub.hubapi import APIClientError, HubAPI, PeerUnavailable, ServiceAPI
from learnhub.models import Event
from learnhub.timeutil import iso, parse_iso, utcnow

from .outbox import NewNotification, Outbox

log = logging.getLogger("learnhub.notifications.triggers")


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
    """The learners of a course: members of its hub group (which the courses service keeps in sync),
    read with the service's own token (it holds ``read:groups``)."""

    def __init__(self, hub_api: HubAPI):
        self.hub_api = hub_api

    def learners(self, course_id):
        try:
            return self.hub_api.group_members_sync(group_name(course_id, LEARNER)) or []
        except APIClientError as exc:
            # Our token may not read it: retrying will not help, and must not stall the triggers.
            log.warning("cannot read the learners of %s: %s", course_id, exc)
            return []


# -- event-log triggers ---------------------------------------------------------------------

def _score_text(result: dict) -> str:
    """``7 / 10`` (as the templates show it), or '' when the grading gave no maximum."""
    if result.get("score") is None or not result.get("max_score"):
        return ""
    return f"{result['score']:g} / {result['max_score']:g}"


def _assignment_of(event: Event) -> tuple[str, str]:
    """The assignment an event is about, and its title (what the producer gave, else the id)."""
    context, result = event.context or {}, event.result or {}
    assignment = context.get("assignment_id") or (event.object_id if event.object_type == "assignment" else "")
    title = result.get("title") or context.get("assignment_title") or assignment or event.object_id
    return assignment or event.object_id, title


class EventTriggers:
    """Turn events of the log into notifications: one method per verb (:attr:`handlers`), read
    through an :class:`~learnhub.event_feed.EventFeed` whose cursor moves in the transaction
    that queues the notifications. Each notification's ``dedupe_key`` comes from the event, so an
    event read twice notifies once."""

    cursor_name = "notifications"

    def __init__(self, session_factory, outbox: Outbox, resolver: RecipientResolver,
                 settle_seconds: float = 2.0, batch_size: int = 500,
                 first_run_lookback: timedelta = timedelta(hours=1)):
        self.outbox, self.resolver = outbox, resolver
        self.feed = EventFeed(session_factory, self.cursor_name, self.handlers, settle_seconds=settle_seconds,
                              batch_size=batch_size, first_run_lookback=first_run_lookback)

    def feedback_ready(self, e: Event) -> list[NewNotification]:
        """Autograding finished (graded): the learner's per-test results are in. A regrade's (the
        same submission graded again after its tests were fixed) says so, with the new score: it is
        the learner's grade now, not another submission's; one that leaves the score as it was says
        nothing. Same type, so the learner's channels for feedback apply."""
        if e.object_type != "submission":
            return []
        assignment, title = _assignment_of(e)
        result, context = e.result or {}, e.context or {}
        data = {"assignment_id": assignment, "assignment_title": title, "submission_id": e.object_id,
                "score": result.get("score"), "max_score": result.get("max_score"), "event_id": e.id}
        if is_regrade(context):
            if context.get("previous_score") is not None and context["previous_score"] == result.get("score"):
                return []  # the fix changed nothing for this learner: a class regrade is no news to them
            score = _score_text(result)
            return [NewNotification(
                e.actor, "feedback_ready", f"Regraded: {title}",
                "Your submission was regraded after a fix to the assignment's tests"
                + (f"; your score is now {score}." if score else ".") + " The feedback is in JupyterLab.",
                e.course_id, {**data, "regrade_id": context["regrade_id"],
                              "regraded_submission_id": submission_of(e.object_id, context)},
                dedupe_key=f"feedback_ready:{e.object_id}:{e.actor}")]
        return [NewNotification(e.actor, "feedback_ready", f"Feedback ready: {title}",
                                "Your submission was graded; the feedback is in JupyterLab.", e.course_id, data,
                                dedupe_key=f"feedback_ready:{e.object_id}:{e.actor}")]

    def feedback_released(self, e: Event) -> list[NewNotification]:
        """An instructor or TA released feedback (feedback-released): every release tells the learner."""
        assignment, title = _assignment_of(e)
        result = e.result or {}
        return [NewNotification(e.actor, "feedback_ready", f"Feedback released: {title}",
                                "Your instructor released feedback on your submission; fetch it in JupyterLab.",
                                e.course_id,
                                {"assignment_id": assignment, "assignment_title": title, "submission_id": e.object_id,
                                 "score": result.get("score"), "max_score": result.get("max_score"),
                                 "event_id": e.id},
                                dedupe_key=f"feedback_released:{e.id}:{e.actor}")]

    def assignment_released(self, e: Event) -> list[NewNotification]:
        if not e.course_id:
            return []
        assignment, title = _assignment_of(e)
        return [NewNotification(user, "assignment_released", f"New assignment: {title}",
                                f"{title} was released in {e.course_id}.", e.course_id,
                                {"assignment_id": assignment, "assignment_title": title, "event_id": e.id},
                                dedupe_key=f"assignment_released:{e.id}:{user}")
                for user in self.resolver.learners(e.course_id)]

    def help_answered(self, e: Event) -> list[NewNotification]:
        asker = (e.context or {}).get("learner")
        if not asker or asker == e.actor:
            return []
        return [NewNotification(asker, "help_answered", "Your question was answered",
                                f"{e.actor} answered your question.", e.course_id,
                                {"question_id": e.object_id, "answered_by": e.actor, "event_id": e.id},
                                dedupe_key=f"help_answered:{e.id}:{asker}")]

    def recommendations(self, e: Event) -> list[NewNotification]:
        result = e.result or {}
        reason = result.get("reason_text") or "New learning recommendations are ready for you."
        title = result.get("title") or result.get("item") or "New recommendations"
        return [NewNotification(e.actor, "recommendations", f"Recommended next: {title}", reason, e.course_id,
                                {"kind": result.get("kind"), "item": result.get("item"), "event_id": e.id},
                                dedupe_key=f"recommendations:{e.id}:{e.actor}")]

    @property
    def handlers(self) -> dict:
        return {Verb.GRADED: self.feedback_ready, Verb.FEEDBACK_RELEASED: self.feedback_released,
                Verb.RELEASED: self.assignment_released, Verb.ANSWERED_HELP: self.help_answered,
                Verb.RECOMMENDED: self.recommendations}

    def run_once(self, now: datetime | None = None) -> int:
        """Handle one batch of settled events; returns how many notifications were queued."""
        now = now or utcnow()
        queued = 0
        handlers = self.handlers

        def handle(session, event: Event) -> None:
            nonlocal queued
            try:
                items = handlers[Verb(event.verb)](event)
            except PeerUnavailable as exc:
                # Membership unknown right now: the feed stops here and starts with this event next time.
                raise RetryLater(f"cannot resolve recipients yet ({type(exc).__name__})") from exc
            for item in items:
                queued += self.outbox.add(session, item, now) is not None

        self.feed.poll(handle, now)
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


class CoursesServiceDueDates(DueDateSource):
    """Released assignments' due dates from the courses service (``GET api/schedule``, which this
    service's token may read: ``custom:learnhub:courses:read``)."""

    def __init__(self, courses: ServiceAPI):
        self.courses = courses

    def due_between(self, start, end):
        items, params = [], {"due_after": iso(start), "due_before": iso(end), "limit": 200}
        while True:
            page = self.courses.request_sync("GET", "schedule", params=params)
            items += [DueItem(i["course_id"], i["assignment_id"], i["title"], parse_iso(i["due"]))
                      for i in page["items"] if i.get("due")]
            if not page.get("next"):
                return items
            params["cursor"] = page["next"]


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
