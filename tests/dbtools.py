"""Databases for tests: a new SQLite file, or a new PostgreSQL database when
``LEARNHUB_TEST_DB_URL`` is set. Imported by ``tests/conftest.py`` and by test modules
(by name, ``from dbtools import ...``: there are several conftest modules in this tree)."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from learnhub import db as lhdb

TEST_DB_URL = os.environ.get("LEARNHUB_TEST_DB_URL", "")


def backend_name() -> str:
    return make_url(TEST_DB_URL).get_backend_name() if TEST_DB_URL else "sqlite"


def _admin_engine():
    return create_engine(
        lhdb.normalize_url(TEST_DB_URL), isolation_level="AUTOCOMMIT", pool_pre_ping=True
    )


def create_database(tmp_path: Path, name: str = "learnhub") -> str:
    """A new, empty database URL on the backend under test."""
    if not TEST_DB_URL:
        return f"sqlite:///{tmp_path / (name + '.sqlite')}"
    database = f"lh_{name}_{uuid.uuid4().hex[:12]}".lower()
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    engine.dispose()
    return make_url(lhdb.normalize_url(TEST_DB_URL)).set(database=database).render_as_string(
        hide_password=False
    )


def drop_database(url: str) -> None:
    if lhdb.is_sqlite(url):
        return
    database = make_url(url).database
    engine = _admin_engine()
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    engine.dispose()
