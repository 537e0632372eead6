"""schemathesis against every service's ``api/openapi.json``, as a learner and as the admin: no 5xx.

The platform is the security suite's real one (tests/security/securitytools.py: the demo course, its
members, a submission the real grader graded, a help request), walked by the permission matrix first.
For every operation schemathesis generates requests from the description — valid ones (``positive``)
and ones that break it (``negative``) — half of them with the path's values taken from the real data
(the course, the assignment, the learner, the graded submission...), so that the handlers are reached
past their 404s. Any 5xx fails the test, listed with a request to replay it.

The run is bounded (``LEARNHUB_FUZZ_EXAMPLES`` examples per operation and mode, 3 by default;
hypothesis' deadline off, as a real platform on a loaded machine has slow moments): docs/security.md
gives the time it adds to CI. The learner goes first, on every service, then the admin: what the admin's
examples change (a course's settings, a refit) comes after the learner has been through.
"""
from __future__ import annotations

import os

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from learnhub.config import SERVICE_NAMES

import matrix

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: runs on the backend under test (its platform does)

EXAMPLES = int(os.environ.get("LEARNHUB_FUZZ_EXAMPLES", "3"))

#: Operations the fuzzer leaves alone, each with the reason.
SKIPPED = {
    # A real grading per example: the grading engine's own limits are tested in tests/graders, and the
    # route's validation is reached by the checks' operation, which takes the same form.
    ("feedback", "POST /api/submissions"),
    # Deleting the course would end the run for everyone after (it has submissions, so it is refused
    # with 409 — the matrix checks that — but another course made by an example would be deleted).
    ("courses", "DELETE /api/courses/{course_id}"),
    # Erasing a person: the admin's examples would erase the learners whose data the other operations
    # read (tests/data_rights tests erasure itself; the matrix, who may ask for it).
    ("courses", "POST /api/data/erasures"),
    *((service, "POST /api/data/erase")
      for service in ("courses", "feedback", "recommender", "analytics", "notifications")),
    # Retention of named courses: an admin's example naming the test's course would delete the grading
    # jobs and help requests the other operations read (tests/data_rights tests it).
    ("feedback", "POST /api/data/retention"),
}


def real_path_values(platform) -> dict:
    return {name: value.format(**platform.ids) if "{" in value else value
            for name, value in matrix.PATH_VALUES.items()}


def fuzz_operation(platform, service: str, operation, token: str, real: dict, failures: list) -> int:
    """Send the operation's generated requests; record every 5xx. Returns how many were sent."""
    from schemathesis import GenerationMode

    path_names = {p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"}
    given_values = {name: real[name] for name in path_names if name in real}
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
        if given_values:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=given_values))
    sent = [0]
    base_url = platform.service_url(service)

    @settings(max_examples=EXAMPLES * 2 * (2 if given_values else 1), deadline=None, database=None,
              derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), verbosity=hypothesis.Verbosity.quiet)
    @given(case=st.one_of(strategies))
    def run(case):
        headers = {"Authorization": f"token {token}"}
        response = case.call(base_url=base_url, headers=headers, timeout=60, allow_redirects=False)
        sent[0] += 1
        if response.status_code >= 500:
            failures.append(f"{service} {operation.method.upper()} {operation.path}: {response.status_code} "
                            f"{response.text[:300]}\n    replay: {case.as_curl_command(headers=headers)}")

    run()
    return sent[0]


@pytest.mark.parametrize("persona,service", [(p, s) for p in ("learner", "admin") for s in SERVICE_NAMES])
def test_no_5xx(populated, persona, service):
    import schemathesis

    spec = populated.call("anonymous", "GET", f"{populated.service_url(service)}/api/openapi.json").json()
    schema = schemathesis.openapi.from_dict(spec)
    real = real_path_values(populated)
    failures: list[str] = []
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (service, f"{operation.method.upper()} {operation.path}") in SKIPPED:
            continue
        sent += fuzz_operation(populated, service, operation, populated.tokens[persona], real, failures)
    print(f"{service} as {persona}: {sent} requests")
    assert sent > 0
    # One example per operation and answer is enough to read (hypothesis finds the same error many times).
    firsts = {failure.split("\n")[0][:200]: failure for failure in reversed(failures)}
    assert not failures, f"{len(failures)} server error(s), {len(firsts)} distinct:\n" + "\n".join(firsts.values())
