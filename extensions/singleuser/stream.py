"""One browser WebSocket, many service WebSockets: :class:`StreamMux` (no web framework here).

The browser sends ``{"subscribe": kind, ...}`` / ``{"unsubscribe": kind, ...}``; each topic is one
upstream WebSocket opened with the server's token:

========================================  ====================  ===============================================
client message                            topic                 upstream
========================================  ====================  ===============================================
``{"subscribe": "notifications"}``        ``notifications``     notifications ``api/notifications/stream``
``{"subscribe": "help"}``                 ``help``              feedback ``api/help-requests/events``
``{"subscribe": "help", "course": c}``    ``help:<c>``          the same with ``?course=c`` (the course's staff)
``{"subscribe": "submission", "id": i}``  ``submission:<i>``    feedback ``api/submissions/<i>/events``
``{"subscribe": "check", "id": i}``       ``check:<i>``         feedback ``api/checks/<i>/events``
========================================  ====================  ===============================================

Every upstream message reaches the browser as ``{"topic": t, "event": <message>}``. When an upstream
cannot be opened or drops, the browser gets ``{"topic": t, "error": {"status", "message"}}`` and the
upstream is opened again after a wait that doubles up to ``reconnect_max_seconds``. A refusal (4xx: not
allowed, no such job) is final, as is the end of a job's stream after its ``done`` event: both send
``{"topic": t, "closed": true}``, and so does an ``unsubscribe``. Closing the browser socket closes
every upstream socket.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
from typing import Callable
from urllib.parse import urlencode

from tornado.httpclient import HTTPClientError
from tornado.websocket import websocket_connect

from .bridge import BridgeError, HubBridge

_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_COURSE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Upstream messages after which a job's stream is complete.
_JOB_END = {"done"}


class Subscription:
    """What one topic is: where its upstream is and whether it ends."""

    def __init__(self, topic: str, service: str, path: str, query: str = "", job: bool = False):
        self.topic, self.service, self.path, self.query, self.job = topic, service, path, query, job


def parse_subscription(message: dict) -> Subscription:
    """The topic a ``{"subscribe"|"unsubscribe": kind, ...}`` message names, or BridgeError(400)."""
    kind = message.get("subscribe", message.get("unsubscribe"))
    if kind == "notifications":
        return Subscription("notifications", "notifications", "notifications/stream")
    if kind == "help":
        course = message.get("course")
        if course is None:
            return Subscription("help", "feedback", "help-requests/events")
        if not isinstance(course, str) or not _COURSE.match(course):
            raise BridgeError(400, "'course' must be a course id.", {"field": "course"})
        return Subscription(f"help:{course}", "feedback", "help-requests/events", urlencode({"course": course}))
    if kind in ("submission", "check"):
        job_id = message.get("id")
        if not isinstance(job_id, str) or not _ID.match(job_id):
            raise BridgeError(400, f"'id' must be the {kind}'s id.", {"field": "id"})
        plural = "submissions" if kind == "submission" else "checks"
        return Subscription(f"{kind}:{job_id}", "feedback", f"{plural}/{job_id}/events", job=True)
    raise BridgeError(400, "Send {\"subscribe\": \"notifications\" | \"help\" | \"submission\" | \"check\"} "
                           "(with \"id\" for a submission or check), or the same with \"unsubscribe\".",
                      {"received": str(kind)[:100]})


def _refusal(exc: HTTPClientError, service: str) -> tuple[int, str]:
    """Status and message of a failed WebSocket handshake, from the service's JSON error when it sent one."""
    status, message = exc.code, f"The {service} service refused the stream ({exc.code})."
    response = getattr(exc, "response", None)
    if response is not None and "json" in response.headers.get("Content-Type", ""):
        try:
            message = json.loads(response.body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
    elif status >= 300:  # not the service answering (proxy page, hub redirect): it is not there
        status, message = 502, f"The {service} service is not answering; the rest of learnhub still works."
    return status, message


class StreamMux:
    """The upstream WebSockets of one browser WebSocket. ``send`` writes one JSON message to the browser."""

    def __init__(self, bridge: HubBridge, send: Callable[[dict], None], log):
        self.bridge = bridge
        self.send = send
        self.log = log
        self.tasks: dict[str, asyncio.Task] = {}
        self.closed = False

    # -- the browser's side ---------------------------------------------------------------------

    def handle(self, raw: str | bytes) -> None:
        """One message from the browser."""
        try:
            message = json.loads(raw)
            if not isinstance(message, dict) or not ({"subscribe", "unsubscribe"} & set(message)):
                raise ValueError("not a subscription")
            subscription = parse_subscription(message)
        except ValueError:
            self.send({"topic": None, "error": {"status": 400, "message": "Messages are JSON objects with "
                                                "\"subscribe\" or \"unsubscribe\"."}})
            return
        except BridgeError as exc:
            self.send({"topic": None, "error": {"status": exc.status, "message": exc.message}})
            return
        if "subscribe" in message:
            self.subscribe(subscription)
        else:
            self.unsubscribe(subscription.topic)

    def subscribe(self, subscription: Subscription) -> None:
        if self.closed or subscription.topic in self.tasks:
            return  # already streaming: one upstream per topic
        if len(self.tasks) >= self.bridge.max_subscriptions:
            self.send({"topic": subscription.topic, "error": {
                "status": 429, "message": f"At most {self.bridge.max_subscriptions} topics per socket; "
                                          "unsubscribe from some first."}})
            return
        task = asyncio.ensure_future(self._run(subscription))
        self.tasks[subscription.topic] = task
        task.add_done_callback(lambda _t, topic=subscription.topic: self._forget(topic, _t))

    def unsubscribe(self, topic: str) -> None:
        task = self.tasks.pop(topic, None)
        if task is not None:
            task.cancel()
            self.send({"topic": topic, "closed": True})

    def close(self) -> None:
        """The browser went away: close every upstream."""
        self.closed = True
        for task in list(self.tasks.values()):
            task.cancel()
        self.tasks.clear()

    def _forget(self, topic: str, task: asyncio.Task) -> None:
        if self.tasks.get(topic) is task:
            del self.tasks[topic]
        if not task.cancelled() and task.exception() is not None:
            self.log.error("learnhub stream %s failed", topic, exc_info=task.exception())

    # -- the services' side ---------------------------------------------------------------------

    async def _connect(self, subscription: Subscription):
        future = websocket_connect(
            self.bridge.websocket_request(subscription.service, subscription.path, subscription.query),
            ping_interval=self.bridge.websocket_ping_seconds or None,
            ping_timeout=self.bridge.websocket_ping_seconds or None)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # Unsubscribed while connecting: close the connection if it still opens.
            future.add_done_callback(lambda f: f.result().close() if not f.cancelled() and f.exception() is None
                                     else None)
            raise

    async def _run(self, subscription: Subscription) -> None:
        topic, service = subscription.topic, subscription.service
        wait = self.bridge.reconnect_initial_seconds
        while True:
            try:
                connection = await self._connect(subscription)
            except HTTPClientError as exc:
                status, message = _refusal(exc, service)
                self.send({"topic": topic, "error": {"status": status, "message": message}})
                if 400 <= status < 500 and status not in (408, 429):
                    self.send({"topic": topic, "closed": True})
                    return
            except BridgeError as exc:
                self.send({"topic": topic, "error": {"status": exc.status, "message": exc.message}})
                self.send({"topic": topic, "closed": True})
                return
            except Exception as exc:  # refused, reset, timed out
                self.log.info("learnhub stream %s: %s not answering: %s", topic, service, exc)
                self.send({"topic": topic, "error": {"status": 502, "message": f"The {service} service is not "
                                                     "answering; the rest of learnhub still works."}})
            else:
                wait = self.bridge.reconnect_initial_seconds
                ended = await self._relay(topic, connection, subscription.job)
                if ended:
                    self.send({"topic": topic, "closed": True})
                    return
                self.send({"topic": topic, "error": {"status": 502, "message": f"The {service} service closed the "
                                                     "stream; reconnecting."}})
            # A little jitter, so that the tabs of many learners do not all come back at once.
            await asyncio.sleep(wait * random.uniform(0.8, 1.2))
            wait = min(wait * 2, self.bridge.reconnect_max_seconds)

    async def _relay(self, topic: str, connection, job: bool) -> bool:
        """Pass messages on until the upstream closes; True when it ended as a job stream ends."""
        ended = False
        try:
            while True:
                raw = await connection.read_message()
                if raw is None:
                    return ended
                try:
                    event = json.loads(raw)
                except ValueError:
                    event = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
                self.send({"topic": topic, "event": event})
                if job and isinstance(event, dict) and event.get("type") in _JOB_END:
                    ended = True
        finally:
            connection.close()
