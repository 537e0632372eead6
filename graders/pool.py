"""WarmPool: sandboxes started ahead of time, so grading never waits for a python start-up.

A pooled sandbox has its runner started, IPython imported and its limits applied, and is
waiting for its first cell. :meth:`WarmPool.take` hands one out (it is then the caller's,
for one notebook of one submission, and is closed afterwards: never reused) and a
background thread starts a replacement.
"""
from __future__ import annotations

import collections
import threading
import time

from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from .sandbox.base import Sandbox

# Limits that are fixed when the runner starts (rlimits, cgroups, tmpfs size). The others
# (cell_timeout, wall_time) are enforced by the grader and can be set after taking.
START_LIMITS = ("cpu_time", "memory", "max_processes", "max_output_bytes", "max_file_size", "tmp_size")


class WarmPool(LoggingConfigurable):
    """A pool of started sandboxes of one engine's sandbox class and default limits."""

    size = Integer(2, help="Started sandboxes kept ready.").tag(config=True)
    take_timeout = Float(
        10.0, help="Seconds take() waits for a warm sandbox before starting a cold one itself."
    ).tag(config=True)
    max_idle = Float(
        600.0, help="Seconds a warm sandbox may wait; older ones are replaced (fresh state, no leaks)."
    ).tag(config=True)
    fillers = Integer(
        1, help="""Sandboxes started at the same time. A start-up is a python + IPython import in a
        process of its own (CPU in the sandbox, not in the grader), so a batch on N cores keeps up
        with its graders only when several start at once; a service's pool refills between
        submissions and needs one."""
    ).tag(config=True)
    budget = Integer(
        0, help="""At most this many sandboxes started over the pool's life (0: no limit). A batch of
        known size sets it to the number of notebooks it will grade, so that no sandbox is started
        for nothing while the last ones are graded."""
    ).tag(config=True)

    def __init__(self, engine=None, size: int | None = None, limits: dict | None = None, **kwargs):
        if size is not None:
            kwargs["size"] = size
        super().__init__(**kwargs)
        if engine is None:
            from .engine import GradingEngine

            engine = GradingEngine()
        self.engine = engine
        self.limits = dict(limits if limits is not None else engine.limits)
        self._ready: collections.deque[tuple[float, Sandbox]] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._starting = 0
        self._requested = 0  # start-ups begun, for the budget
        self.stats = {"warm": 0, "cold": 0, "started": 0, "failed": 0}
        self._fillers = [threading.Thread(target=self._fill_loop, daemon=True, name=f"warm-pool-filler-{i}")
                         for i in range(max(1, self.fillers))]
        for filler in self._fillers:
            filler.start()

    def _exhausted(self) -> bool:
        return bool(self.budget) and self._requested >= self.budget

    def _start_limits(self, limits: dict | None) -> dict:
        merged = dict(self.limits)
        merged.update(limits or {})
        return {k: merged[k] for k in START_LIMITS if k in merged}

    def _fill_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (len(self._ready) + self._starting >= self.size or self._exhausted()):
                    self._cond.wait(timeout=5)
                    self._expire_idle()
                if self._closed:
                    return
                self._starting += 1
                self._requested += 1
            sandbox = None
            try:
                sandbox = self.engine.new_sandbox(self.limits)
            except Exception:
                self.log.warning("warm pool could not start a sandbox", exc_info=True)
                with self._cond:
                    self._requested -= 1  # a failed start-up does not use the budget
                time.sleep(1.0)
            with self._cond:
                self._starting -= 1
                self.stats["started" if sandbox is not None else "failed"] += 1
                if sandbox is not None:
                    if self._closed:
                        sandbox.close()
                    else:
                        self._ready.append((time.monotonic(), sandbox))
                self._cond.notify_all()

    def _expire_idle(self) -> None:
        now = time.monotonic()
        while self._ready and now - self._ready[0][0] > self.max_idle:
            _, old = self._ready.popleft()
            old.close()

    def ready_count(self) -> int:
        with self._cond:
            return len(self._ready)

    def wait_ready(self, n: int | None = None, timeout: float = 60.0) -> bool:
        """Block until n (default: size) sandboxes are warm."""
        n = self.size if n is None else n
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._ready) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(timeout=left)
        return True

    def take(self, limits: dict | None = None) -> Sandbox:
        """A started, unused sandbox; the caller owns it (and closes it)."""
        if self._start_limits(limits) != self._start_limits(None):
            # the assignment needs different rlimits than the pool's: start one for it
            self.stats["cold"] += 1
            return self.engine.new_sandbox({**self.limits, **(limits or {})})
        deadline = time.monotonic() + self.take_timeout
        with self._cond:
            while True:
                while self._ready:
                    _, sandbox = self._ready.popleft()
                    self._cond.notify_all()  # wake the filler: one to replace
                    if sandbox.running:
                        self.stats["warm"] += 1
                        return sandbox
                    sandbox.close()
                left = deadline - time.monotonic()
                if self._closed or left <= 0 or (self._exhausted() and not self._starting):
                    break  # nothing is coming: start one here
                self._cond.wait(timeout=left)
        self.stats["cold"] += 1
        return self.engine.new_sandbox({**self.limits, **(limits or {})})

    __call__ = take  # a pool is a sandbox_factory for GradingEngine.grade

    def close(self) -> None:
        with self._cond:
            self._closed = True
            ready, self._ready = list(self._ready), collections.deque()
            self._cond.notify_all()
        for _, sandbox in ready:
            sandbox.close()

    def join(self, timeout: float = 40.0) -> None:
        """After :meth:`close`: wait for start-ups under way (each closes its sandbox when it is up),
        so that a process about to end leaves no sandbox, or cgroup, behind."""
        deadline = time.monotonic() + timeout
        for filler in self._fillers:
            filler.join(timeout=max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
