"""LTI 1.3 Advantage through a real learnhub: ``learnhub up`` with the ``lti`` authenticator, the courses
and feedback services and the demo course, the test LMS (tests/lti/lms_platform.py) on loopback.

A person's browser is played by a ``requests.Session`` (cookies kept, redirects followed by hand): the
LMS's login initiation, the hub's redirect to the LMS, the LMS's auto-submitted form back to the hub's
launch URL, then JupyterLab. A real submission is autograded by the feedback service (bubblewrap
sandbox) and its score reaches the LMS's gradebook."""
from __future__ import annotations

import re
import time

import jwt
import pytest
import requests
from lms_platform import Platform, new_rsa_key

from ltitools import lti_platform, wait

pytestmark = pytest.mark.hub

COURSE, ASSIGNMENT, NOTEBOOK = "intro-python", "01-basics", "basics.ipynb"
COURSES = "/services/courses/api"


@pytest.fixture(scope="module")
def lms():
    platform = Platform().start()
    yield platform
    platform.stop()


@pytest.fixture(scope="module")
def hub(tmp_path_factory, lms):
    yield from lti_platform(tmp_path_factory, lms, "lti")


@pytest.fixture(scope="module")
def linked(hub, lms):
    """The LMS course linked to the demo course by an instructor who teaches it (enrolled by the admin)."""
    assert hub.hub_api("POST", "/users/prof").status_code in (201, 409)
    enrolled = hub.api("POST", f"{COURSES}/courses/{COURSE}/enrollments", token=hub.admin_token,
                       json={"user": "prof", "role": "instructor"})
    assert enrolled.status_code in (200, 201), enrolled.text
    browser = requests.Session()
    launched = lms.launch(browser, f"{hub.url}/hub/lti/login",
                          lms.claims("prof", "instructor", custom={"learnhub_course": COURSE}))
    assert launched.status_code == 302, launched.text
    assert launched.headers["Location"] == f"/hub/user-redirect/learnhub/open/{COURSE}"
    return browser


def role_of(hub, user):
    rows = hub.api("GET", f"{COURSES}/courses/{COURSE}/enrollments", token=hub.admin_token).json()["items"]
    return {r["user"]: r["role"] for r in rows}.get(user)


def contents(hub, user, path):
    """A folder of the user's home, through their server's contents API."""
    answer = requests.get(f"{hub.url}/user/{user}/api/contents/{path}", timeout=60,
                          headers={"Authorization": f"token {hub.user_token(user)}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_learner_launch_enrolls_and_opens_jupyterlab_at_the_course(hub, lms, linked):
    browser = requests.Session()
    launched = lms.launch(browser, f"{hub.url}/hub/lti/login", lms.claims("ann", "learner"))
    assert launched.status_code == 302, launched.text
    assert launched.headers["Location"] == f"/hub/user-redirect/learnhub/open/{COURSE}"
    assert role_of(hub, "ann") == "learner"
    # The hub knows her now (logged in by the launch), and her course role reaches the hub groups.
    assert hub.hub_api("GET", "/users/ann").status_code == 200
    wait(lambda: f"course-{COURSE}-learners" in hub.hub_api("GET", "/users/ann").json()["groups"], 60,
         "the LTI enrollment was not mirrored into the course's hub group")
    # Her browser follows (the hub starts her server); her server's arrival page makes the course's
    # folder in her new home, and JupyterLab opens at it.
    browser.get(f"{hub.url}{launched.headers['Location']}", timeout=60)
    lab = wait(lambda: (r := browser.get(f"{hub.url}/user/ann/learnhub/open/{COURSE}", timeout=60)).ok
               and "JupyterLab" in r.text and r, 180, "JupyterLab did not open")
    assert lab.url.endswith(f"/user/ann/lab/tree/{COURSE}")
    assert contents(hub, "ann", COURSE)["type"] == "directory"


def test_ta_and_instructor_roles_come_from_the_launch(hub, lms, linked):
    assert role_of(hub, "prof") == "instructor"
    launched = lms.launch(requests.Session(), f"{hub.url}/hub/lti/login", lms.claims("tim", "ta"))
    assert launched.status_code == 302, launched.text
    assert role_of(hub, "tim") == "ta"


def test_forged_and_replayed_launches_are_refused_by_the_hub(hub, lms, linked):
    browser = requests.Session()
    forged = lms.launch(browser, f"{hub.url}/hub/lti/login", lms.claims("mallory", "instructor"), key=new_rsa_key())
    assert forged.status_code == 401 and "signature" in forged.text
    expired = lms.launch(browser, f"{hub.url}/hub/lti/login", lms.claims("mallory", "learner"), exp_in=-600)
    assert expired.status_code == 401 and "expired" in expired.text
    assert hub.hub_api("GET", "/users/mallory").status_code == 404
    # a recorded launch posted again, even with the victim's state cookie, is refused
    victim = requests.Session()
    assert lms.launch(victim, f"{hub.url}/hub/lti/login", lms.claims("ann", "learner")).status_code == 302
    issued = lms.issued[-1]
    replay = requests.Session()
    again = replay.post(f"{hub.url}/hub/lti/launch", data=issued, allow_redirects=False)
    assert again.status_code == 401
    home = replay.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]  # no session came of it


def test_a_real_graded_submission_reaches_the_lms_gradebook_once(hub, lms, linked):
    from pathlib import Path

    assert lms.launch(requests.Session(), f"{hub.url}/hub/lti/login", lms.claims("bea", "learner")).status_code == 302
    token = hub.user_token("bea")
    solved = (Path(__file__).resolve().parents[2] / "courses" / COURSE / "source" / ASSIGNMENT / NOTEBOOK).read_bytes()
    submitted = hub.api("POST", f"{COURSES}/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions", token=token,
                        files=[("files", (NOTEBOOK, solved, "application/x-ipynb+json"))])
    assert submitted.status_code == 201, submitted.text
    job = submitted.json()["grading"]["id"]
    result = wait(lambda: (r := hub.api("GET", f"/services/feedback/api/submissions/{job}", token=token).json())
                  ["status"] in ("graded", "failed") and r, 300, "not graded")
    assert result["status"] == "graded" and result["score"] > 0, result
    mine = wait(lambda: [s for s in lms.scores if s["userId"] == "bea"], 60, "no score reached the LMS")
    time.sleep(2)  # anything doubled would have arrived by now
    mine = [s for s in lms.scores if s["userId"] == "bea"]
    assert len(mine) == 1, mine
    (score,) = mine
    assert (score["scoreGiven"], score["scoreMaximum"]) == (result["score"], result["max_score"])
    assert (score["activityProgress"], score["gradingProgress"]) == ("Completed", "FullyGraded")
    items = [i for i in lms.line_items.values() if i["resourceId"] == ASSIGNMENT]
    assert len(items) == 1 and score["line_item"] == items[0]["id"]
    # the instructor sees it sent; a learner may not look
    prof = hub.user_token("prof")
    listed = hub.api("GET", f"{COURSES}/courses/{COURSE}/lti/scores", token=prof).json()["items"]
    assert [(s["user"], s["status"]) for s in listed if s["user"] == "bea"] == [("bea", "sent")]
    assert hub.api("GET", f"{COURSES}/courses/{COURSE}/lti/scores", token=token).status_code == 403

    # The LMS goes down: the next graded submission waits, visibly, and is delivered once when it returns.
    lms.down = True
    try:
        again = hub.api("POST", f"{COURSES}/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions", token=token,
                        files=[("files", (NOTEBOOK, solved, "application/x-ipynb+json"))])
        assert again.status_code == 201, again.text
        pending = wait(lambda: [s for s in hub.api("GET", f"{COURSES}/courses/{COURSE}/lti/scores?status=pending",
                                                    token=prof).json()["items"]
                                if s["user"] == "bea" and s["attempts"] >= 2], 300, "no retried score")
        assert "503" in pending[0]["last_error"]
        assert len([s for s in lms.scores if s["userId"] == "bea"]) == 1
    finally:
        lms.down = False
    wait(lambda: len([s for s in lms.scores if s["userId"] == "bea"]) == 2, 60, "not delivered after the LMS returned")
    time.sleep(2)
    assert len([s for s in lms.scores if s["userId"] == "bea"]) == 2
    assert len([i for i in lms.line_items.values() if i["resourceId"] == ASSIGNMENT]) == 1
    # the outbox comes in pages; its counts are the course's
    scores = f"{COURSES}/courses/{COURSE}/lti/scores"
    first = hub.api("GET", f"{scores}?status=sent&limit=1", token=prof).json()
    assert len(first["items"]) == 1 and first["next"] and first["counts"]["sent"] == 2, first
    rest = hub.api("GET", f"{scores}?status=sent&limit=1&cursor={first['next']}", token=prof).json()
    assert len(rest["items"]) == 1 and rest["next"] is None and rest["items"][0]["id"] != first["items"][0]["id"]
    assert hub.api("GET", f"{scores}?cursor=not-ours", token=prof).status_code == 400


def test_roster_sync_through_the_api(hub, lms, linked):
    lms.rosters["course-101"] = [lms.roster_member("prof", "instructor"), lms.roster_member("ann", "learner"),
                                 lms.roster_member("newbie", "learner")]
    learner = hub.user_token("ann")
    assert hub.api("POST", f"{COURSES}/courses/{COURSE}/lti/roster-sync", token=learner).status_code == 403
    synced = hub.api("POST", f"{COURSES}/courses/{COURSE}/lti/roster-sync", token=hub.user_token("prof"))
    assert synced.status_code == 200, synced.text
    (counts,) = synced.json()["contexts"].values()
    assert counts["enrolled"] == 1 and counts["inactive"] >= 1  # newbie in; tim, bea, ... no longer listed
    assert role_of(hub, "newbie") == "learner"
    # tim and bea are no longer listed: their course access goes (the enrollment, the hub group) ...
    assert {"tim", "bea"} <= set(counts["dropped"]), counts
    assert role_of(hub, "tim") is None and role_of(hub, "bea") is None
    assert not any(g.startswith(f"course-{COURSE}-") for g in hub.hub_api("GET", "/users/tim").json()["groups"])
    # ... their work stays (bea's graded submissions, for her instructors), and they do not enroll themselves back
    prof = hub.user_token("prof")
    kept = hub.api("GET", f"{COURSES}/courses/{COURSE}/assignments/{ASSIGNMENT}/submissions?user=bea", token=prof)
    assert kept.status_code == 200 and kept.json()["items"], kept.text
    back = hub.api("POST", f"{COURSES}/courses/{COURSE}/enrollments", token=hub.user_token("bea"), json={})
    assert back.status_code == 403 and "no longer lists you" in back.text, back.text
    # listed again: enrolled again, with the role the LMS gives
    lms.rosters["course-101"].append(lms.roster_member("tim", "ta"))
    again = hub.api("POST", f"{COURSES}/courses/{COURSE}/lti/roster-sync", token=prof)
    assert again.status_code == 200 and "tim" not in next(iter(again.json()["contexts"].values()))["dropped"]
    assert role_of(hub, "tim") == "ta"


def test_deep_linking_returns_a_signed_assignment_to_the_lms(hub, lms, linked):
    browser = requests.Session()
    launched = lms.launch(browser, f"{hub.url}/hub/lti/login",
                          lms.claims("prof", "instructor", message_type="LtiDeepLinkingRequest"))
    assert launched.status_code == 302 and launched.headers["Location"] == "/hub/lti/deeplink", launched.text
    picker = browser.get(f"{hub.url}/hub/lti/deeplink", timeout=30)
    assert picker.status_code == 200 and f'value="{ASSIGNMENT}"' in picker.text, picker.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', picker.text).group(1)
    answer = browser.post(f"{hub.url}/hub/lti/deeplink", data={"_xsrf": xsrf, "assignment": ASSIGNMENT},
                          allow_redirects=False, timeout=30)
    assert answer.status_code == 200, answer.text
    assert lms.submit_form(browser, answer.text).status_code == 200
    token = lms.deep_link_responses[-1]
    key = jwt.PyJWKClient(f"{hub.url}/hub/lti/jwks").get_signing_key_from_jwt(token).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=lms.issuer, issuer=lms.client_id)
    assert claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-123"
    (item,) = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert item["custom"]["learnhub_assignment"] == ASSIGNMENT
    # a learner launching that link lands at the assignment
    link = requests.Session()
    opened = lms.launch(link, f"{hub.url}/hub/lti/login", lms.claims("ann", "learner", custom=item["custom"]))
    assert opened.headers["Location"] == f"/hub/user-redirect/learnhub/open/{COURSE}/{ASSIGNMENT}"
    # her server (started above) fetches the assignment on arrival, and JupyterLab opens in it
    arrived = wait(lambda: (r := link.get(f"{hub.url}{opened.headers['Location']}", timeout=120)).ok
                   and "/lab/tree/" in r.url and r, 180, "JupyterLab did not open")
    assert arrived.url.endswith(f"/user/ann/lab/tree/{COURSE}/{ASSIGNMENT}"), arrived.url
    assert NOTEBOOK in [f["name"] for f in contents(hub, "ann", f"{COURSE}/{ASSIGNMENT}")["content"]]
    # a learner cannot ask for deep linking
    refused = lms.launch(requests.Session(), f"{hub.url}/hub/lti/login",
                         lms.claims("ann", "learner", message_type="LtiDeepLinkingRequest"))
    assert refused.status_code == 403


def test_tool_configuration_and_jwks(hub):
    config = requests.get(f"{hub.url}/hub/lti/config", timeout=30).json()
    assert config["jwks_url"] == f"{hub.url}/hub/lti/jwks"
    assert config["oidc_initiation_url"] == f"{hub.url}/hub/lti/login"
    keys = requests.get(config["jwks_url"], timeout=30).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and "d" not in k for k in keys)  # public halves only
    assert f"{hub.url}/hub/lti/config" in hub.log_tail(lines=100_000)  # learnhub up says where it is
    key_file = hub.data_dir / "lti" / "keys.json"
    assert (key_file.stat().st_mode & 0o777) == 0o600


def test_a_second_lms_registered_through_the_admin_api_launches_too(hub, lms, linked):
    other = Platform(client_id="tool-at-canvas", deployment_id="canvas-dep-7").start()
    try:
        other.redirect_uris.add(f"{hub.url}/hub/lti/launch")
        registration = other.registration(name="Second LMS", username_prefix="c2-")
        someone = hub.user_token("prof")  # an instructor of another course, not an admin
        assert hub.api("POST", f"{COURSES}/lti/platforms", token=someone, json=registration).status_code == 403
        added = hub.api("POST", f"{COURSES}/lti/platforms", token=hub.admin_token, json=registration)
        assert added.status_code == 201, added.text
        assert hub.api("POST", f"{COURSES}/lti/platforms", token=hub.admin_token, json=registration).status_code == 409
        bad = hub.api("POST", f"{COURSES}/lti/platforms", token=hub.admin_token, json={**registration, "jwks_url": "x"})
        assert bad.status_code == 422 and "jwks_url" in bad.json()["error"]["message"]
        listed = hub.api("GET", f"{COURSES}/lti/platforms", token=hub.admin_token).json()["items"]
        assert {(p["issuer"], p["source"]) for p in listed} == {(lms.issuer, "config"), (other.issuer, "api")}

        launched = other.launch(requests.Session(), f"{hub.url}/hub/lti/login",
                                other.claims("prof", "instructor", context_id="c2-course", title="Second course"))
        assert launched.status_code == 302, launched.text
        course = launched.headers["Location"].rsplit("/", 1)[-1]
        assert course.startswith("ds101-") and course != COURSE  # a new course, for c2-prof
        assert role_of_in(hub, course, "c2-prof") == "instructor"
        # its instructor sees the link and chooses the best score for the gradebook
        prof = hub.user_token("c2-prof")
        (link,) = hub.api("GET", f"{COURSES}/courses/{course}/lti", token=prof).json()["items"]
        assert (link["context_id"], link["roster_sync"], link["grade_passback"]) == ("c2-course", True, True)
        changed = hub.api("PATCH", f"{COURSES}/lti/contexts/{link['id']}", token=prof, json={"score_policy": "best"})
        assert changed.status_code == 200 and changed.json()["score_policy"] == "best"
        assert hub.api("PATCH", f"{COURSES}/lti/contexts/{link['id']}", token=prof,
                       json={"score_policy": "worst"}).status_code == 422
        assert hub.api("PATCH", f"{COURSES}/lti/contexts/{link['id']}", token=someone,
                       json={"score_policy": "latest"}).status_code in (403, 404)
    finally:
        other.stop()


def role_of_in(hub, course, user):
    rows = hub.api("GET", f"{COURSES}/courses/{course}/enrollments", token=hub.admin_token).json()["items"]
    return {r["user"]: r["role"] for r in rows}.get(user)
