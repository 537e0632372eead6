"""In-process publish/subscribe for WebSocket pushes, and per-user rate limits."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from learnhub.graders.models import GradingJob


class Broadcaster:
    """Topics of asyncio queues: publishers never wait, slow subscribers drop the oldest."""

    def __init__(self, queue_size: int = 100):
        self.queue_size = queue_size
        self._topics: dict[str, set[asyncio.Queue]] = defaultdict(set)

    def subscribe(self, topic: str) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue(self.queue_size)
        self._topics[topic].add(queue)
        return queue

    def unsubscribe(self, topic: str, queue: asyncio.Queue) -> None:
        self._topics[topic].discard(queue)
        if not self._topics[topic]:
            self._topics.pop(topic, None)

    def publish(self, topic: str, message: dict) -> int:
        queues = list(self._topics.get(topic, ()))
        for queue in queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)
        return len(queues)


class CheckRateLimiter:
    """At most ``limit`` checks per ``window`` seconds per learner (sliding window), counted from the
    ``grading_jobs`` table (``mode == "check"``), so the limit holds across worker processes and restarts.

    A check is counted once its job is queued: two checks of one learner that arrive together may
    both pass the last free slot."""

    def __init__(self, session_factory, limit: int, window: float = 60.0):
        self.session_factory = session_factory
        self.limit = limit
        self.window = window

    def retry_after(self, learner: str, now: datetime | None = None) -> float:
        """0 if the learner may run a check now; otherwise seconds until the oldest counted one leaves
        the window."""
        if self.limit <= 0:
            return 0.0
        now = now or datetime.now(timezone.utc)
        since = now - timedelta(seconds=self.window)
        with self.session_factory() as session:
            count, oldest = session.execute(
                select(func.count(), func.min(GradingJob.created_at)).where(
                    GradingJob.learner_id == learner, GradingJob.mode == "check",
                    GradingJob.created_at > since)).one()
        if count < self.limit or oldest is None:
            return 0.0
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=timezone.utc)
        return max(0.001, (oldest + timedelta(seconds=self.window) - now).total_seconds())
