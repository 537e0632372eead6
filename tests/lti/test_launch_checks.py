"""The launch engine against the test LMS (tests/lti/lms_platform.py, a real HTTP peer on loopback):
login initiation, id_token checks (signature with the LMS's JWKS, audience, expiry, single-use nonce,
deployment), course creation and linking, enrollment with the role of the LTI roles claim.

The hub is not started here (tests/lti/test_hub_lti.py does the same through a real hub): the browser's
part, carrying the form from the LMS to the tool, is done by the test."""
from __future__ import annotations

import time

import jwt
import pytest
from ltitools import in_process_launch
from lms_platform import new_rsa_key
from sqlalchemy import select

from learnhub.db import session_scope
from learnhub.extensions.courses import models as cm
from learnhub.lti import models as lm
from learnhub.lti.engine import LtiError, course_role, validate_platform


def launch(engine, lms, claims, **forge):
    id_token, state = in_process_launch(engine, lms, claims, **forge)
    return engine.validate_launch(id_token, state)


def enrollments(sessions, course_id):
    with session_scope(sessions) as session:
        return {r.user_name: r.role for r in session.scalars(select(cm.Enrollment).where(cm.Enrollment.course_id == course_id))}


def test_instructor_creates_the_course_then_learner_and_ta_join(launch_engine, lms, db_session_factory):
    first = launch_engine.apply_launch(launch(launch_engine, lms, lms.claims("prof", "instructor")))
    assert first.created_course and first.role == "instructor" and first.user_name == "prof"
    assert first.course_id.startswith("ds101-")
    again = launch_engine.apply_launch(launch(launch_engine, lms, lms.claims("prof", "instructor")))
    assert (again.course_id, again.created_course) == (first.course_id, False)  # linked once, found again
    learner = launch_engine.apply_launch(launch(launch_engine, lms, lms.claims("ann", "learner")))
    ta = launch_engine.apply_launch(launch(launch_engine, lms, lms.claims("tim", "ta")))
    assert learner.course_id == ta.course_id == first.course_id
    assert enrollments(db_session_factory, first.course_id) == {"prof": "instructor", "ann": "learner", "tim": "ta"}
    with session_scope(db_session_factory) as session:
        (context,) = session.scalars(select(lm.LtiContext)).all()
        assert context.memberships_url == f"{lms.url}/nrps/course-101"
        assert context.lineitems_url == f"{lms.url}/ags/course-101/lineitems"
    # The authorization request the LMS received is an LTI 1.3 one, to the registered launch URL.
    request = lms.auth_requests[-1]
    assert (request["response_mode"], request["prompt"], request["client_id"]) == ("form_post", "none", lms.client_id)


def test_a_learner_cannot_open_an_unlinked_lms_course(launch_engine, lms):
    checked = launch(launch_engine, lms, lms.claims("ann", "learner", context_id="other"))
    with pytest.raises(LtiError, match="not linked") as refused:
        launch_engine.apply_launch(checked)
    assert refused.value.status == 403


def test_an_instructor_links_an_existing_course(launch_engine, lms, db_session_factory):
    from learnhub.extensions.courses.catalog import Caller, CourseCatalog

    with session_scope(db_session_factory) as session:
        CourseCatalog(session).create(Caller(name="prof", can_create=True), {"id": "stats", "title": "Statistics"})
    linked = launch_engine.apply_launch(launch(launch_engine, lms, lms.claims(
        "prof", "instructor", context_id="c-stats", custom={"learnhub_course": "stats"})))
    assert (linked.course_id, linked.created_course) == ("stats", False)
    # someone who does not teach that course cannot link another LMS course to it
    with pytest.raises(LtiError, match="instructor of 'stats'"):
        launch_engine.apply_launch(launch(launch_engine, lms, lms.claims(
            "eve", "instructor", context_id="c-evil", custom={"learnhub_course": "stats"})))


@pytest.mark.parametrize("forgery, message", [
    ({"key": new_rsa_key()}, "signature"),
    ({"aud": "another-tool"}, "not for this tool"),
    ({"exp_in": -600}, "expired"),
    ({"nonce": "made-up"}, "nonce"),
])
def test_forged_id_tokens_are_refused(launch_engine, lms, forgery, message):
    with pytest.raises(LtiError, match=message) as refused:
        launch(launch_engine, lms, lms.claims("ann", "learner"), **forgery)
    assert refused.value.status == 401


def test_a_replayed_id_token_is_refused(launch_engine, lms):
    id_token, state = in_process_launch(launch_engine, lms, lms.claims("ann", "learner"))
    assert launch_engine.validate_launch(id_token, state).sub == "ann"
    with pytest.raises(LtiError, match="replayed"):
        launch_engine.validate_launch(id_token, state)
    # the same id_token with the state of a new login initiation: its nonce is not that state's
    _other_token, other_state = in_process_launch(launch_engine, lms, lms.claims("ann", "learner"))
    with pytest.raises(LtiError, match="nonce"):
        launch_engine.validate_launch(id_token, other_state)


def test_an_unknown_state_or_an_old_login_is_refused(launch_engine, lms):
    id_token, state = in_process_launch(launch_engine, lms, lms.claims("ann", "learner"))
    with pytest.raises(LtiError, match="unknown state"):
        launch_engine.validate_launch(id_token, "not-a-state")
    launch_engine.settings.nonce_ttl = 0.5
    time.sleep(1.0)
    with pytest.raises(LtiError, match="too old"):
        launch_engine.validate_launch(id_token, state)


def test_unregistered_deployments_and_platforms_are_refused(launch_engine, lms):
    claims = lms.claims("ann", "learner")
    claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] = "dep-unknown"
    with pytest.raises(LtiError, match="deployment 'dep-unknown'") as refused:
        launch(launch_engine, lms, claims)
    assert refused.value.status == 403
    with pytest.raises(LtiError, match="not registered"):
        launch_engine.login_initiation({"iss": "https://lms.elsewhere", "login_hint": "x"})
    with pytest.raises(LtiError, match="deployment"):
        launch_engine.login_initiation({"iss": lms.issuer, "login_hint": "x", "lti_deployment_id": "nope"})


def test_a_launch_without_a_known_role_is_refused(launch_engine, lms):
    claims = lms.claims("ann", "learner")
    claims["https://purl.imsglobal.org/spec/lti/claim/roles"] = ["http://purl.imsglobal.org/vocab/lis/v2/system/person#User"]
    with pytest.raises(LtiError, match="no course role"):
        launch(launch_engine, lms, claims)


def test_roles_claim_mapping():
    ns = "http://purl.imsglobal.org/vocab/lis/v2/"
    assert course_role([ns + "membership#Learner"]) == "learner"
    assert course_role([ns + "membership#Instructor"]) == "instructor"
    # a TA comes as the Instructor sub-role, often beside Instructor itself
    assert course_role([ns + "membership#Instructor", ns + "membership/Instructor#TeachingAssistant"]) == "ta"
    assert course_role(["Learner", "Instructor"]) == "instructor"  # short names (LTI 1.1 style, NRPS)
    assert course_role([ns + "institution/person#Instructor"]) is None  # an institution role is no course role
    assert course_role([ns + "membership#Mentor"], {"Mentor": "ta"}) == "ta"


def test_platform_registrations_are_checked(launch_engine, lms, db_session_factory):
    with pytest.raises(LtiError, match="deployment_ids"):
        validate_platform({**lms.registration(), "deployment_ids": []})
    with pytest.raises(LtiError, match="jwks_url"):
        validate_platform({**lms.registration(), "jwks_url": "ftp://x"})
    with pytest.raises(LtiError, match="unknown platform field"):
        validate_platform({**lms.registration(), "secret": "x"})
    with session_scope(db_session_factory) as session:
        second = launch_engine.add_platform(session, {**lms.registration(), "client_id": "tool-2",
                                                      "deployment_ids": ["d2", "d3"]})
        assert second["source"] == "api"
        with pytest.raises(LtiError) as duplicate:
            launch_engine.add_platform(session, {**lms.registration(), "client_id": "tool-2"})
        assert duplicate.value.status == 409
        assert {p["client_id"] for p in launch_engine.list_platforms(session)} == {lms.client_id, "tool-2"}
    # a config change keeps the API's platforms and drops the config's old ones
    launch_engine.sync_config_platforms([])
    with session_scope(db_session_factory) as session:
        assert [p["client_id"] for p in launch_engine.list_platforms(session)] == ["tool-2"]


def test_tool_keys_are_private_and_rotate(tool_keys):
    first = tool_keys.current["kid"]
    assert (tool_keys.path.stat().st_mode & 0o777) == 0o600
    token = tool_keys.sign({"x": 1})
    new = tool_keys.rotate()
    assert new != first and tool_keys.current["kid"] == new
    published = {k["kid"] for k in tool_keys.jwks()["keys"]}
    assert published == {first, new}  # the old key stays published: what it signed still verifies
    key = jwt.PyJWKSet.from_dict(tool_keys.jwks())[first].key
    assert jwt.decode(token, key, algorithms=["RS256"]) == {"x": 1}
    assert (tool_keys.path.stat().st_mode & 0o777) == 0o600
    tool_keys.rotate(keep=1)
    assert len(tool_keys.jwks()["keys"]) == 1


def test_the_keys_command_rotates_and_retires(tmp_path, capsys):
    import json

    from learnhub.cli import main

    data = str(tmp_path / "keysdata")
    assert main(["lti", "keys", "--data-dir", data]) == 0
    first = json.loads(capsys.readouterr().out)["keys"]
    assert len(first) == 1 and "d" not in first[0]
    assert main(["lti", "keys", "--rotate", "--data-dir", data]) == 0
    capsys.readouterr()
    assert main(["lti", "keys", "--data-dir", data]) == 0
    both = [k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]]
    assert len(both) == 2 and both[1] == first[0]["kid"]
    assert main(["lti", "keys", "--retire", "--data-dir", data]) == 0
    assert first[0]["kid"] in capsys.readouterr().out
    assert main(["lti", "keys", "--data-dir", data]) == 0
    assert [k["kid"] for k in json.loads(capsys.readouterr().out)["keys"]] == both[:1]
