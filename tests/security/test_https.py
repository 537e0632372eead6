"""HTTPS end to end: ``learnhub up`` with a certificate and key serves HTTPS only, every cookie is
``Secure``, and the services and a learner's server work through it.

The certificate is self-signed, made here with ``cryptography`` for ``localhost`` and ``127.0.0.1``: fenced
servers keep those names too (learnhub/fence.py takes their loopback ports to the host's); the
platform is told to trust it (``LEARNHUB_SSL_CA``: its services and the learner's sandboxed server call
each other through the public HTTPS URL), and so are this test's requests (``REQUESTS_CA_BUNDLE``),
never ``verify=False``. Everything else is real: the hub, its proxy, the five services, the grader, a
bubblewrap-sandboxed server.
"""
from __future__ import annotations

import datetime
import ipaddress
import time
from pathlib import Path

import pytest
import requests

from hubtools import LearnhubProcess, log_in, sign_up, start_server

pytestmark = [pytest.mark.hub, pytest.mark.db]  # db: runs on the backend under test (its platform does)

PASSWORD = "https-passw0rd-long"


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1, signed by its own key; (cert, key) as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "learnhub test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName("*.localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, key_encipherment=False,
                                         content_commitment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.chmod(0o644)  # the learner's server (another uid when the hub runs as root) reads it
    key_path.chmod(0o600)
    return cert_path, key_path


def describe(session) -> list[str]:
    return [f"{c.name} path={c.path} secure={c.secure}" for c in session.cookies]


class HTTPSLearnhub(LearnhubProcess):
    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def tls_platform(tmp_path_factory):
    from dbtools import create_database, drop_database

    folder = tmp_path_factory.mktemp("https")
    cert, key = self_signed(folder)
    db_url, hub_db_url = create_database(folder, "learnhub"), create_database(folder, "hub")
    hub = HTTPSLearnhub(folder / "data", db_url, hub_db_url, demo=True,
                        extra_env={"LEARNHUB_SSL_CERT": str(cert), "LEARNHUB_SSL_KEY": str(key),
                                   "LEARNHUB_SSL_CA": str(cert), "LEARNHUB_GRADER_WORKERS": "1",
                                   "LEARNHUB_GRADER_POOL_SIZE": "1"})
    with pytest.MonkeyPatch.context() as patch:
        # This test's own requests trust the certificate as the platform's parts do.
        patch.setenv("REQUESTS_CA_BUNDLE", str(cert))
        hub.start()
        try:
            yield hub
        finally:
            code = hub.stop()
            drop_database(db_url)
            drop_database(hub_db_url)
    assert code == 0, hub.log_tail()


def test_only_https_is_served(tls_platform):
    hub = tls_platform
    assert "learnhub is serving on https://" in hub.log_tail(200)
    assert requests.get(f"{hub.url}/hub/api/", timeout=30).json()["version"]
    # Plain HTTP on the same port gets no page from the hub: the proxy speaks TLS only.
    try:
        plain = requests.get(f"http://127.0.0.1:{hub.port}/hub/api/", timeout=30, allow_redirects=False)
    except requests.ConnectionError:
        plain = None
    assert plain is None or (plain.status_code >= 400 and "version" not in plain.text), plain.text
    # And a client that does not trust the certificate is refused, as it should be.
    import certifi

    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{hub.url}/hub/api/", timeout=30, verify=certifi.where())


def test_cookies_are_secure_and_everything_works_through_https(tls_platform):
    hub = tls_platform
    assert sign_up(hub, "ada", PASSWORD).status_code == 200
    session = log_in(hub, "ada", PASSWORD)
    hub_cookies = {cookie.name: cookie for cookie in session.cookies}
    assert "jupyterhub-hub-login" in hub_cookies, hub_cookies
    assert all(cookie.secure for cookie in session.cookies), describe(session)

    # A service's page: HubOAuth's login round trip through the hub, over HTTPS, sets a Secure cookie.
    page = session.get(f"{hub.url}/services/courses/", timeout=60)
    assert page.status_code == 200 and "Signed in as" in page.text and page.url.startswith("https://"), page.url
    service_cookies = [c for c in session.cookies if c.path.startswith("/services/courses")]
    assert service_cookies and all(c.secure for c in session.cookies), describe(session)

    # The learner enrolls and submits through the feedback service, which records the submission at the
    # courses service through the public HTTPS URL and has it graded.
    token = hub.user_token("ada")
    auth = {"Authorization": f"token {token}"}
    assert requests.post(f"{hub.url}/services/courses/api/courses/intro-python/enrollments", headers=auth,
                         json={}, timeout=60).status_code in (200, 201)
    repo = Path(__file__).resolve().parents[2]
    solution = (repo / "courses" / "intro-python" / "source" / "01-basics" / "basics.ipynb").read_bytes()
    accepted = requests.post(f"{hub.url}/services/feedback/api/submissions", headers=auth, timeout=60,
                             data={"course": "intro-python", "assignment": "01-basics"},
                             files=[("files", ("basics.ipynb", solution, "application/x-ipynb+json"))])
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 300
    while True:
        state = requests.get(f"{hub.url}/services/feedback/api/submissions/{accepted.json()['id']}",
                             headers=auth, timeout=60).json()
        if state["status"] in ("graded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert state["status"] == "graded", state

    # The learner's own server, through the proxy over HTTPS: the browser's login round trip sets a Secure
    # cookie, and the server's bridge reaches the services through the public HTTPS URL.
    start_server(hub, "ada")
    lab = session.get(f"{hub.url}/user/ada/lab", timeout=120)
    assert lab.status_code == 200 and lab.url == f"{hub.url}/user/ada/lab", (lab.status_code, lab.url)
    assert "jupyter-config-data" in lab.text  # JupyterLab's page, served by her own server
    server_cookies = [c for c in session.cookies if c.path.startswith("/user/ada")]
    assert server_cookies and all(c.secure for c in session.cookies), describe(session)
    mine = requests.get(f"{hub.url}/user/ada/learnhub/api/services/courses/courses/intro-python/assignments",
                        headers=auth, timeout=120)
    assert mine.status_code == 200, mine.text
    basics = next(item for item in mine.json()["items"] if item["id"] == "01-basics")
    assert basics["score"] == state["score"], basics
