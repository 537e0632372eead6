"""The security suite's shared platform: one ``learnhub up`` with real data (tests/security/securitytools.py)
for the permission matrix and then the fuzzer, started once for the folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # securitytools, matrix
sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))  # labtools: the browser


@pytest.fixture(scope="package")
def populated(tmp_path_factory):
    """``learnhub up`` with the demo course and real data; the matrix walks it first, the fuzzer after."""
    from hubtools import module_platform
    from securitytools import populate

    platform = module_platform(tmp_path_factory, "security", demo=True,
                               extra_env={"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1",
                                          # the fuzzer submits more than a person would
                                          "LEARNHUB_SUBMISSIONS_PER_MINUTE": "0"})
    hub = next(platform)
    try:
        yield populate(hub, tmp_path_factory.mktemp("security-data"))
    finally:
        next(platform, None)
