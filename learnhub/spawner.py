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

Network is shared with the host: the server must reach the hub API and be
reached by the proxy on 127.0.0.1.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Bool, Integer, List, Unicode, default


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

    def _prepare_home(self) -> None:
        home = Path(self.home_dir)
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(0o700)
        uid = self.run_as_uid
        if uid is not None:
            os.chown(home, uid, uid)

    def sandbox_command(self) -> list[str]:
        """The bwrap prefix: what the server can see and do."""
        cmd = [self.bwrap_path, "--die-with-parent", "--unshare-pid", "--unshare-ipc",
               "--unshare-uts", "--new-session", "--proc", "/proc", "--dev", "/dev",
               "--tmpfs", "/tmp", "--tmpfs", "/home", "--tmpfs", "/run"]
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

    def make_preexec_fn(self, name):
        # Privileges are dropped inside the sandbox (see sandbox_command), not before bwrap:
        # bwrap needs root to mount what an unprivileged uid could not even traverse.
        return None

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

    async def start(self):
        self._prepare_home()
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
        finally:
            self.cmd = original
