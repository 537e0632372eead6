"""Helpers of the LTI tests (a module of its own: several conftest modules exist in this tree)."""
from __future__ import annotations

from learnhub.lti.engine import LaunchEngine
from lms_platform import Platform


def in_process_launch(engine: LaunchEngine, lms: Platform, claims: dict, **forge):
    """What a browser carries between the LMS and the hub, without the hub: login initiation, the LMS's
    authorization answer (the form with id_token and state), then the engine's checks. Returns
    ``(launch or exception, id_token, state)``."""
    import requests

    hint = lms.prepare_launch(claims, **forge)
    url, state = engine.login_initiation({"iss": lms.issuer, "login_hint": hint, "client_id": lms.client_id,
                                          "lti_deployment_id": lms.deployment_id})
    page = requests.get(url, timeout=10)
    assert page.status_code == 200, page.text
    _action, fields = lms.form_fields(page.text)
    assert fields["state"] == state
    return fields["id_token"], state


def lti_platform(tmp_path_factory, lms: Platform, name: str, *, retry_seconds: float = 0.5,
                 retry_max_seconds: float = 1.0, max_attempts: int = 100):
    """``learnhub up`` with the ``lti`` authenticator registered with ``lms``, the courses and feedback
    services, the demo course and one grading worker; its grade passback outbox works fast (a generator,
    as :func:`hubtools.module_platform`)."""
    from hubtools import module_platform

    config = f"""
c.LearnhubSettings.authenticator = "lti"
c.LtiSettings.platforms = [{lms.registration()!r}]
c.LtiSettings.score_retry_seconds = {retry_seconds}
c.LtiSettings.score_retry_max_seconds = {retry_max_seconds}
c.LtiSettings.score_max_attempts = {max_attempts}
c.LtiSettings.outbox_interval = 0.3
"""
    for running in module_platform(tmp_path_factory, name, services=["courses", "feedback"], demo=True,
                                   extra_env={"LEARNHUB_GRADER_WORKERS": "1", "LEARNHUB_GRADER_POOL_SIZE": "1"},
                                   config=config):
        lms.redirect_uris.add(f"{running.url}/hub/lti/launch")
        lms.tool_jwks_url = f"{running.url}/hub/lti/jwks"
        yield running


def wait(condition, timeout=120, message=""):
    """``condition()``'s first true value, asked every 0.3 s; fails with ``message`` after ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, message
        time.sleep(0.3)
    return value
