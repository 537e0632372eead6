"""One cgroup for a tree of processes, on cgroup v1 (a folder per controller) or v2 (one unified tree).

Used for learners' servers (``learnhub/spawner.py``) and meant as the one copy of this logic: the
grading sandbox (``graders/sandbox/bubblewrap.py``) writes the same v1 files of its own today.

What is limited, by which file:

=========  ===============================================  ==============================
limit      cgroup v1                                        cgroup v2
=========  ===============================================  ==============================
memory     ``memory/…/memory.limit_in_bytes`` (+ memsw,     ``memory.max``, ``memory.swap.max=0``
           swappiness 0)
processes  ``pids/…/pids.max``                              ``pids.max``
CPU        ``cpu/…/cpu.cfs_quota_us`` / ``cpu.cfs_period_us``  ``cpu.max`` (quota period)
=========  ===============================================  ==============================

Everything is best effort per controller: a controller that is not mounted or not writable (not root,
a v2 tree without delegation) is left out, and :attr:`Cgroup.applied` says which ones hold, so the
caller can warn. Counters (:meth:`Cgroup.oom_kills`, :meth:`Cgroup.pids_denied`) tell afterwards
which limit was met; :func:`read_memory` reads the memory counters of any one memory cgroup folder (the
single-user server reads its own, bound into its sandbox, for JupyterLab's out-of-memory message).
"""
from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def cgroup_version(root: str | Path = "/sys/fs/cgroup") -> int | None:
    """2 on a unified tree with controllers, 1 where v1 controllers are mounted, else None."""
    root = Path(root)
    if (root / "memory" / "memory.limit_in_bytes").exists() or (root / "pids" / "pids.max").exists() \
            or (root / "pids" / "cgroup.procs").exists():
        return 1
    if (root / "cgroup.controllers").exists():
        return 2
    return None


def _read_keyed(path: Path) -> dict[str, int]:
    """A ``key value`` per line file (memory.events, memory.oom_control, pids.events)."""
    values: dict[str, int] = {}
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                try:
                    values[parts[0]] = int(parts[1])
                except ValueError:
                    pass
    except OSError:
        pass
    return values


def _read_int(path: Path) -> int | None:
    """A one-number file; None when absent, unreadable or ``max`` (v2's "no limit")."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def memory_oom_kills(folder: Path, version: int) -> int:
    """What the kernel's OOM killer killed in one memory cgroup folder (v1: Linux >= 4.13)."""
    return _read_keyed(folder / ("memory.oom_control" if version == 1 else "memory.events")).get("oom_kill", 0)


def memory_limit_hits(folder: Path, version: int) -> int:
    """How often one memory cgroup folder's limit was reached (reclaim or OOM)."""
    if version == 1:
        return _read_int(folder / "memory.failcnt") or 0
    return _read_keyed(folder / "memory.events").get("max", 0)


def read_memory(folder: str | Path) -> dict | None:
    """The memory counters of one memory cgroup folder, v1 or v2, told apart by the folder's own files
    (so it also works on a folder bind-mounted elsewhere, as in a learner's sandbox, where the tree's
    layout is not visible): ``{"version", "limit", "usage", "oom_kills", "hits"}``, or None when the
    folder is not a memory cgroup. ``limit`` is None without one (v2 ``max``; v1's "unlimited" is a
    number near 2**63, also None); ``oom_kills`` is what the kernel's OOM killer killed in it; ``hits``
    how often the limit was reached (v1 ``memory.failcnt``, v2 ``max`` in ``memory.events``)."""
    folder = Path(folder)
    if (folder / "memory.events").exists():
        version, limit, usage = 2, _read_int(folder / "memory.max"), _read_int(folder / "memory.current")
    elif (folder / "memory.oom_control").exists() or (folder / "memory.limit_in_bytes").exists():
        version, limit, usage = 1, _read_int(folder / "memory.limit_in_bytes"), _read_int(folder / "memory.usage_in_bytes")
        if limit is not None and limit >= 2 ** 62:  # v1 without a limit: PAGE_COUNTER_MAX pages
            limit = None
    else:
        return None
    return {"version": version, "limit": limit, "usage": usage or 0,
            "oom_kills": memory_oom_kills(folder, version), "hits": memory_limit_hits(folder, version)}


class Cgroup:
    """``<root>/[<controller>/]<parent>/<name>``: created by :meth:`create`, removed by :meth:`remove`."""

    def __init__(self, name: str, parent: str = "learnhub", root: str | Path = "/sys/fs/cgroup"):
        self.name, self.parent, self.root = name, parent, Path(root)
        self.version = cgroup_version(self.root)
        #: controllers whose limits were written (``memory``, ``pids``, ``cpu``)
        self.applied: set[str] = set()
        #: why a controller was left out, for the caller's warning
        self.problems: list[str] = []

    # ----- paths -----
    def path(self, controller: str) -> Path:
        if self.version == 1:
            return self.root / controller / self.parent / self.name
        return self.root / self.parent / self.name

    def paths(self) -> list[Path]:
        """Every folder of this cgroup (one per controller on v1, one on v2)."""
        if self.version == 1:
            seen = []
            for controller in self.applied or CONTROLLERS:
                p = self.path(controller)
                if p not in seen:
                    seen.append(p)
            return seen
        return [self.path("memory")]

    # ----- setting up -----
    def _settings(self, memory: int | None, pids: int | None, cpu: float | None) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        if self.version == 1:
            if memory:
                # memsw (memory + swap) only exists with swap accounting; the limit applies either way.
                out["memory"] = {"memory.limit_in_bytes": str(memory), "memory.memsw.limit_in_bytes": str(memory),
                                 "memory.swappiness": "0"}
            if pids:
                out["pids"] = {"pids.max": str(pids)}
            if cpu:
                out["cpu"] = {"cpu.cfs_period_us": str(CPU_PERIOD_US),
                              "cpu.cfs_quota_us": str(max(1000, int(cpu * CPU_PERIOD_US)))}
        else:
            if memory:
                out["memory"] = {"memory.max": str(memory), "memory.swap.max": "0"}
            if pids:
                out["pids"] = {"pids.max": str(pids)}
            if cpu:
                out["cpu"] = {"cpu.max": f"{max(1000, int(cpu * CPU_PERIOD_US))} {CPU_PERIOD_US}"}
        return out

    def _enable_v2(self, controllers: set[str]) -> set[str]:
        """On v2 a controller must be enabled in every ancestor's ``cgroup.subtree_control``."""
        wanted = " ".join(f"+{c}" for c in sorted(controllers))
        available = set()
        for folder in (self.root, self.root / self.parent):
            folder.mkdir(exist_ok=True)
            try:
                (folder / "cgroup.subtree_control").write_text(wanted)
            except OSError as exc:
                # e.g. the root holds processes (no delegation in a container): try one by one
                for c in controllers:
                    try:
                        (folder / "cgroup.subtree_control").write_text(f"+{c}")
                    except OSError:
                        self.problems.append(f"cgroup v2: cannot enable {c} in {folder}: {exc}")
        try:
            available = {c.lstrip("+") for c in (self.root / self.parent / "cgroup.subtree_control").read_text().split()}
        except OSError:
            pass
        return available & controllers

    def create(self, memory: int | None = None, pids: int | None = None, cpu: float | None = None) -> set[str]:
        """Make the cgroup with these limits (bytes, processes, CPUs); returns the controllers that hold."""
        self.applied = set()
        if self.version is None:
            self.problems.append(f"no cgroup controllers under {self.root}")
            return self.applied
        settings = self._settings(memory, pids, cpu)
        if self.version == 2 and settings:
            try:
                enabled = self._enable_v2(set(settings))
            except OSError as exc:
                self.problems.append(f"cgroup v2 tree {self.root} not writable: {exc}")
                return self.applied
            settings = {k: v for k, v in settings.items() if k in enabled}
        for controller, files in settings.items():
            folder = self.path(controller)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.problems.append(f"{controller}: cannot create {folder}: {exc}")
                continue
            ok = True
            for key, value in files.items():
                try:
                    (folder / key).write_text(value)
                except OSError as exc:
                    # memsw/swap files are absent without swap accounting: not a failure of the limit
                    if "memsw" in key or "swap" in key or "swappiness" in key:
                        continue
                    ok = False
                    self.problems.append(f"{controller}: cannot write {key}: {exc}")
            if ok:
                self.applied.add(controller)
        return self.applied

    def add(self, pid: int) -> None:
        """Move ``pid`` in; what it forks afterwards is born inside."""
        for folder in self.paths():
            try:
                (folder / "cgroup.procs").write_text(str(pid))
            except OSError as exc:
                log.debug("cannot move %s into %s: %s", pid, folder, exc)

    def join_self(self) -> None:
        """For a ``preexec_fn``: the child joins before it execs, so nothing escapes."""
        for folder in self.paths():
            try:
                with open(folder / "cgroup.procs", "w") as f:
                    f.write(str(os.getpid()))
            except OSError:
                pass

    # ----- reading back -----
    def _file(self, controller: str, name: str) -> Path:
        return self.path(controller) / name

    def oom_kills(self) -> int:
        """Processes the kernel killed for this cgroup's memory limit."""
        if "memory" not in self.applied and not self._file("memory", "cgroup.procs").exists():
            return 0
        return memory_oom_kills(self.path("memory"), self.version)

    def memory_hits(self) -> int:
        """How often the memory limit was reached (reclaim or OOM)."""
        # one file: the grader asks after every cell of a sandbox
        return memory_limit_hits(self.path("memory"), self.version)

    def pids_denied(self) -> int:
        """Forks refused by the process limit."""
        return _read_keyed(self._file("pids", "pids.events")).get("max", 0)

    def memory_usage(self) -> int:
        return (read_memory(self.path("memory")) or {}).get("usage", 0)

    def procs(self) -> list[int]:
        pids: set[int] = set()
        for folder in self.paths():
            try:
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        return sorted(pids)

    # ----- tearing down -----
    def kill_all(self) -> None:
        for _ in range(20):
            pids = self.procs()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        self.kill_all()
        for folder in self.paths():
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.applied = set()
