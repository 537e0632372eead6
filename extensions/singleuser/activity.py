"""Notebook activity from a learner's JupyterLab, through Jupyter's own event system, to analytics.

Self-contained; the single-user server extension hooks it in with one call when it loads::

    from learnhub.extensions.singleuser.activity import ActivityRecorder
    ActivityRecorder.attach(serverapp)          # in _load_jupyter_server_extension(serverapp)

What is recorded (jupyter_events listeners, nothing polls files):

* ``opened`` / ``saved`` notebooks — jupyter_server's ``contents_service/v1`` events (``get``/``save``);
* ``executed`` cells with ``success`` and ``error_type`` — the schema :data:`ACTIVITY_SCHEMA_ID`, which this
  module registers with the server's event logger, so that the JupyterLab extension reports a cell run
  by ``POST /api/events`` to the *single-user server* (jupyter_server's own endpoint for client events);
* ``active`` time — a heartbeat every ``heartbeat_seconds`` while the server saw activity in the last
  ``idle_seconds`` (the frontend may also send ``heartbeat`` events through the same schema); idle time
  is never counted.

Events are batched and sent to ``POST /services/analytics/api/events`` with the server's own
``JUPYTERHUB_API_TOKEN`` (scopes ``access:services``; the actor is the server's user). Every event is
appended to a local spool file first and removed only after the service accepted it, so a service that
is down, or a server restart, loses nothing: sending is retried with backoff, and event ids make the
retries idempotent.
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets import Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from learnhub.event_schemas import Verb, make_event

CONTENTS_SCHEMA_ID = "https://events.jupyter.org/jupyter_server/contents_service/v1"
ACTIVITY_SCHEMA_ID = "https://learnhub.example/events/notebook-activity/v1"

ACTIVITY_SCHEMA = {
    "$id": ACTIVITY_SCHEMA_ID,
    "version": "1",
    "title": "learnhub notebook activity",
    "description": "Cell executions and heartbeats reported by the learnhub JupyterLab extension.",
    "type": "object",
    "required": ["action", "path"],
    "properties": {
        "action": {"enum": ["cell_executed", "heartbeat"]},
        "path": {"type": "string", "maxLength": 1024},
        "cell_id": {"type": "string", "maxLength": 128},
        "success": {"type": "boolean"},
        "error_type": {"type": "string", "maxLength": 128},
        "duration": {"type": "number", "minimum": 0},
    },
}


def course_of(path: str) -> tuple[str | None, str | None]:
    """(course_id, assignment_id) of a notebook fetched by nbgrader: ``<course>/<assignment>/<file>``."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 3:
        return parts[0], parts[1]
    return None, None


class ActivityRecorder(LoggingConfigurable):
    """Turns jupyter_events into learnhub events, and delivers them reliably."""

    analytics_url = Unicode(help="The analytics service, e.g. http://hub:8000/services/analytics "
                                 "(default: $LEARNHUB_PUBLIC_URL/services/analytics).").tag(config=True)

    @default("analytics_url")
    def _default_url(self):
        public = os.environ.get("LEARNHUB_PUBLIC_URL", "http://127.0.0.1:8000")
        return os.environ.get("LEARNHUB_ANALYTICS_URL", public.rstrip("/") + "/services/analytics")

    api_token = Unicode(help="Token for the analytics service (default $JUPYTERHUB_API_TOKEN).").tag(config=True)

    @default("api_token")
    def _default_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    user = Unicode(help="The actor of every event (default $JUPYTERHUB_USER).").tag(config=True)

    @default("user")
    def _default_user(self):
        return os.environ.get("JUPYTERHUB_USER", os.environ.get("USER", "unknown"))

    spool_path = Unicode(help="Events not yet accepted by the service, one JSON per line.").tag(config=True)

    @default("spool_path")
    def _default_spool(self):
        return str(Path.home() / ".local" / "share" / "learnhub" / "activity-spool.jsonl")

    batch_size = Integer(200, help="At most this many events per request.").tag(config=True)
    flush_seconds = Float(10.0, help="How often buffered events are sent.").tag(config=True)
    heartbeat_seconds = Float(60.0, help="Length of one 'active' interval.").tag(config=True)
    idle_seconds = Float(300.0, help="Without activity for this long, time is idle and not counted.").tag(config=True)
    max_backoff_seconds = Float(600.0, help="Longest wait between retries while the service is down.").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.pending: list[dict] = self._load_spool()
        self.last_activity = time.monotonic()
        self._backoff = 0.0
        self._next_try = 0.0
        self._tasks: list[asyncio.Task] = []

    # -- hooking in ----------------------------------------------------------------------------

    @classmethod
    def attach(cls, serverapp, **kwargs) -> "ActivityRecorder":
        recorder = cls(parent=serverapp, log=serverapp.log, **kwargs)
        logger = serverapp.event_logger
        if ACTIVITY_SCHEMA_ID not in logger.schemas.schema_ids:
            logger.register_event_schema(ACTIVITY_SCHEMA)
        logger.add_listener(schema_id=CONTENTS_SCHEMA_ID, listener=recorder.on_contents)
        logger.add_listener(schema_id=ACTIVITY_SCHEMA_ID, listener=recorder.on_activity)
        recorder.start()
        return recorder

    def start(self) -> None:
        loop = asyncio.get_event_loop()
        self._tasks = [loop.create_task(self._every(self.flush_seconds, self.flush)),
                       loop.create_task(self._every(self.heartbeat_seconds, self.heartbeat))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.flush(force=True)

    async def _every(self, seconds: float, work) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception:  # never let analytics break the learner's server
                self.log.exception("learnhub activity: %s failed", work.__name__)

    # -- jupyter_events listeners ----------------------------------------------------------------

    async def on_contents(self, logger, schema_id: str, data: dict) -> None:
        path = data.get("path", "")
        if not path.endswith(".ipynb"):
            return
        verb = {"get": Verb.OPENED, "save": Verb.SAVED}.get(data.get("action"))
        if verb:
            self.touch()
            self.record(verb, "notebook", path)

    async def on_activity(self, logger, schema_id: str, data: dict) -> None:
        self.touch()
        if data.get("action") == "cell_executed":
            result = {"success": bool(data.get("success", True))}
            if data.get("error_type"):
                result["error_type"] = data["error_type"]
            if data.get("duration") is not None:
                result["duration"] = float(data["duration"])
            object_id = f"{data['path']}#{data['cell_id']}" if data.get("cell_id") else data["path"]
            self.record(Verb.EXECUTED, "cell", object_id, result, path=data["path"])

    # -- events -----------------------------------------------------------------------------------

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def record(self, verb: Verb, object_type: str, object_id: str, result: dict | None = None,
               path: str | None = None) -> dict:
        course_id, assignment_id = course_of(path or object_id)
        context = {"role": "learner"}
        if course_id:
            context.update(course_id=course_id, assignment_id=assignment_id)
        event = make_event(self.user, verb, object_type, object_id[:512], result=result, context=context,
                           source="singleuser")
        self.pending.append(event)
        self._spool([event])
        return event

    async def heartbeat(self) -> None:
        """An 'active' interval if the learner did something recently; idle time is not counted."""
        if time.monotonic() - self.last_activity <= self.idle_seconds:
            self.record(Verb.ACTIVE, "notebook", "jupyterlab", {"duration": self.heartbeat_seconds})

    # -- delivery -----------------------------------------------------------------------------------

    async def flush(self, force: bool = False) -> int:
        """Send what is pending; keep it (and back off) if the service cannot take it now."""
        if not self.pending or (not force and time.monotonic() < self._next_try):
            return 0
        sent = 0
        while self.pending:
            batch = self.pending[: self.batch_size]
            try:
                await AsyncHTTPClient().fetch(
                    self.analytics_url.rstrip("/") + "/api/events", method="POST", body=json.dumps(batch),
                    headers={"Authorization": f"token {self.api_token}", "Content-Type": "application/json"},
                    request_timeout=30)
            except HTTPClientError as error:
                if error.code == 422:
                    # Accepted except the invalid ones, which a retry would not fix: drop them, loudly.
                    self.log.warning("learnhub activity: events rejected: %s", error.response.body[:500])
                elif error.code in (401, 403, 413):
                    self.log.error("learnhub activity: analytics refused the batch (%s); kept for later", error.code)
                    self._fail()
                    return sent
                else:
                    self._fail()
                    return sent
            except Exception as error:  # connection refused, timeout: the service is down
                self.log.info("learnhub activity: analytics unreachable (%s); will retry", error)
                self._fail()
                return sent
            del self.pending[: len(batch)]
            sent += len(batch)
            self._rewrite_spool()
        self._backoff = 0.0
        self._next_try = 0.0
        return sent

    def _fail(self) -> None:
        self._backoff = min(self.max_backoff_seconds, max(self.flush_seconds, self._backoff * 2))
        self._next_try = time.monotonic() + self._backoff

    def _spool(self, events: list[dict]) -> None:
        path = Path(self.spool_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as spool:
            for event in events:
                spool.write(json.dumps(event) + "\n")

    def _rewrite_spool(self) -> None:
        path = Path(self.spool_path)
        temporary = path.with_suffix(".tmp")
        with open(temporary, "w", encoding="utf-8") as spool:
            for event in self.pending:
                spool.write(json.dumps(event) + "\n")
        os.replace(temporary, path)  # atomic: a crash leaves the old or the new spool, never half

    def _load_spool(self) -> list[dict]:
        path = Path(self.spool_path)
        if not path.is_file():
            return []
        events = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:  # a line cut short by a crash
                continue
        return events
