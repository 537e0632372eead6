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
    """The admin's credentials, created on first start. Returns (credentials, created).

    Only the native authenticator checks passwords itself, so only it gets one (its authenticator
    registers the account with it); with any other, people log in at their identity provider or LMS
    and the file holds the admin's name and API token only."""
    path = settings.credentials_file
    created = not path.exists()
    credentials = {} if created else json.loads(path.read_text())
    changed = created
    if credentials.get("username") != settings.admin_username:
        # A new admin name means a new account: the old one's password and token are not its own.
        credentials, changed = {"username": settings.admin_username}, True
    if settings.authenticator == "native" and not credentials.get("password"):
        credentials["password"] = secrets.token_urlsafe(18)
        changed = True
    if changed:
        write_private_json(path, credentials)
    return credentials, created


def hub_url(settings: LearnhubSettings) -> str:
    """Where this machine reaches the hub through the proxy (0.0.0.0 means any address: use loopback)."""
    if settings.subdomain_host:
        # With subdomains the proxy routes by host name: the hub's own name, not an address.
        return settings.subdomain_host
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


def token_works(url: str, token: str, username: str) -> bool:
    """Whether the hub knows ``token`` as ``username``'s (a hub database that was reset does not)."""
    import requests

    response = requests.get(f"{url}/hub/api/user", headers={"Authorization": f"token {token}"},
                            timeout=30, verify=False)
    return response.status_code == 200 and response.json().get("name") == username


def ensure_admin_token(settings: LearnhubSettings, credentials: dict, url: str, bootstrap_token: str | None) -> dict:
    """Give the admin a hub API token, minted by the bootstrap service (no password involved).

    The hub created the admin account from ``Authenticator.admin_users`` before it answered, whatever
    the authenticator; the bootstrap service's token (``bootstrap-token`` in the data dir) may create tokens for the admins only, and the token it creates inherits the admin's
    own permissions. A token the hub still accepts is kept."""
    import requests

    username = credentials["username"]
    if credentials.get("api_token") and token_works(url, credentials["api_token"], username):
        return credentials
    if bootstrap_token is None:
        raise RuntimeError(f"{username!r} has no working API token in {settings.credentials_file}, and "
                           "LearnhubSettings.bootstrap_service is False: start once with it True to mint one")
    headers = {"Authorization": f"token {bootstrap_token}"}
    user = requests.get(f"{url}/hub/api/users/{username}", headers=headers, timeout=30, verify=False)
    if user.status_code == 404:
        raise RuntimeError(f"the hub has no account {username!r}: is it in Authenticator.admin_users?")
    user.raise_for_status()
    if not user.json().get("admin"):
        raise RuntimeError(f"{username!r} is not an admin of the hub (Authenticator.admin_users was overridden?)")
    response = requests.post(f"{url}/hub/api/users/{username}/tokens", headers=headers, timeout=30,
                             verify=False, json={"note": "learnhub admin (created by learnhub up)"})
    if response.status_code != 201:
        raise RuntimeError(f"the hub refused the admin's API token: {response.status_code} {response.text}")
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
    from .hub import ensure_bootstrap_token

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
    bootstrap_token = ensure_bootstrap_token(settings) if settings.bootstrap_service else None

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
        credentials = ensure_admin_token(settings, credentials, url, bootstrap_token)
        after_start(settings, url)
    except Exception as exc:
        print(f"learnhub: {exc}", file=sys.stderr)
        forward(signal.SIGTERM, None)
        hub.wait(30)
        return 1
    if settings.authenticator == "native":
        how = (f"  log in as '{credentials['username']}' (password and API token in {settings.credentials_file}"
               f"{', created now' if created else ''})\n"
               f"  learners sign up at {settings.public_url}/hub/signup\n")
    else:
        # The admin_username account only holds the API token: nobody logs in as it at a provider.
        admins = [name for name in settings.all_admin_users if name != settings.admin_username]
        how = (f"  people log in through the {settings.authenticator} provider; admins: "
               f"{', '.join(admins) or 'none by name (LearnhubSettings.admin_users)'}\n"
               f"  the API token of '{credentials['username']}' is in {settings.credentials_file}"
               f"{', created now' if created else ''}\n")
    if settings.authenticator == "lti":
        how += (f"  LMS admins register the tool with the URLs and keys at {settings.public_url}/hub/lti/config "
                f"(docs/lti.md)\n")
    print(f"\nlearnhub is serving on {settings.public_url}\n{how}  stop with Ctrl-C\n", flush=True)
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


def admin_client(args):
    """The courses service's API (where the data-rights coordinator and the audit log are), called
    with the admin's token from ``admin-credentials.json`` (``--token``/``$LEARNHUB_TOKEN`` instead)."""
    from .config import load_settings
    from .hubapi import ServiceAPI

    settings, _ = load_settings(args.data_dir)
    token = args.token or os.environ.get("LEARNHUB_TOKEN", "")
    if not token:
        if not settings.credentials_file.is_file():
            raise SystemExit(f"learnhub: no admin token: {settings.credentials_file} does not exist "
                             "(give --token or set LEARNHUB_TOKEN)")
        token = json.loads(settings.credentials_file.read_text()).get("api_token", "")
    url = (args.url or hub_url(settings)).rstrip("/")
    return ServiceAPI("courses", token, f"{url}/services/", timeout=300.0)


def _report_error(exc) -> int:
    print(f"learnhub: {exc}", file=sys.stderr)
    return 1


def cmd_data(args) -> int:
    import requests

    from .hubapi import APIClientError, PeerUnavailable

    api = admin_client(args)
    try:
        if args.data_command == "export":
            response = requests.get(api.url("data/archives", {"user": args.user}), timeout=api.timeout,
                                    headers=api._headers(None), allow_redirects=False, verify=False)
            if response.status_code != 200:
                return _report_error(f"{response.status_code}: {response.text[:500]}")
            out = Path(args.output or f"learnhub-data-{args.user}.zip")
            out.write_bytes(response.content)
            os.chmod(out, 0o600)
            print(f"{args.user}'s data: {out} ({len(response.content)} bytes)")
            return 0
        if args.data_command == "erase":
            if not args.yes:
                answer = input(f"Erase every piece of data learnhub holds about {args.user}? This cannot be "
                               "undone. Type the name again to confirm: ")
                if answer.strip() != args.user:
                    print("learnhub: not confirmed; nothing erased", file=sys.stderr)
                    return 1
            report = api.request_sync("POST", "data/erasures", {"user": args.user})
        else:
            report = api.request_sync("POST", "data/retention", {})
    except (APIClientError, PeerUnavailable, requests.RequestException) as exc:
        return _report_error(exc)
    print(json.dumps(report, indent=2))
    return 0


def cmd_audit(args) -> int:
    from .hubapi import APIClientError, PeerUnavailable

    api = admin_client(args)
    params = {k: v for k, v in (("actor", args.actor), ("target", args.target), ("action", args.action),
                                ("course", args.course), ("since", args.since)) if v}
    after = 0
    try:
        while True:
            page = api.request_sync("GET", "audit", params=dict(params, after=after, limit=500))
            for item in page["items"]:
                print(json.dumps(item) if args.json else
                      f"{item['time']}  {item['actor']:<16} {item['action']:<20} {item['target'] or '-':<16} "
                      f"{item['course_id'] or '-':<16} {item['ip'] or '-':<15} {json.dumps(item['details'])}")
            if page["next"] is None:
                return 0
            after = page["next"]
    except (APIClientError, PeerUnavailable) as exc:
        return _report_error(exc)


def cmd_keys(args) -> int:
    from .secrets import rotate_key

    from .config import load_settings

    settings, _ = load_settings(args.data_dir)
    path, count = rotate_key(settings, drop_old=args.drop_old)
    print(f"{path}: {'old keys dropped' if args.drop_old else 'new key added'}; {count} key(s) now. "
          "Restart the platform; then `learnhub keys reencrypt`." if not args.drop_old else
          f"{path}: {count} key(s) now. Restart the platform.")
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

    def admin_options(p):
        p.add_argument("--data-dir", default=None, help="the platform's data dir (for the admin's token and URL)")
        p.add_argument("--url", default=None, help="the platform's URL (default: from the settings)")
        p.add_argument("--token", default=None, help="an admin's API token (default: admin-credentials.json)")

    data = sub.add_parser("data", help="one person's data: export, erase (GDPR); retention")
    datasub = data.add_subparsers(dest="data_command", required=True)
    export = datasub.add_parser("export", help="write everything learnhub holds about USER to a zip")
    export.add_argument("user")
    export.add_argument("-o", "--output", default=None, help="the zip to write (default learnhub-data-USER.zip)")
    erase = datasub.add_parser("erase", help="erase USER everywhere (what statistics keep is pseudonymised)")
    erase.add_argument("user")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    retention = datasub.add_parser("retention", help="apply the retention settings (c.DataRetention) now")
    for p in (export, erase, retention):
        admin_options(p)

    audit = sub.add_parser("audit", help="read the audit log of staff and admin actions")
    admin_options(audit)
    for name in ("actor", "target", "action", "course", "since"):
        audit.add_argument(f"--{name}", default=None)
    audit.add_argument("--json", action="store_true", help="one JSON object per line")

    keys = sub.add_parser("keys", help="the key that encrypts contact details at rest")
    keysub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keysub.add_parser("rotate", help="add a new key (used for new data; old ones still decrypt)")
    rotate.add_argument("--data-dir", default=None)
    rotate.add_argument("--drop-old", action="store_true",
                        help="keep only the newest key (after every ciphertext was re-encrypted)")

    for name, help_text in (("grade", "grade one submission locally with the learnhub engine"),
                            ("course", "manage course content (course import DIR)"),
                            ("recommender", "recommender tools (recommender evaluate)"),
                            ("lti", "LTI 1.3 tool administration (lti keys [--rotate | --retire])")):
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


DELEGATES = {
    "grade": "learnhub.graders.cli",
    "course": "learnhub.extensions.courses.cli",
    "recommender": "learnhub.recommender.cli",
    "lti": "learnhub.lti.cli",
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
    if args.command == "data":
        return cmd_data(args)
    if args.command == "audit":
        return cmd_audit(args)
    if args.command == "keys":
        return cmd_keys(args)
    parser.error(f"unknown command {args.command}")
    return 2
