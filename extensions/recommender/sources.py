"""What the recommender reads from other services: learner profiles and assignment due dates.

Both belong to the courses service, and services talk over HTTP, never through each other's
tables. So the engine asks a :class:`ProfileSource` and a :class:`ScheduleSource`; the service
plugs in the ones that call the courses service (:class:`CoursesServiceProfiles`:
``GET profiles/{user}``, :class:`CoursesServiceSchedule`: ``GET schedule?course=``) with its own
token, which holds ``custom:learnhub:courses:read``. A deployment may plug in others
(``RecommenderService.profile_source_class`` / ``schedule_source_class``).

Recommendations must not fail, nor wait, because the courses service does not answer: the HTTP
sources keep what they read for ``ttl`` seconds, and when the courses service is down or refuses
they log it once, answer "no profile" / "no schedule" (the engine then uses history and popularity,
and the course folder's due dates) and only ask again ``retry_seconds`` later.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from urllib.parse import quote

from learnhub.hubapi import APIClientError, PeerUnavailable
from learnhub.timeutil import parse_iso

log = logging.getLogger("learnhub.recommender.sources")


class ProfileSource:
    """Where learner profiles (goals, level) come from. This one knows none.

    ``profile`` returns a dict with any of ``goals`` (text), ``skills``/``goal_skills`` (list),
    ``level`` ("beginner"/"intermediate"/"advanced"), or None.
    """

    def profile(self, learner: str) -> dict | None:
        return None

    @classmethod
    def for_service(cls, service) -> "ProfileSource":
        """Build one for a running recommender service (subclasses take what they need from it)."""
        return cls()


class StaticProfileSource(ProfileSource):
    """Profiles from a dict (tests, and a simple way to configure a few by hand)."""

    def __init__(self, profiles: dict | None = None):
        self.profiles = dict(profiles or {})

    def profile(self, learner: str) -> dict | None:
        return self.profiles.get(learner)


class ScheduleSource:
    """Where assignments' due dates come from, when they differ from the course folder's (an import
    can move them, instructors edit them). This one knows none: the folder's dates stand.

    ``due_dates(course_id)`` returns ``{assignment id: aware datetime or None}`` for the assignments
    whose date it knows; the others keep the folder's.
    """

    def due_dates(self, course_id: str) -> dict[str, datetime | None]:
        return {}

    @classmethod
    def for_service(cls, service) -> "ScheduleSource":
        return cls()


class StaticSchedule(ScheduleSource):
    """Due dates from a dict ``{course: {assignment: datetime | None}}`` (tests, hand configuration)."""

    def __init__(self, schedule: dict | None = None):
        self.schedule = {course: dict(items) for course, items in (schedule or {}).items()}

    def due_dates(self, course_id: str) -> dict[str, datetime | None]:
        return dict(self.schedule.get(course_id, {}))


class _CoursesServiceReader:
    """Cached reads from the courses service, one outage logged once.

    ``api`` is a :class:`learnhub.hubapi.ServiceAPI` of the courses service (anything with
    ``request_sync(method, path, params=...)``). The engine calls the sources from worker threads.
    """

    #: seconds one HTTP call may take: a recommendation waits for it on a cold cache
    timeout = 5.0
    what = "data"

    def __init__(self, api, ttl: float = 30.0, retry_seconds: float = 30.0, max_entries: int = 10_000):
        self.api = api
        self.ttl = ttl
        self.retry_seconds = retry_seconds
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._outage_logged = False

    @classmethod
    def for_service(cls, service):
        api = service.service_api("courses")
        api.timeout = min(api.timeout, cls.timeout)
        return cls(api)

    def _read(self, key: str, fetch, fallback):
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
            if cached and now - cached[0] < self.ttl:
                return cached[1]
            if now < self._down_until:  # it did not answer a moment ago: do not make everyone wait
                return cached[1] if cached else fallback
        try:
            value = fetch()
        except (PeerUnavailable, APIClientError) as exc:
            with self._lock:
                self._down_until = time.monotonic() + self.retry_seconds
                first = not self._outage_logged
                self._outage_logged = True
            if first:
                log.warning("the courses service gives no %s (%s); recommending without it until it does",
                            self.what, exc)
            return cached[1] if cached else fallback
        with self._lock:
            if self._outage_logged:
                log.info("the courses service gives %s again", self.what)
                self._outage_logged = False
            self._down_until = 0.0
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[key] = (time.monotonic(), value)
        return value

    def forget(self) -> None:
        """Drop what is cached (the next read asks the courses service)."""
        with self._lock:
            self._cache.clear()
            self._down_until = 0.0


class CoursesServiceProfiles(_CoursesServiceReader, ProfileSource):
    """Profiles as learners set them at the courses service (``PUT profile``), read with
    ``GET profiles/{user}`` and kept ``ttl`` seconds. Preferred topics count as goal words."""

    what = "learner profiles"

    def profile(self, learner: str) -> dict | None:
        return self._read(learner, lambda: self._fetch(learner), None)

    def _fetch(self, learner: str) -> dict | None:
        body = self.api.request_sync("GET", f"profiles/{quote(learner, safe='')}") or {}
        topics = [str(t) for t in body.get("preferred_topics") or ()]
        goals = " ".join([body.get("goals") or "", *topics]).strip()
        skills = list(body.get("goal_skills") or [])
        level = body.get("level")
        if not (goals or skills or level):
            return None  # nothing set (the courses service answers an empty profile)
        return {"goals": goals, "goal_skills": skills, "level": level}


class CoursesServiceSchedule(_CoursesServiceReader, ScheduleSource):
    """Released assignments' due dates as the courses service holds them (``GET schedule?course=``,
    every page), kept ``ttl`` seconds per course."""

    what = "schedule"

    def __init__(self, api, ttl: float = 60.0, retry_seconds: float = 30.0, max_entries: int = 10_000):
        super().__init__(api, ttl=ttl, retry_seconds=retry_seconds, max_entries=max_entries)

    def due_dates(self, course_id: str) -> dict[str, datetime | None]:
        return dict(self._read(course_id, lambda: self._fetch(course_id), {}))

    def _fetch(self, course_id: str) -> dict[str, datetime | None]:
        found: dict[str, datetime | None] = {}
        params = {"course": course_id, "limit": 200}
        while True:
            page = self.api.request_sync("GET", "schedule", params=params) or {}
            for item in page.get("items") or ():
                if item.get("course_id", course_id) == course_id and item.get("assignment_id"):
                    found[item["assignment_id"]] = parse_iso(item["due"]) if item.get("due") else None
            if not page.get("next"):
                return found
            params["cursor"] = page["next"]
