"""Learners' servers fenced in: limits and the network fence of the embedded default spawner.

A real platform (``learnhub up`` with the demo course, on SQLite or the PostgreSQL under test), real
sandboxed servers for two learners and an instructor, and the learner's code executed in a real kernel
of their own server through the proxy (the kernel's websocket, as JupyterLab uses it). Needs root (as in
CI): the cgroups, loop-mounted homes and network namespaces are the kernel's own, nothing is mocked;
without root the module is skipped, since the spawner then only warns (tested in test_degraded.py).

Bounded and safe for the machine: the limits of the platform below are small (128 processes, 400 MB,
a 64 MB home, one CPU), the fork bomb stops by itself after a few seconds, and everything in a
server's cgroup is killed when its server stops.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from hubtools import LearnhubProcess, module_platform, start_server

pytestmark = [pytest.mark.hub,
              pytest.mark.skipif(os.geteuid() != 0, reason="cgroups, loop mounts and netns need root")]

COURSE = "intro-python"
ASSIGNMENT = "01-basics"
MEM = 400 * 1024 ** 2
PIDS = 128
DISK = 64 * 1024 ** 2

CONFIG = f"""
c.SandboxedLocalSpawner.mem_limit = {MEM}
c.SandboxedLocalSpawner.pids_limit = {PIDS}
c.SandboxedLocalSpawner.disk_limit = {DISK}
c.SandboxedLocalSpawner.tmp_size = "32M"
c.SandboxedLocalSpawner.cpu_limit = 1.0
c.SandboxedLocalSpawner.network_fence = "on"
c.SandboxedLocalSpawner.require_limits = True
# Instructors get more (JupyterHub's own per-group overrides)
c.SandboxedLocalSpawner.group_overrides = {{
    "staff": {{"groups": ["learnhub-instructors"],
               "spawner_override": {{"mem_limit": {2 * MEM}, "pids_limit": {2 * PIDS}}}}},
}}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    yield from module_platform(tmp_path_factory, "containment", services=["courses", "feedback"], demo=True,
                               config=CONFIG,
                               extra_env={"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"})


class Learner:
    """A hub user with a token, their running server and one kernel in it."""

    def __init__(self, hub: LearnhubProcess, name: str, groups: list[str] = ()):
        response = hub.hub_api("POST", f"/users/{name}")
        assert response.status_code in (201, 409), response.text
        for group in groups:
            hub.hub_api("POST", f"/groups/{group}/users", json={"users": [name]}).raise_for_status()
        self.hub, self.name, self.token = hub, name, hub.user_token(name)
        self.server = start_server(hub, name)
        self.kernel = self.new_kernel()

    @property
    def headers(self):
        return {"Authorization": f"token {self.token}"}

    @property
    def state(self) -> dict:
        model = self.hub.hub_api("GET", f"/users/{self.name}").json()
        return model["servers"][""]["state"]

    def cgroup_file(self, controller: str, name: str) -> Path:
        return Path("/sys/fs/cgroup", controller, "learnhub-servers", self.state["cgroup"], name)

    def new_kernel(self) -> str:
        response = requests.post(self.server + "api/kernels", json={"name": "python3"}, headers=self.headers,
                                 timeout=60)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def run(self, code: str, timeout: float = 60) -> dict:
        """Execute ``code`` in the kernel: {"stdout", "error" (ename or None), "states" (kernel statuses)}."""
        return asyncio.run(self._run(code, timeout))

    async def _run(self, code: str, timeout: float) -> dict:
        url = self.server.replace("http", "ws", 1) + f"api/kernels/{self.kernel}/channels"
        connection = await websocket_connect(HTTPRequest(url, headers=self.headers))
        msg_id = uuid.uuid4().hex
        connection.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        result = {"stdout": "", "error": None, "states": []}
        deadline = time.monotonic() + timeout
        try:
            while True:
                raw = await asyncio.wait_for(connection.read_message(), max(0.1, deadline - time.monotonic()))
                if raw is None:
                    result["states"].append("closed")
                    return result
                msg = json.loads(raw)
                kind = msg["header"]["msg_type"]
                if kind == "status":
                    state = msg["content"]["execution_state"]
                    if state in ("restarting", "dead"):
                        # The server's own message when the kernel died (JupyterLab shows it).
                        result["states"].append(state)
                        return result
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                if kind == "stream":
                    result["stdout"] += msg["content"]["text"]
                elif kind == "error":
                    result["error"] = msg["content"]["ename"] + ": " + msg["content"]["evalue"]
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    return result
        finally:
            connection.close()

    def value(self, code: str, timeout: float = 60) -> str:
        """The printed output of ``code``, which must not fail."""
        result = self.run(code, timeout)
        assert result["error"] is None and not result["states"], result
        return result["stdout"].strip()


@pytest.fixture(scope="module")
def ada(hub):
    return Learner(hub, "ada")


@pytest.fixture(scope="module")
def bob(hub):
    return Learner(hub, "bob")


def others_work(hub: LearnhubProcess, bob: Learner) -> None:
    """Another learner's kernel computes, their home takes a file, the hub answers."""
    assert bob.value("print(sum(range(1000)))") == "499500"
    assert bob.value("open('note.txt', 'w').write('x' * 1000); print(open('note.txt').read().count('x'))") \
        == "1000"
    assert hub.api("GET", "/hub/api/").status_code == 200


def test_limits_are_written_per_server_and_instructors_get_more(hub, ada):
    state = ada.state
    assert ada.cgroup_file("memory", "memory.limit_in_bytes").read_text().strip() == str(MEM)
    assert ada.cgroup_file("pids", "pids.max").read_text().strip() == str(PIDS)
    assert ada.cgroup_file("cpu", "cpu.cfs_quota_us").read_text().strip() == "100000"
    # Every process of the server (and its kernel) is in the cgroup.
    assert len(ada.cgroup_file("memory", "cgroup.procs").read_text().split()) >= 2
    assert os.path.ismount(hub.data_dir / "users" / "ada") and state["mounted_home"]
    teacher = Learner(hub, "tess", groups=["learnhub-instructors"])
    assert teacher.cgroup_file("memory", "memory.limit_in_bytes").read_text().strip() == str(2 * MEM)
    assert teacher.cgroup_file("pids", "pids.max").read_text().strip() == str(2 * PIDS)
    cgroup = teacher.cgroup_file("memory", "")
    hub.hub_api("DELETE", "/users/tess/server").raise_for_status()
    deadline = time.monotonic() + 60
    while cgroup.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not cgroup.exists(), "a stopped server's cgroup is removed"
    assert not os.path.ismount(hub.data_dir / "users" / "tess")


def test_a_fork_bomb_stops_at_the_process_limit(hub, ada, bob):
    # A real fork bomb (every child forks too), which ends by itself after 20 s.
    ada.value("""
import os, time
end = time.time() + 20
if os.fork() == 0:
    while time.time() < end:
        try:
            os.fork()
        except OSError:
            time.sleep(0.05)
    os._exit(0)
print("started")
""")
    time.sleep(2)
    # The learner's own kernel meets the limit too (a fork may slip through when a slot frees up).
    refused = ada.run("""
import os
refused = 0
for _ in range(50):
    try:
        pid = os.fork()
    except BlockingIOError:
        refused += 1
        continue
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
print('BlockingIOError' if refused else 'never refused')
""")
    denied = int(ada.cgroup_file("pids", "pids.events").read_text().split()[-1])
    current = int(ada.cgroup_file("pids", "pids.current").read_text())
    assert denied > 0 and current <= PIDS, (denied, current)
    assert "BlockingIOError" in refused["stdout"], refused
    others_work(hub, bob)  # during the bomb
    deadline = time.monotonic() + 60
    while int(ada.cgroup_file("pids", "pids.current").read_text()) > PIDS // 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    # Over: the learner's own kernel works again.
    assert ada.value("import os\npid = os.fork()\nif pid == 0: os._exit(0)\nos.waitpid(pid, 0)\nprint('ok')") == "ok"


def limits(learner: Learner) -> dict:
    """The server extension's GET learnhub/api/limits, through the proxy, as JupyterLab asks it."""
    response = requests.get(learner.server + "learnhub/api/limits", headers=learner.headers, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["memory"]


def test_a_memory_bomb_restarts_the_kernel_and_nothing_else(hub, ada, bob):
    before = int(ada.cgroup_file("memory", "memory.oom_control").read_text().split("oom_kill ")[-1].split()[0])
    # The server reads its own cgroup, bound read-only into its sandbox (JupyterLab's memory message).
    seen = limits(ada)
    assert seen["limit"] == MEM and seen["accounting"] == "cgroup v1" and seen["oom_kills"] == before, seen
    result = ada.run("x = b'x' * (1024 ** 3)\nprint(len(x))", timeout=120)
    # The kernel was killed by the memory limit; the server says so to JupyterLab ("restarting").
    assert result["states"] and result["states"][0] in ("restarting", "dead", "closed"), result
    after = int(ada.cgroup_file("memory", "memory.oom_control").read_text().split("oom_kill ")[-1].split()[0])
    assert after > before
    assert limits(ada)["oom_kills"] == after  # what JupyterLab's message is told, the same counter
    assert limits(bob)["oom_kills"] == 0  # the other learner's server has its own
    # The server lives on and its kernel comes back.
    assert requests.get(ada.server + "api/status", headers=ada.headers, timeout=30).status_code == 200
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        model = requests.get(ada.server + f"api/kernels/{ada.kernel}", headers=ada.headers, timeout=30)
        if model.status_code == 200 and model.json()["execution_state"] == "idle":
            break
        time.sleep(1)
    assert ada.value("print(6 * 7)", timeout=90) == "42"
    others_work(hub, bob)


def test_a_disk_filler_fills_only_its_own_home_and_tmp(hub, ada, bob):
    free_before = shutil.disk_usage(hub.data_dir).free
    out = ada.value("""
import errno, os
def fill(path):
    written = 0
    try:
        with open(path, 'wb') as f:
            while written < 512 * 1024 ** 2:
                f.write(b'\\0' * 1024 ** 2)
                written += 1024 ** 2
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        return written, e.errno
    return written, None
home = fill(os.path.expanduser('~/filler.bin'))
tmp = fill('/tmp/filler.bin')
os.remove(os.path.expanduser('~/filler.bin')); os.remove('/tmp/filler.bin')
print(home[0], home[1], tmp[0], tmp[1])
""", timeout=120)
    home_written, home_errno, tmp_written, tmp_errno = out.split()
    assert home_errno == "28" and int(home_written) <= DISK, out  # ENOSPC in its own 64 MB home
    assert tmp_errno == "28" and int(tmp_written) <= 32 * 1024 ** 2, out
    assert shutil.disk_usage(hub.data_dir).free > free_before - 128 * 1024 ** 2
    others_work(hub, bob)


def _port_of(process_marker: bytes, option: bytes) -> int:
    """A listening port read from a host process's command line (root reads /proc)."""
    for entry in Path("/proc").iterdir():
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(process_marker in a for a in args) and option in args:
            return int(args[args.index(option) + 1])
    raise LookupError(process_marker)


CONNECT = """
import socket
def attempt(host, port):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return 'open'
    except OSError as e:
        return type(e).__name__
"""


def test_the_network_fence(hub, ada, bob):
    """PostgreSQL, the proxy's API, the services' ports, another learner's kernel and server, any
    address of the host and the internet are out of reach; the hub and the platform are not."""
    # The server keeps the host's URLs (the fence takes the hub's and the proxy's ports of its 127.0.0.1 to
    # the host's), and those ports are reserved in its namespace: no kernel listens on one.
    urls = ada.value("import os, urllib.parse\n"
                     "print(urllib.parse.urlparse(os.environ['JUPYTERHUB_API_URL']).hostname, "
                     "urllib.parse.urlparse(os.environ['LEARNHUB_PUBLIC_URL']).hostname, "
                     "open('/proc/sys/net/ipv4/ip_local_reserved_ports').read().strip())")
    api_host, public_host, reserved = urls.split()
    assert api_host in ("127.0.0.1", "localhost") and public_host in ("127.0.0.1", "localhost"), urls
    assert reserved == ",".join(str(p) for p in ada.state["fence"]["ports"]), urls
    hub_host = ada.state["fence"]["host_ip"]
    proxy_api = _port_of(b"configurable-http-proxy", b"--api-port")
    services = hub.hub_api("GET", "/services").json()
    service_ports = [int(s["url"].rsplit(":", 1)[1].strip("/")) for s in services.values() if s.get("url")]
    assert service_ports
    bob_fence = bob.state["fence"]
    runtime = hub.data_dir / "users" / "bob" / ".local" / "share" / "jupyter" / "runtime"
    bob_kernel = json.loads(sorted(runtime.glob("kernel-*.json"))[0].read_text())
    targets = [("127.0.0.1", 5432), (hub_host, 5432), (hub_host, proxy_api), ("127.0.0.1", proxy_api),
               *[(hub_host, p) for p in service_ports], *[("127.0.0.1", p) for p in service_ports],
               ("127.0.0.1", bob_kernel["shell_port"]), (bob_fence["ns_ip"], bob_kernel["shell_port"]),
               (bob_fence["ns_ip"], bob_fence["port"]), (bob_fence["host_ip"], 5432), ("1.1.1.1", 443)]
    # The host's own addresses (the default route's) are no way around it.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            targets.append((probe.getsockname()[0], 5432))
        except OSError:
            pass
    code = CONNECT + f"print(repr([attempt(h, p) for h, p in {targets!r}]))"
    outcomes = eval(ada.value(code, timeout=120))
    assert "open" not in outcomes, [t for t, o in zip(targets, outcomes) if o == "open"]
    # The same places are reachable from the host: the fence, not their absence, stops the learner.
    with socket.create_connection(("127.0.0.1", 5432), timeout=3):
        pass
    with socket.create_connection(("127.0.0.1", proxy_api), timeout=3):
        pass
    # What the learner needs still works: the hub's API, the platform through the proxy.
    ok = ada.value("import os, urllib.request\n"
                   "print(urllib.request.urlopen(os.environ['JUPYTERHUB_API_URL'] + '/', timeout=10).status)\n"
                   "print(urllib.request.urlopen(os.environ['LEARNHUB_PUBLIC_URL'] + '/hub/api/', timeout=10).status)")
    assert ok.split() == ["200", "200"]


def test_fetch_and_submit_through_the_hub_still_work(hub, ada):
    def lab(method, path):
        return requests.request(method, ada.server + "learnhub/api/" + path, headers=ada.headers, timeout=180, json={})

    assert lab("POST", f"services/courses/courses/{COURSE}/enrollments").status_code in (200, 201)
    fetched = lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/fetch")
    assert fetched.status_code == 200, fetched.text
    # The fetched notebook is in the size-capped home, where the kernel sees it.
    assert ada.value(f"import os\nprint(os.path.exists(os.path.expanduser('~/{COURSE}/{ASSIGNMENT}/basics.ipynb')))") \
        == "True"
    submitted = lab("POST", f"assignments/{COURSE}/{ASSIGNMENT}/submit")
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["user"] == "ada"


def test_a_server_killed_by_its_memory_limit_says_why_at_the_next_start(hub, bob):
    carol = Learner(hub, "carol")
    # Make the server itself the OOM killer's choice (a process may raise the badness of its own
    # uid's processes), then exhaust the memory: the whole server goes, as when the server's own
    # memory (a large notebook file, an extension) meets the limit.
    carol.run("import os\nopen(f'/proc/{os.getppid()}/oom_score_adj', 'w').write('1000')\n"
              "x = b'x' * (1024 ** 3)", timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not hub.hub_api("GET", "/users/carol").json()["servers"]:
            break
        time.sleep(1)
    assert not hub.hub_api("GET", "/users/carol").json()["servers"], "the hub noticed the server gone"
    others_work(hub, bob)
    assert "carol's server was killed by its memory limit" in hub.log_tail(400)
    # Start it again as the spawn page does, and read the page's progress events while it starts.
    import threading

    started = []
    threading.Thread(target=lambda: started.append(hub.hub_api("POST", "/users/carol/server").status_code)).start()
    messages = []
    deadline = time.monotonic() + 60
    while not messages and time.monotonic() < deadline:
        with requests.get(f"{hub.url}/hub/api/users/carol/server/progress", stream=True, timeout=180,
                          headers={"Authorization": f"token {hub.admin_token}"}) as events:
            if events.status_code != 200:
                time.sleep(0.1)
                continue
            for line in events.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    messages.append(event.get("message", ""))
                    if event.get("ready") or event.get("failed"):
                        break
    assert any("memory limit (400 MB)" in m for m in messages), messages
    start_server(hub, "carol")
    assert started and started[0] in (201, 202)
