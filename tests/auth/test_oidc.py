"""Logging in with an OpenID Connect provider: a real provider (oidc-provider-mock, tests/auth/oidctools.py)
on loopback and a real ``learnhub up`` configured only with its issuer (discovery does the rest).

People log in through the provider's form, over HTTP as a browser does and in a real browser
(Playwright driving Debian's Chromium) that lands in JupyterLab; a denied consent leaves no session;
the groups claim makes instructors (they may create a course in the courses service) and admins;
tokens are refreshed with the refresh token, and a revoked one ends the session; logging out ends the
session at the provider (RP-initiated logout).
"""
from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from hubtools import module_platform
from oidctools import http_login, oidc_config, openid_provider, revoke_tokens, set_user

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: the module's platform is on the database under test

ACCESS_TOKEN_SECONDS = 4


@pytest.fixture(scope="module")
def issuer():
    # Short-lived access tokens, so that the refresh test sees one expire.
    with openid_provider(access_token_max_age=timedelta(seconds=ACCESS_TOKEN_SECONDS)) as url:
        yield url


@pytest.fixture(scope="module")
def hub(tmp_path_factory, issuer):
    # auth_refresh_age: the hub asks the provider again about a person after 2 s (default 300 s).
    yield from module_platform(tmp_path_factory, "oidc", services=["courses"],
                               config=oidc_config(issuer, "c.Authenticator.auth_refresh_age = 2\n"))


def who(hub, session):
    response = session.get(f"{hub.url}/hub/api/user", timeout=30)
    return response.json()["name"] if response.status_code == 200 else None


def auth_state(hub, name):
    return hub.hub_api("GET", f"/users/{name}").json()["auth_state"]


def token_for(hub, name):
    return hub.user_token(name)  # minted by the admin: the person's own permissions


def create_course(hub, name, course_id):
    return hub.api("POST", "/services/courses/api/courses", token=token_for(hub, name),
                   json={"id": course_id, "title": f"{course_id} by {name}", "status": "published"})


def test_http_login_as_the_providers_user(hub, issuer):
    set_user(issuer, "sub-lena", preferred_username="lena", email="lena@example.edu", groups=["students"])
    session, response = http_login(hub.url, "sub-lena")
    assert response.status_code == 200 and urlparse(response.url).path == "/hub/home", response.url
    assert who(hub, session) == "lena"
    user = hub.hub_api("GET", "/users/lena").json()
    assert user["admin"] is False and "learnhub-instructors" not in user["groups"]
    state = user["auth_state"]  # kept encrypted by the hub, for refresh and logout
    assert state["refresh_token"] and state["id_token"] and state["oauth_user"]["email"] == "lena@example.edu"
    # A learner may not create courses.
    assert create_course(hub, "lena", "lena-course").status_code == 403


def test_denied_consent_gives_no_session(hub, issuer):
    set_user(issuer, "sub-dan", preferred_username="dan")
    session, response = http_login(hub.url, "sub-dan", deny=True)
    assert response.status_code >= 400  # the hub's callback refuses the error the provider sent
    assert "/hub/oauth_callback" in response.url and "error=access_denied" in response.url
    assert who(hub, session) is None
    assert session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30).status_code == 302
    assert hub.hub_api("GET", "/users/dan").status_code == 404


def test_tampered_callback_gives_no_session(hub, issuer):
    """A callback whose state is not the one the hub sent (a forged or replayed redirect) is refused."""
    set_user(issuer, "sub-eve", preferred_username="eve")
    import requests

    session = requests.Session()
    page = session.get(f"{hub.url}/hub/oauth_login", timeout=30)
    query = parse_qs(urlparse(page.url).query)
    code_page = requests.post(page.url, data={"sub": "sub-eve"}, allow_redirects=False, timeout=30)
    callback = code_page.headers["Location"]
    assert parse_qs(urlparse(callback).query)["state"] == query["state"]
    # Another browser (without the state cookie) presenting the code gets nothing.
    stranger = requests.Session()
    assert stranger.get(callback, timeout=30).status_code >= 400
    assert who(hub, stranger) is None
    assert hub.hub_api("GET", "/users/eve").status_code == 404


def test_instructor_claim_gives_instructor_rights(hub, issuer):
    set_user(issuer, "sub-ines", preferred_username="ines", groups=["faculty", "staff"])
    session, _ = http_login(hub.url, "sub-ines")
    assert who(hub, session) == "ines"
    user = hub.hub_api("GET", "/users/ines").json()
    assert "learnhub-instructors" in user["groups"] and user["admin"] is False
    created = create_course(hub, "ines", "ines-course")
    assert created.status_code == 201, created.text
    roster = hub.api("GET", "/services/courses/api/courses/ines-course", token=token_for(hub, "ines"))
    assert roster.status_code == 200
    # The provider decides, at the next refresh of what it says about her: out of the faculty group,
    # out of the instructors...
    set_user(issuer, "sub-ines", preferred_username="ines", groups=["staff"])
    time.sleep(2.5)  # auth_refresh_age
    assert session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30).status_code == 200
    assert "learnhub-instructors" not in hub.hub_api("GET", "/users/ines").json()["groups"]
    assert create_course(hub, "ines", "ines-second").status_code == 403
    # ...and back in at her next login.
    set_user(issuer, "sub-ines", preferred_username="ines", groups=["faculty"])
    http_login(hub.url, "sub-ines")
    assert "learnhub-instructors" in hub.hub_api("GET", "/users/ines").json()["groups"]


def test_admin_claim_makes_an_admin(hub, issuer):
    set_user(issuer, "sub-ada", preferred_username="ada", groups="it-staff")  # a string claim counts too
    session, _ = http_login(hub.url, "sub-ada")
    assert hub.hub_api("GET", "/users/ada").json()["admin"] is True
    users = session.get(f"{hub.url}/hub/api/users", timeout=30)
    assert users.status_code == 200
    assert create_course(hub, "ada", "ada-course").status_code == 201  # learnhub's services count admins too
    set_user(issuer, "sub-ada", preferred_username="ada", groups=[])
    http_login(hub.url, "sub-ada")
    assert hub.hub_api("GET", "/users/ada").json()["admin"] is False


def test_token_refresh_and_revocation(hub, issuer):
    set_user(issuer, "sub-rita", preferred_username="rita")
    session, _ = http_login(hub.url, "sub-rita")
    before = auth_state(hub, "rita")
    time.sleep(ACCESS_TOKEN_SECONDS + 1)  # the access token has expired at the provider
    assert session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30).status_code == 200
    after = auth_state(hub, "rita")
    assert after["access_token"] != before["access_token"], "the hub did not refresh the expired token"
    assert after["id_token"], "the id_token (the logout hint) must survive a refresh"
    assert who(hub, session) == "rita"
    # Revoked at the provider (access and refresh token): the next check logs the person out.
    revoke_tokens(issuer, "sub-rita")
    time.sleep(2.5)
    home = session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]
    assert who(hub, session) is None


def test_logout_ends_the_session_at_the_provider(hub, issuer):
    set_user(issuer, "sub-olga", preferred_username="olga")
    session, _ = http_login(hub.url, "sub-olga")
    id_token = auth_state(hub, "olga")["id_token"]
    logout = session.get(f"{hub.url}/hub/logout", allow_redirects=False, timeout=30)
    assert logout.status_code == 302
    target = urlparse(logout.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == issuer and target.path == "/oauth2/end_session"
    params = parse_qs(target.query)
    assert params["id_token_hint"] == [id_token] and params["client_id"] == ["learnhub"]
    assert params["post_logout_redirect_uri"] == [f"{hub.url}/hub/login"]
    assert who(hub, session) is None
    # The provider's confirmation sends the person back to the hub's login page.
    page = session.get(logout.headers["Location"], timeout=30)
    back = session.post(f"{issuer}/oauth2/end_session/confirm",
                        data={"redirect_uri": params["post_logout_redirect_uri"][0]}, timeout=30)
    assert page.status_code == 200 and urlparse(back.url).path == "/hub/login"


@pytest.mark.e2e
def test_browser_login_lands_in_jupyterlab(hub, issuer):
    """A person logs in through the provider's form in Chromium and lands in JupyterLab, their own
    server started, as the provider's user."""
    from playwright.sync_api import sync_playwright

    from e2e.labtools import LAB_READY, LAB_TIMEOUT_MS, launch_browser

    set_user(issuer, "sub-bruno", preferred_username="bruno", name="Bruno", groups=["students"])
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            page = browser.new_page()
            page.goto(f"{hub.url}/hub/login")
            page.click("a:has-text('Sign in with your university')")
            page.wait_for_url(f"{issuer}/oauth2/authorize**")
            page.fill("input[name=sub]", "sub-bruno")
            page.click("button:has-text('Authorize')")
            # Back through the hub's callback, which starts the person's server and opens JupyterLab.
            page.wait_for_url(f"{hub.url}/user/bruno/lab**", timeout=LAB_TIMEOUT_MS)
            page.wait_for_selector(LAB_READY, timeout=LAB_TIMEOUT_MS)
            # JupyterLab runs as the provider's user (the page configuration the hub's server gives it).
            config = json.loads(page.evaluate("document.getElementById('jupyter-config-data').textContent"))
            assert config["hubUser"] == "bruno", config
        finally:
            browser.close()
    server = hub.hub_api("GET", "/users/bruno").json()["servers"][""]
    assert server["ready"] is True
    hub.hub_api("DELETE", "/users/bruno/server")
