"""The courses engine: catalogue, enrollments, learner profiles and progress.

No web code here: callers pass a :class:`Caller` (who is asking, with their hub-level powers)
and get plain dicts back, or a :class:`CourseError` carrying the HTTP status that fits.
Per-course permissions come from enrollment roles in the learnhub database; platform-wide ones
from the hub (admin, ``custom:learnhub:courses:create`` / ``:manage`` / ``grades:read``).
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from learnhub.course_content import LEVELS, SLUG_RE, CourseFormatError, FieldChecker, check_course_metadata
from learnhub.events import Verb, record
from learnhub.timeutil import iso, utcnow

from . import models as m

SOURCE = "courses"
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
USER_RE = re.compile(r"^[^/\s]{1,255}$")
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class CourseError(Exception):
    """A caller's mistake or a refusal, with the HTTP status it maps to."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.details = status, message, details or {}


@dataclass(frozen=True)
class Caller:
    name: str
    admin: bool = False
    can_create: bool = False   # custom:learnhub:courses:create
    can_manage: bool = False   # custom:learnhub:courses:manage (every course)
    can_read_grades: bool = False  # custom:learnhub:grades:read (every learner's work)
    can_read_all: bool = False  # custom:learnhub:courses:read (schedules, profiles: learnhub's services)
    can_submit_for: bool = False  # custom:learnhub:submissions:write (the feedback service's submit)

    @property
    def manager(self) -> bool:
        return self.admin or self.can_manage

    @property
    def reader(self) -> bool:
        """May read every course's schedule and every learner's profile."""
        return self.manager or self.can_read_all


def record_event(session: Session, actor: str, verb: Verb, object_type: str, object_id: str,
                 course_id: str | None, result: dict | None = None, context: dict | None = None,
                 id: str | None = None) -> None:
    """Append one of the courses service's events to the event log (``actor``: the person the event is
    about; ``context.role``: their role, which keeps staff out of learner statistics)."""
    record(session, actor, verb, object_type, object_id, course_id=course_id, result=result,
           context=context, source=SOURCE, id=id)


def acting_role(caller: Caller, role: str | None) -> str:
    """The role someone acts in: their course role, else what their hub powers make them."""
    if role:
        return role
    return "admin" if caller.admin else "instructor" if caller.manager else "learner"


# --------------------------------------------------------------------------- pagination


def parse_limit(value: str | None) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise CourseError(400, f"limit must be an integer from 1 to {MAX_LIMIT}, not {value!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise CourseError(400, f"limit must be from 1 to {MAX_LIMIT}, not {limit}")
    return limit


def parse_cursor(cursor: str | None) -> int:
    """Cursors are opaque to callers; inside they are an offset."""
    if not cursor:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(cursor.encode()).decode())["o"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except Exception:
        pass
    raise CourseError(400, "cursor is not one this service gave out; start again without it")


def cursor_at(offset: int) -> str:
    """The opaque cursor of the page that starts at ``offset`` (what :func:`parse_cursor` reads)."""
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def page(items: list, offset: int, limit: int) -> dict:
    chunk = items[offset:offset + limit]
    following = offset + limit
    return {"items": chunk, "next": cursor_at(following) if following < len(items) else None}


# --------------------------------------------------------------------------- validation


def _unknown(body: dict, allowed: Iterable[str]) -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise CourseError(422, f"unknown field(s): {', '.join(extra)}", {"allowed": sorted(allowed)})


def _string(body: dict, key: str, *, max_len: int, empty_ok: bool = True) -> str:
    value = body[key]
    if not isinstance(value, str) or len(value) > max_len or (not empty_ok and not value.strip()):
        raise CourseError(422, f"{key} must be a {'non-empty ' if not empty_ok else ''}string of at most "
                               f"{max_len} characters", {"field": key})
    return value


def _string_list(body: dict, key: str, *, slug: bool = False, max_items: int = 100, max_len: int = 64) -> list[str]:
    value = body[key]
    if not isinstance(value, list) or len(value) > max_items or not all(
            isinstance(v, str) and 0 < len(v) <= max_len for v in value):
        raise CourseError(422, f"{key} must be a list of at most {max_items} strings of 1-{max_len} characters",
                          {"field": key})
    if slug:
        bad = [v for v in value if not SLUG_RE.match(v)]
        if bad:
            raise CourseError(422, f"{key}: not slugs (lowercase letters, digits, - and _): {', '.join(bad)}",
                              {"field": key})
    return list(dict.fromkeys(value))


COURSE_FIELDS = ("id", "title", "description", "level", "tags", "prerequisites", "status", "open_enrollment",
                 "skills")


def _field_error(error: CourseFormatError) -> CourseError:
    """A 422 for a course field that breaks the course format's rules: the message names the field,
    the problem and the fix; ``details.field`` is the body's field, ``details.location`` where in it."""
    location = error.field or ""
    field = re.match(r"[^.\[]*", location).group(0)
    details = {"field": field}
    if location != field:
        details["location"] = location
    return CourseError(422, str(error), details)


def validate_course(body: Any, *, partial: bool) -> dict:
    """The fields of a course to create (or, ``partial``, to change), checked.

    Each field follows the rules a course.yaml follows (``learnhub.course_content.checks``);
    which fields must be there, ``status`` and the defaults are the API's own.
    """
    if not isinstance(body, dict):
        raise CourseError(422, "send a JSON object")
    _unknown(body, COURSE_FIELDS if not partial else [f for f in COURSE_FIELDS if f != "id"])
    if not partial:
        for key in ("id", "title"):
            if key not in body:
                raise CourseError(422, f"{key} is required", {"field": key})
    try:
        # a skill sent without a title is titled by its id
        checked = check_course_metadata(FieldChecker(syntax="json"), body, required_skill_fields=("id",))
    except CourseFormatError as error:
        raise _field_error(error) from None
    out: dict[str, Any] = {}
    if not partial:
        out["id"] = checked["id"]
    if "title" in checked:
        out["title"] = checked["title"].strip()
    for key in ("description", "level", "open_enrollment", "prerequisites"):
        if key in checked:
            out[key] = checked[key]
    if "status" in body:
        if body["status"] not in m.COURSE_STATUSES:
            raise CourseError(422, f"status must be one of {', '.join(m.COURSE_STATUSES)}", {"field": "status"})
        out["status"] = body["status"]
    if "tags" in checked:
        out["tags"] = list(dict.fromkeys(checked["tags"]))
    if "skills" in checked:
        out["skills"] = [{"id": s["id"], "title": s["title"] if s["title"] is not None else s["id"],
                          "prerequisites": s["prerequisites"]} for s in checked["skills"]]
    return out


# --------------------------------------------------------------------------- roles


def role_of(session: Session, course_id: str, user: str) -> str | None:
    return session.scalar(select(m.Enrollment.role).where(m.Enrollment.course_id == course_id,
                                                          m.Enrollment.user_name == user))


def dropped_by_lms(session: Session, course_id: str, user: str) -> bool:
    """A roster sync found the person no longer in any LMS course linked to this one (learnhub/lti): the
    LMS decides who belongs, so they do not enroll themselves back."""
    from learnhub.lti import models as lm

    statuses = set(session.scalars(
        select(lm.LtiMember.status).join(lm.LtiContext, lm.LtiContext.id == lm.LtiMember.context_pk)
        .where(lm.LtiContext.course_id == course_id, lm.LtiMember.user_name == user)))
    return "inactive" in statuses and "active" not in statuses


def get_course(session: Session, caller: Caller, course_id: str) -> tuple[m.Course, str | None]:
    """The course and the caller's role in it; 404 when it does not exist *or* the caller may not see it."""
    course = session.get(m.Course, course_id)
    role = role_of(session, course_id, caller.name) if course else None
    if course is None or not (course.status == "published" or role or caller.reader or caller.can_read_grades):
        raise CourseError(404, f"no course {course_id!r}", {"course_id": course_id})
    return course, role


def is_staff(caller: Caller, role: str | None) -> bool:
    return caller.manager or role in ("instructor", "ta")


def is_instructor(caller: Caller, role: str | None) -> bool:
    return caller.manager or role == "instructor"


# --------------------------------------------------------------------------- catalogue


class CourseCatalog:
    def __init__(self, session: Session):
        self.session = session

    def to_dict(self, course: m.Course, role: str | None = None) -> dict:
        skills = self.session.scalars(select(m.CourseSkill).where(m.CourseSkill.course_id == course.id)
                                      .order_by(m.CourseSkill.position, m.CourseSkill.skill_id)).all()
        return {
            "id": course.id, "title": course.title, "description": course.description, "level": course.level,
            "tags": list(course.tags or []), "prerequisites": list(course.prerequisites or []),
            "status": course.status, "open_enrollment": course.open_enrollment,
            "skills": [{"id": s.skill_id, "title": s.title, "prerequisites": list(s.prerequisites or [])}
                       for s in skills],
            "created_by": course.created_by, "created_at": iso(course.created_at),
            "updated_at": iso(course.updated_at), "my_role": role,
        }

    def search(self, caller: Caller, *, q: str = "", tag: str = "", level: str = "", skill: str = "",
               status: str = "", mine: bool = False) -> list[dict]:
        query = select(m.Course).order_by(m.Course.id)
        roles = dict(self.session.execute(select(m.Enrollment.course_id, m.Enrollment.role)
                                          .where(m.Enrollment.user_name == caller.name)).all())
        if level:
            if level not in LEVELS:
                raise CourseError(400, f"level must be one of {', '.join(LEVELS)}")
            query = query.where(m.Course.level == level)
        if status:
            if status not in m.COURSE_STATUSES:
                raise CourseError(400, f"status must be one of {', '.join(m.COURSE_STATUSES)}")
            query = query.where(m.Course.status == status)
        if q:
            pattern = f"%{q.lower()}%"
            query = query.where(or_(func.lower(m.Course.title).like(pattern),
                                    func.lower(m.Course.description).like(pattern),
                                    func.lower(m.Course.id).like(pattern)))
        if skill:
            query = query.where(m.Course.id.in_(select(m.CourseSkill.course_id).where(m.CourseSkill.skill_id == skill)))
        if mine:
            query = query.where(m.Course.id.in_(list(roles)))
        out = []
        for course in self.session.scalars(query):
            role = roles.get(course.id)
            # Learners see published courses; staff also their own drafts; managers everything.
            if not (course.status == "published" or role in ("instructor", "ta") or caller.manager
                    or (mine and role)):
                continue
            if tag and tag.lower() not in [t.lower() for t in course.tags or []]:
                continue
            out.append(self.to_dict(course, role))
        return out

    def create(self, caller: Caller, body: Any) -> dict:
        if not (caller.admin or caller.can_create or caller.can_manage):
            raise CourseError(403, "creating courses needs the learnhub-instructor role "
                                   "(custom:learnhub:courses:create); ask an admin")
        data = validate_course(body, partial=False)
        if self.session.get(m.Course, data["id"]) is not None:
            raise CourseError(409, f"a course with id {data['id']!r} exists already; choose another id",
                              {"course_id": data["id"]})
        skills = data.pop("skills", [])
        course = m.Course(**{"description": "", "level": "beginner", "tags": [], "prerequisites": [],
                             "status": "draft", "open_enrollment": False, **data}, created_by=caller.name)
        self.session.add(course)
        self._set_skills(course.id, skills)
        # The creator teaches the course they made.
        self.session.add(m.Enrollment(course_id=course.id, user_name=caller.name, role="instructor"))
        record_event(self.session, caller.name, Verb.COURSE_CREATED, "course", course.id, course.id,
                     context={"role": "instructor"})
        self.session.flush()
        return self.to_dict(course, "instructor")

    def _set_skills(self, course_id: str, skills: list[dict]) -> None:
        self.session.execute(delete(m.CourseSkill).where(m.CourseSkill.course_id == course_id))
        self.session.flush()
        for position, skill in enumerate(skills):
            self.session.add(m.CourseSkill(course_id=course_id, skill_id=skill["id"], title=skill["title"],
                                           prerequisites=skill["prerequisites"], position=position))

    def get(self, caller: Caller, course_id: str) -> dict:
        course, role = get_course(self.session, caller, course_id)
        return self.to_dict(course, role)

    def update(self, caller: Caller, course_id: str, body: Any) -> dict:
        course, role = get_course(self.session, caller, course_id)
        if not is_instructor(caller, role):
            raise CourseError(403, "only the course's instructors and admins may change it")
        data = validate_course(body, partial=True)
        if "skills" in data:
            self._set_skills(course.id, data.pop("skills"))
        for key, value in data.items():
            setattr(course, key, value)
        course.updated_at = utcnow()
        record_event(self.session, caller.name, Verb.COURSE_UPDATED, "course", course.id, course.id,
                     context={"changed": sorted(data), "role": acting_role(caller, role)})
        self.session.flush()
        return self.to_dict(course, role)

    def delete(self, caller: Caller, course_id: str) -> None:
        course, role = get_course(self.session, caller, course_id)
        if not is_instructor(caller, role):
            raise CourseError(403, "only the course's instructors and admins may delete it")
        submissions = self.session.scalar(select(func.count()).select_from(m.Submission)
                                          .where(m.Submission.course_id == course_id))
        if submissions:
            # Learners' work is never deleted as a side effect: archive instead.
            raise CourseError(409, f"course {course_id!r} has {submissions} submission(s); "
                                   "archive it instead (PATCH status=archived)", {"submissions": submissions})
        for model in (m.Fetch, m.Exercise, m.Assignment, m.Enrollment, m.CourseSkill):
            self.session.execute(delete(model).where(model.course_id == course_id))
        self.session.delete(course)
        record_event(self.session, caller.name, Verb.COURSE_DELETED, "course", course_id, course_id,
                     context={"role": acting_role(caller, role)})


# --------------------------------------------------------------------------- enrollments


class Enrollments:
    def __init__(self, session: Session):
        self.session = session

    @staticmethod
    def to_dict(row: m.Enrollment) -> dict:
        return {"course_id": row.course_id, "user": row.user_name, "role": row.role,
                "created_at": iso(row.created_at), "mirrored": row.mirrored_role == row.role}

    def list(self, caller: Caller, course_id: str, role_filter: str = "") -> list[dict]:
        _course, role = get_course(self.session, caller, course_id)
        if not is_staff(caller, role):
            raise CourseError(403, "only the course's instructors, TAs and admins may list its members")
        query = select(m.Enrollment).where(m.Enrollment.course_id == course_id).order_by(m.Enrollment.user_name)
        if role_filter:
            query = query.where(m.Enrollment.role == role_filter)
        return [self.to_dict(row) for row in self.session.scalars(query)]

    def enroll(self, caller: Caller, course_id: str, body: Any) -> tuple[dict, str | None, bool]:
        """Enroll a user. Returns (enrollment, previous role, created)."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise CourseError(422, "send a JSON object {\"user\": ..., \"role\": ...}")
        _unknown(body, ("user", "role"))
        course, my_role = get_course(self.session, caller, course_id)
        user = body.get("user") or caller.name
        role = body.get("role") or "learner"
        if not isinstance(user, str) or not USER_RE.match(user):
            raise CourseError(422, "user must be a hub user name", {"field": "user"})
        if role not in m.ROLES:
            raise CourseError(422, f"role must be one of {', '.join(m.ROLES)}", {"field": "role"})
        if not is_instructor(caller, my_role):
            if user != caller.name or role != "learner":
                raise CourseError(403, "only the course's instructors and admins may enroll others or give "
                                       "a role other than learner")
            if course.status != "published" or not course.open_enrollment:
                raise CourseError(403, f"course {course_id!r} is not open for self-enrollment; "
                                       "ask its instructor to add you")
            if not my_role and dropped_by_lms(self.session, course_id, user):
                raise CourseError(403, f"the LMS course linked to {course_id!r} no longer lists you; "
                                       "ask its instructor to add you")
            if my_role:  # enrolling twice is a no-op, and never demotes staff
                row = self.session.get(m.Enrollment, (course_id, user))
                return self.to_dict(row), my_role, False
        if course.status == "archived" and not caller.manager:
            raise CourseError(409, f"course {course_id!r} is archived")
        row = self.session.get(m.Enrollment, (course_id, user))
        previous = row.role if row else None
        created = row is None
        if row is None:
            row = m.Enrollment(course_id=course_id, user_name=user, role=role)
            self.session.add(row)
        else:
            row.role = role
        if previous != role:
            record_event(self.session, user, Verb.ENROLLED, "course", course_id, course_id,
                         result={"role": role, "previous_role": previous},
                         context={"by": caller.name, "role": role})
        self.session.flush()
        return self.to_dict(row), previous, created

    def unenroll(self, caller: Caller, course_id: str, user: str) -> str:
        _course, my_role = get_course(self.session, caller, course_id)
        if user != caller.name and not is_instructor(caller, my_role):
            raise CourseError(403, "only the course's instructors and admins may remove others")
        row = self.session.get(m.Enrollment, (course_id, user))
        if row is None:
            raise CourseError(404, f"{user} is not enrolled in {course_id}")
        previous = row.role
        self.session.delete(row)
        record_event(self.session, user, Verb.UNENROLLED, "course", course_id, course_id,
                     result={"role": previous}, context={"by": caller.name, "role": previous})
        return previous

    def mark_mirrored(self, course_id: str, user: str, role: str) -> None:
        row = self.session.get(m.Enrollment, (course_id, user))
        if row is not None and row.role == role:
            row.mirrored_role = role


# --------------------------------------------------------------------------- profiles

PROFILE_FIELDS = ("goals", "goal_skills", "preferred_topics", "level", "weekly_hours", "language")


class Profiles:
    def __init__(self, session: Session):
        self.session = session

    @staticmethod
    def to_dict(user: str, row: m.LearnerProfile | None) -> dict:
        if row is None:
            return {"user": user, "goals": "", "goal_skills": [], "preferred_topics": [], "level": None,
                    "weekly_hours": None, "language": None, "updated_at": None}
        return {"user": user, "goals": row.goals, "goal_skills": list(row.goal_skills or []),
                "preferred_topics": list(row.preferred_topics or []), "level": row.level,
                "weekly_hours": row.weekly_hours, "language": row.language, "updated_at": iso(row.updated_at)}

    def get(self, caller: Caller, user: str | None = None) -> dict:
        """The caller's profile, or (learnhub's services, admins) ``user``'s."""
        user = user or caller.name
        if user != caller.name and not caller.reader:
            raise CourseError(403, "you may only read your own profile")
        return self.to_dict(user, self.session.get(m.LearnerProfile, user))

    def put(self, caller: Caller, body: Any) -> dict:
        if not isinstance(body, dict):
            raise CourseError(422, "send a JSON object with " + ", ".join(PROFILE_FIELDS))
        _unknown(body, PROFILE_FIELDS + ("user", "updated_at"))
        data: dict[str, Any] = {"goals": "", "goal_skills": [], "preferred_topics": [], "level": None,
                                "weekly_hours": None, "language": None}
        if "goals" in body:
            data["goals"] = _string(body, "goals", max_len=2000)
        if "goal_skills" in body:
            data["goal_skills"] = _string_list(body, "goal_skills", slug=True, max_items=50, max_len=128)
        if "preferred_topics" in body:
            data["preferred_topics"] = _string_list(body, "preferred_topics", max_items=50)
        if body.get("level") is not None:
            if body["level"] not in LEVELS:
                raise CourseError(422, f"level must be one of {', '.join(LEVELS)} or null", {"field": "level"})
            data["level"] = body["level"]
        if body.get("weekly_hours") is not None:
            hours = body["weekly_hours"]
            if isinstance(hours, bool) or not isinstance(hours, (int, float)) or not 0 <= hours <= 168:
                raise CourseError(422, "weekly_hours must be a number of hours from 0 to 168",
                                  {"field": "weekly_hours"})
            data["weekly_hours"] = float(hours)
        if body.get("language") is not None:
            if not isinstance(body["language"], str) or not LANGUAGE_RE.match(body["language"]):
                raise CourseError(422, "language must be a language tag like 'en' or 'pt-BR'", {"field": "language"})
            data["language"] = body["language"]
        row = self.session.get(m.LearnerProfile, caller.name)
        if row is None:
            row = m.LearnerProfile(user_name=caller.name, **data)
            self.session.add(row)
        else:
            for key, value in data.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
        record_event(self.session, caller.name, Verb.PROFILE_UPDATED, "platform", "profile", None)
        self.session.flush()
        return self.to_dict(caller.name, row)


# --------------------------------------------------------------------------- schedule


class Schedule:
    """When assignments are due, across courses (for learnhub's services: reminders, recommendations)."""

    def __init__(self, session: Session):
        self.session = session

    def list(self, caller: Caller, *, course: str | None = None, due_after: datetime | None = None,
             due_before: datetime | None = None, released_only: bool = True) -> list[dict]:
        if not caller.reader:
            raise CourseError(403, "reading the schedule of every course needs custom:learnhub:courses:read "
                                   "(learnhub's services) or an admin; a course's members see its assignments "
                                   "at courses/{id}/assignments")
        query = select(m.Assignment).order_by(m.Assignment.course_id, m.Assignment.position, m.Assignment.id)
        if course:
            query = query.where(m.Assignment.course_id == course)
        if released_only:
            query = query.where(m.Assignment.released.is_(True))
        if due_after is not None:
            query = query.where(m.Assignment.due.is_not(None), m.Assignment.due >= due_after)
        if due_before is not None:
            query = query.where(m.Assignment.due.is_not(None), m.Assignment.due <= due_before)
        return [{"course_id": a.course_id, "assignment_id": a.id, "title": a.title or a.id, "due": iso(a.due),
                 "released": a.released, "max_attempts": a.max_attempts, "hard_deadline": a.hard_deadline}
                for a in self.session.scalars(query)]


# --------------------------------------------------------------------------- assignments & progress


class Progress:
    """What the caller (or, for staff, a learner) has done in a course."""

    def __init__(self, session: Session):
        self.session = session

    def _status(self, course_id: str, user: str) -> dict[str, dict]:
        fetched = set(self.session.scalars(select(m.Fetch.assignment_id).where(
            m.Fetch.course_id == course_id, m.Fetch.user_name == user)))
        subs: dict[str, list[m.Submission]] = {}
        for sub in self.session.scalars(select(m.Submission).where(
                m.Submission.course_id == course_id, m.Submission.user_name == user).order_by(m.Submission.attempt)):
            subs.setdefault(sub.assignment_id, []).append(sub)
        out = {}
        for assignment_id in fetched | set(subs):
            mine = subs.get(assignment_id, [])
            # An instructor's released grade wins; until then the autograder's latest score stands.
            graded = [s for s in mine if s.graded_at is not None]
            latest_graded = graded[-1] if graded else None
            auto = [s for s in mine if s.autograde_status == "graded"]
            latest_auto = auto[-1] if auto else None
            score = latest_graded.score if latest_graded else latest_auto.autograde_score if latest_auto else None
            cells = (latest_graded.cell_scores if latest_graded else latest_auto.autograde_cells if latest_auto
                     else None) or {}
            status = "graded" if graded or auto else "submitted" if mine else "fetched"
            out[assignment_id] = {
                "status": status, "attempts_used": len(mine),
                "last_submitted_at": iso(mine[-1].submitted_at) if mine else None,
                "score": score, "cell_scores": cells,
            }
        return out

    def assignments(self, caller: Caller, course_id: str, user: str | None = None) -> list[dict]:
        _course, role = get_course(self.session, caller, course_id)
        user = self._who(caller, role, course_id, user)
        if not (role or caller.manager or caller.can_read_grades):
            raise CourseError(403, f"enroll in {course_id} to see its assignments")
        from .policy import SubmissionPolicy  # the rules know the catalogue, not the other way round

        statuses = self._status(course_id, user)
        policy = SubmissionPolicy(self.session)
        extensions = {e.assignment_id: e for e in self.session.scalars(select(m.Extension).where(
            m.Extension.course_id == course_id, m.Extension.user_name == user))}
        out = []
        for a in self.session.scalars(select(m.Assignment).where(m.Assignment.course_id == course_id)
                                      .order_by(m.Assignment.position, m.Assignment.id)):
            if not a.released and not is_staff(caller, role):
                continue  # learners do not see what is not released yet
            st = statuses.get(a.id, {"status": "not fetched", "attempts_used": 0, "score": None,
                                     "last_submitted_at": None})
            # ``due``, ``max_attempts``: the learner's own (with their extension); ``assignment_due``: everyone's
            own = policy.standing(a, user, attempts_used=st["attempts_used"], extension=extensions.get(a.id))
            out.append({"id": a.id, "course_id": course_id, "title": a.title, "due": iso(own.due),
                        "assignment_due": iso(a.due), "extended": own.extended, "attempts_left": own.attempts_left,
                        "hard_deadline": a.hard_deadline, "max_attempts": own.max_attempts,
                        "difficulty": a.difficulty, "released": a.released, "max_score": a.max_score,
                        "notebooks": [f["path"] for f in a.release_files or [] if f["path"].endswith(".ipynb")],
                        "status": st["status"], "attempts_used": st["attempts_used"], "score": st["score"],
                        "last_submitted_at": st["last_submitted_at"]})
        return out

    def _who(self, caller: Caller, role: str | None, course_id: str, user: str | None) -> str:
        if user and user != caller.name:
            if not (is_staff(caller, role) or caller.can_read_grades):
                raise CourseError(403, "only the course's instructors, TAs and admins may see another learner's "
                                       "progress")
            if role_of(self.session, course_id, user) is None:
                raise CourseError(404, f"{user} is not enrolled in {course_id}")
            return user
        return caller.name

    def progress(self, caller: Caller, course_id: str, user: str | None = None) -> dict:
        _course, role = get_course(self.session, caller, course_id)
        user = self._who(caller, role, course_id, user)
        if user == caller.name and not (role or caller.manager):
            raise CourseError(403, f"enroll in {course_id} to have progress in it")
        statuses = self._status(course_id, user)
        assignments = []
        skill_score: dict[str, float] = {}
        skill_max: dict[str, float] = {}
        skill_attempted: dict[str, float] = {}
        exercises = self.session.scalars(select(m.Exercise).where(m.Exercise.course_id == course_id)).all()
        released = {a.id: a for a in self.session.scalars(select(m.Assignment).where(
            m.Assignment.course_id == course_id, m.Assignment.released.is_(True)))}
        extended = {e.assignment_id: e for e in self.session.scalars(select(m.Extension).where(
            m.Extension.course_id == course_id, m.Extension.user_name == user))}
        for a in sorted(released.values(), key=lambda a: (a.position, a.id)):
            st = statuses.get(a.id, {"status": "not fetched", "attempts_used": 0, "score": None, "cell_scores": {}})
            due = extended[a.id].due if a.id in extended and extended[a.id].due is not None else a.due
            assignments.append({"id": a.id, "title": a.title, "status": st["status"],
                                "attempts_used": st["attempts_used"], "score": st["score"], "max_score": a.max_score,
                                "due": iso(due), "extended": a.id in extended})
        for ex in exercises:
            if ex.assignment_id not in released:
                continue
            cells = statuses.get(ex.assignment_id, {}).get("cell_scores") or {}
            for skill in ex.skills or []:
                skill_max[skill] = skill_max.get(skill, 0.0) + ex.points
                if ex.grade_id in cells:
                    skill_score[skill] = skill_score.get(skill, 0.0) + float(cells[ex.grade_id] or 0)
                    skill_attempted[skill] = skill_attempted.get(skill, 0.0) + ex.points
        titles = dict(self.session.execute(select(m.CourseSkill.skill_id, m.CourseSkill.title)
                                           .where(m.CourseSkill.course_id == course_id)).all())
        skills = [{"id": s, "title": titles.get(s, s), "score": skill_score.get(s, 0.0), "max_score": skill_max[s],
                   "graded_points": skill_attempted.get(s, 0.0),
                   "mastery": (skill_score.get(s, 0.0) / skill_attempted[s]) if skill_attempted.get(s) else None}
                  for s in sorted(skill_max)]
        return {"course_id": course_id, "user": user, "assignments": assignments, "skills": skills}
