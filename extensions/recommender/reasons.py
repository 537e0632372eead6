"""The English of the recommender's reasons: the one place a reason code becomes text.

The models give every recommendation a reason as a code and parameters
(:mod:`learnhub.recommender.reasons`); the engine adds two codes of its own for a platform with no
course interactions yet (:data:`STARTER`, :data:`IN_CATALOGUE`). The service's handlers and its
``recommended`` events render them here, with the skill and course titles of the course library,
so the API gives both: ``reason`` (this text) and ``reason_code`` / ``reason_params``.
"""
from __future__ import annotations

from collections.abc import Mapping

from learnhub.recommender import reasons as R

#: engine codes: the catalogue shown before anyone took a course (beginner courses first)
STARTER = "starter"
IN_CATALOGUE = "in_catalogue"

CODES = R.NEXT_STEP_CODES + R.COURSE_CODES + (STARTER, IN_CATALOGUE)

_FIT = {"stretch": "as a stretch", "next_level": "at the next level", "consolidate": "at your level, to consolidate"}


def _pct(value) -> str:
    return f"{round(100 * float(value)):d}%"


def _due(params: Mapping) -> str:
    status = params.get("due_status")
    if status == "upcoming":
        days = int(params.get("due_in_days", 0))
        return f"; due in {days} day{'s' if days != 1 else ''}"
    if status == "today":
        return "; due today"
    if status == "past":
        return "; past its due date"
    return ""


def render_reason(reason: Mapping | None, *, kind: str = "exercise", title: str | None = None,
                  skill_titles: Mapping[str, str] | None = None,
                  course_titles: Mapping[str, str] | None = None) -> str:
    """The English text of a structured reason ``{"code", "params"}``.

    ``kind``: what is recommended ("exercise", "assignment" or "course"); ``title``: its title;
    ``skill_titles`` / ``course_titles``: ids → titles (an id without a title is shown as it is).
    A code this renderer does not know still gives a sentence, never an error.
    """
    reason = reason or {}
    code, params = reason.get("code"), dict(reason.get("params") or {})
    skills, courses = skill_titles or {}, course_titles or {}
    skill = lambda key: skills.get(params.get(key), params.get(key))  # noqa: E731
    noun = "assignment" if kind == "assignment" else "exercise"
    if code == R.PRACTICE:
        where = _FIT.get(params.get("fit"), "at your level")
        at = _pct(params.get("mastery", 0))
        return f"you are at {at} on {skill('skill')}; this {noun} practises it {where}" + _due(params)
    if code == R.NOT_STARTED:
        return f"you have not started {skill('skill')} yet; this {noun} introduces it" + _due(params)
    if code == R.PREREQUISITE_FIRST:
        where = (f"you are at {_pct(params.get('prerequisite_mastery', 0))}"
                 if params.get("prerequisite_started", True) else "not started yet")
        return f"first work on {skill('prerequisite')} ({where}); this {noun} needs it" + _due(params)
    if code == R.SIMILAR_LEARNERS:
        if params.get("because"):
            because = courses.get(params["because"], params["because"])
            return f"learners who took {because} also took {title or 'this course'}"
        return "learners with similar registrations chose it"
    if code == R.GOAL_MATCH:
        matched = ", ".join(str(m) for m in params.get("matched") or ())
        return f"matches your goal: {matched}" if matched else "matches your goals"
    if code == R.LEVEL:
        return f"at your level ({params.get('level', 'unknown')})"
    if code == R.POPULAR:
        if "learners" in params:
            return f"popular: {int(params['learners'])} learners took it"
        if params.get("audience") == "new":
            return "popular with new learners"
        return "popular with learners on the platform"
    if code == R.NEW_IN_CATALOGUE:
        return "new in the catalogue"
    if code == STARTER:
        return "a course to start with"
    if code == IN_CATALOGUE:
        return "in the catalogue"
    return "recommended for you"


class ReasonRenderer:
    """:func:`render_reason` with the titles of a course library (``CourseLibrary``)."""

    def __init__(self, library):
        self.library = library

    def text(self, reason: Mapping | None, *, kind: str = "exercise", title: str | None = None) -> str:
        return render_reason(reason, kind=kind, title=title, skill_titles=self.library.skill_titles(),
                             course_titles=self.library.course_titles())

    def explain(self, payload: dict) -> dict:
        """A ``recommend`` answer with the text ``reason`` next to each item's ``reason_code`` and
        ``reason_params``."""
        kind = payload.get("kind", "exercise")
        skills, courses = self.library.skill_titles(), self.library.course_titles()
        for item in payload.get("items", ()):
            item["reason"] = render_reason({"code": item.get("reason_code"), "params": item.get("reason_params")},
                                           kind=kind, title=item.get("title"), skill_titles=skills,
                                           course_titles=courses)
        return payload
