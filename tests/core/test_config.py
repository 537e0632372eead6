"""Settings and the hub configuration they produce (no hub is started here)."""
from __future__ import annotations

import pytest
from traitlets.config import PyFileConfigLoader

from learnhub.config import load_settings
from learnhub.hub import CUSTOM_SCOPES, configure_hub, hub_config_file


def load_hub_config(monkeypatch, data_dir, config_text: str | None = None, **env):
    for name in list(__import__("os").environ):
        if name.startswith("LEARNHUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LEARNHUB_DATA_DIR", str(data_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    data_dir.mkdir(parents=True, exist_ok=True)
    if config_text is not None:
        (data_dir / "learnhub_config.py").write_text(config_text)
    path = hub_config_file()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def managed_services(c) -> list[dict]:
    """The services the hub starts (the bootstrap service is a token only)."""
    return [service for service in c.JupyterHub.services if "command" in service]


def test_embedded_default(monkeypatch, tmp_path):
    c = load_hub_config(monkeypatch, tmp_path / "data")
    assert c.JupyterHub.authenticator_class.learnhub_named == "learnhub-native"  # entry points learnhub registers
    assert c.JupyterHub.spawner_class == "learnhub-sandboxed"
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'data' / 'jupyterhub.sqlite'}"
    assert (c.JupyterHub.ip, c.JupyterHub.port) == ("127.0.0.1", 8000)
    names = [service["name"] for service in c.JupyterHub.services]
    assert names == ["courses", "feedback", "recommender", "analytics", "notifications", "learnhub-bootstrap"]
    for service in managed_services(c):
        assert service["environment"]["LEARNHUB_DB_URL"].endswith("learnhub.sqlite")
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert "access:services" in roles["user"]["scopes"]
    assert set(CUSTOM_SCOPES) <= set(roles["learnhub-admin"]["scopes"])
    assert roles["learnhub-admin"]["users"] == ["admin"]
    # The bootstrap service may only read the admin and mint its tokens; its token is the owner's only.
    assert roles["learnhub-bootstrap"]["scopes"] == ["read:users!user=admin", "tokens!user=admin"]
    bootstrap = c.JupyterHub.services[-1]
    token_file = tmp_path / "data" / "bootstrap-token"
    assert bootstrap["api_token"] == token_file.read_text() and len(bootstrap["api_token"]) == 64
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert "access:services" in c.Spawner.server_token_scopes
    assert c.NativeAuthenticator.open_signup is True


def test_production_settings_from_environment_and_config_file(monkeypatch, tmp_path):
    config = (
        'c.LearnhubSettings.authenticator = "oauth"\n'
        'c.LearnhubSettings.spawner = "docker"\n'
        'c.GenericOAuthenticator.client_id = "learnhub"\n'
        'c.DockerSpawner.image = "example/learner:1"\n'
    )
    c = load_hub_config(monkeypatch, tmp_path / "data", config,
                        LEARNHUB_DB_URL="postgresql://learnhub@db/learnhub",
                        LEARNHUB_HUB_DB_URL="postgresql://learnhub@db/hub",
                        LEARNHUB_PUBLIC_URL="https://learn.example.edu",
                        LEARNHUB_PORT="8443", LEARNHUB_SPAWNER="local")
    assert c.JupyterHub.authenticator_class.learnhub_named == "learnhub.oidc.LearnhubOIDCAuthenticator"
    # The config file wins over the environment, and may set any other class's options.
    assert c.JupyterHub.spawner_class == "learnhub.docker_spawner.LearnhubDockerSpawner"
    assert c.DockerSpawner.image == "example/learner:1"
    assert c.GenericOAuthenticator.client_id == "learnhub"
    # The provider's tokens live in the hub's encrypted auth state, keyed by learnhub's keys, which
    # are kept outside the data dir (learnhub.secrets).
    from learnhub.secrets import default_key_file, hub_crypt_keys, load_keys

    assert c.Authenticator.enable_auth_state is True
    key_file = default_key_file(tmp_path / "data")
    assert not key_file.is_relative_to(tmp_path / "data") and key_file.stat().st_mode & 0o777 == 0o600
    assert c.CryptKeeper["keys"] == hub_crypt_keys(load_keys(key_file)) and not (tmp_path / "data" / "auth-state-key").exists()
    assert c.GenericOAuthenticator.oauth_callback_url == "https://learn.example.edu/hub/oauth_callback"
    assert c.LearnhubOIDCAuthenticator.post_logout_redirect_url == "https://learn.example.edu/hub/login"
    assert c.JupyterHub.db_url == "postgresql://learnhub@db/hub"
    assert c.JupyterHub.port == 8443
    assert all(s["environment"]["LEARNHUB_DB_URL"] == "postgresql://learnhub@db/learnhub"
               for s in managed_services(c))
    assert all(s["environment"]["LEARNHUB_PUBLIC_URL"] == "https://learn.example.edu"
               for s in managed_services(c))


def test_admin_users_from_config(monkeypatch, tmp_path):
    c = load_hub_config(monkeypatch, tmp_path / "data", 'c.LearnhubSettings.admin_users = ["ada", "admin"]\n',
                        LEARNHUB_ADMIN_USERNAME="root")
    assert c.Authenticator.admin_users == {"root", "ada", "admin"}
    roles = {role["name"]: role for role in c.JupyterHub.load_roles}
    assert roles["learnhub-admin"]["users"] == ["root", "ada", "admin"]
    assert "tokens!user=ada" in roles["learnhub-bootstrap"]["scopes"]


def test_lti_and_class_paths(monkeypatch, tmp_path):
    c = load_hub_config(monkeypatch, tmp_path / "d1", LEARNHUB_AUTHENTICATOR="lti")
    assert c.JupyterHub.authenticator_class.learnhub_named == "learnhub.lti.auth.LearnhubLTIAuthenticator"
    # the LTI tool writes learnhub's database and keeps its keys in the data dir
    assert c.LearnhubLTIAuthenticator.data_dir == str((tmp_path / "d1").resolve())
    assert c.LearnhubLTIAuthenticator.db_url.endswith("learnhub.sqlite")
    c = load_hub_config(monkeypatch, tmp_path / "d2",
                        LEARNHUB_SPAWNER="jupyterhub.spawner.SimpleLocalProcessSpawner")
    assert c.JupyterHub.spawner_class == "jupyterhub.spawner.SimpleLocalProcessSpawner"


def test_short_names_resolve_to_the_classes_jupyterhub_loads():
    """JupyterHub's own trait turns the names learnhub hands it into learnhub's classes."""
    from jupyterhub.app import JupyterHub

    from learnhub.auth import LearnhubNativeAuthenticator
    from learnhub.spawner import SandboxedLocalSpawner

    hub = JupyterHub(authenticator_class="learnhub-native", spawner_class="learnhub-sandboxed")
    assert hub.authenticator_class is LearnhubNativeAuthenticator
    assert hub.spawner_class is SandboxedLocalSpawner


def test_unknown_authenticator_name_is_a_clear_error(tmp_path):
    settings, _ = load_settings(str(tmp_path), authenticator="facebook")
    from traitlets.config import Config

    with pytest.raises(ValueError, match="unknown authenticator 'facebook'"):
        configure_hub(Config(), settings)


def test_tls_settings(monkeypatch, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("certificate"), key.write_text("key")  # only their presence is checked here
    c = load_hub_config(monkeypatch, tmp_path / "data", LEARNHUB_SSL_CERT=str(cert), LEARNHUB_SSL_KEY=str(key))
    assert (c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key) == (str(cert), str(key))
    settings, _ = load_settings(str(tmp_path / "data"))
    assert settings.public_url.startswith("https://")


def test_service_ports_are_never_handed_out_twice(monkeypatch):
    """The kernel may offer a just-freed port again; two services on one port is a hub whose
    /services/<a>/ reaches service b. The kernel's choice is replaced by a fake that repeats
    itself (the real one does so too rarely to test)."""
    import learnhub.hub as hub

    offered = iter([41001, 41001, 41002, 41001, 41003])

    class FakeSocket:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, address):
            self.port = next(offered)

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(hub, "_ports_given", set())
    monkeypatch.setattr(hub.socket, "socket", FakeSocket)
    assert [hub.free_port(), hub.free_port(), hub.free_port()] == [41001, 41002, 41003]
