"""This server's memory limit and how often the kernel's OOM killer acted on it, for JupyterLab.

When a kernel is killed by the memory limit, jupyter_server only sees a kernel that died and restarts
it; JupyterLab shows its generic "Kernel Restarting" dialog. The JupyterLab extension asks
``GET learnhub/api/limits`` when a kernel dies and, when the OOM-kill count went up since it last
looked, says that the memory limit did it and names the limit (docs/containment.md).

Where the counters are (first that applies):

* ``$LEARNHUB_MEMORY_CGROUP``: the server's own memory cgroup folder. learnhub's spawner binds it
  read-only into the sandbox (``/sys`` is not mounted there) and sets this variable;
* this process's memory cgroup from ``/proc/self/cgroup`` under ``/sys/fs/cgroup`` (an unsandboxed
  server, a container with its own cgroup namespace as DockerSpawner's and KubeSpawner's);
* none: no memory accounting, so nothing can tell a kernel killed by a limit from one that died of
  something else; the answer says so (``oom_kills`` null) and JupyterLab keeps its generic dialog.
  The spawner sets no memory rlimit (an address-space rlimit gives ``MemoryError`` in the kernel, it
  does not kill it), so there is no rlimit to fall back on.

The limit shown is the cgroup's own (what is enforced), else JupyterHub's ``MEM_LIMIT`` variable.
"""
from __future__ import annotations

import os
from pathlib import Path

from learnhub.cgroups import read_memory

CGROUP_ENV = "LEARNHUB_MEMORY_CGROUP"


def own_memory_cgroup(proc_cgroup: str | Path = "/proc/self/cgroup", root: str | Path = "/sys/fs/cgroup") -> Path | None:
    """This process's memory cgroup folder: the v1 ``memory`` controller's line, else v2's ``0::`` line."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    root = Path(root)
    unified = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if "memory" in controllers.split(","):
            return root / "memory" / path.lstrip("/")
        if parts[0] == "0" and controllers == "":
            unified = root / path.lstrip("/")
    return unified


def memory_cgroup(environ=None) -> Path | None:
    environ = os.environ if environ is None else environ
    if environ.get(CGROUP_ENV):
        return Path(environ[CGROUP_ENV])
    return own_memory_cgroup()


def memory_status(environ=None) -> dict:
    """``{"limit", "usage", "oom_kills", "accounting"}``: bytes, bytes, a count (null: cannot tell), and
    ``"cgroup v1"``/``"cgroup v2"``/null. Read afresh at every call (files of the kernel's, no cost)."""
    environ = os.environ if environ is None else environ
    folder = memory_cgroup(environ)
    counters = read_memory(folder) if folder is not None else None
    try:
        configured = int(environ.get("MEM_LIMIT", "")) or None
    except ValueError:
        configured = None
    if counters is None:
        return {"limit": configured, "usage": None, "oom_kills": None, "accounting": None}
    return {"limit": counters["limit"] or configured, "usage": counters["usage"],
            "oom_kills": counters["oom_kills"], "accounting": f"cgroup v{counters['version']}"}
