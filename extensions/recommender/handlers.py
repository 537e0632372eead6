"""HTTP handlers of the recommender service: thin wrappers around :mod:`.engine`.

Permissions (from the hub's course groups, see ``learnhub.service.AuthenticatedMixin``):

* anyone signed in sees their own mastery and recommendations;
* instructors and TAs of a course see those of its learners (``?course=<id>&user=<name>``), and the
  mastery of every learner of the course (``GET api/mastery?course=<id>`` without ``user``);
* admins count as instructors everywhere; anyone else asking about another user gets 403;
* an unknown course is 404 (before any permission check: the catalogue is public).

Recommendations carry the models' structured reason (``reason_code``, ``reason_params``); the
handler adds its English text, ``reason`` (:mod:`.reasons`).
"""
from __future__ import annotations

from tornado.ioloop import IOLoop

from learnhub.course_roles import LEARNER, STAFF, group_name, role_in, roles_from_groups
from learnhub.service import APIError, APIHandler

from .engine import KINDS, UnknownCourse


def _int_arg(handler, name: str, default: int, low: int, high: int) -> int:
    value = handler.get_argument(name, None)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise APIError(400, f"{name} must be an integer from {low} to {high}, not {value!r}",
                       {"parameter": name})
    return number


class RecommenderHandler(APIHandler):
    @property
    def rec(self):
        return self.service.rec_engine

    async def run(self, fn, *args, **kwargs):
        return await IOLoop.current().run_in_executor(None, lambda: fn(*args, **kwargs))

    def course_arg(self) -> str | None:
        course = self.get_argument("course", None) or None
        if course is not None and course not in self.rec.library:
            raise APIError(404, f"No such course: {course!r}", {"course": course})
        return course

    async def target_user(self, course: str | None) -> tuple[str, bool]:
        """(the learner asked about, whether that is the caller), enforcing the permission rules."""
        user = self.get_argument("user", None) or None
        me = self.current_user_name
        if user is None or user == me:
            return me, True
        if self.current_user.get("kind", "user") != "user" and not self.is_admin:
            raise APIError(403, "Only users may ask about a learner.")
        if course is None:
            if self.is_admin:
                return user, False
            raise APIError(403, "You may only see your own data; instructors and TAs give the course "
                                "(course=<id>) of the learner.", {"user": user})
        role = await self.course_role(course)
        if role not in STAFF:
            raise APIError(403, f"Seeing another learner's data needs the role instructor or ta in course "
                                f"{course!r}.", {"course": course, "your_role": role})
        groups = await self.service.fetch_user_groups(user)
        if role_in(groups, course) != LEARNER:
            raise APIError(403, f"{user!r} is not a learner of course {course!r}.",
                           {"course": course, "user": user})
        return user, False

    async def groups_of(self, user: str, is_self: bool) -> list[str]:
        if is_self:
            groups = list(self.current_user.get("groups", []))
            # HubAuth's cached model may predate the caller's first enrollment: with no course
            # group in it, ask the hub (one call; a learner in a course never pays it).
            if any(g.startswith("course-") for g in groups):
                return groups
        return await self.service.fetch_user_groups(user)


def _courses_in(groups, roles=(LEARNER,)) -> list[str]:
    """The courses in which the hub groups ``groups`` give one of ``roles``."""
    return sorted(course for course, role in roles_from_groups(groups).items() if role in roles)


class RecommendationsHandler(RecommenderHandler):
    """``GET api/recommendations?kind=&course=&user=&limit=``"""

    async def get(self):
        course = self.course_arg()
        kind = self.get_argument("kind", None) or ("exercise" if course else "course")
        if kind not in KINDS:
            raise APIError(400, f"kind must be one of {', '.join(KINDS)}, not {kind!r}", {"parameter": "kind"})
        limit = _int_arg(self, "limit", 10, 1, 100)
        user, is_self = await self.target_user(course)
        if is_self and course is not None and kind != "course" and await self.course_role(course) is None:
            raise APIError(403, f"Enroll in course {course!r} to get recommendations inside it.",
                           {"course": course})
        groups = await self.groups_of(user, is_self)
        if kind == "course":
            courses = _courses_in(groups, (LEARNER, *STAFF))
        else:
            courses = _courses_in(groups)
        try:
            payload = await self.run(self.rec.recommend, user, kind, course=course, courses=courses, limit=limit)
        except UnknownCourse as exc:
            raise APIError(404, f"No such course: {exc.args[0]!r}")
        self.write_json(self.service.reasons.explain(payload))


class MasteryHandler(RecommenderHandler):
    """``GET api/mastery?course=&user=`` — one learner, or (staff, no user) every learner of a course."""

    async def get(self):
        course = self.course_arg()
        asked = self.get_argument("user", None) or None
        if asked is None and course is not None and await self.course_role(course) in STAFF:
            return await self.class_view(course)
        user, _ = await self.target_user(course)
        payload = await self.run(self.rec.mastery, user, course)
        self.write_json(payload)

    async def class_view(self, course: str):
        limit = _int_arg(self, "limit", 100, 1, 500)
        start = _int_arg(self, "cursor", 0, 0, 10**9)
        learners = await self.service.fetch_group_users(group_name(course, LEARNER)) or []
        page = learners[start:start + limit]
        items = await self.run(self.rec.mastery_many, page, course)
        nxt = str(start + limit) if start + limit < len(learners) else None
        self.write_json({"course": course, "model": self.rec.model_info(),
                         "items": [{"user": it["user"], "items": it["items"]} for it in items],
                         "next": nxt})


class ModelHandler(RecommenderHandler):
    """``GET api/model``"""

    def get(self):
        self.write_json(self.rec.model_info())


class RefitHandler(RecommenderHandler):
    """``POST api/refits`` (admins)"""

    async def post(self):
        if not self.is_admin:
            raise APIError(403, "Refitting the models needs an admin.")
        await self.service.refit()
        self.write_json(self.rec.model_info(), 201)
