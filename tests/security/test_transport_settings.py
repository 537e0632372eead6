"""The settings behind HTTPS and origin isolation, as the hub's configuration gets them (no hub started:
tests/security/test_https.py and test_origin_isolation.py run the real thing)."""
from __future__ import annotations

import os

import pytest
from traitlets import TraitError
from traitlets.config import PyFileConfigLoader

from learnhub.config import load_settings
from learnhub.hub import hub_config_file, subdomain_hook


def load_hub_config(monkeypatch, data_dir, **env):
    """The hub's configuration as ``learnhub up`` makes it, from these LEARNHUB_* variables only."""
    for name in list(os.environ):
        if name.startswith("LEARNHUB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LEARNHUB_DATA_DIR", str(data_dir))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = hub_config_file()
    return PyFileConfigLoader(path.name, path=str(path.parent)).load_config()


def test_subdomain_host_puts_servers_on_subdomains_and_services_on_the_hub(monkeypatch, tmp_path):
    c = load_hub_config(monkeypatch, tmp_path / "data", LEARNHUB_SUBDOMAIN_HOST="https://learn.example.edu/")
    assert c.JupyterHub.subdomain_host == "https://learn.example.edu"
    hook = c.JupyterHub.subdomain_hook
    assert hook("ada", "learn.example.edu", "user") == "ada.learn.example.edu"
    assert hook("Zoë Ü", "learn.example.edu", "user").endswith(".learn.example.edu")  # JupyterHub's own encoding
    assert hook("courses", "learn.example.edu", "service") == "learn.example.edu"
    settings, _ = load_settings(str(tmp_path / "data"))
    # The hub, the links in notifications and the services' calls to each other use the hub's own name.
    assert settings.public_url == "https://learn.example.edu"
    assert all(spec["environment"]["LEARNHUB_PUBLIC_URL"] == "https://learn.example.edu"
               for spec in c.JupyterHub.services if "command" in spec)  # (not the tokens-only bootstrap service)


def test_without_subdomain_host_nothing_changes(monkeypatch, tmp_path):
    c = load_hub_config(monkeypatch, tmp_path / "data")
    assert "subdomain_host" not in c.JupyterHub and "subdomain_hook" not in c.JupyterHub
    assert subdomain_hook("ada", "x.org", "user") == "ada.x.org"


@pytest.mark.parametrize("value", ["learn.example.edu", "ftp://learn.example.edu", "https://learn.example.edu/hub"])
def test_a_subdomain_host_that_is_no_origin_is_refused(monkeypatch, tmp_path, value):
    monkeypatch.setenv("LEARNHUB_SUBDOMAIN_HOST", value)
    with pytest.raises(TraitError, match="scheme://host"):
        load_settings(str(tmp_path / "data"))[0].subdomain_host
    monkeypatch.delenv("LEARNHUB_SUBDOMAIN_HOST")
    with pytest.raises(TraitError, match="scheme://host"):  # the same from learnhub_config.py
        load_settings(str(tmp_path / "data"), subdomain_host=value)


def test_https_needs_both_files(monkeypatch, tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("certificate")
    with pytest.raises(ValueError, match="ssl_key is 'not set'"):
        load_hub_config(monkeypatch, tmp_path / "data", LEARNHUB_SSL_CERT=str(cert))
    with pytest.raises(ValueError, match="ssl_cert is .*missing.pem"):
        load_hub_config(monkeypatch, tmp_path / "data", LEARNHUB_SSL_CERT=str(tmp_path / "missing.pem"),
                        LEARNHUB_SSL_KEY=str(cert))


def test_https_cookies_and_the_trusted_ca(monkeypatch, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("certificate"), key.write_text("key")
    c = load_hub_config(monkeypatch, tmp_path / "data", LEARNHUB_SSL_CERT=str(cert), LEARNHUB_SSL_KEY=str(key),
                        LEARNHUB_SSL_CA=str(cert))
    assert c.JupyterHub.tornado_settings["xsrf_cookie_kwargs"] == {"secure": True}
    for environment in [c.Spawner.environment] + [spec["environment"] for spec in c.JupyterHub.services if "command" in spec]:
        assert environment["SSL_CERT_FILE"] == environment["REQUESTS_CA_BUNDLE"] == str(cert)
        assert environment["LEARNHUB_PUBLIC_URL"].startswith("https://")
    assert c.SandboxedLocalSpawner.extra_ro_binds == [str(cert)]  # the sandboxed server can read it
