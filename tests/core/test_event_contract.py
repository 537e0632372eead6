"""The event contract: who writes which verb to the event log and who reads it, checked against the code.

Every component declares an :class:`~learnhub.event_schemas.EventContract` (``EVENTS`` in its package).
This suite lists them as one table (``docs/events.md`` shows the same table, kept true here) and fails
when a component waits for a verb nobody writes, writes a verb the vocabulary does not have, declares
a verb its code never names, or names one it does not declare. It also refuses the ways around the
contract: verbs as string literals, and ``Event`` rows built by hand instead of the validating append.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from learnhub import hub_events
from learnhub.event_schemas import VERB_SPECS, Verb
from learnhub.extensions import analytics, courses, feedback, notifications, recommender, singleuser

REPO = Path(__file__).resolve().parents[2]

#: component → (its contract, the code it consists of)
COMPONENTS = {
    "courses": (courses.EVENTS, [REPO / "extensions/courses"]),
    "feedback": (feedback.EVENTS, [REPO / "extensions/feedback"]),
    "recommender": (recommender.EVENTS, [REPO / "extensions/recommender", REPO / "recommender"]),
    "analytics": (analytics.EVENTS, [REPO / "extensions/analytics"]),
    "notifications": (notifications.EVENTS, [REPO / "extensions/notifications"]),
    "singleuser": (singleuser.EVENTS, [REPO / "extensions/singleuser"]),
    "hub": (hub_events.EVENTS, [REPO / "learnhub/hub_events.py"]),
}
EXTERNAL = [analytics.EXTERNAL_EVENTS]
#: demo and benchmark data, written like events from other tools (EXTERNAL above)
DATA_GENERATORS = {REPO / "extensions/analytics/synthetic.py"}
#: the only modules that may build ``Event`` rows themselves
EVENT_LOG_MODULES = {REPO / "learnhub/events.py", REPO / "learnhub/models.py"}
PRODUCING_CALLS = {"record", "record_event", "make_event", "record_sent", "append"}
VERB_VALUES = {verb.value for verb in Verb}


def python_files(paths):
    for path in paths:
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def parsed(paths):
    for path in python_files(paths):
        yield path, ast.parse(path.read_text(), str(path))


def is_contract(node) -> bool:
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id.endswith("EVENTS")
                                                for t in node.targets)


def verb_of(node) -> Verb | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Verb":
        return Verb[node.attr]
    return None


def mentions(paths) -> tuple[set[Verb], set[Verb]]:
    """(every Verb the code names, those it passes to a call that writes an event)."""
    named, produced = set(), set()
    for path, tree in parsed(paths):
        if path in DATA_GENERATORS:
            continue
        skip = {id(n) for stmt in tree.body if is_contract(stmt) for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            verb = verb_of(node)
            if verb is not None:
                named.add(verb)
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in PRODUCING_CALLS:
                    produced |= {v for v in map(verb_of, node.args) if v is not None}
    return named, produced


def table() -> dict[Verb, dict[str, list[str]]]:
    rows = {verb: {"produced by": [], "consumed by": []} for verb in Verb}
    for contract in [c for c, _ in COMPONENTS.values()] + EXTERNAL:
        for verb in contract.produces:
            rows[verb]["produced by"].append(contract.component)
        for verb in contract.consumes:
            rows[verb]["consumed by"].append(contract.component)
    return rows


def markdown_table() -> str:
    lines = ["| verb | produced by | consumed by | about |", "| --- | --- | --- | --- |"]
    for verb, row in table().items():
        lines.append(f"| `{verb.value}` | {', '.join(row['produced by']) or '—'} | "
                     f"{', '.join(row['consumed by']) or '—'} | {VERB_SPECS[verb].about} |")
    return "\n".join(lines)


def test_the_contract_table():
    """Print the table (``pytest -s``); docs/events.md shows the same one."""
    text = markdown_table()
    print("\n" + text)
    docs = (REPO / "docs/events.md").read_text()
    assert text in docs, "docs/events.md is out of date; its table should read:\n" + text


def test_every_verb_a_component_waits_for_is_written_by_someone():
    waiting = {verb: row["consumed by"] for verb, row in table().items()
               if row["consumed by"] and not row["produced by"]}
    assert waiting == {}, f"consumers wait for verbs no producer writes: {waiting}"


def test_every_verb_of_the_vocabulary_has_a_producer_and_a_schema():
    assert set(VERB_SPECS) == set(Verb)
    unwritten = [verb.value for verb, row in table().items() if not row["produced by"]]
    assert unwritten == [], f"verbs in the vocabulary that nothing writes (remove them or write them): {unwritten}"


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_a_components_declaration_is_what_its_code_does(name):
    contract, paths = COMPONENTS[name]
    named, produced = mentions(paths)
    declared = set(contract.produces) | set(contract.consumes)
    assert named - declared == set(), f"{name} names verbs it does not declare: {sorted(named - declared)}"
    assert declared - named == set(), f"{name} declares verbs its code never names: {sorted(declared - named)}"
    assert produced <= set(contract.produces), \
        f"{name} writes verbs it does not declare as produced: {sorted(produced - set(contract.produces))}"


def test_consumers_subscribe_by_the_declared_verbs():
    """The feeds the consumers actually read, against their declarations."""
    from learnhub.extensions.courses.app import DELETION_VERBS
    from learnhub.extensions.courses.grades import GradeRecorder
    from learnhub.extensions.notifications.triggers import EventTriggers

    assert set(EventTriggers(None, None, None).feed.verbs) == set(notifications.EVENTS.consumes)
    # the courses service reads two feeds: grading results, and the hub's deletions of users
    assert set(GradeRecorder(None).feed.verbs) | set(DELETION_VERBS) == set(courses.EVENTS.consumes)


def production_code():
    roots = [REPO / "learnhub", REPO / "extensions", REPO / "graders", REPO / "recommender"]
    return [(path, tree) for path, tree in parsed(roots)
            if "migrations" not in path.parts and "node_modules" not in path.parts]


def test_no_verb_is_written_as_a_string():
    """Producers and consumers name verbs through ``Verb``: a typo is an AttributeError, not a
    notification that never fires."""
    found = []
    for path, tree in production_code():
        if path.name == "event_schemas.py" or path in DATA_GENERATORS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(side, ast.Attribute) and side.attr == "verb"
                                                     for side in [node.left, *node.comparators]):
                literals = [c.value for c in [node.left, *node.comparators]
                            if isinstance(c, ast.Constant) and isinstance(c.value, str)]
                found += [f"{path.relative_to(REPO)}:{node.lineno} compares .verb with {v!r}" for v in literals]
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in PRODUCING_CALLS | {"EventFeed"}:
                    found += [f"{path.relative_to(REPO)}:{node.lineno} {name}(..., {a.value!r}, ...)"
                              for a in node.args if isinstance(a, ast.Constant) and a.value in VERB_VALUES]
    assert found == []


def test_events_are_written_only_through_the_validating_append():
    built = [f"{path.relative_to(REPO)}:{node.lineno}" for path, tree in production_code()
             if path not in EVENT_LOG_MODULES for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Event"]
    assert built == [], f"Event rows built by hand (use learnhub.events.record / EventLog.append): {built}"
