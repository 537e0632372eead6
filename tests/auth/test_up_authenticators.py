"""``learnhub up`` starts with every authenticator and hands the admin a working API token.

Before, ``learnhub up`` asked the hub for the admin's token with the admin's password, which only the
native authenticator knows: with ``oauth`` or ``lti`` it stopped with 403. Each test here runs the real
command (real hub, proxy, one service) and checks the token it wrote is the admin's, with the admin's
rights, and that no password was written where none is used.
"""
from __future__ import annotations

import json

import pytest

from hubtools import LearnhubProcess, log_in, sign_up, write_services_config
from oidctools import http_login, oidc_config, openid_provider, set_user

pytestmark = pytest.mark.hub

#: An LTI 1.3 platform's registration (nothing is fetched from it until a launch): the hub must start
#: with it; launches are tested in tests/lti/.
LTI_CONFIG = """
c.LearnhubSettings.authenticator = "lti"
c.LtiSettings.platforms = [{"issuer": "http://127.0.0.1:9/lms", "client_id": "learnhub-tool",
                            "auth_login_url": "http://127.0.0.1:9/lms/auth", "auth_token_url": "http://127.0.0.1:9/lms/token",
                            "jwks_url": "http://127.0.0.1:9/lms/jwks", "deployment_ids": ["1"]}]
"""


def start_up(tmp_path, hub_db_url, empty_db_url, config: str) -> LearnhubProcess:
    data = tmp_path / "data"
    data.mkdir()
    write_services_config(data, ["courses"], config + 'c.LearnhubSettings.admin_users = ["ada"]\n')
    return LearnhubProcess(data, empty_db_url, hub_db_url).start()


def check_admin_token(hub: LearnhubProcess, password_expected: bool) -> None:
    credentials_file = hub.data_dir / "admin-credentials.json"
    assert credentials_file.stat().st_mode & 0o777 == 0o600
    credentials = json.loads(credentials_file.read_text())
    assert ("password" in credentials) is password_expected
    me = hub.api("GET", "/hub/api/user", token=credentials["api_token"])
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "admin" and me.json()["admin"] is True
    # The admin's rights, not the bootstrap service's: it may list every user and reach the services.
    users = hub.hub_api("GET", "/users")
    assert users.status_code == 200
    names = {user["name"] for user in users.json()}
    assert {"admin", "ada"} <= names  # admin_users from the config are admins from the start
    assert next(user for user in users.json() if user["name"] == "ada")["admin"] is True
    health = hub.api("GET", "/services/courses/api/whoami", token=credentials["api_token"])
    assert health.status_code == 200 and health.json()["admin"] is True
    # The bootstrap token is its owner's only and may not do anything else.
    token_file = hub.data_dir / "bootstrap-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    bootstrap = token_file.read_text()
    assert hub.api("GET", "/hub/api/users/admin", token=bootstrap).status_code == 200
    assert hub.api("GET", "/hub/api/users", token=bootstrap).status_code == 403
    assert hub.api("POST", "/hub/api/users/someone", token=bootstrap).status_code == 403
    assert hub.api("PATCH", "/hub/api/users/admin", token=bootstrap, json={"admin": False}).status_code == 403


def test_up_with_native(tmp_path, hub_db_url, empty_db_url):
    hub = start_up(tmp_path, hub_db_url, empty_db_url, "")
    try:
        check_admin_token(hub, password_expected=True)
        # The admin logs in with the generated password.
        admin = log_in(hub, "admin", hub.credentials["password"])
        # A sign-up under a name of admin_users is not an admin at once (whoever came first would be):
        # it waits for the admin's approval, though sign-up is open for everyone else.
        password = "a-long-passphrase-1"
        sign_up(hub, "ada", password)
        sign_up(hub, "lena", password)
        log_in(hub, "lena", password)
        with pytest.raises(AssertionError, match="login of ada failed"):
            log_in(hub, "ada", password)
        assert admin.get(f"{hub.url}/hub/authorize/ada", timeout=30).status_code == 200
        ada = log_in(hub, "ada", password)
        assert ada.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is True
    finally:
        assert hub.stop() == 0, hub.log_tail()


def test_up_with_oauth(tmp_path, hub_db_url, empty_db_url):
    """Against the local OpenID provider: the README's production set-up, an issuer and a client."""
    with openid_provider() as issuer:
        hub = start_up(tmp_path, hub_db_url, empty_db_url, oidc_config(issuer))
        try:
            check_admin_token(hub, password_expected=False)
            login = hub.api("GET", "/hub/oauth_login", allow_redirects=False)
            assert login.status_code == 302 and login.headers["Location"].startswith(f"{issuer}/oauth2/authorize")
            # ada, an admin by configuration, logs in at the provider and is the hub's admin.
            set_user(issuer, "sub-ada", preferred_username="ada")
            session, _ = http_login(hub.url, "sub-ada")
            assert session.get(f"{hub.url}/hub/api/user", timeout=30).json()["admin"] is True
        finally:
            assert hub.stop() == 0, hub.log_tail()
    # Without the provider (it is down), the platform still starts; logging in says why it cannot.
    # A second start keeps the token the hub still accepts; one the hub no longer knows (revoked by
    # the admin) is replaced by a new one, still without a password.
    token = hub.admin_token
    hub.start()
    try:
        assert hub.admin_token == token
        login = hub.api("GET", "/hub/oauth_login", allow_redirects=False)
        assert login.status_code == 503 and "identity provider cannot be reached" in login.text
        me = hub.hub_api("GET", "/user").json()
        token_id = next(t["id"] for t in hub.hub_api("GET", "/users/admin/tokens").json()["api_tokens"]
                        if t["note"].startswith("learnhub admin"))
        assert hub.hub_api("DELETE", f"/users/admin/tokens/{token_id}").status_code == 204
        assert me["name"] == "admin"
    finally:
        assert hub.stop() == 0, hub.log_tail()
    hub.start()
    try:
        assert hub.admin_token != token
        assert hub.api("GET", "/hub/api/user", token=token).status_code == 403
        assert hub.hub_api("GET", "/user").json()["name"] == "admin"
    finally:
        assert hub.stop() == 0, hub.log_tail()


RETIRE_BOOTSTRAP = "c.LearnhubSettings.bootstrap_service = False\n"


def test_up_with_lti(tmp_path, hub_db_url, empty_db_url):
    hub = start_up(tmp_path, hub_db_url, empty_db_url, LTI_CONFIG)
    try:
        check_admin_token(hub, password_expected=False)
    finally:
        assert hub.stop() == 0, hub.log_tail()
    # Retiring the bootstrap token as docs/authentication.md says: one start without the service...
    config_file = hub.data_dir / "learnhub_config.py"
    config = config_file.read_text()
    old_bootstrap, token_file = (hub.data_dir / "bootstrap-token").read_text(), hub.data_dir / "bootstrap-token"
    config_file.write_text(config + RETIRE_BOOTSTRAP)
    hub.start()
    try:
        assert hub.api("GET", "/hub/api/users/admin", token=old_bootstrap).status_code == 403
        assert hub.hub_api("GET", "/user").json()["name"] == "admin"
        # Without the service, an admin token the hub no longer accepts cannot be replaced: a clear error.
        revoked = next(t["id"] for t in hub.hub_api("GET", "/users/admin/tokens").json()["api_tokens"]
                       if t["note"].startswith("learnhub admin"))
        assert hub.hub_api("DELETE", f"/users/admin/tokens/{revoked}").status_code == 204
    finally:
        assert hub.stop() == 0, hub.log_tail()
    with pytest.raises(RuntimeError, match="bootstrap_service is False"):
        hub.start()
    # ...then as usual, with a new bootstrap token; the old one stays dead.
    config_file.write_text(config)
    token_file.unlink()
    hub.start()
    try:
        assert token_file.read_text() != old_bootstrap
        assert hub.admin_token  # a new admin token, minted with the new bootstrap token
        assert hub.api("GET", "/hub/api/users/admin", token=old_bootstrap).status_code == 403
        assert hub.api("GET", "/hub/api/users/admin", token=token_file.read_text()).status_code == 200
    finally:
        assert hub.stop() == 0, hub.log_tail()
