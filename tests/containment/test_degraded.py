"""What the spawner does where the kernel's mechanisms are not available, and the cgroup v2 files.

No platform here: the spawner's decisions are called directly.

* Not root: the tests make ``os.geteuid`` answer 1000 (a mock: CI runs as root, and the refusal must
  be tested where it is decided). The real "not root" path has nothing else to it: the fence and
  the cgroup are not even attempted.
* cgroup v2: this machine mounts cgroup v1 controllers (the unified tree has none enabled), so the
  v2 files are checked on a folder laid out like a v2 tree (``cgroup.controllers``,
  ``cgroup.subtree_control``) — a mock of cgroupfs, said here because the real one cannot be had.
  The v1 path is tested for real in test_containment.py.
"""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from learnhub import fence
from learnhub.cgroups import Cgroup, cgroup_version
from learnhub.spawner import SandboxedLocalSpawner


def spawner(**config) -> SandboxedLocalSpawner:
    user = SimpleNamespace(name="ada", id=7, escaped_name="ada", url="/user/ada/", groups=[])
    return SandboxedLocalSpawner(user=user, **config)


@pytest.fixture
def not_root(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)


def test_not_root_a_required_fence_refuses_clearly(not_root):
    s = spawner(network_fence="on")
    with pytest.raises(RuntimeError, match="network fence cannot be put up: the hub does not run as root"):
        s._make_fence()
    assert fence.fence_possible().startswith("the hub does not run as root")


def test_not_root_auto_degrades_with_a_loud_warning(not_root, caplog):
    s = spawner(network_fence="auto", require_limits=False)
    s.log = logging.getLogger("test-spawner")
    with caplog.at_level(logging.WARNING, logger="test-spawner"):
        s._make_fence()
        s._make_cgroup()
    text = caplog.text
    assert "WITHOUT a network fence" in text and "shares the host's network" in text
    assert "WITHOUT its memory, pids, cpu limit" in text
    assert s._fence is None and s.ip == "127.0.0.1"  # the host loopback, as without learnhub
    # The process limit still holds through RLIMIT_NPROC when the pids cgroup is missing... only for a
    # server of its own uid, which needs root: not root, nothing is set (the server is the hub's user).
    assert s.run_as_uid is None


def test_not_root_required_limits_refuse(not_root):
    s = spawner(require_limits=True)
    with pytest.raises(RuntimeError, match="limits memory, pids, cpu cannot be enforced"):
        s._make_cgroup()


def test_off_means_the_hosts_network_without_a_warning(caplog):
    s = spawner(network_fence="off")
    s.log = logging.getLogger("test-spawner")
    with caplog.at_level(logging.WARNING, logger="test-spawner"):
        s._make_fence()
    assert s._fence is None and "WITHOUT" not in caplog.text


def test_cgroup_v2_files(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    assert cgroup_version(tmp_path) == 2
    # What the kernel does on a write of "+memory +pids": the parent's subtree_control lists them.
    parent = tmp_path / "learnhub-servers"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("")
    cg = Cgroup("ada-1", "learnhub-servers", tmp_path)
    applied = cg.create(memory=512 * 1024 ** 2, pids=100, cpu=0.5)
    folder = parent / "ada-1"
    assert applied == {"memory", "pids", "cpu"}
    assert (folder / "memory.max").read_text() == str(512 * 1024 ** 2)
    assert (folder / "memory.swap.max").read_text() == "0"
    assert (folder / "pids.max").read_text() == "100"
    assert (folder / "cpu.max").read_text() == "50000 100000"
    assert "+memory" in (parent / "cgroup.subtree_control").read_text()
    # Counters as the kernel writes them.
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\n")
    (folder / "pids.events").write_text("max 5\n")
    assert cg.oom_kills() == 1 and cg.memory_hits() == 12 and cg.pids_denied() == 5


def test_no_cgroups_at_all(tmp_path):
    cg = Cgroup("ada-1", "learnhub-servers", tmp_path)
    assert cg.version is None and cg.create(memory=1, pids=1) == set() and cg.problems
