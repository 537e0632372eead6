"""The embedded default's spawner: each learner's server as a local process in a bubblewrap sandbox.

JupyterHub's ``LocalProcessSpawner`` needs a Unix account per user and
``SimpleLocalProcessSpawner`` runs every server as the hub's own user (root in
CI) with the hub's files in reach. This spawner keeps the simplicity of a
local process but starts ``jupyterhub-singleuser`` inside bubblewrap:

* the system and the Python installation are mounted read-only; the only
  writable place is the user's own home folder (``home_dir_template``);
* the data dir, with the hub's and learnhub's databases, cookie secret,
  tokens and other users' homes, is not mounted at all;
* when the hub runs as root the server runs as a uid of its own,
  ``base_uid + hub user id``, which owns nothing else on the machine.

Limits and the network fence (``docs/containment.md``):

* memory, CPU share and processes in a cgroup of its own (``learnhub/cgroups.py``, v1 or v2), from
  JupyterHub's own ``mem_limit``/``cpu_limit`` and ``pids_limit``; per user group with JupyterHub's
  ``group_overrides`` (e.g. instructors get more);
* the home folder on a size-capped ext4 image (``disk_limit``), mounted over the home while the
  server runs;
* a network namespace of its own (``learnhub/fence.py``): the server reaches the hub's and the
  proxy's ports and nothing else on the machine; the proxy reaches it on the namespace's address.

Each of these needs root; without it the spawner warns loudly at every start (or refuses, with
``require_limits``/``network_fence = "on"``).
"""
from __future__ import annotations

import asyncio
import os
import resource
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.traitlets import ByteSpecification
from traitlets import Bool, Enum, Integer, List, Unicode, default

from .cgroups import Cgroup
from .fence import Fence, FenceError, fence_possible

#: where the server's own memory cgroup folder is bound (read-only) in its sandbox, which has no /sys:
#: the server extension reads the OOM-kill counter there for JupyterLab's message (docs/containment.md)
SANDBOX_MEMORY_CGROUP = "/run/learnhub/memory-cgroup"


def _system_ro_paths() -> list[str]:
    candidates = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"]
    return [path for path in candidates if os.path.exists(path)]


def _python_ro_paths() -> list[str]:
    """Folders this Python and learnhub's code are imported from (editable installs included)."""
    import learnhub

    paths = {sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix)}
    package_root = Path(learnhub.__file__).resolve().parent
    paths.add(str(package_root))
    # In an editable install the sibling namespace folders live beside learnhub/.
    for sibling in ("extensions", "graders", "recommender"):
        candidate = package_root.parent / sibling
        if (candidate / "__init__.py").exists():
            paths.add(str(candidate))
    return sorted(paths)


class SandboxedLocalSpawner(LocalProcessSpawner):
    """Start each user's server as a local process inside a bubblewrap sandbox."""

    bwrap_path = Unicode(
        help="The bubblewrap executable (Debian package `bubblewrap`)."
    ).tag(config=True)

    @default("bwrap_path")
    def _default_bwrap(self):
        return shutil.which("bwrap") or ""

    require_sandbox = Bool(
        True,
        help="""Refuse to start a server when bubblewrap is missing. Set False only on a
        single-user development machine: the server then runs unsandboxed as the hub's user.""",
    ).tag(config=True)

    home_dir_template = Unicode(
        help="""The user's home folder on the host, bound read-write into the sandbox.
        ``{username}`` is replaced. Default: ``<data dir>/users/{username}``."""
    ).tag(config=True)

    @default("home_dir_template")
    def _default_home_template(self):
        data_dir = os.environ.get("LEARNHUB_DATA_DIR", os.getcwd())
        return str(Path(data_dir, "users", "{username}"))

    base_uid = Integer(
        200000,
        help="""When the hub runs as root, each server runs as uid/gid ``base_uid + user id``
        (no account needed), so that it owns nothing but its home folder.""",
    ).tag(config=True)

    extra_ro_binds = List(
        Unicode(),
        help="More host paths to mount read-only in every sandbox (e.g. a shared dataset folder).",
    ).tag(config=True)

    # ----- limits (docs/containment.md) -----
    @default("mem_limit")
    def _default_mem_limit(self):
        return 2 * 1024 ** 3

    @default("cpu_limit")
    def _default_cpu_limit(self):
        return 1.0

    pids_limit = Integer(
        512,
        help="""Processes and threads the server, its kernels and terminals may have together (pids
        cgroup; RLIMIT_NPROC of the server's own uid where the pids cgroup is not available).
        A fork bomb stops there. 0: no limit. Per group: ``group_overrides``.""",
    ).tag(config=True)

    disk_limit = ByteSpecification(
        2 * 1024 ** 3,
        help="""Size of the learner's home folder: an ext4 image file of this size (sparse: it takes only
        what is used) at ``disk_image_template``, loop-mounted over the home while the server runs; a
        disk filler meets "No space left on device" in its own home only. Growing it takes effect at
        the next start; shrinking is not done. Needs root and ``mkfs.ext4``. 0 or None: the home is a
        plain folder with no cap. Accepts "512M", "2G". Per group: ``group_overrides``.""",
    ).tag(config=True)

    disk_image_template = Unicode(
        help="""Where the home image of ``disk_limit`` lives. ``{username}`` is replaced. Default:
        ``<data dir>/users/.images/{username}.ext4`` (beside the homes: remove it with the home)."""
    ).tag(config=True)

    @default("disk_image_template")
    def _default_image_template(self):
        return str(Path(self.home_dir_template).parent / ".images" / "{username}.ext4")

    tmp_size = ByteSpecification(
        256 * 1024 ** 2,
        help="Size of the server's private /tmp (a tmpfs, counted in its memory cgroup).",
    ).tag(config=True)

    require_limits = Bool(
        False,
        help="""Refuse to start a server whose memory, process or disk limit cannot be enforced (not root,
        no writable cgroup controller, no mkfs.ext4). Default: start it with a loud warning in the log.""",
    ).tag(config=True)

    cgroup_root = Unicode("/sys/fs/cgroup", help="Where the cgroup controllers (v1) or the unified tree (v2) are mounted.").tag(config=True)
    cgroup_parent = Unicode("learnhub-servers", help="Parent cgroup of the learners' servers' cgroups.").tag(config=True)

    # ----- network fence -----
    network_fence = Enum(
        ["auto", "on", "off"], "auto",
        help="""A network namespace per server that reaches only the hub's and the proxy's ports
        (PostgreSQL, Redis, the services' ports, the proxy's API and other learners' servers and kernels
        are out of reach). ``auto``: when the hub runs as root with iproute2 and nftables, else the server
        shares the host's network and a loud warning is logged at each start; ``on``: refuse to start
        without it; ``off``: share the host's network (a single-user development machine only).""",
    ).tag(config=True)

    fence_subnet = Unicode(
        "10.213.0.0/16",
        help="IPv4 range for the servers' veth pairs (a /30 per running server); must not be used on the machine's networks.",
    ).tag(config=True)

    allow_internet = Bool(
        False,
        help="""Let fenced servers open connections to the internet (masqueraded through the host). The
        machine itself and other servers stay out of reach. DNS needs a resolver reachable from the
        namespace (the host's /etc/resolv.conf is used). Per group: ``group_overrides``.""",
    ).tag(config=True)

    fence_extra_ports = List(
        Integer(),
        help="More TCP ports on the host's 127.0.0.1 that fenced servers may reach, at the fence's host address.",
    ).tag(config=True)

    @default("cmd")
    def _default_cmd(self):
        # An absolute interpreter: the sandbox has no PATH shims, and the server must
        # run with the same Python (and learnhub extension) as the hub.
        return [sys.executable, "-m", "jupyterhub.singleuser"]

    @default("notebook_dir")
    def _default_notebook_dir(self):
        return f"/home/{self.user.name}"

    @property
    def home_dir(self) -> str:
        return self.home_dir_template.format(username=self.user.name)

    @property
    def sandbox_home(self) -> str:
        return f"/home/{self.user.name}"

    @property
    def run_as_uid(self) -> int | None:
        return self.base_uid + self.user.id if os.geteuid() == 0 else None

    # ----- state kept across hub restarts -----
    _cgroup: Cgroup | None = None
    _fence: Fence | None = None
    _mounted: str | None = None
    _cgroup_name: str = ""
    _fence_slot: int | None = None
    #: what the last stop found (e.g. "memory"): read by the hub's log and the spawn page message
    limit_hit: str | None = None

    def get_state(self):
        state = super().get_state()
        if self._cgroup_name:
            state["cgroup"] = self._cgroup_name
        if self._fence is not None:
            state["fence"] = {**self._fence.state(), "port": self.port}
        if self._mounted:
            state["mounted_home"] = self._mounted
        if self.limit_hit:
            # Kept past the stop (the hub makes a new Spawner for the next start): the spawn page says it.
            state["limit_hit"] = self.limit_hit
        return state

    def load_state(self, state):
        super().load_state(state)
        self._cgroup_name = state.get("cgroup", "")
        if self._cgroup_name:
            self._cgroup = Cgroup(self._cgroup_name, self.cgroup_parent, self.cgroup_root)
            self._cgroup.applied = {"memory", "pids", "cpu"}
        fence = state.get("fence")
        if fence:
            self._fence = Fence(fence["slot"], self.fence_subnet, fence.get("ports", []), fence.get("internet", False))
            self.ip = fence.get("ns_ip", "")
        self._mounted = state.get("mounted_home")
        self.limit_hit = state.get("limit_hit")

    def clear_state(self):
        # LocalProcessSpawner.poll clears the state as soon as it finds the process gone (a stop, or
        # the server killed by its memory limit): the server's cgroup, fence and mount go with it.
        super().clear_state()
        self._teardown()

    def _warn(self, what: str) -> None:
        message = f"{self.user.name}'s server starts WITHOUT {what} (see docs/containment.md)"
        self.log.warning("!" * 20 + " " + message + " " + "!" * 20)

    # ----- the home -----
    @property
    def disk_image(self) -> str:
        return self.disk_image_template.format(username=self.user.name)

    def _prepare_home(self) -> None:
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)
        uid = self.run_as_uid
        if self.disk_limit:
            self._mount_home(home, uid)
        if uid is not None:
            os.chown(home, uid, uid)

    def _mount_home(self, home: Path, uid: int | None) -> None:
        why = None
        if os.geteuid() != 0:
            why = "the hub does not run as root"
        elif not shutil.which("mkfs.ext4"):
            why = "mkfs.ext4 is missing (Debian package e2fsprogs)"
        if why:
            if self.require_limits:
                raise RuntimeError(f"disk_limit cannot be enforced: {why}")
            self._warn(f"a disk limit ({why})")
            return
        if os.path.ismount(home):
            subprocess.run(["umount", "-l", str(home)], capture_output=True)
        image = Path(self.disk_image)
        image.parent.mkdir(parents=True, exist_ok=True)
        image.parent.chmod(0o700)
        size = int(self.disk_limit)
        if not image.exists():
            used = sum(entry.stat(follow_symlinks=False).st_size for entry in home.rglob("*"))
            if used > size * 0.9:
                # An existing home larger than the new cap: its files are not squeezed into an image
                # they would not fit in; the admin raises disk_limit (or the person cleans up) first.
                message = f"a disk limit: its home already holds {used} bytes, more than 90% of disk_limit"
                if self.require_limits:
                    raise RuntimeError(f"{self.user.name}'s server cannot start with {message}")
                self._warn(message)
                return
            with open(image, "wb") as f:
                f.truncate(size)
            owner = f"-E root_owner={uid}:{uid}" if uid is not None else ""
            self._check(["mkfs.ext4", "-q", "-F", "-m", "0", *owner.split(), str(image)], "mkfs.ext4")
        elif image.stat().st_size < size:
            # A larger limit than at the last start (e.g. moved to a group that has more).
            with open(image, "r+b") as f:
                f.truncate(size)
            subprocess.run(["e2fsck", "-f", "-p", str(image)], capture_output=True)
            self._check(["resize2fs", str(image)], "resize2fs")
        self._check(["mount", "-o", "loop,nosuid,nodev", str(image), str(home)], "mount of the home image")
        self._mounted = str(home)
        # Files written into the folder under the mount point while the server was stopped (the
        # services' releases, a first start with an existing home) are not hidden: moved into the image.
        underneath = self._underlying_entries(home)
        if underneath:
            self.log.info("Moving %d entries of %s into its image", len(underneath), home)

    def _underlying_entries(self, home: Path) -> list[str]:
        """Move what lies under the mount point into the mounted image (seen through a bind of the parent)."""
        scratch = Path(self.disk_image).parent / f".under-{self.user.name}"
        scratch.mkdir(exist_ok=True)
        moved: list[str] = []
        try:
            self._check(["mount", "--bind", str(home.parent), str(scratch)], "bind of the homes folder")
            try:
                below = scratch / home.name
                for entry in list(below.iterdir()):
                    target = home / entry.name
                    if target.exists():
                        continue
                    shutil.move(str(entry), str(target))
                    moved.append(entry.name)
            finally:
                subprocess.run(["umount", str(scratch)], capture_output=True)
        finally:
            try:
                scratch.rmdir()
            except OSError:
                pass
        if moved and self.run_as_uid is not None:
            uid = self.run_as_uid
            for name in moved:
                for root, dirs, files in os.walk(home / name):
                    for n in [root, *(os.path.join(root, x) for x in dirs + files)]:
                        os.lchown(n, uid, uid)
                os.lchown(home / name, uid, uid)
        return moved

    def _check(self, cmd: list[str], what: str) -> None:
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{what} failed for {self.user.name}'s home: {done.stderr.strip()}")

    def _unmount_home(self) -> None:
        if self._mounted:
            subprocess.run(["umount", "-l", self._mounted], capture_output=True)
            self._mounted = None

    # ----- cgroup -----
    def _make_cgroup(self) -> None:
        self._cgroup_name = f"{self.user.name}-{secrets.token_hex(3)}"
        cgroup = Cgroup(self._cgroup_name, self.cgroup_parent, self.cgroup_root)
        wanted = {"memory": self.mem_limit, "pids": self.pids_limit, "cpu": self.cpu_limit}
        applied = cgroup.create(memory=int(self.mem_limit) if self.mem_limit else None,
                                pids=self.pids_limit or None, cpu=self.cpu_limit or None) if os.geteuid() == 0 else set()
        missing = [name for name, value in wanted.items() if value and name not in applied]
        self._cgroup = cgroup
        if missing:
            detail = "; ".join(cgroup.problems) or "the hub does not run as root"
            if self.require_limits and set(missing) & {"memory", "pids"}:
                cgroup.remove()
                raise RuntimeError(f"limits {', '.join(missing)} cannot be enforced: {detail}")
            self._warn(f"its {', '.join(missing)} limit ({detail})")

    def make_preexec_fn(self, name):
        # Privileges are dropped inside the sandbox (see sandbox_command), not before bwrap:
        # bwrap needs root to mount what an unprivileged uid could not even traverse.
        cgroup = self._cgroup
        nproc = self.pids_limit if (self.pids_limit and self.run_as_uid is not None
                                    and (cgroup is None or "pids" not in cgroup.applied)) else 0

        def preexec():
            # In the child before exec: the whole tree is born in the cgroup, nothing escapes it.
            if cgroup is not None:
                cgroup.join_self()
            if nproc:
                # Counted per uid (the server's own): the fallback when the pids cgroup is missing.
                resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

        return preexec

    # ----- network fence -----
    def _host_ports(self) -> list[int]:
        ports = list(self.fence_extra_ports)
        env_urls = [self.hub.api_url, self.environment.get("LEARNHUB_PUBLIC_URL", "") if isinstance(
            self.environment, dict) else ""]
        for url in env_urls:
            if url:
                parsed = urlparse(url)
                if parsed.port or parsed.scheme:
                    ports.append(parsed.port or (443 if parsed.scheme == "https" else 80))
        return ports

    def _make_fence(self) -> None:
        if self.network_fence == "off":
            return
        why = fence_possible()
        if why is None:
            try:
                self._fence = Fence.create(self.fence_subnet, self._host_ports(), self.allow_internet)
                self.ip = self._fence.ns_ip
                return
            except FenceError as exc:
                why = str(exc)
        if self.network_fence == "on":
            raise RuntimeError(f"the network fence cannot be put up: {why}")
        self._warn(f"a network fence: it shares the host's network ({why})")

    def _memory_cgroup_folder(self) -> str | None:
        """The server's memory cgroup on the host, when its memory limit holds."""
        if self._cgroup is None or "memory" not in self._cgroup.applied:
            return None
        return str(self._cgroup.path("memory"))

    def get_env(self):
        env = super().get_env()
        # (JupyterHub's own get_env already passes the limit as MEM_LIMIT.)
        folder = self._memory_cgroup_folder()
        if folder:
            # The server extension's GET learnhub/api/limits reads its counters here (extensions/singleuser/limits.py).
            env["LEARNHUB_MEMORY_CGROUP"] = SANDBOX_MEMORY_CGROUP if self.bwrap_path else folder
        return env

    def _teardown(self) -> None:
        if self._cgroup is None and self._fence is None and not self._mounted:
            return
        self.log.info("Releasing the limits and fence of %s's server (cgroup %s, fence %s)", self.user.name,
                      self._cgroup_name or "-", self._fence.netns if self._fence else "-")
        if self._cgroup is not None:
            cgroup = self._cgroup
            kills = cgroup.oom_kills()
            if kills and not self._stopping:
                # The server itself is gone, not stopped by the hub: the memory limit took it.
                self.limit_hit = "memory"
                self.log.warning("%s's server was killed by its memory limit (%s bytes): %d process(es) killed",
                                 self.user.name, self.mem_limit, kills)
            elif kills:
                self.log.info("%s's server met its memory limit %d time(s) (kernels killed and restarted)",
                              self.user.name, kills)
            cgroup.remove()
        if self._fence is not None:
            self._fence.remove()
        self._unmount_home()
        self._cgroup, self._fence, self._cgroup_name, self._mounted = None, None, "", None

    def sandbox_command(self) -> list[str]:
        """The bwrap prefix: what the server can see and do."""
        prefix = self._fence.command_prefix() if self._fence is not None else []
        tmp_size = ["--size", str(int(self.tmp_size))] if self.tmp_size else []
        cmd = [*prefix, self.bwrap_path, "--die-with-parent", "--unshare-pid", "--unshare-ipc",
               "--unshare-uts", "--new-session", "--proc", "/proc", "--dev", "/dev",
               "--perms", "1777", *tmp_size, "--tmpfs", "/tmp", "--tmpfs", "/home", "--tmpfs", "/run"]
        # Already mount points of their own (tmpfs): never re-created over.
        created: set[str] = {"/", "/tmp", "/home", "/run"}
        for path in _system_ro_paths() + _python_ro_paths() + list(self.extra_ro_binds):
            # bwrap creates missing parents with mode 0700 (e.g. /root for a pyenv Python),
            # which an unprivileged server could not traverse.
            for parent in reversed(Path(path).parents):
                if str(parent) not in created:
                    created.add(str(parent))
                    cmd += ["--perms", "0755", "--dir", str(parent)]
            cmd += ["--ro-bind", path, path]
        memory = self._memory_cgroup_folder()
        if memory:
            # Read-only, and only this server's own folder: the server can read its limit and counters,
            # never another server's, and cannot change them (cgroup files are root's anyway).
            cmd += ["--perms", "0755", "--dir", str(Path(SANDBOX_MEMORY_CGROUP).parent),
                    "--ro-bind", memory, SANDBOX_MEMORY_CGROUP]
        uid = self.run_as_uid
        # As root, bwrap itself (capabilities dropped) may not enter a home owned by the
        # server's uid; the server is told its root dir instead (see _default_notebook_dir).
        workdir = "/" if uid is not None else self.sandbox_home
        cmd += ["--bind", self.home_dir, self.sandbox_home, "--chdir", workdir]
        if uid is not None:
            # bwrap mounts as root, then setpriv drops to the server's own uid; with no
            # capabilities left but these two, nothing in the sandbox can regain root.
            cmd += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                    "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--",
                    # Start in the home (nbgrader takes its course directory from the working
                    # directory), which only the dropped uid may enter.
                    "/bin/sh", "-c", 'cd "$HOME" && exec "$0" "$@"']
        return cmd

    def user_env(self, env):
        env["USER"] = self.user.name
        env["HOME"] = self.sandbox_home
        env["SHELL"] = "/bin/bash"
        # The server's own Python environment first: what it runs as commands (nbgrader runs
        # `alembic` for its gradebook, a terminal runs `nbgrader`) is then the same installation,
        # whether or not the hub was started from an activated virtual environment.
        python_bin = os.path.dirname(sys.executable)
        path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != python_bin]
        env["PATH"] = os.pathsep.join([python_bin, *path])
        return env

    def move_certs(self, paths):
        return paths

    async def progress(self):
        # Shown on the hub's spawn page while the server starts: why the last one ended.
        if self._previous_limit_hit == "memory":
            yield {"progress": 5, "message": f"Your last server was stopped because it used more than its "
                                              f"memory limit ({int(self.mem_limit or 0) // 2 ** 20} MB); "
                                              f"starting a new one."}

    _previous_limit_hit: str | None = None

    async def start(self):
        self._previous_limit_hit, self.limit_hit = self.limit_hit, None
        self._prepare_home()
        try:
            self._make_cgroup()
            self._make_fence()
        except Exception:
            self._teardown()
            raise
        if not self.bwrap_path:
            if self.require_sandbox:
                raise RuntimeError(
                    "bubblewrap (bwrap) is not installed: install the Debian package `bubblewrap`, "
                    "or set c.SandboxedLocalSpawner.require_sandbox = False on a single-user machine"
                )
            self.log.warning("Starting %s's server WITHOUT a sandbox (bwrap missing)", self.user.name)
            return await super().start()
        # LocalProcessSpawner.start runs self.cmd + args; prefix it with the sandbox for this start.
        original = self.cmd
        self.cmd = self.sandbox_command() + list(original)
        try:
            return await super().start()
        except Exception:
            self._teardown()
            raise
        finally:
            self.cmd = original

    _stopping = False

    async def stop(self, now=False):
        self._stopping = True
        try:
            await super().stop(now=now)
        finally:
            # What is left (kernels the server did not stop) goes with the cgroup.
            await asyncio.get_running_loop().run_in_executor(None, self._teardown)
            self._stopping = False
