"""``recommended`` events: a learner's top next step in a course changed after new grades.

The notifications service turns these events into a "recommendations" notification (its
``EventTriggers``), so a learner hears of a new next step without opening the panel. No web code.

:class:`RecommendationAnnouncer` reads ``graded`` events through an
:class:`~learnhub.event_feed.EventFeed` (a cursor of its own, moved in the transaction that
records what it announces: a grade is looked at once, even across restarts and refits). For each
learner and course graded it asks the engine for the top exercise and appends a ``recommended``
event (``learnhub.events.record``, source ``recommender``) unless

* it is the item announced last for that learner and course — "what was announced last" is the
  recommender's own newest ``recommended`` event of that learner and course in the log, or
* one was announced for that learner and course less than ``interval`` ago (no flood of
  notifications while someone works through an assignment).
"""
from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from learnhub.event_feed import EventFeed
from learnhub.event_schemas import Verb
from learnhub.events import record
from learnhub.models import Event
from learnhub.timeutil import as_utc, utcnow

log = logging.getLogger("learnhub.recommender.announcements")

SOURCE = "recommender"


class RecommendationAnnouncer:
    """Append a ``recommended`` event when a graded learner's top next step in a course changes.

    ``engine``: the :class:`~.engine.RecommenderEngine`; ``renderer``: a
    :class:`~.reasons.ReasonRenderer` (the event carries the structured reason and its text);
    ``interval``: seconds within which a learner gets at most one per course (0: no limit).
    """

    cursor_name = "recommender-announcements"

    def __init__(self, session_factory, engine, renderer, *, interval: float = 3600.0,
                 settle_seconds: float = 2.0, batch_size: int = 25,
                 first_run_lookback: timedelta = timedelta(hours=1)):
        self.session_factory = session_factory
        self.engine = engine
        self.renderer = renderer
        self.interval = timedelta(seconds=max(0.0, interval))
        # Small batches: the feed's transaction stays open while the engine ranks each learner's steps,
        # and on SQLite it holds the database's write lock from the first event appended to the commit.
        self.feed = EventFeed(session_factory, self.cursor_name, [Verb.GRADED], settle_seconds=settle_seconds,
                              batch_size=batch_size, first_run_lookback=first_run_lookback)
        #: graded events the last :meth:`run_once` read (0: it has caught up with the log)
        self.last_read = 0

    def run_once(self, now: datetime | None = None) -> int:
        """Look at one batch of new grades; returns how many ``recommended`` events were appended."""
        now = now or utcnow()
        looked: set[tuple[str, str]] = set()
        announced = 0

        def handle(session: Session, event: Event) -> None:
            nonlocal announced
            if event.object_type != "submission" or (event.context or {}).get("mode", "grade") != "grade":
                return  # visible-test checks say nothing new about mastery
            course = event.course_id
            if not course or course not in self.engine.library or (event.actor, course) in looked:
                return  # one look per learner and course a batch: it sees all their grades already
            looked.add((event.actor, course))
            try:
                announced += self.announce(session, event.actor, course, now, cause=event.id)
            except SQLAlchemyError:
                raise  # the transaction is gone: the feed retries the batch next time
            except Exception:
                # One learner's failure must not stall every later grade behind it.
                log.exception("could not announce the next step of %s in %s", event.actor, course)

        self.last_read = self.feed.poll(handle, now)
        return announced

    def last_announced(self, session: Session, learner: str, course: str) -> Event | None:
        """The recommender's newest ``recommended`` event for ``learner`` in ``course``."""
        return session.scalars(
            select(Event).where(Event.actor == learner, Event.verb == Verb.RECOMMENDED, Event.course_id == course,
                                Event.source == SOURCE)
            .order_by(Event.time.desc(), Event.stored_at.desc()).limit(1)).first()

    def announce(self, session: Session, learner: str, course: str, now: datetime, cause: str) -> bool:
        """Append the event for ``learner``'s top exercise in ``course`` if it is news; True if appended."""
        payload = self.engine.recommend(learner, "exercise", course=course, limit=1, now=now)
        if not payload["items"]:
            return False  # everything done: nothing to point to
        top = payload["items"][0]
        last = self.last_announced(session, learner, course)
        if last is not None:
            if (last.result or {}).get("item") == top["item"]:
                return False
            if self.interval and now - as_utc(last.time) < self.interval:
                return False
        reason = {"code": top["reason_code"], "params": top["reason_params"]}
        text = self.renderer.text(reason, kind="exercise", title=top["title"])
        # The id comes from the grade that caused it: a batch handled twice (a crash before the
        # cursor moved) stores the event once.
        digest = hashlib.sha256(f"{cause}\n{learner}\n{course}".encode()).hexdigest()[:40]
        stored = record(session, learner, Verb.RECOMMENDED, "recommendation", f"{course}/{top['item']}",
                        course_id=course, source=SOURCE, id=f"recommended:{digest}", time=now,
                        result={"kind": "exercise", "item": top["item"], "title": top["title"],
                                "reason": reason, "reason_text": text[:1000]})
        if stored:
            log.info("announced %s to %s in %s (%s)", top["item"], learner, course, reason["code"])
        return stored
