"""Whether a Docker engine and learnhub's images are here, for the container tests.

Without Docker these tests skip with the reason, so that a newcomer's ``./bootstrap.sh test``
passes; with ``LEARNHUB_REQUIRE_DOCKER=1`` (as ``.ci/run`` sets it) a missing engine or image fails
them instead, so CI cannot go green by skipping.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIRE = os.environ.get("LEARNHUB_REQUIRE_DOCKER", "") not in ("", "0")


@functools.lru_cache(maxsize=None)
def docker_missing() -> str | None:
    """Why no Docker engine can run a container here, or None when ``docker info`` answers."""
    if not shutil.which("docker"):
        return "the docker client is not installed"
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 60 s"
    if info.returncode != 0:
        return f"no Docker engine answers docker info: {(info.stderr or info.stdout).strip()[-300:]}"
    return None


def image_missing(image: str) -> str | None:
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60).returncode != 0:
        return f"the image {image} is not built here (images/build.sh)"
    return None


def need_docker(*images: str) -> None:
    """Skip (or, with LEARNHUB_REQUIRE_DOCKER=1, fail) unless Docker runs and the images are built."""
    reason = docker_missing()
    for image in images:
        if reason:
            break
        reason = image_missing(image)
    if reason:
        if REQUIRE:
            pytest.fail(f"LEARNHUB_REQUIRE_DOCKER is set but {reason}", pytrace=False)
        pytest.skip(f"{reason}; start one with images/dockerd.sh (as root) and images/build.sh, "
                    f"or set LEARNHUB_REQUIRE_DOCKER=1 to make this a failure")
