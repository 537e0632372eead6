"""The sandbox contract and the process plumbing every backend shares.

A :class:`Sandbox` is one isolated python "runner" process (see ``runner.py``) that
executes cells it receives over a pipe and answers with nbformat outputs. Backends only
decide *how* the process is started (:meth:`Sandbox.build_command`) and what happens
around it (cgroups, container names); limits, timeouts, the protocol and the
classification of why a sandbox stopped live here, so that every backend reports the
same limit names.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from traitlets import Bool, Float, Integer, Unicode
from traitlets.config import LoggingConfigurable

from .starter import start_process

def _in_sandbox_source(script: str) -> str:
    """An in-sandbox script with the shared modules' sources in place of their imports: the sandbox's
    python runs it with ``-c``, so nothing of learnhub needs to be installed inside."""
    here = Path(__file__).parent
    source = (here / script).read_text()
    shared = "\n".join((here / name).read_text() for name in ("capture.py", "wire.py"))
    start = source.index("from learnhub.graders.sandbox.capture import")
    end = source.index(")\n", source.index("from learnhub.graders.sandbox.wire import")) + 2
    return source[:start] + shared + "\n" + source[end:]


#: the trusted runner (it starts the learner's interpreter, whose source it is given)
RUNNER_SOURCE = _in_sandbox_source("runner.py")
LEARNER_SOURCE = _in_sandbox_source("learner.py")
#: the warm parent bubblewrap sandboxes are forked from (standard library only, nothing to put in)
ZYGOTE_SOURCE = (Path(__file__).parent / "zygote.py").read_text()

#: Names of the limits a result may report in ``limit``.
LIMIT_NAMES = (
    "cell_timeout", "wall_time", "cpu_time", "memory", "processes", "output", "died", "startup",
)

LIMIT_EXPLANATIONS = {
    "cell_timeout": "A cell ran longer than the time allowed for one cell ({cell_timeout} s); it was interrupted.",
    "wall_time": "The notebook ran longer than the total time allowed ({wall_time} s); it was stopped.",
    "cpu_time": "The notebook used more CPU time than allowed ({cpu_time} s); it was stopped.",
    "memory": "The notebook used more memory than allowed ({memory_mb} MB).",
    "processes": "The notebook started more processes than allowed ({max_processes}).",
    "output": "The notebook printed more output than allowed ({max_output_bytes} bytes); the rest was cut.",
    "died": "The notebook's process stopped unexpectedly, so the remaining cells could not run.",
    "startup": "The grading sandbox could not start.",
}


class SandboxError(RuntimeError):
    """The sandbox could not be started or used (not a problem of the submission)."""


class Sandbox(LoggingConfigurable):
    """One isolated runner process. Started once, used for one submission, then closed."""

    # --- limits (every one can be overridden per assignment, see GradingEngine.limits) ---
    cpu_time = Integer(60, help="CPU seconds the whole notebook may use (RLIMIT_CPU).").tag(config=True)
    wall_time = Integer(120, help="Wall-clock seconds for executing the whole notebook.").tag(config=True)
    cell_timeout = Integer(
        30,
        help="Seconds one cell may run before it is interrupted, like nbgrader's Execute.timeout "
        "(default 30): the cell gets nbgrader's CellTimeoutError output and later cells still run.",
    ).tag(config=True)
    memory = Integer(
        1024 * 1024 * 1024,
        help="Address-space limit in bytes (RLIMIT_AS); also the cgroup memory limit where available.",
    ).tag(config=True)
    max_processes = Integer(
        64, help="Processes/threads the notebook may have (RLIMIT_NPROC and the pids cgroup)."
    ).tag(config=True)
    max_output_bytes = Integer(
        1024 * 1024, help="Output (stdout, stderr, display data) kept per notebook; the rest is cut and reported."
    ).tag(config=True)
    max_file_size = Integer(64 * 1024 * 1024, help="Largest file the notebook may write (RLIMIT_FSIZE).").tag(config=True)
    tmp_size = Integer(64 * 1024 * 1024, help="Size of the private, writable /tmp in bytes.").tag(config=True)
    startup_timeout = Float(30.0, help="Seconds to wait for the runner to report ready.").tag(config=True)
    interrupt_grace = Float(
        2.0, help="Seconds a timed-out cell gets to stop after SIGINT before the sandbox is killed."
    ).tag(config=True)
    python = Unicode(sys.executable, help="Python interpreter that runs the runner inside the sandbox.").tag(config=True)

    isolated = Bool(True, help="Whether this backend isolates the notebook (False only for LocalSandbox).")

    LIMIT_TRAITS = (
        "cpu_time", "wall_time", "cell_timeout", "memory", "max_processes",
        "max_output_bytes", "max_file_size", "tmp_size",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.id = uuid.uuid4().hex[:12]
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._stderr = bytearray()
        self._used = False
        self._deadline: float | None = None
        self.limit_hits: list[str] = []
        self.stopped: str | None = None  # why the runner is gone, if it is
        self.started_at: float | None = None
        self.workdir = "/tmp"

    # ----- to be provided by backends -----
    def build_command(self) -> list[str]:
        raise NotImplementedError

    def popen_kwargs(self) -> dict:
        return {}

    def post_start(self) -> None:
        """Called after the runner reported ready, before any notebook code is sent."""

    def cleanup(self) -> None:
        """Release backend resources (cgroups, containers)."""

    def limits_payload(self) -> dict:
        return {
            "cpu_time": self.cpu_time,
            "memory": self.memory,
            "max_processes": self.max_processes,
            "max_output_bytes": self.max_output_bytes,
            "max_file_size": self.max_file_size,
            "workdir": self.workdir,
        }

    def limits(self) -> dict:
        return {name: getattr(self, name) for name in self.LIMIT_TRAITS}

    def apply_limits(self, limits: dict | None) -> None:
        """Override limits (e.g. per assignment) before :meth:`start`."""
        for key, value in (limits or {}).items():
            if key not in self.LIMIT_TRAITS:
                raise ValueError(f"unknown sandbox limit {key!r}; known: {', '.join(self.LIMIT_TRAITS)}")
            setattr(self, key, value)

    # ----- life cycle -----
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.stopped is None

    def start(self) -> "Sandbox":
        if self.proc is not None:
            raise SandboxError("a sandbox is started only once")
        self.started_at = time.monotonic()
        self.proc = self.launch()
        threading.Thread(target=self._read_stdout, daemon=True, name=f"sandbox-{self.id}-out").start()
        stderr_reader = threading.Thread(target=self._read_stderr, daemon=True, name=f"sandbox-{self.id}-err")
        stderr_reader.start()
        msg = self._next(self.startup_timeout)
        if msg is None or msg.get("type") != "ready":
            if msg is None:  # the runner ended: what it said on the way out is what tells why
                stderr_reader.join(1.0)
            err = self._stderr.decode("utf-8", "replace")[-2000:]
            self.close()
            raise SandboxError(f"sandbox runner did not start: {msg!r} {err}")
        try:
            self.post_start()
        except Exception:
            self.close()
            raise
        return self

    def launch(self):
        """Start the runner's process; returns it (a ``subprocess.Popen``, or an object with its
        ``pid``, ``stdin``/``stdout``/``stderr`` byte streams, ``poll``, ``wait`` and ``kill``)."""
        cmd = self.build_command()
        kwargs = dict(
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True,
        )
        kwargs.update(self.popen_kwargs())
        try:
            return start_process(subprocess.Popen, cmd, **kwargs)
        except OSError as exc:
            raise SandboxError(f"cannot start sandbox {cmd[0]!r}: {exc}") from exc

    def claim(self) -> "Sandbox":
        """Mark the sandbox as used by one submission; a second claim is refused."""
        if self._used:
            raise SandboxError("sandboxes are never reused across submissions")
        self._used = True
        self._deadline = time.monotonic() + self.wall_time
        return self

    def _read_stdout(self):
        # A line longer than this is not a protocol message (the runner caps outputs);
        # reading it whole would let the notebook exhaust the grader's memory.
        cap = self.max_output_bytes * 4 + (1 << 20)
        stream = self.proc.stdout
        try:
            while True:
                line = stream.readline(cap)
                if not line:
                    break
                if not line.endswith(b"\n"):
                    self._lines.put({"type": "protocol_error", "reason": "oversized message"})
                    break
                try:
                    self._lines.put(json.loads(line))
                except ValueError:
                    self._lines.put({"type": "protocol_error", "reason": "not JSON"})
                    break
        except (OSError, ValueError):
            pass
        self._lines.put(None)

    def _read_stderr(self):
        stream = self.proc.stderr
        try:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    break
                if len(self._stderr) < 65536:
                    self._stderr += chunk[: 65536 - len(self._stderr)]
        except (OSError, ValueError):
            pass

    def _next(self, timeout: float | None):
        try:
            return self._lines.get(timeout=max(timeout, 0) if timeout is not None else None)
        except queue.Empty:
            return "timeout"

    def _send(self, obj) -> bool:
        try:
            self.proc.stdin.write((json.dumps(obj) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def put_files(self, files: dict[str, bytes]) -> bool:
        """Write data files into the sandbox's working directory, through the pipe."""
        import base64

        if not files or not self.running:
            return not files
        payload = {rel: base64.b64encode(data).decode() for rel, data in files.items()}
        if not self._send({"op": "put", "files": payload}):
            return False
        msg = self._next(self.startup_timeout)
        return isinstance(msg, dict) and msg.get("type") == "put"

    def runner_pids(self) -> list[int]:
        """Host pids of the sandbox's processes (the started process and its descendants)."""
        if self.proc is None:
            return []
        pids, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop(0)
            pids.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as fh:
                        todo.extend(int(p) for p in fh.read().split())
            except OSError:
                pass
        return pids

    def interrupt(self) -> None:
        """SIGINT the runner (KeyboardInterrupt in the cell, as a kernel interrupt does)."""
        for pid in self.runner_pids()[1:]:
            try:
                with open(f"/proc/{pid}/comm") as fh:
                    comm = fh.read().strip()
                if comm.startswith("python"):
                    os.kill(pid, signal.SIGINT)
                    return
            except OSError:
                continue

    def execute(self, code: str, kind: str = "learner") -> dict:
        """Run one cell; returns the runner's reply, or a synthetic error reply naming the limit.

        ``kind``: ``"test"`` for nbgrader's autograder test cells, which the trusted interpreter runs;
        ``"learner"`` for every other cell, which the learner's interpreter runs (see runner.py)."""
        if not self._used:
            self.claim()
        if not self.running:
            return self._dead_reply()
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            return self._stop("wall_time")
        if not self._send({"op": "exec", "code": code, "kind": kind}):
            return self._stop(self._classify_exit())
        timeout = min(self.cell_timeout, remaining)
        msg = self._next(timeout)
        if msg == "timeout":
            wall = timeout >= remaining
            if wall:
                return self._stop("wall_time")
            # nbgrader interrupts a timed-out cell and carries on with the next one
            self.interrupt()
            msg = self._next(self.interrupt_grace)
            if msg == "timeout" or msg is None:
                return self._stop("cell_timeout")
            self._hit("cell_timeout")
            msg["timed_out"] = True
            self.after_cell(msg)
            return msg
        if msg is None or msg.get("type") != "result":
            return self._stop(self._classify_exit() if msg is None else "died")
        if msg.get("output_truncated"):
            self._hit("output")
        if msg.get("ename") == "MemoryError":
            self._hit("memory")
        self.after_cell(msg)
        return msg

    def after_cell(self, reply: dict) -> None:
        """Backends may note limits seen during the cell (e.g. a cgroup's counters)."""

    def _hit(self, name):
        if name not in self.limit_hits:
            self.limit_hits.append(name)

    def _dead_reply(self) -> dict:
        return {
            "type": "result", "status": "error", "outputs": [], "not_run": True,
            "ename": "SandboxStopped", "evalue": self.explain(self.stopped or "died"), "traceback": [],
            "limit": self.stopped or "died",
        }

    def _stop(self, reason: str) -> dict:
        self._hit(reason)
        self.stopped = reason
        self.kill()
        reply = self._dead_reply()
        reply.pop("not_run")
        if reason in ("cell_timeout", "wall_time"):
            # the shape nbgrader's Execute gives a timed-out cell (error_on_timeout)
            reply["ename"] = "CellTimeoutError"
            reply["evalue"] = ""
            reply["traceback"] = ["CellTimeoutError: No reply from kernel before timeout", self.explain(reason)]
        return reply

    def _classify_exit(self) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            code = None
        reason = self.backend_exit_reason(code)
        if reason:
            return reason
        if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            return "cpu_time"
        return "died"

    def backend_exit_reason(self, code) -> str | None:
        return None

    def explain(self, reason: str) -> str:
        values = self.limits()
        values["memory_mb"] = self.memory // (1024 * 1024)
        return LIMIT_EXPLANATIONS.get(reason, reason).format(**values)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.kill()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None and self.stopped is None:
            self._send({"op": "exit"})
        self.kill()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr) if self.proc else ():
            try:
                stream.close()
            except Exception:
                pass
        if self.stopped is None:
            self.stopped = "closed"
        try:
            self.cleanup()
        except Exception:  # cleanup must never mask the grading result
            self.log.warning("sandbox %s cleanup failed", self.id, exc_info=True)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()


def make_private_dir(prefix: str = "learnhub-sbx-") -> str:
    return tempfile.mkdtemp(prefix=prefix)
