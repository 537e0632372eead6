"""``GET learnhub/api/limits`` of the single-user server extension, on a real memory cgroup.

A real Jupyter server (``jupyter server`` with learnhub's server extension, enabled the way the hub
enables it: its config folder on ``JUPYTER_CONFIG_PATH``), told where its memory cgroup is the way the
spawner tells it (``LEARNHUB_MEMORY_CGROUP``, ``MEM_LIMIT``); a real cgroup made by
``learnhub.cgroups.Cgroup`` with a 64 MiB limit, and a real memory bomb in a process inside it that
the kernel's OOM killer kills. The endpoint's count must go up by that kill. (The whole chain through
the spawner's sandbox, the proxy and JupyterLab: test_containment.py and
tests/e2e/test_memory_limit_e2e.py.)

Needs root, as the cgroup does. This machine mounts cgroup v1 controllers; v2's files are read by the
same ``learnhub.cgroups.read_memory``, checked on a folder laid out like v2 below.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from hubtools import free_port
from learnhub.cgroups import Cgroup, cgroup_version, read_memory
from learnhub.extensions.singleuser import config_dir
from learnhub.extensions.singleuser.limits import memory_status, own_memory_cgroup

LIMIT = 64 * 1024 ** 2

as_root = pytest.mark.skipif(os.geteuid() != 0 or cgroup_version() is None,
                             reason="making a memory cgroup needs root and cgroup controllers")

#: Grows resident memory 8 MiB at a time (bytes objects are written, so their pages are really used)
#: until the kernel kills it; an allocation refused up front (MemoryError) would not be a kill.
BOMB = """
chunks = []
while True:
    chunks.append(b"x" * (8 * 1024 ** 2))
"""


@pytest.fixture
def cgroup():
    group = Cgroup(f"limits-endpoint-{secrets.token_hex(3)}", parent="learnhub-tests")
    applied = group.create(memory=LIMIT)
    if "memory" not in applied:
        group.remove()
        pytest.skip(f"no memory cgroup here: {group.problems}")
    yield group
    group.remove()
    try:
        group.path("memory").parent.rmdir()  # learnhub-tests, when no other test's cgroup is in it
    except OSError:
        pass


@pytest.fixture
def server(tmp_path, cgroup):
    """A Jupyter server with the extension, outside the cgroup (as the bomb's neighbour, not its victim)."""
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_PATH": config_dir(), "LEARNHUB_MEMORY_CGROUP": str(cgroup.path("memory")),
           "MEM_LIMIT": str(LIMIT), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("JUPYTERHUB_API_TOKEN", None)
    log = open(tmp_path / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--allow-root", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path}"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        try:
            if requests.get(url + "api/status", headers={"Authorization": f"token {token}"}, timeout=5).ok:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
        time.sleep(0.5)
    yield url, token
    process.send_signal(signal.SIGINT)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def limits(url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(url + "learnhub/api/limits", headers=headers, timeout=30)


@as_root
def test_the_oom_kill_count_goes_up_after_a_real_memory_bomb(server, cgroup):
    url, token = server
    before = limits(url, token)
    assert before.status_code == 200, before.text
    memory = before.json()["memory"]
    assert memory["limit"] == LIMIT and memory["accounting"] == f"cgroup v{cgroup.version}"
    assert memory["oom_kills"] == 0  # a new cgroup

    bomb = subprocess.run([sys.executable, "-c", BOMB], preexec_fn=cgroup.join_self, capture_output=True,
                          timeout=120)
    # Killed by the kernel (SIGKILL), not a Python MemoryError (which would exit 1 with a traceback).
    assert bomb.returncode == -signal.SIGKILL, (bomb.returncode, bomb.stderr[-500:])

    after = limits(url, token).json()["memory"]
    assert after["oom_kills"] >= 1, after
    assert after["oom_kills"] == cgroup.oom_kills()  # what the hub's spawner reads, the same counter
    assert after["limit"] == LIMIT


@as_root
def test_only_with_the_servers_token(server):
    url, _ = server
    # jupyter_server's own authentication: an API request without (or with a wrong) token is refused
    # with 403, and carries none of the answer.
    for token in (None, "not-the-token"):
        refused = limits(url, token)
        assert refused.status_code == 403, (token, refused.status_code)
        assert "oom_kills" not in refused.text


def test_without_memory_accounting_it_says_it_cannot_tell(tmp_path):
    # A folder that is no memory cgroup (as where /sys/fs/cgroup is absent or has no memory controller).
    status = memory_status({"LEARNHUB_MEMORY_CGROUP": str(tmp_path), "MEM_LIMIT": str(LIMIT)})
    assert status == {"limit": LIMIT, "usage": None, "oom_kills": None, "accounting": None}
    assert memory_status({"LEARNHUB_MEMORY_CGROUP": str(tmp_path / "missing")})["limit"] is None


def test_cgroup_v2_files_and_own_cgroup_lookup(tmp_path):
    # v2's files, on a folder laid out like a v2 cgroup (this machine has v1 controllers only).
    folder = tmp_path / "learnhub-servers" / "ada-abc123"
    folder.mkdir(parents=True)
    (folder / "memory.max").write_text(f"{LIMIT}\n")
    (folder / "memory.current").write_text("1234\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 17\noom 3\noom_kill 2\noom_group_kill 0\n")
    assert read_memory(folder) == {"version": 2, "limit": LIMIT, "usage": 1234, "oom_kills": 2, "hits": 17}
    (folder / "memory.max").write_text("max\n")
    assert read_memory(folder)["limit"] is None
    status = memory_status({"LEARNHUB_MEMORY_CGROUP": str(folder), "MEM_LIMIT": "1000"})
    assert status["oom_kills"] == 2 and status["accounting"] == "cgroup v2" and status["limit"] == 1000

    # Without the variable, the process's own cgroup from /proc/self/cgroup (v1's memory line first).
    proc = tmp_path / "cgroup"
    proc.write_text("0::/learnhub-servers/ada-abc123\n")
    assert own_memory_cgroup(proc, tmp_path) == folder
    proc.write_text("5:pids:/x\n4:memory:/learnhub-servers/ada-abc123\n0::/\n")
    assert own_memory_cgroup(proc, tmp_path) == tmp_path / "memory" / "learnhub-servers" / "ada-abc123"
    assert own_memory_cgroup(tmp_path / "nothing", tmp_path) is None


@as_root
def test_an_unlimited_cgroup_shows_no_limit():
    # The test's own cgroup as read through /proc/self/cgroup: v1 "unlimited" is a huge number, not a limit.
    folder = own_memory_cgroup()
    counters = read_memory(folder) if folder else None
    if counters is None:
        pytest.skip("this process is in no readable memory cgroup")
    if counters["limit"] is not None:
        pytest.skip("this process's cgroup has a memory limit")
    assert memory_status({})["limit"] is None
