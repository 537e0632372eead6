"""Notebook activity (extensions/singleuser/activity.py): jupyter_events in, learnhub events out,
nothing lost while the analytics service is down."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jupyter_server
from jupyter_events import EventLogger
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from learnhub.events import validate_event
from learnhub.extensions.singleuser.activity import (
    ACTIVITY_SCHEMA_ID, CONTENTS_SCHEMA_ID, ActivityRecorder, course_of,
)

CONTENTS_SCHEMA = Path(jupyter_server.__file__).parent / "event_schemas" / "contents_service" / "v1.yaml"


class FakeAnalytics(web.RequestHandler):
    received: list = []
    up = False

    def post(self):
        if not FakeAnalytics.up:
            raise web.HTTPError(503)
        assert self.request.headers["Authorization"] == "token server-token"
        FakeAnalytics.received.extend(json.loads(self.request.body))
        self.finish({"stored": 1})


async def test_events_flow_and_survive_an_outage(tmp_path):
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/services/analytics/api/events", FakeAnalytics)]))
    server.add_sockets(sockets)
    url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/services/analytics"
    logger = EventLogger()
    logger.register_event_schema(CONTENTS_SCHEMA)
    from traitlets.config import LoggingConfigurable

    app = LoggingConfigurable()  # stands in for the ServerApp: config, log and its event_logger
    app.event_logger = logger
    options = dict(analytics_url=url, api_token="server-token", user="lena", spool_path=str(tmp_path / "spool.jsonl"),
                   flush_seconds=3600, heartbeat_seconds=3600)
    recorder = ActivityRecorder.attach(app, **options)
    try:
        logger.emit(schema_id=CONTENTS_SCHEMA_ID, data={"action": "get", "path": "intro/loops/work.ipynb"})
        logger.emit(schema_id=CONTENTS_SCHEMA_ID, data={"action": "save", "path": "intro/loops/work.ipynb"})
        logger.emit(schema_id=CONTENTS_SCHEMA_ID, data={"action": "get", "path": "data.csv"})  # not a notebook
        logger.emit(schema_id=ACTIVITY_SCHEMA_ID, data={"action": "cell_executed", "path": "intro/loops/work.ipynb",
                                                        "cell_id": "c1", "success": False, "error_type": "NameError"})
        await asyncio.sleep(0.1)  # jupyter_events runs listeners as tasks
        await recorder.heartbeat()  # active just now: one interval counted
        recorder.last_activity -= 10_000
        await recorder.heartbeat()  # idle: nothing
        assert [e["verb"] for e in recorder.pending] == ["opened", "saved", "executed", "active"]
        assert all(validate_event(e) == [] for e in recorder.pending)
        assert recorder.pending[2]["result"] == {"success": False, "error_type": "NameError"}
        assert recorder.pending[0]["context"]["course_id"] == "intro"

        # The service is down: nothing is lost, and a restarted server still has the events.
        assert await recorder.flush(force=True) == 0
        assert len(recorder.pending) == 4
        await recorder.stop()
        restarted = ActivityRecorder(**options)
        assert [e["id"] for e in restarted.pending] == [e["id"] for e in recorder.pending]

        FakeAnalytics.up = True
        assert await restarted.flush(force=True) == 4
        assert [e["verb"] for e in FakeAnalytics.received] == ["opened", "saved", "executed", "active"]
        assert restarted.pending == [] and Path(options["spool_path"]).read_text() == ""
    finally:
        for task in recorder._tasks:
            task.cancel()
        server.stop()


def test_course_of_nbgrader_paths():
    assert course_of("intro/loops/work.ipynb") == ("intro", "loops")
    assert course_of("scratch.ipynb") == (None, None)
