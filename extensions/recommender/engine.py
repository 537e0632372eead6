"""The recommender engine: learner histories from the event log, mastery and explained recommendations.

No web code (the service's handlers call it, and wires in the sources of other services' data).
What it reads:

* the event log (``learnhub.models.Event``, the platform's shared read model): ``graded``
  submission events the feedback service appends — one answer per test in ``result["tests"]``, on
  the exercise with that ``grade_id`` in the assignment ``context["assignment_id"]`` — and
  ``enrolled``/``unenrolled`` course events (the courses service);
* course content (:class:`CourseLibrary`, course folders as :func:`learnhub.course_content.load_course`
  reads them), which says which skills each exercise practises;
* learner profiles (goals, level) through a :class:`~.sources.ProfileSource` and assignments' due
  dates through a :class:`~.sources.ScheduleSource` — the service plugs in the ones that ask the
  courses service over HTTP (:mod:`.sources`); the engine never reads another service's tables.

What it learns (:meth:`RecommenderEngine.refit`, on a schedule): a
:class:`~learnhub.recommender.KnowledgeTracer` on every answer in the log, and a
:class:`~learnhub.recommender.CourseRecommender` on who enrolled in / worked on which course.
The models keep no per-learner state, so every request reads that learner's history afresh:
a new grade shows on the learner's next request, without waiting for a refit.

Every recommendation says why as ``reason_code`` and ``reason_params`` (the models' structured
reasons, :mod:`learnhub.recommender.reasons`); the English is rendered at the edge (:mod:`.reasons`).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from learnhub import db as lhdb
from learnhub.course_content import COURSE_FILE, Course, CourseFormatError, load_course
from learnhub.event_schemas import Verb
from learnhub.gradings import latest_per_submission, submission_of
from learnhub.models import Event
from learnhub.recommender import CourseRecommender, KnowledgeTracer, mastery_level, rank_next_steps

from .reasons import IN_CATALOGUE, STARTER
from .sources import ProfileSource, ScheduleSource

log = logging.getLogger("learnhub.recommender.engine")

KINDS = ("course", "assignment", "exercise")
#: course difficulty 1..3 on the models' [0, 1] scale
DIFFICULTY = {1: 0.25, 2: 0.5, 3: 0.75}
ENROLL_VERBS = (Verb.ENROLLED, Verb.UNENROLLED)


#: ``verb = 'graded'`` written so that no index on ``verb`` can serve it: without table statistics
#: SQLite otherwise scans every graded event (ix_events_verb_time) instead of one learner's
#: (ix_events_actor_time). PostgreSQL plans the same query with the actor index either way.
_GRADED = func.coalesce(Event.verb, "") == Verb.GRADED
#: what the engine reads of a graded event: answers_from_events's rows (index 5, the id, marks a
#: learner's history; 6, the object, names the submission of events that do not say it)
_GRADED_COLUMNS = (Event.actor, Event.time, Event.course_id, Event.result, Event.context, Event.id, Event.object_id)


class UnknownCourse(KeyError):
    """A course id the course library does not know."""


# --------------------------------------------------------------------------- course content


@dataclass
class CourseIndex:
    """One course, indexed for the engine: exercise lookup by (assignment, grade_id)."""

    course: Course
    #: (assignment id, grade_id) -> (exercise item id, skills)
    exercises: dict = field(default_factory=dict)
    #: grade_id -> same, when the grade_id is unique in the course (events without an assignment)
    by_grade_id: dict = field(default_factory=dict)
    skills: list = field(default_factory=list)
    skill_titles: dict = field(default_factory=dict)
    skill_prereqs: dict = field(default_factory=dict)
    #: kind -> the rank_next_steps input table (see _step_table)
    tables: dict = field(default_factory=dict)

    @classmethod
    def build(cls, course: Course) -> "CourseIndex":
        index = cls(course=course)
        seen: dict[str, int] = {}
        for assignment, exercise in course.exercises():
            value = (f"{assignment.id}/{exercise.grade_id}", tuple(exercise.skills))
            index.exercises[(assignment.id, exercise.grade_id)] = value
            seen[exercise.grade_id] = seen.get(exercise.grade_id, 0) + 1
            index.by_grade_id[exercise.grade_id] = value
        for grade_id, count in seen.items():
            if count > 1:
                del index.by_grade_id[grade_id]
        index.skills = [s.id for s in course.skills]
        index.skill_titles = {s.id: s.title for s in course.skills}
        index.skill_prereqs = {s.id: tuple(s.prerequisites) for s in course.skills}
        return index

    def lookup(self, assignment: str | None, grade_id: str):
        if assignment:
            return self.exercises.get((assignment, grade_id))
        return self.by_grade_id.get(grade_id)


class CourseLibrary:
    """The course folders the recommender knows, indexed for the engine (which exercise practises
    which skill): folders under ``roots`` (first root wins on a duplicate id), or a fixed list of
    :class:`Course` objects (tests, benchmarks). Not the courses service's catalogue: that one is
    the service's database of published courses; this is the content the models need."""

    def __init__(self, roots: Iterable[str | Path] = (), courses: Iterable[Course] | None = None):
        self.roots = [Path(r) for r in roots]
        self._fixed = list(courses) if courses is not None else None
        self._index: dict[str, CourseIndex] = {}
        self._skill_titles: dict[str, str] = {}
        self._course_titles: dict[str, str] = {}
        self.reload()

    def reload(self) -> None:
        courses: dict[str, Course] = {}
        if self._fixed is not None:
            for course in self._fixed:
                courses.setdefault(course.id, course)
        for root in self.roots:
            if not root.is_dir():
                continue
            for folder in sorted(root.iterdir()):
                if not (folder / COURSE_FILE).is_file():
                    continue
                try:
                    course = load_course(folder)
                except (CourseFormatError, OSError) as exc:
                    log.warning("skipping course folder %s: %s", folder, exc)
                    continue
                courses.setdefault(course.id, course)
        index = {cid: CourseIndex.build(c) for cid, c in courses.items()}
        skill_titles: dict[str, str] = {}
        for cid in sorted(index):  # skill ids are shared across courses: the first title wins
            for skill, title in index[cid].skill_titles.items():
                skill_titles.setdefault(skill, title)
        self._index = index
        self._skill_titles = skill_titles
        self._course_titles = {cid: ix.course.title for cid, ix in index.items()}

    def get(self, course_id: str) -> CourseIndex:
        try:
            return self._index[course_id]
        except KeyError:
            raise UnknownCourse(course_id) from None

    def __contains__(self, course_id) -> bool:
        return course_id in self._index

    def ids(self) -> list[str]:
        return sorted(self._index)

    def skill_titles(self) -> dict[str, str]:
        """Skill id → title, across every course (what reasons show)."""
        return self._skill_titles

    def course_titles(self) -> dict[str, str]:
        return self._course_titles

    def items_frame(self) -> pd.DataFrame:
        """The library's courses as :class:`CourseRecommender` items."""
        rows = []
        for cid in self.ids():
            c = self._index[cid].course
            rows.append({"item": c.id, "title": c.title, "description": c.description,
                         "tags": list(c.tags), "skills": [s.id for s in c.skills], "level": c.level,
                         "prerequisites": list(c.prerequisites)})
        return pd.DataFrame(rows, columns=["item", "title", "description", "tags", "skills", "level",
                                           "prerequisites"])


# --------------------------------------------------------------------------- histories


def answers_from_events(rows, library: CourseLibrary) -> pd.DataFrame:
    """Answer rows (``learner, skill, correct, order, course, exercise``) from graded events.

    ``rows`` are ``(actor, time, course_id, result, context[, event id, object id])`` tuples in time
    order. Every test of a graded submission is one answer on its exercise, and one row per skill of
    that exercise. Tests whose grade_id the course content does not list, and tests without a
    pass/fail (``passed`` null), are skipped. A submission graded again (a regrade after a test fix,
    :mod:`learnhub.gradings`) is one attempt, not two: its latest grading's answers stand, in the
    place of its first (the learner answered once, then).
    """
    out_learner, out_skill, out_correct, out_order, out_course, out_exercise = [], [], [], [], [], []
    seq = 0
    for actor, when, course_id, result, context, *_ in one_grading_per_submission(rows):
        if not course_id or course_id not in library or not isinstance(result, dict):
            continue
        if (context or {}).get("mode", "grade") != "grade":
            continue
        index = library.get(course_id)
        assignment = (context or {}).get("assignment_id")
        base = _epoch(when)
        for test in result.get("tests") or ():
            if not isinstance(test, dict) or test.get("passed") is None:
                continue
            found = index.lookup(assignment, str(test.get("grade_id")))
            if found is None:
                continue
            item, skills = found
            seq += 1
            for skill in skills:
                out_learner.append(actor)
                out_skill.append(skill)
                out_correct.append(1 if test["passed"] else 0)
                out_order.append(base + seq * 1e-3)
                out_course.append(course_id)
                out_exercise.append(item)
    return pd.DataFrame({"learner": out_learner, "skill": out_skill, "correct": out_correct,
                         "order": np.asarray(out_order, dtype=float), "course": out_course,
                         "exercise": out_exercise})


def one_grading_per_submission(rows) -> list[tuple]:
    """Graded-event rows (as :func:`answers_from_events` takes them, in time order) with each
    submission's regrades merged into it: the latest grading's result and context, in the place (actor,
    time, course) of the first."""
    def submission(row):
        name = submission_of(row[6] if len(row) > 6 else None, row[4])
        return None if name is None else (row[0], name)

    return [tuple(first[:3]) + tuple(latest[3:5]) + tuple(first[5:])
            for first, latest in latest_per_submission(rows, submission)]


def _epoch(value) -> float:
    if value is None:
        return 0.0
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    return float(pd.Timestamp(value).timestamp())


# --------------------------------------------------------------------------- mastery models


class PriorMastery:
    """The fallback tracer until the log holds enough answers to fit a KnowledgeTracer.

    A Beta prior per skill: estimate = (successes + prior·strength) / (attempts + strength), with
    the last answers counting double (recency). Same ``mastery`` interface and levels.
    """

    def __init__(self, prior: float = 0.5, strength: float = 2.0):
        self.prior = prior
        self.strength = strength

    def mastery(self, history: pd.DataFrame, skills=None) -> pd.DataFrame:
        rows = []
        learners = list(pd.unique(history["learner"])) if len(history) else []
        for learner in learners:
            mine = history[history["learner"] == learner].sort_values("order", kind="stable")
            seen = {}
            for skill, group in mine.groupby("skill", sort=False):
                c = group["correct"].dropna().to_numpy(float)
                w = np.ones(len(c))
                w[-3:] = 2.0  # the latest answers say more about now
                est = (float((w * c).sum()) + self.prior * self.strength) / (float(w.sum()) + self.strength)
                seen[skill] = (len(c), int(c.sum()), est)
            for skill in list(seen) + [s for s in (skills or ()) if s not in seen]:
                attempts, correct, est = seen.get(skill, (0, 0, self.prior))
                rows.append((learner, skill, attempts, correct, est, mastery_level(est, attempts)))
        return pd.DataFrame(rows, columns=["learner", "skill", "attempts", "correct", "estimate", "level"])


@dataclass
class Models:
    """What one refit produced; replaced as a whole (requests never see a half-fitted model)."""

    version: int
    tracer: object
    tracer_kind: str
    courses: CourseRecommender | None
    fitted_at: datetime
    n_answers: int
    n_learners: int
    n_interactions: int
    fit_seconds: float
    #: {course: learners} enrolled or worked on, at fit time (course popularity counts)
    course_counts: dict = field(default_factory=dict)
    #: learner -> (marker of their graded events at fit time, {skill: SkillState}): the mastery
    #: of every learner precomputed in one batch, used while their history has not changed
    snapshot: dict = field(default_factory=dict)
    #: learner -> courses they were in at fit time (which skills their snapshot covers)
    members: dict = field(default_factory=dict)
    #: newest graded event time the models have seen (where refresh_recent starts looking)
    cursor: datetime | None = None


# --------------------------------------------------------------------------- the engine


class RecommenderEngine:
    """Mastery and explained recommendations from the platform's own data.

    Thread-safe: :meth:`refit` may run in a worker thread while requests are answered; it swaps
    in a complete :class:`Models` at the end.
    """

    def __init__(self, session_factory, library: CourseLibrary, profiles: ProfileSource | None = None,
                 schedule: ScheduleSource | None = None, *, min_fit_answers: int = 500,
                 tracer_params: dict | None = None, not_started_cap: float = 0.5, cache_size: int = 20000,
                 precompute: bool = True):
        self.sessions = session_factory
        self.library = library
        self.profiles = profiles or ProfileSource()
        self.schedule = schedule or ScheduleSource()
        self.min_fit_answers = min_fit_answers
        self.tracer_params = dict(tracer_params or {})
        self.not_started_cap = not_started_cap
        self.cache_size = cache_size
        self.precompute = precompute
        self._cache: OrderedDict = OrderedDict()
        self._cache_lock = threading.Lock()
        self._fit_lock = threading.Lock()
        self.models = Models(version=0, tracer=PriorMastery(), tracer_kind="prior", courses=None,
                             fitted_at=datetime.now(timezone.utc), n_answers=0, n_learners=0,
                             n_interactions=0, fit_seconds=0.0)
        self._fit_courses(self.models, pd.DataFrame(columns=["learner", "item", "weight"]))

    # -- fitting --------------------------------------------------------------------------------

    def refit(self, reload_library: bool = True) -> Models:
        """Re-read the whole log (and the course folders), fit the models and swap them in.
        Returns the new models."""
        with self._fit_lock:
            started = time.perf_counter()
            if reload_library:
                self.library.reload()
            with lhdb.session_scope(self.sessions) as session:
                graded = session.execute(
                    select(*_GRADED_COLUMNS)
                    .where(Event.verb == Verb.GRADED, Event.object_type == "submission")
                    .order_by(Event.time, Event.id)).all()
                enrolments = session.execute(
                    select(Event.actor, Event.verb, Event.course_id)
                    .where(Event.verb.in_(ENROLL_VERBS), Event.object_type == "course")
                    .order_by(Event.time, Event.id)).all()
            answers = answers_from_events(graded, self.library)
            tracer, kind = PriorMastery(), "prior"
            labels = set(answers["correct"].unique()) if len(answers) else set()
            if len(answers) >= self.min_fit_answers and labels == {0, 1}:
                try:
                    tracer = KnowledgeTracer(**self.tracer_params).fit(answers[["learner", "skill", "correct", "order"]])
                    kind = "knowledge-tracer"
                except ValueError as exc:
                    log.warning("knowledge tracer not fitted (%s); using the prior", exc)
            interactions = self._interactions(graded, enrolments)
            models = Models(version=self.models.version + 1, tracer=tracer, tracer_kind=kind, courses=None,
                            fitted_at=datetime.now(timezone.utc), n_answers=len(answers),
                            n_learners=int(answers["learner"].nunique()) if len(answers) else 0,
                            n_interactions=len(interactions), fit_seconds=0.0)
            self._fit_courses(models, interactions)
            if self.precompute:
                models.snapshot, models.members = self._snapshot(tracer, graded, answers, interactions)
            models.cursor = max((_utc(g[1]) for g in graded), default=None)
            models.fit_seconds = round(time.perf_counter() - started, 3)
            self.models = models
            with self._cache_lock:
                self._cache.clear()
            log.info("refit: %s on %d answers of %d learners, %d course interactions, %.2fs",
                     kind, models.n_answers, models.n_learners, models.n_interactions, models.fit_seconds)
            return models

    def about(self, learner: str) -> dict:
        """What the models hold about ``learner`` (their data export): their mastery estimates and
        whether the last fit saw them."""
        models = self.models
        return {"in_fit_snapshot": learner in models.snapshot,
                "in_courses_at_fit": sorted(c for c, who in models.members.items() if learner in who),
                "mastery": self.mastery(learner), "model_version": models.version}

    def forget(self, learner: str) -> int:
        """Drop ``learner`` from the models' state (erasure): their snapshot, their cached estimates,
        then a refit on the log (already pseudonymised by then), which leaves them out of the
        course recommender. Returns how many pieces of state named them."""
        models = self.models
        dropped = int(models.snapshot.pop(learner, None) is not None)
        for who in models.members.values():
            if learner in who:
                who.discard(learner)
                dropped += 1
        with self._cache_lock:
            for key in [k for k in self._cache if k[0] == learner]:
                del self._cache[key]
                dropped += 1
        self.refit(reload_library=False)
        return dropped

    def _interactions(self, graded, enrolments) -> pd.DataFrame:
        state: dict[tuple[str, str], float] = {}
        for actor, verb, course in enrolments:
            if course in self.library:
                state[(actor, course)] = 1.0 if verb == Verb.ENROLLED else 0.0
        for actor, _when, course, _result, _context, *_ in graded:
            if course in self.library:
                state[(actor, course)] = 1.0
        return pd.DataFrame([(a, c, w) for (a, c), w in state.items()], columns=["learner", "item", "weight"])

    def _fit_courses(self, models: Models, interactions: pd.DataFrame) -> None:
        items = self.library.items_frame()
        if len(items) == 0:
            return
        models.course_counts = (interactions[interactions["weight"] > 0].groupby("item")["learner"].size().to_dict()
                                if len(interactions) else {})
        if len(interactions) == 0:
            return  # no data at all: course_recommendations falls back to the catalogue order
        models.courses = CourseRecommender().fit(interactions, items)

    # -- histories ------------------------------------------------------------------------------

    def learner_events(self, learner: str):
        """The learner's graded events, oldest first (read at request time: new grades count)."""
        with lhdb.session_scope(self.sessions) as session:
            return session.execute(
                select(*_GRADED_COLUMNS)
                .where(Event.actor == learner, _GRADED, Event.object_type == "submission")
                .order_by(Event.time, Event.id)).all()

    def learner_courses(self, learner: str) -> set[str]:
        """Courses the learner enrolled in (still) or worked on, from the event log."""
        with lhdb.session_scope(self.sessions) as session:
            rows = session.execute(
                select(Event.verb, Event.course_id)
                .where(Event.actor == learner, func.coalesce(Event.verb, "").in_(ENROLL_VERBS + (Verb.GRADED,)))
                .order_by(Event.time, Event.id)).all()
        state: dict[str, bool] = {}
        for verb, course in rows:
            if course:
                state[course] = verb != Verb.UNENROLLED
        return {c for c, on in state.items() if on}

    def events_of(self, learners: list[str], chunk: int = 500) -> dict[str, list]:
        """Graded events of many learners at once (one query per ``chunk`` learners)."""
        out: dict[str, list] = {name: [] for name in learners}
        with lhdb.session_scope(self.sessions) as session:
            for start in range(0, len(learners), chunk):
                part = learners[start:start + chunk]
                rows = session.execute(
                    select(*_GRADED_COLUMNS)
                    .where(Event.actor.in_(part), _GRADED, Event.object_type == "submission")
                    .order_by(Event.time, Event.id)).all()
                for row in rows:
                    out[row[0]].append(row)
        return out

    def mastery_many(self, learners: list[str], course: str) -> list[dict]:
        """Per-skill mastery of each of ``learners`` in ``course`` (staff view of a class)."""
        self.library.get(course)
        events = self.events_of(list(learners))
        return [self.mastery(name, course, events=events[name]) for name in learners]

    def history(self, learner: str, events=None) -> pd.DataFrame:
        events = self.learner_events(learner) if events is None else events
        return answers_from_events(events, self.library)

    # -- mastery --------------------------------------------------------------------------------

    def _snapshot(self, tracer, graded, answers: pd.DataFrame, interactions: pd.DataFrame) -> dict:
        """Mastery of every learner on the skills of every course they are in, in one batch per course."""
        markers: dict[str, tuple] = {}
        counts: dict[str, int] = {}
        for row in graded:
            counts[row[0]] = counts.get(row[0], 0) + 1
            markers[row[0]] = (row[5], counts[row[0]])
        members: dict[str, set] = {}
        if len(interactions):
            for learner, course in zip(interactions["learner"], interactions["item"]):
                members.setdefault(course, set()).add(learner)
        for learner, course in zip(answers["learner"], answers["course"]):
            members.setdefault(course, set()).add(learner)
        hist = answers[["learner", "skill", "correct", "order"]]
        by_learner = {name: idx for name, idx in hist.groupby("learner").indices.items()} if len(hist) else {}
        snapshot: dict[str, dict] = {}
        for course, learners in members.items():
            if course not in self.library:
                continue
            skills = self.library.get(course).skills
            learners = sorted(learners)
            rows = [by_learner[n] for n in learners if n in by_learner]
            part = hist.iloc[np.concatenate(rows)] if rows else hist.iloc[:0]
            fresh = [n for n in learners if n not in by_learner]
            if fresh:  # unlabelled probe rows make learners without answers known to the tracer
                part = pd.concat([part, pd.DataFrame({"learner": fresh, "skill": skills[0], "correct": np.nan,
                                                      "order": 0.0})], ignore_index=True)
            frame = tracer.mastery(part, skills=skills)
            for r in frame.itertuples(index=False):
                snapshot.setdefault(r.learner, {})[r.skill] = (int(r.attempts), int(r.correct),
                                                               float(r.estimate), r.level)
        by_learner_courses: dict[str, set] = {}
        for course, learners in members.items():
            for name in learners:
                by_learner_courses.setdefault(name, set()).add(course)
        return ({name: (markers.get(name, (None, 0)), states) for name, states in snapshot.items()},
                by_learner_courses)

    def refresh_recent(self, lookback: timedelta = timedelta(seconds=60)) -> int:
        """Recompute, in one batch, the snapshot of learners graded since the models' cursor.

        Run every few seconds by the service, so that a learner's next request after a grade
        usually finds a fresh snapshot instead of running the tracer itself (it still does when
        it comes first: correctness never depends on this). Returns how many learners changed.
        """
        models = self.models
        if not self.precompute:
            return 0
        since = (models.cursor or models.fitted_at) - lookback  # events come from other clocks
        with lhdb.session_scope(self.sessions) as session:
            rows = session.execute(
                select(Event.actor, Event.time)
                .where(Event.verb == Verb.GRADED, Event.object_type == "submission", Event.time >= since)).all()
        if not rows:
            return 0
        newest = max(_utc(r[1]) for r in rows)
        events = self.events_of(sorted({r[0] for r in rows}))
        stale = {}
        for name, evs in events.items():
            marker = (evs[-1][5], len(evs)) if evs else (None, 0)
            snap = models.snapshot.get(name)
            if snap is None or snap[0] != marker:
                stale[name] = (marker, evs)
        if stale:
            flat = [e for _m, evs in stale.values() for e in evs]
            answers = answers_from_events(flat, self.library)
            hist = answers[["learner", "skill", "correct", "order"]]
            by_course: dict[str, set] = {}
            for name in stale:
                courses = set(models.members.get(name, ())) | {e[2] for e in stale[name][1] if e[2] in self.library}
                models.members[name] = courses
                for course in courses:
                    by_course.setdefault(course, set()).add(name)
            states: dict[str, dict] = {}
            for course, names in by_course.items():
                part = hist[hist["learner"].isin(names)]
                if len(part) == 0:
                    continue
                frame = models.tracer.mastery(part, skills=self.library.get(course).skills)
                for r in frame.itertuples(index=False):
                    states.setdefault(r.learner, {})[r.skill] = (int(r.attempts), int(r.correct),
                                                                 float(r.estimate), r.level)
            if self.models is not models:
                return 0  # a refit swapped the models meanwhile; it saw these events
            for name, (marker, _evs) in stale.items():
                if name in states:
                    models.snapshot[name] = (marker, states[name])
        models.cursor = max(models.cursor or newest, newest)
        return len(stale)

    def _mastery_map(self, learner: str, skills: list[str], events) -> dict:
        """{skill: (attempts, correct, estimate, level)} for ``skills`` plus every skill answered.

        From the refit's snapshot while the learner's graded events are those it saw; else the
        tracer runs on the learner's current history (cached by the newest event).
        """
        models = self.models
        marker = (events[-1][5], len(events)) if events else (None, 0)
        snap = models.snapshot.get(learner)
        if snap is None and marker == (None, 0) and models.snapshot:
            snap = (marker, {})  # no answers, in no course at fit time: only cold-start estimates
        if snap is not None and snap[0] == marker and all(sk in snap[1] for sk in skills):
            return snap[1]
        # learners without answers all get the same cold-start estimates: one cache entry for them
        key = (learner if events else None, tuple(skills), models.version, marker)
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        history = answers_from_events(events, self.library)
        frame = self._compute_mastery(models, learner, history, skills)
        states = {r.skill: (int(r.attempts), int(r.correct), float(r.estimate), r.level)
                  for r in frame.itertuples(index=False)}
        with self._cache_lock:
            self._cache[key] = states
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return states

    @staticmethod
    def _compute_mastery(models: Models, learner: str, history: pd.DataFrame, skills: list[str]) -> pd.DataFrame:
        cols = ["learner", "skill", "correct", "order"]
        hist = history[cols] if len(history) else pd.DataFrame(columns=cols)
        if len(hist) == 0:
            if not skills:
                return pd.DataFrame(columns=["learner", "skill", "attempts", "correct", "estimate", "level"])
            # an unlabelled probe row makes the learner known to the tracer: cold-start estimates
            hist = pd.DataFrame({"learner": [learner], "skill": [skills[0]], "correct": [np.nan],
                                 "order": [0.0]})
        frame = models.tracer.mastery(hist, skills=skills or None)
        return frame.reset_index(drop=True)

    def mastery(self, learner: str, course: str | None = None, events=None) -> dict:
        """Per-skill mastery of one learner: the course's skills (``course``) or every skill
        of the courses they worked on. Returns a JSON-ready dict."""
        events = self.learner_events(learner) if events is None else events
        if course is not None:
            index = self.library.get(course)
            skills, titles = index.skills, index.skill_titles
        else:
            skills, titles = [], {}
            for cid in sorted({e[2] for e in events if e[2] in self.library}):
                index = self.library.get(cid)
                skills += [s for s in index.skills if s not in skills]
                titles.update(index.skill_titles)
        states = self._mastery_map(learner, skills, events)
        if course is not None:
            states = {sk: states[sk] for sk in skills if sk in states}
        order = {s: i for i, s in enumerate(skills)}
        items = [{"skill": sk, "title": titles.get(sk, sk), "estimate": round(est, 4), "level": lvl,
                  "attempts": att, "correct": cor}
                 for sk, (att, cor, est, lvl) in states.items()]
        items.sort(key=lambda it: (order.get(it["skill"], len(order)), it["skill"]))
        return {"user": learner, "course": course, "model": self.model_info(), "items": items}

    # -- recommendations ------------------------------------------------------------------------

    def recommend(self, learner: str, kind: str = "exercise", *, course: str | None = None,
                  courses: Iterable[str] | None = None, limit: int = 10, now: datetime | None = None) -> dict:
        """Explained recommendations for one learner.

        ``kind="course"``: courses to take next (never one they are enrolled in: ``courses``, plus
        what the event log says). ``kind="assignment"|"exercise"``: what to do next inside
        ``course``, or inside each of ``courses`` (their enrolled courses) when no course is given.
        Items: ``item``, ``title``, ``score``, ``reason`` (+ details per kind), best first.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if course is not None:
            self.library.get(course)  # UnknownCourse
        if kind == "course":
            items = self._course_recommendations(learner, set(courses or ()), limit)
        else:
            targets = [course] if course is not None else [c for c in sorted(set(courses or ())) if c in self.library]
            events = self.learner_events(learner)
            items = []
            for cid in targets:
                items += self._next_steps(learner, cid, kind, events, now)
            items.sort(key=lambda it: (not it.get("ready", True), -it["score"]))
            items = items[:limit]
        for rank, it in enumerate(items, 1):
            it["rank"] = rank
        return {"user": learner, "kind": kind, "course": course, "model": self.model_info(), "items": items,
                "next": None}

    def _next_steps(self, learner, course_id, kind, events, now) -> list[dict]:
        index = self.library.get(course_id)
        states = self._mastery_map(learner, index.skills, events)
        estimate = {sk: states[sk][2] for sk in index.skills if sk in states}
        level = {sk: states[sk][3] for sk in index.skills if sk in states}
        # Not started skills count as not yet familiar, so that prerequisites order the course.
        effective = {s: (min(e, self.not_started_cap) if level.get(s) == "not started" else e)
                     for s, e in estimate.items()}
        passed = set()
        # what the submission's latest grading passed: a regrade may take back a wrong test's pass
        for _actor, _when, cid, result, context, *_ in one_grading_per_submission(events):
            if cid != course_id or not isinstance(result, dict) or (context or {}).get("mode", "grade") != "grade":
                continue
            for test in result.get("tests") or ():
                if isinstance(test, dict) and test.get("passed"):
                    found = index.lookup((context or {}).get("assignment_id"), str(test.get("grade_id")))
                    if found:
                        passed.add(found[0])
        table = _step_table(index, kind)
        if len(table) == 0:
            return []
        table = table.assign(completed=table["exercise"].map(passed.__contains__)
                             if kind == "exercise" else table["_parts"].map(passed.issuperset))
        scheduled = self.schedule.due_dates(course_id)
        if scheduled:  # the course's schedule as the courses service holds it, not the folder's
            assignment = table["exercise"].str.split("/", n=1).str[0]
            table = table.assign(due=[scheduled.get(a, d) for a, d in zip(assignment, table["due"])])
        fresh = {s for s, lv in level.items() if lv == "not started"}
        ranked = rank_next_steps(effective, table, now=now, not_started=fresh)
        out = []
        for r in ranked.itertuples(index=False):
            skill = r.skill
            out.append({"item": r.exercise, "title": r.title, "course": course_id,
                        "score": round(float(r.score), 4), "reason_code": r.reason["code"],
                        "reason_params": r.reason["params"], "skill": skill,
                        "mastery": round(float(estimate.get(skill, r.mastery)), 4),
                        "p_success": round(float(r.p_success), 4), "ready": bool(r.ready),
                        "due": r.due.isoformat() if r.due is not None and not pd.isna(r.due) else None})
        return out

    def _course_recommendations(self, learner: str, enrolled: set[str], limit: int) -> list[dict]:
        models = self.models
        taken = set(enrolled) | self.learner_courses(learner)
        profile = dict(self.profiles.profile(learner) or {})
        titles = self.library.course_titles()
        if models.courses is None:
            # no interactions at all yet: the catalogue, easiest first
            order = {"beginner": 0, "intermediate": 1, "advanced": 2}
            cands = [c for c in self.library.ids() if c not in taken]
            cands.sort(key=lambda c: (order.get(self.library.get(c).course.level, 3), c))
            return [{"item": c, "title": titles[c], "score": 0.0,
                     "reason_code": STARTER if self.library.get(c).course.level == "beginner" else IN_CATALOGUE,
                     "reason_params": {}}
                    for c in cands[:limit]]
        profile["completed"] = sorted(set(profile.get("completed") or ()) | taken)
        frame = models.courses.recommend([learner], k=limit, profiles={learner: profile})
        return [{"item": r.item, "title": titles.get(r.item, r.item), "score": round(float(r.score), 4),
                 "reason_code": r.reason["code"], "reason_params": r.reason["params"],
                 "learners": int(models.course_counts.get(r.item, 0))}
                for r in frame.itertuples(index=False)]

    def model_info(self) -> dict:
        m = self.models
        return {"version": m.version, "tracer": m.tracer_kind, "fitted_at": m.fitted_at.isoformat(),
                "answers": m.n_answers, "learners": m.n_learners, "course_interactions": m.n_interactions,
                "fit_seconds": m.fit_seconds}


def _step_table(index: CourseIndex, kind: str) -> pd.DataFrame:
    """The course's exercises (or assignments) as :func:`rank_next_steps` rows, built once per course."""
    cached = index.tables.get(kind)
    if cached is not None:
        return cached
    rows = []
    for assignment in index.course.assignments:
        if kind == "exercise":
            for ex in assignment.exercises:
                rows.append({"exercise": f"{assignment.id}/{ex.grade_id}", "title": ex.title,
                             "skills": list(ex.skills), "difficulty": DIFFICULTY.get(ex.difficulty, 0.5),
                             "prerequisites": _prereqs(index, ex.skills), "due": assignment.due})
        else:
            skills = sorted({s for ex in assignment.exercises for s in ex.skills})
            if skills:
                rows.append({"exercise": assignment.id, "title": assignment.title, "skills": skills,
                             "difficulty": DIFFICULTY.get(assignment.difficulty, 0.5),
                             "prerequisites": _prereqs(index, skills), "due": assignment.due,
                             "_parts": frozenset(f"{assignment.id}/{ex.grade_id}" for ex in assignment.exercises)})
    table = pd.DataFrame(rows)
    index.tables[kind] = table
    return table


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _prereqs(index: CourseIndex, skills) -> list[str]:
    own = set(skills)
    out = []
    for s in skills:
        for p in index.skill_prereqs.get(s, ()):
            if p not in own and p not in out:
                out.append(p)
    return out
