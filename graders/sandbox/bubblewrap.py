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

import os
import random
import shutil
import signal
import sys
from pathlib import Path

from traitlets import Integer, List, Tuple, Unicode

from .base import Sandbox, SandboxError

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
                "--perms", "1777", "--size", str(self.tmp_size), "--tmpfs", "/tmp"]
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
        if root:
            cmd += [
                "setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
            ]
        from .base import LEARNER_SOURCE, RUNNER_SOURCE
        import json

        cmd += [self.python, "-I", "-c", RUNNER_SOURCE, json.dumps(self.limits_payload()), LEARNER_SOURCE]
        return cmd

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
