"""Every route of every service, as seven kinds of people, against the documented answer (matrix.py).

The routes come from each service's own ``api/openapi.json`` (tests/core/test_service_kit.py checks it
lists exactly what the service serves), so a route added to a service without a row in matrix.py fails
here, with the row to add in the message. Real platform, real data: tests/security/securitytools.py.
"""
from __future__ import annotations

import pytest

from learnhub.config import SERVICE_NAMES

import matrix

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: runs on the backend under test (its platform does)

METHODS = ("get", "put", "post", "patch", "delete")


def operations(platform, service: str) -> list[tuple[str, str, dict]]:
    """(METHOD, path, operation) of every operation the service describes, from its api/openapi.json."""
    spec = platform.call("anonymous", "GET", f"{platform.service_url(service)}/api/openapi.json")
    assert spec.status_code == 200, spec.text
    return [(method.upper(), path, operation) for path, item in spec.json()["paths"].items()
            for method, operation in item.items() if method in METHODS]


def expected_row(service: str, key: str) -> str | None:
    return matrix.MATRIX.get(service, {}).get(key) or matrix.COMMON.get(key)


def request_for(platform, service: str, method: str, path: str) -> tuple[str, dict]:
    probe = matrix.PROBES.get((service, f"{method} {path}"), {})
    values = {name: value.format(**platform.ids) if "{" in value else value
              for name, value in {**matrix.PATH_VALUES, **probe.get("path", {})}.items()}
    url = platform.service_url(service) + path.format(**values)
    kwargs: dict = {"params": probe.get("query", {})}
    if "json" in probe:
        kwargs["json"] = probe["json"]
    elif "form" in probe:
        kwargs["files"] = {name: (None, value) for name, value in probe["form"].items()}
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return url, kwargs


def test_every_route_has_a_row(populated):
    """A route without a row, or a row without a route, is named with what to do about it."""
    problems = []
    for service in SERVICE_NAMES:
        described = {f"{method} {path}" for method, path, _ in operations(populated, service)}
        for key in sorted(described):
            if expected_row(service, key) is None:
                problems.append(f"{service}: {key} has no row in tests/security/matrix.py: add "
                                f"MATRIX[{service!r}][{key!r}] = '<{' '.join(matrix.COLUMNS)}>' "
                                f"(test_the_matrix_holds prints what it answers now)")
        for key in sorted(set(matrix.MATRIX.get(service, {})) - described):
            problems.append(f"{service}: the row MATRIX[{service!r}][{key!r}] names no route of the service: remove it")
    for service, key in matrix.PROBES:
        if key not in {f"{m} {p}" for m, p, _ in operations(populated, service)}:
            problems.append(f"{service}: PROBES names {key!r}, which is no route of the service")
    assert not problems, "\n".join(problems)


def test_the_matrix_holds(populated):
    """Each operation answers each person exactly as its row says; every difference is listed at once."""
    differences, missing = [], []
    for service in SERVICE_NAMES:
        for method, path, _ in operations(populated, service):
            key = f"{method} {path}"
            url, kwargs = request_for(populated, service, method, path)
            seen = [str(populated.call(persona, method, url, **kwargs).status_code) for persona in matrix.COLUMNS]
            row = expected_row(service, key)
            if row is None:
                missing.append(f"    {key!r}: {' '.join(seen)!r},  # {service}: check, then add")
                continue
            wanted = row.split()
            assert len(wanted) == len(matrix.COLUMNS), f"{service} {key}: the row needs {len(matrix.COLUMNS)} codes"
            for persona, want, got in zip(matrix.COLUMNS, wanted, seen):
                if want != got:
                    differences.append(f"{service} {key} as {persona}: expected {want}, got {got}")
    assert not (differences or missing), "\n".join(differences + (["rows missing (answers seen now):"] + missing
                                                                   if missing else []))


def test_the_platform_report_over_real_grading(populated):
    """The issue's platform report and dashboard failed (500) after one graded submission; here they are
    read by the admin over a submission the real grader graded, and they count it."""
    report = populated.call("admin", "GET", f"{populated.service_url('analytics')}/api/platform/report")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["grading"]["latency_seconds"]["count"] >= 1, body["grading"]
    page = populated.call("admin", "GET", f"{populated.service_url('analytics')}/platform/dashboard")
    assert page.status_code == 200 and "chart-latency" in page.text
