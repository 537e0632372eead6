"""In-process publish/subscribe for WebSocket pushes, and per-user rate limits."""
from __future__ import annotations

import asyncio
import time
from collections import defaultdict


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


class RateLimiter:
    """At most ``limit`` actions per ``window`` seconds per key (sliding window)."""

    def __init__(self, limit: int, window: float = 60.0):
        self.limit = limit
        self.window = window
        self._times: dict[str, list[float]] = defaultdict(list)

    def retry_after(self, key: str, now: float | None = None) -> float:
        """0 and the action counted if allowed; otherwise seconds until it will be."""
        now = time.monotonic() if now is None else now
        times = [t for t in self._times[key] if now - t < self.window]
        self._times[key] = times
        if len(times) >= self.limit:
            return max(0.0, self.window - (now - times[0]))
        times.append(now)
        return 0.0
