"""``learnhub up`` with ``LEARNHUB_SPAWNER=docker`` for real: a learner's server is a container of the
``learnhub/singleuser`` image started by DockerSpawner (host networking: the engine here has no
bridge), with their work on a named volume that outlives the container, learnhub's server extension
loaded and reaching learnhub's services through the hub. Skips without Docker unless
LEARNHUB_REQUIRE_DOCKER=1."""
from __future__ import annotations

import json
import subprocess

import pytest

from dockertools import need_docker

pytestmark = pytest.mark.hub

IMAGE = "learnhub/singleuser:latest"
USER = "dora"


def _inspect(name: str) -> dict | None:
    out = subprocess.run(["docker", "inspect", name], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)[0] if out.returncode == 0 else None


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    need_docker(IMAGE)
    from hubtools import module_platform

    subprocess.run(["docker", "rm", "-f", f"jupyter-{USER}"], capture_output=True)
    subprocess.run(["docker", "volume", "rm", "-f", f"learnhub-user-{USER}"], capture_output=True)
    try:
        yield from module_platform(tmp_path_factory, "docker-spawner", services=["courses"],
                                   extra_env={"LEARNHUB_SPAWNER": "docker", "LEARNHUB_DOCKER_NETWORK": "host"},
                                   config="c.Spawner.mem_limit = '1G'\nc.Spawner.cpu_limit = 1.0\n"
                                          "c.Spawner.start_timeout = 180\nc.Spawner.http_timeout = 120\n")
    finally:
        subprocess.run(["docker", "rm", "-f", f"jupyter-{USER}"], capture_output=True)
        subprocess.run(["docker", "volume", "rm", "-f", f"learnhub-user-{USER}"], capture_output=True)


def test_learner_server_in_a_container(platform):
    from hubtools import start_server

    hub = platform
    assert hub.hub_api("POST", f"/users/{USER}").status_code in (201, 409)
    prefix = start_server(hub, USER, timeout=240)
    container = _inspect(f"jupyter-{USER}")
    assert container, "no container for the learner's server"
    assert container["Config"]["Image"] == IMAGE
    assert container["Config"]["User"] in ("1000:100", "1000")
    assert container["HostConfig"]["Memory"] == 2**30
    assert container["HostConfig"]["CpuQuota"] == 100_000
    mounts = {m["Destination"]: m for m in container["Mounts"]}
    assert mounts["/home/jovyan/work"]["Name"] == f"learnhub-user-{USER}"

    token = hub.user_token(USER)
    headers = {"Authorization": f"token {token}"}
    import requests

    status = requests.get(prefix + "api/status", headers=headers, timeout=30)
    assert status.status_code == 200, status.text
    # learnhub's server extension is loaded and reaches the courses service through the hub
    context = requests.get(prefix + "learnhub/api/context", headers=headers, timeout=60)
    assert context.status_code == 200, (context.status_code, context.text, hub.log_tail())
    assert USER in context.text

    # work saved in the server outlives its container
    saved = requests.put(prefix + "api/contents/notes.txt", headers=headers, timeout=30,
                         json={"type": "file", "format": "text", "content": "kept"})
    assert saved.status_code in (200, 201), saved.text
    assert hub.hub_api("DELETE", f"/users/{USER}/server").status_code in (202, 204)
    import time

    deadline = time.monotonic() + 120
    while _inspect(f"jupyter-{USER}") is not None:
        assert time.monotonic() < deadline, "the container outlived its server"
        time.sleep(1)
    prefix = start_server(hub, USER, timeout=240)
    again = requests.get(prefix + "api/contents/notes.txt", headers=headers, timeout=30)
    assert again.status_code == 200 and again.json()["content"] == "kept", again.text
    hub.hub_api("DELETE", f"/users/{USER}/server")
