"""Two caches around nbgrader that change its speed, not its results.

1. nbgrader's ``Gradebook`` creates a new SQLAlchemy engine every time it is opened, and
   every preprocessor opens one; a new engine means SQLAlchemy compiles every query again,
   which was most of the grading time. Gradebooks whose URL starts with one of
   :data:`PRIVATE_URL_PREFIXES` (the engine's own scratch gradebooks) get one engine per
   URL instead, with ``synchronous=OFF``: they are scratch copies, the durable result is
   stored in the learnhub database. Other URLs are untouched.
   Opening such a gradebook again skips what only matters for a new database (table
   inspection, ``create_all``, which we did the first time) and keeps the pooled
   connection instead of disposing of it.
2. nbgrader's ``MetadataValidator`` calls ``jsonschema.validate`` per cell, which checks
   the schema and builds a validator every time. We give its module a ``jsonschema`` whose
   ``validate`` does the same steps (check_schema, iter_errors, best_match, raise) with the
   checked validator cached per schema.
"""
from __future__ import annotations

import threading

import jsonschema
import nbgrader.api as _nbapi
import nbgrader.nbgraderformat.common as _nbformat_common
from sqlalchemy import event

ENGINES: dict[str, object] = {}
ENGINES_LOCK = threading.Lock()
PRIVATE_URL_PREFIXES: set[str] = set()
_original_create_engine = getattr(_nbapi.create_engine, "__wrapped__", _nbapi.create_engine)


def _scratch_pragmas(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.execute("PRAGMA journal_mode=MEMORY")
    cursor.close()


def cached_create_engine(url, *args, **kwargs):
    url_s = str(url)
    if not any(url_s.startswith(p) for p in PRIVATE_URL_PREFIXES):
        return _original_create_engine(url, *args, **kwargs)
    with ENGINES_LOCK:
        engine = ENGINES.get(url_s)
        if engine is None:
            engine = ENGINES[url_s] = _original_create_engine(url, *args, **kwargs)
            event.listen(engine, "connect", _scratch_pragmas)
            # Gradebook.close() disposes of its engine; this one is shared, keep its pool
            engine.dispose = lambda *a, **k: None
        return engine


def dispose(engine) -> None:
    """Really dispose of a cached engine (when its prepared assignment is closed)."""
    type(engine).dispose(engine)


_INITIALIZED: set[int] = set()
_original_inspect = _nbapi.inspect
_original_create_all = _nbapi.Base.metadata.create_all


class _KnownTables:
    def get_table_names(self):
        return ["(initialized)"]


def _inspect(subject, *args, **kwargs):
    if id(subject) in _INITIALIZED and subject in ENGINES.values():
        return _KnownTables()
    return _original_inspect(subject, *args, **kwargs)


def _create_all(*args, bind=None, **kwargs):
    if bind is not None and id(bind) in _INITIALIZED and bind in ENGINES.values():
        return None
    _original_create_all(*args, bind=bind, **kwargs)
    if bind is not None and bind in ENGINES.values():
        _INITIALIZED.add(id(bind))


_nbapi.inspect = _inspect
_nbapi.Base.metadata.create_all = _create_all


cached_create_engine.__wrapped__ = _original_create_engine
_nbapi.create_engine = cached_create_engine


class _CachedJsonschema:
    """``jsonschema`` with a cached ``validate`` (same checks, same errors)."""

    def __init__(self):
        self._validators: dict[int, tuple[object, object]] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(jsonschema, name)

    def validate(self, instance, schema, *args, **kwargs):
        if args or kwargs:
            return jsonschema.validate(instance, schema, *args, **kwargs)
        with self._lock:
            entry = self._validators.get(id(schema))
            if entry is None or entry[0] is not schema:
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                entry = (schema, cls(schema))
                self._validators[id(schema)] = entry
        error = jsonschema.exceptions.best_match(entry[1].iter_errors(instance))
        if error is not None:
            raise error


_nbformat_common.jsonschema = _CachedJsonschema()
