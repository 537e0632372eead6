"""The recommender service application: per-skill mastery and explained recommendations."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tornado.ioloop import IOLoop
from traitlets import Bool, Float, Integer, List, Type, Unicode, default

from learnhub.hubapi import APIClientError, PeerUnavailable
from learnhub.service import ServiceApp

from . import handlers
from .announcements import RecommendationAnnouncer
from .engine import CourseLibrary, RecommenderEngine
from .reasons import CODES as REASON_CODES, ReasonRenderer
from .sources import CoursesServiceProfiles, CoursesServiceSchedule, ProfileSource, ScheduleSource


class RecommenderService(ServiceApp):
    """Per-skill mastery and explained recommendations."""

    service_name = "recommender"
    description = __doc__

    course_roots = List(
        Unicode(),
        help="Folders holding course folders (<root>/<course>/course.yaml): which exercise practises "
        "which skill. Default: <data dir>/courses, then the checkout's courses/. "
        "Env: LEARNHUB_RECOMMENDER_COURSE_ROOTS (separated by os.pathsep).",
    ).tag(config=True)

    @default("course_roots")
    def _default_roots(self):
        if os.environ.get("LEARNHUB_RECOMMENDER_COURSE_ROOTS"):
            return [p for p in os.environ["LEARNHUB_RECOMMENDER_COURSE_ROOTS"].split(os.pathsep) if p]
        checkout = Path(__file__).resolve().parents[2] / "courses"
        return [str(Path(self.data_dir) / "courses"), str(checkout)]

    refit_interval = Float(
        help="Seconds between refits of the models on the whole event log (0: only at start and on "
        "POST api/refits). New grades show on the next request regardless. "
        "Env: LEARNHUB_RECOMMENDER_REFIT_SECONDS."
    ).tag(config=True)

    @default("refit_interval")
    def _default_refit_interval(self):
        return float(os.environ.get("LEARNHUB_RECOMMENDER_REFIT_SECONDS", 600))

    update_interval = Float(
        help="Seconds between looks for new grades, whose learners' mastery is then recomputed in "
        "one batch (so their next request need not run the tracer; 0: off — requests still see new "
        "grades). Env: LEARNHUB_RECOMMENDER_UPDATE_SECONDS."
    ).tag(config=True)

    @default("update_interval")
    def _default_update_interval(self):
        return float(os.environ.get("LEARNHUB_RECOMMENDER_UPDATE_SECONDS", 2))

    min_fit_answers = Integer(
        help="Answers the log must hold before the knowledge tracer is fitted; below that a Beta "
        "prior per skill gives the estimates. Env: LEARNHUB_RECOMMENDER_MIN_FIT_ANSWERS."
    ).tag(config=True)

    @default("min_fit_answers")
    def _default_min_fit(self):
        return int(os.environ.get("LEARNHUB_RECOMMENDER_MIN_FIT_ANSWERS", 500))

    profile_source_class = Type(
        CoursesServiceProfiles, klass=ProfileSource,
        help="Where learner profiles (goals, level) come from: by default the courses service's "
        "GET profiles/{user} (over HTTP, cached 30 s); ProfileSource knows none; a subclass may read "
        "them elsewhere (built with its for_service(service) class method).",
    ).tag(config=True)

    schedule_source_class = Type(
        CoursesServiceSchedule, klass=ScheduleSource,
        help="Where assignments' due dates come from: by default the courses service's GET schedule?course= "
        "(over HTTP, cached 60 s); ScheduleSource knows none (the course folders' dates stand).",
    ).tag(config=True)

    announce_recommendations = Bool(
        help="Append a 'recommended' event when a learner's top next step in a course changes after new "
        "grades (the notifications service notifies them). Env: LEARNHUB_RECOMMENDER_ANNOUNCE (0 turns it off)."
    ).tag(config=True)

    @default("announce_recommendations")
    def _default_announce(self):
        return os.environ.get("LEARNHUB_RECOMMENDER_ANNOUNCE", "1").lower() not in ("0", "false", "no", "off")

    announce_interval = Float(
        help="Seconds within which a learner gets at most one 'recommended' event per course (0: no limit; "
        "an unchanged top item is never announced again). Env: LEARNHUB_RECOMMENDER_ANNOUNCE_INTERVAL_SECONDS."
    ).tag(config=True)

    @default("announce_interval")
    def _default_announce_interval(self):
        return float(os.environ.get("LEARNHUB_RECOMMENDER_ANNOUNCE_INTERVAL_SECONDS", 3600))

    def initialize(self, argv=None):
        super().initialize(argv)
        self.library = CourseLibrary(self.course_roots)
        self.reasons = ReasonRenderer(self.library)
        self.rec_engine = RecommenderEngine(self.session_factory, self.library,
                                            self.profile_source_class.for_service(self),
                                            self.schedule_source_class.for_service(self),
                                            min_fit_answers=self.min_fit_answers)
        self.announcer = RecommendationAnnouncer(self.session_factory, self.rec_engine, self.reasons,
                                                 interval=self.announce_interval)
        self._refit_task: asyncio.Task | None = None

    # -- background refits ---------------------------------------------------------------------

    async def refit(self):
        return await IOLoop.current().run_in_executor(None, self.rec_engine.refit)

    async def _refit_loop(self):
        while True:
            try:
                await self.refit()
            except Exception:  # keep serving with the previous models
                self.log.exception("recommender refit failed")
            if self.refit_interval <= 0:
                return
            await asyncio.sleep(self.refit_interval)

    async def _update_loop(self):
        while self.update_interval > 0:
            await asyncio.sleep(self.update_interval)
            try:
                await IOLoop.current().run_in_executor(None, self.rec_engine.refresh_recent)
            except Exception:
                self.log.exception("recommender update failed")
            if not self.announce_recommendations:
                continue
            try:  # after the update: the learners just graded have a fresh snapshot to rank from
                await IOLoop.current().run_in_executor(None, self.announcer.run_once)
            except Exception:
                self.log.exception("announcing new recommendations failed")

    async def on_start(self):
        self._refit_task = asyncio.ensure_future(self._refit_loop())
        self._update_task = asyncio.ensure_future(self._update_loop())

    async def on_stop(self):
        for task in (self._refit_task, getattr(self, "_update_task", None)):
            if task is not None:
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass

    # -- hub look-ups --------------------------------------------------------------------------

    async def fetch_group_users(self, group: str) -> list[str] | None:
        """Members of a hub group (the service holds read:groups); None when there is no such group
        or the hub cannot say."""
        try:
            members = await self.hub_api.group_members(group)
        except (APIClientError, PeerUnavailable) as exc:
            self.log.warning("could not read group %s from the hub: %s", group, exc)
            return None
        return sorted(members) if members is not None else None

    # -- routes --------------------------------------------------------------------------------

    def data_export(self, user: str) -> dict:
        # No tables of its own: the models' state, learnt from the event log.
        return {"data": {"model_state": self.rec_engine.about(user)}, "files": []}

    def data_erase(self, user: str, pseudonym: str) -> dict:
        return {"erased": {"model_state": self.rec_engine.forget(user)}, "pseudonymised": {}}

    def api_handlers(self):
        return [
            (r"api/recommendations", handlers.RecommendationsHandler),
            (r"api/mastery", handlers.MasteryHandler),
            (r"api/model", handlers.ModelHandler),
            (r"api/refits", handlers.RefitHandler),
        ]

    def openapi_paths(self):
        error = {"$ref": "#/components/responses/Error"}
        q = lambda name, desc, **schema: {"name": name, "in": "query", "required": False,  # noqa: E731
                                          "description": desc, "schema": schema or {"type": "string"}}
        return {
            "/api/recommendations": {"get": {
                "summary": "Explained recommendations (courses, assignments or exercises) for a learner",
                "parameters": [
                    q("kind", "course | assignment | exercise (default: exercise with course=, else course)",
                      type="string", enum=["course", "assignment", "exercise"]),
                    q("course", "a course id: what to do next inside it (404 if unknown)"),
                    q("user", "another learner (instructors/TAs of course=, admins)"),
                    q("limit", "1-100, default 10", type="integer"),
                ],
                "responses": {"200": {
                    "description": "{user, kind, course, model, items: [{item, title, score, reason, reason_code, "
                                   "reason_params, rank, ...}], next: null}. reason is English text; reason_code "
                                   "and reason_params say the same as data (docs/recommender-service.md)",
                    "content": {"application/json": {"schema": {"type": "object", "properties": {
                        "items": {"type": "array", "items": {"type": "object", "properties": {
                            "item": {"type": "string"}, "title": {"type": "string"}, "score": {"type": "number"},
                            "rank": {"type": "integer"},
                            "reason": {"type": "string", "description": "why, in English"},
                            "reason_code": {"type": "string", "enum": list(REASON_CODES),
                                            "description": "why, as a code"},
                            "reason_params": {"type": "object", "description": "the code's parameters, e.g. "
                                              "practice: {skill, mastery, fit, due?, due_status?, due_in_days?}"},
                        }}}}}}}},
                              "400": error, "401": error, "403": error, "404": error}}},
            "/api/mastery": {"get": {
                "summary": "Per-skill mastery (estimate, level, attempts) of the caller, a learner, or a class",
                "parameters": [
                    q("course", "a course id (404 if unknown); required for staff views"),
                    q("user", "a learner of the course (staff); staff who omit it get every learner"),
                    q("limit", "learners per page in the class view, 1-500, default 100", type="integer"),
                    q("cursor", "the 'next' value of the previous page"),
                ],
                "responses": {"200": {"description": "one learner: {user, course, model, items: [{skill, title, "
                                                     "estimate, level, attempts, correct}]}; a class: {course, "
                                                     "items: [{user, items: [...]}], next}"},
                              "400": error, "401": error, "403": error, "404": error}}},
            "/api/model": {"get": {
                "summary": "The models in use: version, tracer kind, fit time and data sizes",
                "responses": {"200": {"description": "model information"}, "401": error, "403": error}}},
            "/api/refits": {"post": {
                "summary": "Refit the models now (admins)",
                "responses": {"201": {"description": "model information after the refit"},
                              "401": error, "403": error}}},
        }
