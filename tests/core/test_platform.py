"""The platform as a person meets it: ``learnhub up``, sign-up, login, services, restart.

Everything here is real: JupyterHub, configurable-http-proxy, NativeAuthenticator,
the five learnhub services as hub-managed processes, and the database under test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import stat
import time
from pathlib import Path

import pytest
import requests

from hubtools import (LearnhubProcess, free_port, log_in, module_platform, processes_listening, sign_up,
                      write_services_config)
from learnhub import __version__
from learnhub.config import SERVICE_NAMES

pytestmark = pytest.mark.hub

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """One platform for the tests of this module that only add users to it."""
    yield from module_platform(tmp_path_factory, "platform")


def test_signup_login_and_every_service_through_the_proxy(hub):
    response = sign_up(hub, "ada", PASSWORD)
    assert response.status_code == 200
    assert "The signup was successful" in response.text
    browser = log_in(hub, "ada", PASSWORD)
    home = browser.get(f"{hub.url}/hub/home", timeout=30)
    assert home.status_code == 200 and "ada" in home.text

    token = hub.user_token("ada")
    for name in SERVICE_NAMES:
        health = requests.get(f"{hub.url}/services/{name}/api/health", timeout=30)
        assert health.status_code == 200, (name, health.text)
        assert health.json() == {"status": "ok", "service": name, "version": __version__, "database": "ok"}

        # No credentials, a made-up token: an error body and nothing else.
        for headers in ({}, {"Authorization": "token not-a-real-token"}):
            anonymous = requests.get(f"{hub.url}/services/{name}/api/whoami", headers=headers, timeout=30)
            assert anonymous.status_code == 401, (name, anonymous.status_code)
            assert set(anonymous.json()) == {"error"}
            assert anonymous.json()["error"]["status"] == 401
            # The request id is hex, so it may contain "ada" by chance: look everywhere else.
            error = dict(anonymous.json()["error"], request_id=None)
            assert "ada" not in json.dumps(error)
        metrics = requests.get(f"{hub.url}/services/{name}/metrics", timeout=30)
        assert metrics.status_code == 401

        mine = hub.api("GET", f"/services/{name}/api/whoami", token=token)
        assert mine.status_code == 200
        assert mine.json()["name"] == "ada" and mine.json()["admin"] is False
        assert mine.headers["X-Request-Id"]
        # A learner's token may not read metrics; the admin's may.
        assert hub.api("GET", f"/services/{name}/metrics", token=token).status_code == 403
        admin_metrics = hub.api("GET", f"/services/{name}/metrics", token=hub.admin_token)
        assert admin_metrics.status_code == 200 and "learnhub_requests_total" in admin_metrics.text


def test_browser_login_reaches_a_service_through_hub_oauth(hub):
    sign_up(hub, "grace", PASSWORD)
    browser = log_in(hub, "grace", PASSWORD)
    page = browser.get(f"{hub.url}/services/courses/", timeout=30)
    assert page.status_code == 200
    assert "Signed in as <strong id='user'>grace</strong>" in page.text
    # The service set its own cookie: the API now knows the browser without a token.
    assert browser.get(f"{hub.url}/services/courses/api/whoami", timeout=30).json()["name"] == "grace"
    # Another service needs its own OAuth hop; without it the API answers 401, not data.
    assert requests.get(f"{hub.url}/services/feedback/api/whoami", cookies=browser.cookies,
                        timeout=30).status_code == 401


def test_wrong_password_and_unapproved_names_do_not_log_in(hub):
    sign_up(hub, "linus", PASSWORD)
    with pytest.raises(AssertionError):
        log_in(hub, "linus", "not-the-password")
    with pytest.raises(AssertionError):
        log_in(hub, "nobody-signed-up", PASSWORD)


def test_admin_account_credentials_file(hub):
    path = hub.data_dir / "admin-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    credentials = hub.credentials
    assert set(credentials) == {"username", "password", "api_token"}
    users = hub.hub_api("GET", "/users").json()
    admin = next(user for user in users if user["name"] == credentials["username"])
    assert admin["admin"] is True
    log_in(hub, credentials["username"], credentials["password"])
    whoami = hub.api("GET", "/services/analytics/api/whoami", token=hub.admin_token).json()
    assert whoami["admin"] is True
    assert "custom:learnhub:courses:manage" in whoami["scopes"]


def test_restart_keeps_admin_and_users(hub_factory, tmp_path):
    # What persists is the hub's and learnhub's data; one service is enough to start a platform,
    # and two starts of all five would only add a minute.
    data = tmp_path / "data"
    data.mkdir()
    write_services_config(data, ["courses"])
    hub = hub_factory(data_dir=data).start()
    sign_up(hub, "marie", PASSWORD)
    log_in(hub, "marie", PASSWORD)
    credentials = hub.credentials
    port = hub.port

    assert hub.stop() == 0
    assert not processes_listening(port), "the proxy must stop with the hub"

    again = hub_factory(data_dir=hub.data_dir, port=port).start()
    assert again.credentials == credentials, "a second start must not create a new admin"
    log_in(again, "marie", PASSWORD)
    log_in(again, credentials["username"], credentials["password"])
    names = {user["name"] for user in again.hub_api("GET", "/users").json()}
    assert {"marie", credentials["username"]} <= names
    second_start = again.log_tail(100_000)
    assert "admin-credentials.json" in second_start  # where to log in is printed again...
    assert "created now" not in second_start          # ...but no new admin is made


def _server_pid(username: str) -> int:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        # The server itself, not the bwrap process that holds its sandbox.
        if cmdline[1:3] == [b"-m", b"jupyterhub.singleuser"] and \
                f"JUPYTERHUB_USER={username}".encode() in environ:
            return int(entry.name)
    raise LookupError(f"no server process for {username}")


def test_learner_server_runs_sandboxed_without_the_hubs_files(hub):
    sign_up(hub, "alan", PASSWORD)
    log_in(hub, "alan", PASSWORD)  # the hub knows a signed-up person from their first login
    started = hub.hub_api("POST", "/users/alan/server")
    assert started.status_code in (201, 202), started.text
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        model = hub.hub_api("GET", "/users/alan").json()
        if model["servers"].get("", {}).get("ready"):
            break
        time.sleep(0.5)
    else:
        pytest.fail("alan's server did not become ready:\n" + hub.log_tail())

    token = hub.user_token("alan")
    contents = hub.api("GET", "/user/alan/api/contents", token=token)
    assert contents.status_code == 200
    Path(hub.data_dir / "users" / "alan" / "hello.txt").write_text("hi")
    names = {item["name"] for item in hub.api("GET", "/user/alan/api/contents", token=token).json()["content"]}
    assert "hello.txt" in names

    pid = _server_pid("alan")
    status = Path(f"/proc/{pid}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    if os.geteuid() == 0:
        assert all(uid != "0" for uid in uids), f"the server runs as root: {uids}"
    # What the server sees of the file system: its home, not the data dir.
    root = Path(f"/proc/{pid}/root")
    assert not (root / str(hub.data_dir).lstrip("/") / "jupyterhub.sqlite").exists()
    assert not (root / str(hub.data_dir).lstrip("/") / "admin-credentials.json").exists()
    assert (root / "home" / "alan" / "hello.txt").read_text() == "hi"

    sign_up(hub, "eve", PASSWORD)
    log_in(hub, "eve", PASSWORD)
    intruder = hub.api("GET", "/user/alan/api/contents", token=hub.user_token("eve"))
    assert intruder.status_code == 403
    # Without a token the server's API refuses (jupyter_server's API handlers answer 403, never a
    # redirect to a login page), and says nothing of what the home holds.
    anonymous = hub.api("GET", "/user/alan/api/contents", allow_redirects=False)
    assert anonymous.status_code == 403 and "hello.txt" not in anonymous.text
    assert hub.hub_api("DELETE", "/users/alan/server").status_code in (202, 204)


def test_a_service_runs_on_its_own_with_an_external_token(hub):
    """``learnhub service NAME`` as in its own container: the hub's URL and a token, nothing else."""
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "learnhub", "service", "courses", f"--url=http://127.0.0.1:{port}",
         f"--api-token={hub.admin_token}", f"--hub-api-url={hub.url}/hub/api", f"--db-url={hub.db_url}"],
        stdout=subprocess.DEVNULL, stderr=open(hub.data_dir.parent / "standalone.log", "wb"),
        env={k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")},
    )
    base = f"http://127.0.0.1:{port}/services/courses"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/api/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        else:
            pytest.fail("the standalone service did not start")
        sign_up(hub, "barbara", PASSWORD)
        log_in(hub, "barbara", PASSWORD)
        token = hub.user_token("barbara")
        mine = requests.get(f"{base}/api/whoami", headers={"Authorization": f"token {token}"}, timeout=30)
        assert mine.status_code == 200 and mine.json()["name"] == "barbara", mine.text
        assert requests.get(f"{base}/api/whoami", timeout=30).status_code == 401
    finally:
        service.terminate()
        assert service.wait(30) == 0, (hub.data_dir.parent / "standalone.log").read_text()[-2000:]


def test_cli_version_and_db_upgrade(empty_db_url):
    from learnhub import db

    version = subprocess.run([sys.executable, "-m", "learnhub", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"learnhub {__version__}"
    for _ in range(2):  # idempotent
        upgrade = subprocess.run([sys.executable, "-m", "learnhub", "db", "upgrade", "--db-url", empty_db_url],
                                 capture_output=True, text=True)
        assert upgrade.returncode == 0, upgrade.stderr
    assert db.current_revision(empty_db_url) is not None
    assert "at revision" in upgrade.stdout
