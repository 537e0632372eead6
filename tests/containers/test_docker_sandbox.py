"""The hostile-submission suite (tests/graders/test_hostile.py) on the Docker sandbox: every
notebook runs in a container of the ``grader`` image (``sandbox_class = "docker"``), started ahead
by a warm pool. The same tests, the same assertions as on bubblewrap; only the ``world`` fixture
differs (conftest.py). Skips without a Docker engine unless LEARNHUB_REQUIRE_DOCKER=1."""
from __future__ import annotations

import statistics
import subprocess
import time

from test_hostile import (  # noqa: F401 (collected here against the Docker world)
    test_cannot_read_secrets,
    test_fork_bomb,
    test_infinite_loop,
    test_killing_its_parent,
    test_no_network,
    test_not_a_notebook,
    test_printing_gigabytes,
    test_runtime_tampering_of_tests_cannot_help,
    test_sandbox_is_never_reused,
    test_unbounded_allocation,
)

from learnhub.graders import testing as T


def test_sandbox_is_a_locked_down_container(world):
    """A pooled sandbox is a running container with no network, a read-only root, no capabilities,
    an unprivileged user and the memory and pids limits asked for."""
    sb = world["pool"].take()
    try:
        if sb.proc is None:
            sb.start()
        out = subprocess.run(["docker", "inspect", sb.container_name, "--format",
                              "{{.HostConfig.NetworkMode}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} "
                              "{{.Config.User}} {{.HostConfig.Memory}} {{.HostConfig.PidsLimit}} {{.HostConfig.Privileged}}"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        network, readonly, capdrop, user, memory, pids, privileged = out.stdout.split()
        assert (network, readonly, user, privileged) == ("none", "true", "65534:65534", "false")
        assert "ALL" in capdrop
        assert int(memory) == sb.memory and int(pids) == sb.max_processes
    finally:
        sb.close()
    # closed: the container is gone (--rm)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if subprocess.run(["docker", "inspect", sb.container_name], capture_output=True).returncode != 0:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"container {sb.container_name} outlived its sandbox")


def test_submit_to_graded_latency_beside_bubblewrap(world, tmp_path):
    """The correct submission graded five times from a warm pool of each backend, alternately (so a
    busy machine weighs on both alike), a few seconds apart: every grading gets the full score; the medians are printed
    (the report of the Docker sandbox's submit-to-graded latency beside bubblewrap's), and the Docker
    sandbox stays interactive."""
    from learnhub.graders.engine import GradingEngine
    from learnhub.graders.pool import WarmPool
    from learnhub.graders.sandbox import bwrap_path
    from sandbox_tools import LIMITS

    backends = {"docker": (world["engine"], world["prepared"], world["pool"])}
    if bwrap_path():
        engine = GradingEngine(workdir=str(tmp_path / "bwrap"), limits=LIMITS, sandbox_class="bubblewrap")
        backends["bubblewrap"] = (engine, engine.prepare(world["source"]), WarmPool(engine, size=2, limits=LIMITS))
    times = {name: [] for name in backends}
    try:
        for i in range(5):
            # submissions a few seconds apart, as learners' are: the pools are full again (a
            # submission of two notebooks takes two sandboxes; a container starts in a second or two)
            time.sleep(3)
            for name, (engine, prepared, pool) in backends.items():
                sub = T.make_submission(world["release"], "correct", world["base"] / "subs" / f"latency-{name}{i}")
                t0 = time.perf_counter()
                r = engine.grade(prepared, sub, sandbox_factory=pool)
                times[name].append(time.perf_counter() - t0)
                assert r["score"] == 7.0 and r["limits_hit"] == [], (name, r)
    finally:
        if "bubblewrap" in backends:
            backends["bubblewrap"][2].close()
            backends["bubblewrap"][0].close()
    for name, values in times.items():
        print(f"{name} sandbox submit->graded (warm pool): median {statistics.median(values):.2f} s, "
              f"all {[round(t, 2) for t in values]}")
    assert statistics.median(times["docker"]) < 20, times
