"""The ``learnhub`` command.

``learnhub up`` runs the whole platform on this machine; the other commands
serve operators (``db upgrade``, ``service``), instructors (``grade``,
``course import``) and the recommender's offline evaluation.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .config import LearnhubSettings

# The database, settings, hub and HTTP modules are imported by the commands that use them:
# `learnhub grade` (a command instructors run per submission) must not pay for `learnhub up`'s.

READY_TIMEOUT = 180


def write_private_json(path: Path, payload: dict) -> None:
    """Write ``payload`` to ``path`` readable by its owner only, never half-written."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def ensure_admin_credentials(settings: LearnhubSettings) -> tuple[dict, bool]:
    """The admin's credentials, created on first start. Returns (credentials, created)."""
    path = settings.credentials_file
    if path.exists():
        return json.loads(path.read_text()), False
    credentials = {"username": settings.admin_username, "password": secrets.token_urlsafe(18)}
    write_private_json(path, credentials)
    return credentials, True


def hub_url(settings: LearnhubSettings) -> str:
    """Where this machine reaches the hub through the proxy (0.0.0.0 means any address: use loopback)."""
    scheme = "https" if settings.ssl_cert else "http"
    host = "127.0.0.1" if settings.ip in ("", "0.0.0.0", "::") else settings.ip
    return f"{scheme}://{host}:{settings.port}"


def wait_for_hub(url: str, process: subprocess.Popen, timeout: float = READY_TIMEOUT) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with status {process.returncode} while starting")
        try:
            # Until the hub has registered its route, the proxy answers with a redirect to an
            # error page: only the hub's own JSON means it is ready.
            response = requests.get(f"{url}/hub/api/", timeout=2, verify=False, allow_redirects=False)
            if response.status_code == 200 and "version" in response.json():
                return
        except (requests.RequestException, ValueError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"JupyterHub did not answer at {url} within {timeout:.0f} s")


def ensure_admin_token(settings: LearnhubSettings, credentials: dict, url: str) -> dict:
    """Give the admin a hub API token, asked of the hub with the admin's own password."""
    import requests

    if credentials.get("api_token"):
        return credentials
    response = requests.post(
        f"{url}/hub/api/users/{credentials['username']}/tokens",
        json={"auth": {"username": credentials["username"], "password": credentials["password"]},
              "note": "learnhub admin (created by learnhub up)"},
        timeout=30, verify=False,
    )
    response.raise_for_status()
    credentials = dict(credentials, api_token=response.json()["token"])
    write_private_json(settings.credentials_file, credentials)
    return credentials


def hub_environment(settings: LearnhubSettings) -> dict:
    """The environment that gives the hub (and its services) these exact settings."""
    env = dict(os.environ)
    env.update({
        "LEARNHUB_DATA_DIR": settings.data_dir,
        "LEARNHUB_IP": settings.ip,
        "LEARNHUB_PORT": str(settings.port),
        "LEARNHUB_DB_URL": settings.db_url,
        "LEARNHUB_HUB_DB_URL": settings.hub_db_url,
        "LEARNHUB_SPAWNER": settings.spawner,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def resolve_hub_config(settings: LearnhubSettings) -> Path:
    from .hub import hub_config_file

    path = hub_config_file()
    if path.is_file():
        return path
    # A non-editable install has no hub_config/ folder: write the same composition root.
    generated = settings.data_path / "jupyterhub_config.py"
    generated.write_text(
        "import os\nfrom learnhub.config import load_settings\nfrom learnhub.hub import configure_hub\n"
        "c = get_config()\nsettings, path = load_settings(os.environ.get('LEARNHUB_DATA_DIR'))\n"
        "configure_hub(c, settings)\nif path is not None:\n    load_subconfig(str(path))\n"
    )
    return generated


def after_start(settings: LearnhubSettings, url: str) -> None:
    """Work done once the hub answers: extension points for the components (demo course...)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="learnhub.after_start"):
        # A component that fails here (a demo course that does not load) must not take the
        # running platform down with it: say so and keep serving.
        try:
            entry.load()(settings, url)
        except Exception as exc:
            print(f"learnhub: {entry.name} failed after start: {exc}", file=sys.stderr)


def cmd_up(args) -> int:
    from . import db as lhdb
    from .config import load_settings

    settings, config_path = load_settings(args.data_dir, ip=args.ip, port=args.port,
                                          spawner=getattr(args, "spawner", None))
    if args.no_demo:
        settings.demo_course = False
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    print(f"learnhub {__version__}: data in {data}" + (f", config {config_path}" if config_path else ""))
    lhdb.upgrade(settings.db_url)
    credentials, created = ensure_admin_credentials(settings)

    env = hub_environment(settings)
    env["LEARNHUB_DEMO_COURSE"] = "1" if settings.demo_course else "0"
    command = [sys.executable, "-m", "jupyterhub", "-f", str(resolve_hub_config(settings))]
    if args.debug:
        command.append("--debug")
    # The hub gets a session of its own: Ctrl-C reaches only this process, which
    # forwards it once, so JupyterHub shuts its proxy, services and servers down cleanly.
    hub = subprocess.Popen(command, cwd=data, env=env, start_new_session=True)

    def forward(signum, _frame):
        if hub.poll() is None:
            hub.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    url = hub_url(settings)
    try:
        wait_for_hub(url, hub)
        credentials = ensure_admin_token(settings, credentials, url)
        after_start(settings, url)
    except Exception as exc:
        print(f"learnhub: {exc}", file=sys.stderr)
        forward(signal.SIGTERM, None)
        hub.wait(30)
        return 1
    print(
        f"\nlearnhub is serving on {settings.public_url}\n"
        f"  log in as '{credentials['username']}' (password and API token in {settings.credentials_file}"
        f"{', created now' if created else ''})\n"
        f"  learners sign up at {settings.public_url}/hub/signup\n"
        f"  stop with Ctrl-C\n",
        flush=True,
    )
    status = hub.wait()
    return 0 if status in (0, -signal.SIGINT, -signal.SIGTERM) else status


def cmd_db_upgrade(args) -> int:
    from . import db as lhdb
    from .config import load_settings

    settings, _ = load_settings(args.data_dir)
    url = args.db_url or settings.db_url
    lhdb.upgrade(url)
    print(f"learnhub database at revision {lhdb.current_revision(url)}")
    return 0


def cmd_service(args, rest: list[str]) -> int:
    from .service import load_service_class

    try:
        cls = load_service_class(args.name)
    except KeyError as exc:
        print(f"learnhub: {exc.args[0]}", file=sys.stderr)
        return 2
    app = cls.instance()
    app.initialize(rest)
    app.start()
    return 0


def delegate(module: str, argv: list[str]) -> int:
    """Run a component's own command line (graders, recommender, courses)."""
    import importlib

    try:
        main = importlib.import_module(module).main
    except ImportError as exc:
        print(f"learnhub: this command is not available: {exc}", file=sys.stderr)
        return 2
    return main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="learnhub", description="A learning platform on JupyterHub.")
    parser.add_argument("--version", action="version", version=f"learnhub {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the platform (JupyterHub, proxy and learnhub services)")
    up.add_argument("--data-dir", default=None, help="where data is kept (default ./learnhub-data)")
    up.add_argument("--ip", default=None, help="address to listen on (default 127.0.0.1)")
    up.add_argument("--port", type=int, default=None, help="port to listen on (default 8000)")
    up.add_argument("--no-demo", action="store_true", help="do not load the demo course")
    up.add_argument("--spawner", default=None,
                    help="where learners' servers run: local (bubblewrap, the default), docker "
                         "(DockerSpawner with the learnhub/singleuser image) or a Spawner's import path")
    up.add_argument("--debug", action="store_true", help="JupyterHub debug logging")

    dbp = sub.add_parser("db", help="database maintenance")
    dbsub = dbp.add_subparsers(dest="db_command", required=True)
    upgrade = dbsub.add_parser("upgrade", help="apply Alembic migrations")
    upgrade.add_argument("--data-dir", default=None)
    upgrade.add_argument("--db-url", default=None, help="database URL (default: from settings)")

    service = sub.add_parser("service", help="run one learnhub service (hub-managed or standalone)")
    service.add_argument("name", help="courses, feedback, recommender, analytics or notifications")

    for name, help_text in (("grade", "grade one submission locally with the learnhub engine"),
                            ("course", "manage course content (course import DIR)"),
                            ("recommender", "recommender tools (recommender evaluate)")):
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


DELEGATES = {
    "grade": "learnhub.graders.cli",
    "course": "learnhub.extensions.courses.cli",
    "recommender": "learnhub.recommender.cli",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATES:
        return delegate(DELEGATES[argv[0]], argv[1:])
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "service":
        return cmd_service(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "up":
        return cmd_up(args)
    if args.command == "db":
        return cmd_db_upgrade(args)
    parser.error(f"unknown command {args.command}")
    return 2
