"""Services talk over HTTP or the event log: none imports another's code or touches another's tables.

Who owns what (``docs/architecture.md``): each service its own tables; the grading queue
(``grading_jobs``, the ``learnhub.graders`` engine) belongs to the feedback service, which runs the
workers; the event log and its cursors are the core's and every component may use them.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Table

from learnhub import db as lhdb

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("courses", "feedback", "recommender", "analytics", "notifications", "singleuser")
#: engines a service may import besides the core, because it owns them
OWNED_ENGINES = {"feedback": {"learnhub.graders"}, "recommender": {"learnhub.recommender"}}
ENGINES = {"learnhub.graders", "learnhub.recommender"}


def imports_of(folder: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name, []).append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_no_other_service_and_only_the_engines_it_owns(service):
    imported = imports_of(REPO / "extensions" / service)
    others = {name: where for name, where in imported.items()
              if name.startswith("learnhub.extensions.") and name.split(".")[2] != service}
    assert others == {}, f"{service} imports other services' code: {others}"
    engines = {name: where for name, where in imported.items()
               if any(name == e or name.startswith(e + ".") for e in ENGINES)
               and not any(name == e or name.startswith(e + ".") for e in OWNED_ENGINES.get(service, ()))}
    assert engines == {}, f"{service} imports an engine it does not own: {engines}"


def table_owners() -> dict[str, str]:
    """table name → the package that declares it (the one that may read and write it)."""
    import learnhub.extensions.analytics.aggregates as aggregates
    import learnhub.extensions.courses.models  # noqa: F401
    import learnhub.extensions.feedback.models  # noqa: F401
    import learnhub.extensions.notifications.models  # noqa: F401
    import learnhub.graders.models  # noqa: F401
    import learnhub.models  # noqa: F401

    owners = {}
    for mapper in lhdb.Base.registry.mappers:
        module = mapper.class_.__module__
        owner = "feedback" if module.startswith("learnhub.graders") else \
            module.split(".")[2] if module.startswith("learnhub.extensions.") else "core"
        owners[mapper.local_table.name] = owner
    for table in aggregates.AGGREGATES.tables.values():
        owners[table.name] = "analytics"
    return owners


def test_every_table_has_one_owner():
    owners = table_owners()
    assert owners["events"] == owners["event_cursors"] == "core"
    assert owners["grading_jobs"] == "feedback" and owners["submissions"] == "courses"
    assert owners["analytics_progress"] == "analytics" and owners["help_requests"] == "feedback"


SQL = re.compile(r"\b(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|FROM|JOIN)\b", re.IGNORECASE)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_names_no_other_services_table(service):
    """In SQL text, or as a ``table()``/``Table()`` view of its own (its models are refused by the
    import test above)."""
    foreign = {name for name, owner in table_owners().items() if owner not in ("core", service)}
    hits = []
    for path in sorted((REPO / "extensions" / service).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "table", "Table", "sa_table") and node.args and isinstance(node.args[0], ast.Constant):
                if node.args[0].value in foreign:
                    hits.append(f"{where} a view of {node.args[0].value}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                words = set(re.findall(r"[A-Za-z_]+", node.value))
                hits += [f"{where} SQL on {name}" for name in sorted(foreign & words)
                         if re.search(rf"\b(FROM|JOIN|INTO|UPDATE)\s+{name}\b", node.value, re.IGNORECASE)]
    assert hits == [], f"{service} reads other services' tables: {hits}"


def test_a_learners_server_fetches_and_submits_without_the_courses_service_code():
    """What nbgrader's exchange and the server extension load in a learner's server."""
    probe = ("import sys\n"
             "import learnhub.extensions.singleuser, learnhub.extensions.singleuser.exchange\n"
             "import learnhub.extensions.singleuser.nbgrader_exchange, learnhub.extensions.singleuser.handlers\n"
             "import learnhub.extensions.singleuser.activity\n"
             "print(sorted(m for m in sys.modules if m.startswith('learnhub.extensions.')\n"
             "             and not m.startswith('learnhub.extensions.singleuser')))\n"
             "print(sorted(m for m in ('learnhub.graders', 'learnhub.db', 'learnhub.models', 'learnhub.events')\n"
             "             if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    services, engines = out.stdout.splitlines()
    assert services == "[]" and engines == "[]"  # no service, no engine, no learnhub database code


def test_core_models_do_not_import_the_event_log():
    """The after-flush hook is installed where sessions are made: no models ↔ events import cycle."""
    probe = "import sys, learnhub.models, learnhub.db\nprint('learnhub.events' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_table_views_are_not_declared_in_services():
    """No service declares a private SQLAlchemy Table over someone else's table (as a 'read-only view')."""
    import learnhub.extensions.analytics.aggregates as aggregates

    tables = [obj for obj in vars(aggregates).values() if isinstance(obj, Table)]
    assert {t.name for t in tables} <= set(aggregates.AGGREGATES.tables)
