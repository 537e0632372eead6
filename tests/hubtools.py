"""Start and drive a real learnhub platform (``learnhub up``) from tests."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

START_TIMEOUT = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LearnhubProcess:
    """``learnhub up`` in a subprocess: the same code path a person runs."""

    def __init__(self, data_dir: Path, db_url: str, hub_db_url: str, port: int | None = None,
                 extra_env: dict | None = None, demo: bool = False):
        self.data_dir = Path(data_dir)
        self.db_url = db_url
        self.hub_db_url = hub_db_url
        self.port = port or free_port()
        self.extra_env = extra_env or {}
        self.demo = demo
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-up.log"
        self.log_offset = 0  # where this start's output begins (a restart appends to the same log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def credentials(self) -> dict:
        return json.loads((self.data_dir / "admin-credentials.json").read_text())

    @property
    def admin_token(self) -> str:
        return self.credentials["api_token"]

    def start(self) -> "LearnhubProcess":
        env = dict(os.environ)
        env.update({
            "LEARNHUB_HUB_PORT": "0",
            "LEARNHUB_PROXY_API_PORT": "0",
            "LEARNHUB_DB_URL": self.db_url,
            "LEARNHUB_HUB_DB_URL": self.hub_db_url,
        })
        env.update(self.extra_env)
        command = [sys.executable, "-m", "learnhub", "up", "--data-dir", str(self.data_dir),
                   "--port", str(self.port)]
        if not self.demo:
            command.append("--no-demo")
        self._log = open(self.log_path, "ab")
        self.log_offset = offset = self.log_path.stat().st_size
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"learnhub up exited with {self.process.returncode}:\n{self.log_tail()}")
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                started = b"learnhub is serving on" in log.read()
            if started:
                return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"learnhub up did not start within {START_TIMEOUT} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> int | None:
        """Stop as a person does, with Ctrl-C (SIGINT); the exit status is returned."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._log.close()

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines this start printed (not those of an earlier start on the same data)."""
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as log:
            log.seek(self.log_offset)
            text = log.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    # -- talking to it ------------------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"token {token}"
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def hub_api(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.api(method, "/hub/api" + path, token=self.admin_token, **kwargs)

    def user_token(self, username: str) -> str:
        response = self.hub_api("POST", f"/users/{username}/tokens", json={"note": "test"})
        response.raise_for_status()
        return response.json()["token"]


def xsrf_of(session: requests.Session, page_url: str) -> str:
    """The XSRF token a hub form expects, read from the page as a browser would."""
    page = session.get(page_url, timeout=30)
    page.raise_for_status()
    match = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
    if match:
        return match.group(1)
    return session.cookies.get("_xsrf", "")


def sign_up(hub: LearnhubProcess, username: str, password: str) -> requests.Response:
    session = requests.Session()
    xsrf = xsrf_of(session, f"{hub.url}/hub/signup")
    return session.post(f"{hub.url}/hub/signup", timeout=30,
                        data={"username": username, "signup_password": password,
                              "signup_password_confirmation": password, "_xsrf": xsrf})


def log_in(hub: LearnhubProcess, username: str, password: str) -> requests.Session:
    """A browser-like session logged in through the hub's login form."""
    session = requests.Session()
    xsrf = xsrf_of(session, f"{hub.url}/hub/login")
    response = session.post(f"{hub.url}/hub/login?next=/hub/home", timeout=30,
                            data={"username": username, "password": password, "_xsrf": xsrf},
                            allow_redirects=False)
    if response.status_code != 302:
        raise AssertionError(f"login of {username} failed: {response.status_code}")
    return session


def personal_token(hub, session: requests.Session, username: str, note: str = "test") -> str:
    """An API token the logged-in ``session`` makes for itself, as a person does on the hub's token
    page (the hub's API with the login cookie and the page's XSRF token), not one an admin mints."""
    xsrf = xsrf_of(session, f"{hub.url}/hub/token")
    made = session.post(f"{hub.url}/hub/api/users/{username}/tokens", json={"note": note},
                        headers={"X-XSRFToken": xsrf, "Referer": f"{hub.url}/hub/token"}, timeout=30)
    if made.status_code != 201:
        raise AssertionError(f"{username} could not make a token: {made.status_code} {made.text}")
    return made.json()["token"]


async def feedback_events(hub_url: str, token: str, path: str, timeout: float = 120) -> list[dict]:
    """Every message of one of the feedback service's WebSockets (``path`` under its ``api/``, e.g.
    ``submissions/<id>/events``) until it closes, read with ``token`` as a client outside the hub."""
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = hub_url.replace("http", "ws", 1) + f"/services/feedback/api/{path}"
    connection = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    events = []
    while True:
        message = await asyncio.wait_for(connection.read_message(), timeout)
        if message is None:
            return events
        events.append(json.loads(message))


def processes_listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_server(hub: LearnhubProcess, username: str, timeout: float = 180) -> str:
    """Start ``username``'s default server through the hub API and wait until the hub says it is ready;
    returns its URL prefix through the proxy (``<hub url>/user/<name>/``)."""
    started = hub.hub_api("POST", f"/users/{username}/server")
    if started.status_code not in (201, 202, 400):  # 400: it is already running
        raise AssertionError(f"{username}'s server did not start: {started.status_code} {started.text}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = hub.hub_api("GET", f"/users/{username}").json()["servers"].get("", {})
        if server.get("ready"):
            return f"{hub.url}/user/{username}/"
        time.sleep(0.5)
    raise AssertionError(f"{username}'s server was not ready within {timeout} s:\n{hub.log_tail()}")


def write_services_config(data_dir: Path, services: list[str] | None, config: str = "") -> None:
    """A ``learnhub_config.py`` in ``data_dir`` that starts only ``services`` (all when None), with
    ``config`` (more lines of the same file: any learnhub, hub or service setting) after it."""
    lines = ["c = get_config()"]
    if services is not None:
        lines.append(f"c.LearnhubSettings.services = {list(services)!r}")
    (Path(data_dir) / "learnhub_config.py").write_text("\n".join(lines) + "\n" + config)


def module_platform(tmp_path_factory, name: str, *, services: list[str] | None = None, demo: bool = False,
                    extra_env: dict | None = None, config: str = ""):
    """``learnhub up`` for one test module, on new databases (SQLite or the PostgreSQL under test),
    stopped and dropped afterwards: ``yield from module_platform(...)`` in a module-scoped fixture.

    ``services`` starts only those (a ``learnhub_config.py`` in the data dir): the others' start-up
    is not what such a module tests, and on a loaded machine a slow one makes the hub give up.
    ``config``: more lines of that file (channels of the notifications service, ...)."""
    from dbtools import create_database, drop_database

    folder = tmp_path_factory.mktemp(name)
    db_url, hub_db_url = create_database(folder, "learnhub"), create_database(folder, "hub")
    data = folder / "data"
    data.mkdir()
    if services is not None or config:
        write_services_config(data, services, config)
    running = LearnhubProcess(data, db_url, hub_db_url, demo=demo, extra_env=extra_env).start()
    try:
        yield running
    finally:
        code = running.stop()
        drop_database(db_url)
        drop_database(hub_db_url)
    assert code == 0, running.log_tail()
