"""Bubblewrap sandbox: the default on a single Linux machine and in tests.

What the notebook sees: a new mount namespace holding only read-only system directories
(``/usr``, the ``/lib*``/``/bin`` links, a few files of ``/etc``), the python prefix
read-only, a private size-capped tmpfs ``/tmp`` as its only writable place (and working
directory), its own ``/proc`` and a minimal ``/dev``. No network (``--unshare-net``: only
a loopback), its own pid/ipc/uts namespaces, a new session (no TIOCSTI into our
terminal), killed with its parent, and an empty environment.

Why ``setpriv`` rather than ``--unshare-user --uid 65534``: when bwrap runs as root, the
"nobody" of a user namespace is root outside it, which exempts it from RLIMIT_NPROC and
makes it the owner of every root-owned file it can see. bwrap therefore sets up the
namespaces as root and then ``setpriv`` drops to a real unprivileged uid with no
capabilities, an empty bounding set and no_new_privs. When not run as root, bwrap's own
unprivileged user namespace is used instead (``--unshare-user``).

Each sandbox gets its own uid from :attr:`BubblewrapSandbox.uid_range` so that
RLIMIT_NPROC (counted per uid) is per sandbox. Where cgroup v1 ``pids``/``memory`` are
writable (as root here), each sandbox also gets its own cgroup with ``pids.max`` and
``memory.limit_in_bytes``.
"""
from __future__ import annotations

import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from traitlets import Bool, Integer, List, Tuple, Unicode

from .base import Sandbox, SandboxError
from .starter import start_process

DEFAULT_ETC = [
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
    "/etc/alternatives", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group",
    "/etc/matplotlibrc", "/etc/fonts",
]


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


class BubblewrapSandbox(Sandbox):
    """Runs the runner under ``bwrap`` (Debian package ``bubblewrap``)."""

    bwrap = Unicode("", help="Path of bwrap; found on PATH when empty.").tag(config=True)
    system_dirs = List(
        Unicode(), ["/usr"], help="Directories bound read-only at the same path (besides the python prefix)."
    ).tag(config=True)
    etc_files = List(Unicode(), DEFAULT_ETC, help="Files/dirs of /etc bound read-only when they exist.").tag(config=True)
    extra_ro_binds = List(
        Unicode(), [], help="More host paths to bind read-only (e.g. a course's data sets). Never the data dir."
    ).tag(config=True)
    uid_range = Tuple(
        Integer(), Integer(), default_value=(200000, 260000),
        help="Unprivileged uids to run notebooks as (one chosen per sandbox) when bwrap runs as root. "
        "They need no passwd entry.",
    ).tag(config=True)
    cgroup_root = Unicode("/sys/fs/cgroup", help="Where the cgroup v1 controllers are mounted.").tag(config=True)
    cgroup_name = Unicode("learnhub-grader", help="Parent cgroup of the per-sandbox cgroups.").tag(config=True)
    zygote = Bool(
        True,
        help="""Fork each sandbox from a warm parent (zygote.py): one bubblewrap sandbox per grading
        process whose python has imported IPython, from which each sandbox's runner is forked into
        namespaces, a /tmp and a uid of its own, instead of a new bwrap + python + IPython per
        notebook (about 0.1 CPU-s each). Used as root, when the python prefix is not under /tmp;
        otherwise (or False) every sandbox is a bwrap of its own.""",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.uid = random.randrange(*self.uid_range)
        self._cgroups: list = []  # learnhub.cgroups.Cgroup

    def _prefixes(self) -> list[str]:
        prefixes = []
        for p in {sys.base_prefix, sys.prefix, os.path.dirname(os.path.dirname(os.path.realpath(self.python)))}:
            if not any(p == s or p.startswith(s.rstrip("/") + "/") for s in self.system_dirs):
                prefixes.append(p)
        return sorted(set(prefixes))

    def build_command(self) -> list[str]:
        cmd = self._namespace_args(self.tmp_size)
        if os.geteuid() == 0:
            cmd += [
                "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
            ]
        from .base import LEARNER_SOURCE, RUNNER_SOURCE
        import json

        cmd += [self.python, "-I", "-c", RUNNER_SOURCE, json.dumps(self.limits_payload()), LEARNER_SOURCE]
        return cmd

    def _namespace_args(self, tmp_size: int) -> list[str]:
        """bwrap and its options, up to the command it runs."""
        exe = self.bwrap or bwrap_path()
        if not exe:
            raise SandboxError("bubblewrap (bwrap) is not installed")
        root = os.geteuid() == 0
        cmd = [
            exe,
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--clearenv",
        ]
        if not root:
            cmd += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
        for d in self.system_dirs:
            cmd += ["--ro-bind", d, d]
        for link in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / link
            if host.is_symlink():
                cmd += ["--symlink", os.readlink(host), f"/{link}"]
            elif host.is_dir():
                cmd += ["--ro-bind", str(host), f"/{link}"]
        for f in self.etc_files:
            if os.path.exists(f):
                cmd += ["--ro-bind", f, f]
        # The private /tmp comes before the prefix binds: a Python installed under /tmp (a
        # virtual environment in a checkout there) must stay visible on top of it.
        cmd += ["--proc", "/proc", "--dev", "/dev",
                "--perms", "1777", "--size", str(tmp_size), "--tmpfs", "/tmp"]
        for prefix in self._prefixes():
            # bwrap creates missing parents with the host's modes (e.g. /root 0700), which an
            # unprivileged uid cannot traverse; create them world-traversable instead.
            parents = list(reversed(Path(prefix).parents))[1:]
            for parent in parents:
                if str(parent) != "/tmp":
                    cmd += ["--perms", "0755", "--dir", str(parent)]
            cmd += ["--ro-bind", prefix, prefix]
        for p in self.extra_ro_binds:
            cmd += ["--ro-bind", p, p]
        cmd += [
            "--chdir", "/tmp",
            "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
            "--setenv", "HOME", "/tmp",
            "--setenv", "LANG", "C.UTF-8",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--setenv", "OPENBLAS_NUM_THREADS", "1",
            "--setenv", "OMP_NUM_THREADS", "1",
            "--setenv", "MPLCONFIGDIR", "/tmp/.mpl",
            "--setenv", "IPYTHONDIR", "/tmp/.ipython",
        ]
        return cmd

    # ----- the warm parent (zygote.py) -----
    def zygote_usable(self) -> bool:
        """The zygote needs root (it makes each sandbox's namespaces and drops to its uid itself) and a
        python prefix outside /tmp (each sandbox's new /tmp would hide it)."""
        if not self.zygote or os.geteuid() != 0:
            return False
        return not any(p == "/tmp" or p.startswith("/tmp/") for p in self._prefixes())

    def zygote_command(self, control_fd: int) -> list[str]:
        from .base import LEARNER_SOURCE, RUNNER_SOURCE, ZYGOTE_SOURCE

        # Of root's capabilities the zygote keeps what making a sandbox inside its own needs; it gives
        # them up in every sandbox it makes (zygote.py).
        cmd = self._namespace_args(1 << 20) + ["--cap-drop", "ALL"]
        for cap in ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            cmd += ["--cap-add", cap]
        capture = (Path(__file__).parent / "capture.py").read_text()
        return cmd + [self.python, "-I", "-c", ZYGOTE_SOURCE, str(control_fd), RUNNER_SOURCE, LEARNER_SOURCE,
                      capture]

    def launch(self):
        if not self.zygote_usable():
            return super().launch()
        try:
            return Zygote.for_sandbox(self).spawn(self)
        except SandboxError:
            raise
        except OSError as exc:
            raise SandboxError(f"the sandbox's warm parent could not start it: {exc}") from exc

    # ----- cgroups (best effort: the rlimits hold even without them) -----
    # The cgroup files are learnhub/cgroups.py's (v1 and v2), shared with learners' servers.
    def post_start(self) -> None:
        from learnhub.cgroups import Cgroup

        # RLIMIT_AS (per process) fires first as a clean MemoryError; the cgroup limit,
        # with headroom, caps the sandbox as a whole (several processes, C allocations)
        cg = Cgroup(self.id, self.cgroup_name, self.cgroup_root)
        if cg.create(memory=int(self.memory * 1.25) + (64 << 20), pids=self.max_processes):
            # The runner is waiting for its first message, so this tree is complete:
            # everything it forks later is born inside the cgroup.
            for pid in self.runner_pids():
                cg.add(pid)
            self._cgroups = [cg]
        else:
            self.log.debug("cgroups not usable: %s", "; ".join(cg.problems))
            self._cgroups = []

    def backend_exit_reason(self, code) -> str | None:
        if self.memory_failed():
            return "memory"
        if self.pids_limited() and code not in (128 + signal.SIGXCPU,):
            return "processes"
        return None

    def memory_failed(self) -> bool:
        return any(cg.memory_hits() > 0 for cg in self._cgroups if "memory" in cg.applied)

    def pids_limited(self) -> bool:
        return any(cg.pids_denied() > 0 for cg in self._cgroups if "pids" in cg.applied)

    def after_cell(self, reply: dict) -> None:
        if self.pids_limited():
            self._hit("processes")
        if self.memory_failed():
            self._hit("memory")

    def cleanup(self) -> None:
        for cg in self._cgroups:
            cg.remove()
        self._cgroups = []


# --------------------------------------------------------------------------- the zygote, grader side


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(p) for p in fh.read().split())
    except OSError:
        pass
    return out


def _available(stream) -> str:
    """What a pipe holds now, without waiting for its writer."""
    try:
        os.set_blocking(stream.fileno(), False)
        data = stream.read1(4096) or b""
    except (OSError, ValueError, TypeError):
        data = b""
    return data.decode("utf-8", "replace").strip()[-2000:]


def _nspids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("NSpid:"):
                    return [int(p) for p in line.split()[1:]]
    except (OSError, ValueError):
        pass
    return []


class ZygoteProcess:
    """One sandbox forked by the zygote, as the grader sees it: what ``Sandbox`` uses of a Popen.

    ``pid`` is the host pid of the sandbox's pid 1 (B in zygote.py): its process tree is the sandbox
    (cgroups, interrupts), and killing it ends every process in the sandbox's pid namespace."""

    def __init__(self, zygote: "Zygote", ident: int, stdin, stdout, stderr):
        self.zygote, self.ident = zygote, ident
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.pid: int | None = None
        self.returncode: int | None = None
        self._done = threading.Event()
        self._reply = threading.Event()
        self._error: str | None = None
        self._ns_pid: int | None = None

    # called by the zygote's reader thread
    def _spawned(self, ns_pid: int) -> None:
        self._ns_pid = ns_pid
        self._reply.set()

    def _failed(self, error: str) -> None:
        self._error = error
        self._reply.set()

    def _exited(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        self._reply.set()
        self._done.set()

    def _resolve(self, timeout: float) -> None:
        """The host pid of B, the child of A (whose pid the zygote gave in its namespace)."""
        deadline = time.monotonic() + timeout
        if not self._reply.wait(timeout):
            raise SandboxError("the sandbox's warm parent did not answer")
        if self._error:
            raise SandboxError(f"the sandbox's warm parent could not start it: {self._error}")
        while time.monotonic() < deadline and self.returncode is None:
            zygote_pid = self.zygote.host_pid()
            a = next((p for p in _children(zygote_pid) if _nspids(p)[1:2] == [self._ns_pid]), None) \
                if zygote_pid else None
            b = _children(a) if a else []
            if b:
                self.pid = b[0]
                return
            time.sleep(0.001)
        raise SandboxError("the sandbox forked by the warm parent ended before it started"
                           if self.returncode is not None else "the sandbox's process could not be found")

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired("sandbox", timeout)
        return self.returncode

    def kill(self) -> None:
        if self.pid and self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)


class Zygote:
    """The grader's side of one warm parent: a bwrap process running zygote.py, its control socket
    (JSON messages, the pipes of each sandbox passed as descriptors) and a thread reading replies."""

    _lock = threading.Lock()
    _zygotes: dict[tuple, "Zygote"] = {}

    @classmethod
    def for_sandbox(cls, sandbox: BubblewrapSandbox) -> "Zygote":
        """The running zygote for this sandbox's view of the system (binds, python), started if needed."""
        key = (tuple(sandbox._namespace_args(0)), sandbox.python)
        with cls._lock:
            zygote = cls._zygotes.get(key)
            if zygote is None or not zygote.alive():
                if zygote is not None:
                    zygote.close()
                zygote = cls._zygotes[key] = cls(sandbox)
            return zygote

    @classmethod
    def close_all(cls) -> None:
        with cls._lock:
            zygotes, cls._zygotes = list(cls._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()

    def __init__(self, sandbox: BubblewrapSandbox):
        self.log = sandbox.log
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._send_lock = threading.Lock()
        self._procs: dict[int, ZygoteProcess] = {}
        self._next_id = 0
        self._ready = threading.Event()
        self._ns_pid: int | None = None
        self._host_pid: int | None = None
        try:
            self.proc = start_process(
                subprocess.Popen, sandbox.zygote_command(theirs.fileno()), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, pass_fds=(theirs.fileno(),), start_new_session=True)
        except OSError as exc:
            self._sock.close()
            raise SandboxError(f"cannot start the sandboxes' warm parent: {exc}") from exc
        finally:
            theirs.close()
        self._stderr = bytearray()
        threading.Thread(target=self._read, daemon=True, name="sandbox-zygote").start()
        threading.Thread(target=self._read_stderr, daemon=True, name="sandbox-zygote-err").start()
        if not self._ready.wait(sandbox.startup_timeout):
            err = self._stderr.decode("utf-8", "replace")[-2000:]
            self.close()
            raise SandboxError(f"the sandboxes' warm parent did not start: {err}")

    def alive(self) -> bool:
        return self.proc.poll() is None and self._ready.is_set() and self._sock.fileno() >= 0

    def host_pid(self) -> int | None:
        """The zygote's pid on the host (bwrap runs it as a child of its own pid 1)."""
        if self._host_pid is None:
            todo = [self.proc.pid]
            while todo and self._host_pid is None:
                pid = todo.pop(0)
                ns = _nspids(pid)
                if len(ns) == 2 and ns[1] == self._ns_pid:
                    self._host_pid = pid
                todo.extend(_children(pid))
        return self._host_pid

    def _read_stderr(self) -> None:
        try:
            while True:
                chunk = self.proc.stderr.read1(65536)
                if not chunk:
                    break
                self._stderr = (self._stderr + chunk)[-65536:]
        except (OSError, ValueError):
            pass

    def _read(self) -> None:
        try:
            while True:
                data = self._sock.recv(1 << 16)
                if not data:
                    break
                msg = json.loads(data)
                kind = msg.get("type")
                if kind == "ready":
                    self._ns_pid = int(msg["pid"])
                    self._ready.set()
                    continue
                with self._send_lock:
                    proc = self._procs.get(msg.get("id"))
                    if kind == "exited":
                        self._procs.pop(msg.get("id"), None)
                if proc is None:
                    continue
                if kind == "spawned":
                    proc._spawned(int(msg["pid"]))
                elif kind == "exited":
                    proc._exited(int(msg["code"]))
                elif kind == "error":
                    proc._failed(str(msg.get("error")))
        except (OSError, ValueError):
            pass
        # The zygote is gone, and with it (PDEATHSIG) every sandbox it made.
        with self._send_lock:
            procs, self._procs = list(self._procs.values()), {}
        for proc in procs:
            proc._failed("the warm parent ended")
            proc._exited(128 + signal.SIGKILL)

    def spawn(self, sandbox: BubblewrapSandbox) -> ZygoteProcess:
        import json as _json

        pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr of the sandbox
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
        proc = ZygoteProcess(self, 0, os.fdopen(pipes[0][1], "wb"), os.fdopen(pipes[1][0], "rb"),
                             os.fdopen(pipes[2][0], "rb"))
        request = {"op": "spawn", "uid": sandbox.uid, "tmp_size": int(sandbox.tmp_size),
                   "limits": sandbox.limits_payload()}
        try:
            with self._send_lock:
                self._next_id += 1
                proc.ident = request["id"] = self._next_id
                self._procs[proc.ident] = proc
                socket.send_fds(self._sock, [_json.dumps(request).encode()], theirs)
        except OSError as exc:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()
            raise SandboxError(f"the sandboxes' warm parent is gone: {exc}") from exc
        finally:
            for fd in theirs:
                os.close(fd)
        try:
            proc._resolve(sandbox.startup_timeout)
        except SandboxError as exc:
            said = _available(proc.stderr)  # e.g. "learnhub zygote: ..." from A or B
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                stream.close()
            if said:
                raise SandboxError(f"{exc}: {said}") from None
            raise
        return proc

    def close(self) -> None:
        try:
            self._sock.close()  # the zygote ends when its control socket does
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait(timeout=5)


atexit.register(Zygote.close_all)
