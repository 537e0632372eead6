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
