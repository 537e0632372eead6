"""Fixtures of the LTI tests: the test LMS (tests/lti/platform.py) and learnhub's engines on the database
under test."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lms_platform import Platform  # noqa: E402

from learnhub.lti.engine import LaunchEngine  # noqa: E402
from learnhub.lti.keys import ToolKeys  # noqa: E402
from learnhub.lti.settings import LtiSettings  # noqa: E402

LAUNCH_URL = "http://127.0.0.1:1/hub/lti/launch"  # in-process: the launch never goes to this URL


@pytest.fixture
def lms():
    platform = Platform().start()
    platform.redirect_uris.add(LAUNCH_URL)
    yield platform
    platform.stop()


@pytest.fixture
def tool_keys(tmp_path):
    return ToolKeys(tmp_path / "data")


@pytest.fixture
def lti_settings():
    return LtiSettings(score_retry_seconds=0.0, score_max_attempts=3)


@pytest.fixture
def launch_engine(db_session_factory, tool_keys, lms, lti_settings):
    engine = LaunchEngine(db_session_factory, tool_keys, launch_url=LAUNCH_URL, settings=lti_settings)
    engine.sync_config_platforms([lms.registration()])
    lms.tool_jwks = tool_keys.jwks
    return engine
