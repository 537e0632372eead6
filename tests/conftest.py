"""Fixtures every suite shares.

The suite runs against SQLite by default and against PostgreSQL when
``LEARNHUB_TEST_DB_URL`` is set (for example ``postgresql://postgres@127.0.0.1:5432/test``).
On PostgreSQL each ``db_url`` gets a database of its own, created from that URL's
server and dropped afterwards, so tests never see each other's rows.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from learnhub import db as lhdb

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))  # tests/hubtools.py, tests/dbtools.py
from dbtools import TEST_DB_URL, backend_name, create_database, drop_database  # noqa: E402,F401


@pytest.fixture
def empty_db_url(tmp_path):
    """An empty database (no tables) on the backend under test."""
    url = create_database(tmp_path)
    yield url
    drop_database(url)


@pytest.fixture
def db_url(empty_db_url):
    """A database on the backend under test, migrated to the newest revision."""
    lhdb.upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture
def db_engine(db_url):
    engine = lhdb.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session_factory(db_engine):
    return lhdb.make_session_factory(db_engine)


@pytest.fixture
def hub_db_url(tmp_path):
    """A database for JupyterHub's own tables (SQLite file, or a new PostgreSQL database)."""
    url = create_database(tmp_path, "hub")
    yield url
    drop_database(url)


@pytest.fixture
def hub_factory(tmp_path, empty_db_url, hub_db_url):
    """Make (and finally stop) real platforms, ``learnhub up`` on free ports and a temporary data dir."""
    from hubtools import LearnhubProcess

    started = []

    def make(data_dir=None, **kwargs):
        hub = LearnhubProcess(data_dir or tmp_path / "data", empty_db_url, hub_db_url, **kwargs)
        started.append(hub)
        return hub

    yield make
    for hub in started:
        hub.stop()


@pytest.fixture
def hub(hub_factory):
    """A running platform with the embedded default (no demo course)."""
    return hub_factory().start()


DATABASE_FIXTURES = {"db_url", "empty_db_url", "hub_db_url", "db_engine", "db_session_factory",
                     "hub", "hub_factory"}


def pytest_collection_modifyitems(config, items):
    """With ``LEARNHUB_TEST_DB_URL`` set, run only the tests that touch a database.

    Tests without a database (models on in-memory data, nbgrader on files) give the same
    result on every backend; the SQLite run covers them. ``LEARNHUB_TEST_ALL=1`` runs
    everything anyway.
    """
    if not TEST_DB_URL or os.environ.get("LEARNHUB_TEST_ALL") == "1":
        return
    selected, deselected = [], []
    for item in items:
        uses_db = DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("db")
        (selected if uses_db else deselected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


#: loggers a service's ``init_logging`` configures (JSON to stderr, no propagation)
SERVICE_LOGGERS = ("learnhub", "tornado.access", "tornado.application", "tornado.general", "JupyterHub")


@pytest.fixture(autouse=True)
def _loggers_as_they_were():
    """A service built in-process configures the process's loggers as a service process does; put
    them back after the test, so that no test depends on which tests ran before it."""
    import logging

    saved = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate,
                    logging.getLogger(name).level) for name in SERVICE_LOGGERS}
    yield
    for name, (handlers, propagate, level) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate, logger.level = propagate, level
