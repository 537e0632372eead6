"""The learnhub database: SQLAlchemy 2 engine, sessions and the declarative base.

One database holds every learnhub table (the hub's own database is separate).
SQLite is the embedded default, PostgreSQL (psycopg 3) the production store.
Every component declares its models on :class:`Base`; the schema is created and
changed only by Alembic migrations in ``learnhub/migrations`` (:func:`upgrade`).
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy import JSON, Column, MetaData, Table, create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names, so that Alembic migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` URLs as people write them and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets the services and grading workers read while one of them writes;
    # busy_timeout makes concurrent writers wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url`` with the settings learnhub needs on each backend."""
    url = normalize_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _fold_flushed_events(session: Session, _flush_context) -> None:
    from .events import fold_flushed  # imported on first flush: the event log imports the models

    fold_flushed(session)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions of the learnhub database. Events written in them as ORM objects reach the event
    log's listeners (the analytics summaries) in the same flush, as appended ones do."""
    factory = sessionmaker(engine, expire_on_commit=False)
    event.listen(factory, "after_flush", _fold_flushed_events)
    return factory


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


_STAGES: dict[str, Table] = {}


def copy_into_stage(session: Session, table: Table, rows: list[dict]) -> Table:
    """PostgreSQL: COPY ``rows`` into a session-private temporary table shaped like ``table`` and
    return it, for an ``INSERT ... SELECT ... ON CONFLICT`` from it.

    COPY is several times faster than multi-row INSERTs, whose parameter handling dominated
    ingestion of events; the INSERT from the stage keeps ON CONFLICT's semantics.
    """
    name = f"lh_stage_{table.name}"
    stage = _STAGES.get(name)
    if stage is None:
        stage = _STAGES[name] = Table(name, MetaData(), *[Column(c.name, c.type) for c in table.columns])
    connection = session.connection()
    # A temporary table lives as long as the database connection (pooled), its rows for one transaction.
    connection.exec_driver_sql(f"CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE {table.name}) ON COMMIT DELETE ROWS")
    connection.exec_driver_sql(f"DELETE FROM {name}")
    columns = [c.name for c in table.columns]
    is_json = [isinstance(c.type, JSON) for c in table.columns]
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor:
        with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([json.dumps(row.get(c)) if j and row.get(c) is not None else row.get(c)
                                for c, j in zip(columns, is_json)])
    return stage


def ping(engine: Engine) -> None:
    """Raise if the database cannot answer a trivial query."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def alembic_config(url: str):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's config is an INI file: '%' must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` with Alembic."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
