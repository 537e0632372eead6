"""Fences made at once get slots of their own; a namespace left by a hub that is gone is taken again.

Real namespaces, veth pairs and nftables elements (root, iproute2, nftables), as the spawner makes
them (learnhub/fence.py), without a platform: two spawns at once, or two hubs on one machine, each
call ``Fence.create`` while the other's server is still starting (its namespace holds no process yet).
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from learnhub.fence import NETNS_DIR, Fence, _owner_file, fence_possible

pytestmark = pytest.mark.skipif(fence_possible() is not None, reason=f"no fence here: {fence_possible()}")

SUBNET = "10.213.0.0/16"  # SandboxedLocalSpawner.fence_subnet's default


def test_a_starting_servers_namespace_is_not_taken_by_the_next_fence():
    first = Fence.create(SUBNET, [9], False)
    try:
        assert (NETNS_DIR / first.netns).exists()
        # nothing runs in the first namespace yet: its server is starting
        second = Fence.create(SUBNET, [9], False)
        try:
            assert second.slot != first.slot and second.host_ip != first.host_ip
            assert (NETNS_DIR / first.netns).exists()
        finally:
            second.remove()
        assert (NETNS_DIR / first.netns).exists()  # removing one leaves the other
    finally:
        first.remove()
    assert not (NETNS_DIR / first.netns).exists() and not _owner_file(first.netns).exists()


def test_a_namespace_whose_hub_is_gone_is_taken_again():
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    left = Fence.create(SUBNET, [9], False)
    _owner_file(left.netns).write_text(f"{dead_pid}\n")  # as a hub killed before it stopped its servers leaves it
    try:
        again = Fence.create(SUBNET, [9], False, slot=left.slot)
        try:
            assert again.slot == left.slot
        finally:
            again.remove()
    finally:
        left.remove()
