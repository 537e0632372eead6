"""The OIDC authenticator's own checks, in-process against the real provider (no hub): discovery, and
id_tokens refused when forged, tampered with, for another client, or about someone else than the
userinfo."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from tornado import web

from learnhub.oidc import DiscoveryError, LearnhubOIDCAuthenticator
from oidctools import openid_provider, set_user

REDIRECT = "http://127.0.0.1:1/hub/oauth_callback"


@pytest.fixture(scope="module")
def issuer():
    with openid_provider() as url:
        yield url


def code_flow(issuer: str, sub: str) -> dict:
    """The provider's token response for ``sub``, as the hub's callback gets it."""
    query = {"response_type": "code", "client_id": "learnhub", "redirect_uri": REDIRECT,
             "scope": "openid profile email", "state": "s"}
    authorize = f"{issuer}/oauth2/authorize"
    granted = requests.post(authorize, params=query, data={"sub": sub}, allow_redirects=False, timeout=10)
    code = parse_qs(urlparse(granted.headers["Location"]).query)["code"][0]
    tokens = requests.post(f"{issuer}/oauth2/token", auth=("learnhub", "secret"), timeout=10,
                           data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    tokens.raise_for_status()
    return tokens.json()


def authenticator(issuer: str, **kwargs) -> LearnhubOIDCAuthenticator:
    return LearnhubOIDCAuthenticator(issuer=issuer, client_id=kwargs.pop("client_id", "learnhub"),
                                     client_secret="secret", **kwargs)


async def test_discovery_fills_the_endpoints(issuer):
    auth = authenticator(issuer, token_url="https://explicit.example/token")
    await auth.discover()
    assert auth.authorize_url == f"{issuer}/oauth2/authorize"
    assert auth.token_url == "https://explicit.example/token"  # what the configuration gives wins
    assert auth.userdata_url == f"{issuer}/userinfo"
    assert auth.end_session_url == f"{issuer}/oauth2/end_session"
    assert auth.jwks_url == f"{issuer}/jwks"
    assert auth.basic_auth is True  # the provider does not say: client_secret_basic (Discovery 1.0)
    assert auth.scope == ["openid", "profile", "email"] and auth.username_claim == "preferred_username"


async def test_discovery_errors_are_clear(issuer):
    with pytest.raises(DiscoveryError, match="cannot be read"):
        await authenticator("http://127.0.0.1:9").discover()
    with pytest.raises(DiscoveryError, match="cannot be read"):
        await authenticator(f"{issuer}/realms/none").discover()  # 404


async def test_a_genuine_id_token_is_accepted_and_merged_with_userinfo(issuer):
    set_user(issuer, "sub-tom", preferred_username="tom", groups=["faculty"])
    tokens = code_flow(issuer, "sub-tom")
    auth = authenticator(issuer)
    await auth.discover()
    claims = await auth.verified_id_token(tokens["id_token"])
    assert claims["sub"] == "sub-tom" and claims["iss"] == issuer and claims["aud"] in ("learnhub", ["learnhub"])
    user_info = await auth.token_to_user(tokens)
    assert user_info["preferred_username"] == "tom" and user_info["sub"] == "sub-tom"
    assert auth.claimed_groups(user_info) == {"faculty"}


async def test_forged_tampered_and_foreign_id_tokens_are_refused(issuer):
    set_user(issuer, "sub-mia", preferred_username="mia")
    tokens = code_flow(issuer, "sub-mia")
    auth = authenticator(issuer)
    await auth.discover()
    header, payload, signature = tokens["id_token"].split(".")

    # The payload changed (another subject), the provider's signature kept.
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_payload = base64.urlsafe_b64encode(json.dumps(dict(claims, sub="sub-root")).encode()).rstrip(b"=")
    with pytest.raises(web.HTTPError) as refused:
        await auth.verified_id_token(f"{header}.{forged_payload.decode()}.{signature}")
    assert refused.value.status_code == 403

    # Signed with a key that is not the provider's, under the provider's key id.
    kid = jwt.get_unverified_header(tokens["id_token"]).get("kid")
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims, other_key, algorithm="RS256", headers={"kid": kid} if kid else None)
    with pytest.raises(web.HTTPError, match="not valid"):
        await auth.verified_id_token(forged)

    # Unsigned ("alg": "none") and symmetric signatures are never accepted.
    with pytest.raises(web.HTTPError, match="not accepted"):
        await auth.verified_id_token(jwt.encode(claims, None, algorithm="none"))
    with pytest.raises(web.HTTPError, match="not accepted"):
        await auth.verified_id_token(jwt.encode(claims, "secret", algorithm="HS256"))

    # A genuine token, but issued to another client.
    other_client = authenticator(issuer, client_id="another-app")
    await other_client.discover()
    with pytest.raises(web.HTTPError, match="not valid"):
        await other_client.verified_id_token(tokens["id_token"])

    # Userinfo about someone else than the id_token's subject.
    set_user(issuer, "sub-max", preferred_username="max")
    max_tokens = code_flow(issuer, "sub-max")
    with pytest.raises(web.HTTPError, match="not about the person"):
        await auth.token_to_user(dict(max_tokens, id_token=tokens["id_token"]))


def test_logout_url_carries_the_hint():
    auth = LearnhubOIDCAuthenticator(client_id="learnhub", end_session_url="https://id.example.edu/logout?x=1")
    url = urlparse(auth.end_session_redirect("ID.TOKEN", "https://learn.example.edu/hub/login"))
    params = parse_qs(url.query)
    assert params == {"x": ["1"], "client_id": ["learnhub"], "id_token_hint": ["ID.TOKEN"],
                      "post_logout_redirect_uri": ["https://learn.example.edu/hub/login"]}
