"""A real OpenID provider on loopback for the tests: ``oidc-provider-mock`` (authlib's OAuth 2.0 and
OpenID Connect server behind a Flask app: discovery, JWKS, RS256 id_tokens, userinfo, refresh tokens,
an end_session endpoint), served by werkzeug in a thread of the test process.

Its authorization page is a form: a ``sub`` field with Authorize, and Deny. Its users' claims are set
with ``PUT /users/<sub>``; ``POST /users/<sub>/revoke-tokens`` revokes their tokens.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from datetime import timedelta

import requests

# authlib refuses OAuth over plain HTTP unless told; everything here is on loopback.
os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")


@contextmanager
def openid_provider(access_token_max_age: timedelta = timedelta(hours=1)):
    """Yields the provider's issuer URL (``http://127.0.0.1:<port>``)."""
    import oidc_provider_mock
    import werkzeug.serving

    app = oidc_provider_mock.app(access_token_max_age=access_token_max_age, issue_refresh_token=True)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


def set_user(issuer: str, sub: str, **claims) -> None:
    """The claims the provider vouches for ``sub`` (its userinfo and id_token)."""
    response = requests.put(f"{issuer}/users/{sub}", json=claims, timeout=10)
    response.raise_for_status()


def revoke_tokens(issuer: str, sub: str) -> None:
    requests.post(f"{issuer}/users/{sub}/revoke-tokens", timeout=10).raise_for_status()


def oidc_config(issuer: str, extra: str = "") -> str:
    """The ``learnhub_config.py`` lines of a deployment on this provider, as docs/authentication.md
    shows them (the discovery document gives the endpoints)."""
    return f"""
c.LearnhubSettings.authenticator = "oauth"
c.LearnhubOIDCAuthenticator.issuer = "{issuer}"
c.GenericOAuthenticator.client_id = "learnhub"
c.GenericOAuthenticator.client_secret = "learnhub-secret"
c.GenericOAuthenticator.allow_all = True
c.LearnhubOIDCAuthenticator.instructor_groups = {{"faculty"}}
c.LearnhubOIDCAuthenticator.admin_claim_groups = {{"it-staff"}}
""" + extra


def http_login(hub_url: str, sub: str, deny: bool = False) -> tuple[requests.Session, requests.Response]:
    """A person logging in over HTTP as a browser does: the hub's OIDC login, the provider's form
    (Authorize with ``sub``, or Deny), back to the hub's callback. Returns the session and the last
    response."""
    session = requests.Session()
    page = session.get(f"{hub_url}/hub/oauth_login?next=/hub/home", timeout=30)
    page.raise_for_status()
    assert 'name="sub"' in page.text, page.text[:500]
    form = {"action": "deny"} if deny else {"sub": sub}
    response = session.post(page.url, data=form, timeout=60)
    return session, response
