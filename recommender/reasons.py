"""Why a model recommends something: a reason code and its parameters, never English text.

Every recommendation the models return carries ``reason = {"code": ..., "params": {...}}``. The
parameters are plain JSON values (ids, numbers rounded to 4 decimals, ISO 8601 times), so a reason
can be stored in an event, compared, tested and rendered in any language; the models know no titles
and no wording. The recommender service renders them (``learnhub.extensions.recommender.reasons``).

Codes of :func:`~learnhub.recommender.rank_next_steps` (what next inside a course):

===================== ============================================================================
``practice``          ``skill``, ``mastery`` (the learner's estimate on it), ``fit``: ``stretch`` |
                      ``next_level`` | ``consolidate`` (the exercise's difficulty against mastery)
``not_started``       ``skill``: the learner has not practised it yet; the exercise introduces it
``prerequisite_first`` ``skill`` (the exercise's), ``prerequisite`` (a skill below the threshold),
                      ``prerequisite_mastery``, ``prerequisite_started`` (bool)
===================== ============================================================================

Each of them may add the due date: ``due`` (ISO 8601), ``due_status`` (``upcoming`` | ``today`` |
``past``) and, when upcoming, ``due_in_days`` (whole days, rounded).

Codes of the course rankers (:class:`~learnhub.recommender.CourseRecommender` and the baselines):

===================== ============================================================================
``similar_learners``  ``because``: an item the learner took that learners of this one also took
                      (absent for matrix factorisation, where no single item is the cause)
``goal_match``        ``matched``: the goal words or skills the item matches (up to 3)
``level``             ``level``: the item's level, which fits the learner's ("beginner", ...)
``popular``           ``audience``: ``new`` (what new learners start with) | ``all``; or
                      ``learners``: how many took it (the popularity baseline)
``new_in_catalogue``  no signal says anything about the item yet
===================== ============================================================================
"""
from __future__ import annotations

PRACTICE = "practice"
NOT_STARTED = "not_started"
PREREQUISITE_FIRST = "prerequisite_first"
SIMILAR_LEARNERS = "similar_learners"
GOAL_MATCH = "goal_match"
LEVEL = "level"
POPULAR = "popular"
NEW_IN_CATALOGUE = "new_in_catalogue"

NEXT_STEP_CODES = (PRACTICE, NOT_STARTED, PREREQUISITE_FIRST)
COURSE_CODES = (SIMILAR_LEARNERS, GOAL_MATCH, LEVEL, POPULAR, NEW_IN_CATALOGUE)


def reason(code: str, **params) -> dict:
    """``{"code": code, "params": params}`` — the one shape every model's reason has."""
    return {"code": code, "params": params}


def share(value: float) -> float:
    """A share in [0, 1] as reasons carry it: rounded to 4 decimals (stable in JSON and in tests)."""
    return round(float(value), 4)
