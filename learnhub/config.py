"""learnhub's settings, as traitlets, read from ``learnhub_config.py`` and the environment.

Every setting of a deployment lives here, once, with its help text. The CLI,
the hub configuration (``hub_config/jupyterhub_config.py``) and the services
all read the same :class:`LearnhubSettings`, so the embedded default and a
production deployment differ only in configuration.

Precedence, lowest first: the defaults below, ``LEARNHUB_*`` environment
variables, then ``c.LearnhubSettings.*`` in ``learnhub_config.py``.
"""
from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Integer, List, TraitError, Unicode, default, validate
from traitlets.config import Configurable, Config, PyFileConfigLoader

#: learnhub's short names for JupyterHub authenticators and spawners. The values are what
#: ``c.JupyterHub.authenticator_class`` / ``spawner_class`` take — entry point names (learnhub registers
#: its own under ``jupyterhub.authenticators`` / ``jupyterhub.spawners``) or import paths — so JupyterHub
#: itself resolves them; any other value is passed to JupyterHub as it is.
AUTHENTICATORS = {
    "native": "learnhub-native",
    "oauth": "learnhub.oidc.LearnhubOIDCAuthenticator",
    "lti": "learnhub.lti.auth.LearnhubLTIAuthenticator",
}
SPAWNERS = {
    "local": "learnhub-sandboxed",
    "docker": "learnhub.docker_spawner.LearnhubDockerSpawner",
}
SERVICE_NAMES = ("courses", "feedback", "recommender", "analytics", "notifications")
CONFIG_FILE_NAME = "learnhub_config.py"


def _env(name: str, fallback: str = "") -> str:
    return os.environ.get(f"LEARNHUB_{name}", fallback)


def _origin(name: str, value: str) -> str:
    """``scheme://host[:port]`` without a trailing slash, or ValueError saying what is expected."""
    from urllib.parse import urlparse

    value = value.rstrip("/")
    if not value:
        return ""
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path:
        raise TraitError(f"{name} must be scheme://host[:port] with nothing after it, "
                         f"e.g. https://learn.example.edu, not {value!r}")
    return value


class LearnhubSettings(Configurable):
    """Where learnhub keeps its data and how the hub in front of it is set up."""

    data_dir = Unicode(
        help="""Folder for everything learnhub stores on this machine: the SQLite databases of the
        embedded default, the hub's cookie secret, the admin's credentials, users' home folders,
        course files. Env: LEARNHUB_DATA_DIR. Default: ./learnhub-data."""
    ).tag(config=True)

    @default("data_dir")
    def _default_data_dir(self):
        return str(Path(_env("DATA_DIR", "learnhub-data")).resolve())

    @validate("data_dir")
    def _absolute_data_dir(self, proposal):
        return str(Path(proposal["value"]).expanduser().resolve())

    db_url = Unicode(
        help="""SQLAlchemy URL of the learnhub database (courses, submissions, events, ...).
        ``postgresql://user:pass@host/db`` in production (psycopg 3 is used).
        Env: LEARNHUB_DB_URL. Default: a SQLite file ``learnhub.sqlite`` in the data dir."""
    ).tag(config=True)

    @default("db_url")
    def _default_db_url(self):
        return _env("DB_URL") or f"sqlite:///{Path(self.data_dir, 'learnhub.sqlite')}"

    hub_db_url = Unicode(
        help="""SQLAlchemy URL of JupyterHub's own database (kept apart from learnhub's).
        Env: LEARNHUB_HUB_DB_URL. Default: a SQLite file ``jupyterhub.sqlite`` in the data dir."""
    ).tag(config=True)

    @default("hub_db_url")
    def _default_hub_db_url(self):
        return _env("HUB_DB_URL") or f"sqlite:///{Path(self.data_dir, 'jupyterhub.sqlite')}"

    ip = Unicode(help="Address the public proxy listens on. Env: LEARNHUB_IP.").tag(config=True)

    @default("ip")
    def _default_ip(self):
        return _env("IP", "127.0.0.1")

    port = Integer(help="Port the public proxy listens on. Env: LEARNHUB_PORT.").tag(config=True)

    @default("port")
    def _default_port(self):
        return int(_env("PORT", "8000"))

    hub_port = Integer(
        help="""Port of the hub's own API, behind the proxy (0: any free port, for tests).
        Single-user servers in containers must reach it. Env: LEARNHUB_HUB_PORT."""
    ).tag(config=True)

    @default("hub_port")
    def _default_hub_port(self):
        return int(_env("HUB_PORT", "8081"))

    proxy_api_port = Integer(
        help="Port of configurable-http-proxy's REST API (0: any free port). Env: LEARNHUB_PROXY_API_PORT."
    ).tag(config=True)

    @default("proxy_api_port")
    def _default_proxy_api_port(self):
        return int(_env("PROXY_API_PORT", "8001"))

    hub_connect_ip = Unicode(
        help="""Address single-user servers use to reach the hub API; needed when they run in
        containers (the hub's address on the Docker network). Empty: the hub's own address.
        Env: LEARNHUB_HUB_CONNECT_IP."""
    ).tag(config=True)

    @default("hub_connect_ip")
    def _default_hub_connect_ip(self):
        return _env("HUB_CONNECT_IP")

    public_url = Unicode(
        help="""The URL people use to reach the platform, e.g. ``https://learn.example.edu``.
        Used for OAuth redirects and links in notifications. Env: LEARNHUB_PUBLIC_URL.
        Default: http://IP:PORT."""
    ).tag(config=True)

    @default("public_url")
    def _default_public_url(self):
        scheme = "https" if self.ssl_cert else "http"
        # With subdomains the hub is reached at the subdomain host's own name (its users' servers at
        # subdomains of it), never at a bare address.
        return _env("PUBLIC_URL") or self.subdomain_host or f"{scheme}://{self.ip}:{self.port}"

    subdomain_host = Unicode(
        help="""Put each user's server on a subdomain of its own (JupyterHub's ``subdomain_host``):
        ``https://learn.example.edu`` puts ada's server at ``https://ada.learn.example.edu``, so the
        JavaScript of a learner's notebook runs on an origin of its own, away from the hub's pages, the
        admin's and every other learner's. Needs a wildcard DNS entry (and, with HTTPS, a wildcard
        certificate); ``http://localhost:8000`` works on one machine, as browsers resolve ``*.localhost``
        to loopback. learnhub's services stay on the hub's own host (their pages are learnhub's code, not
        learners'). Empty (the default): every server under ``/user/<name>/`` on the hub's host.
        Env: LEARNHUB_SUBDOMAIN_HOST."""
    ).tag(config=True)

    @default("subdomain_host")
    def _default_subdomain_host(self):
        # traitlets validates only values set, not defaults: the environment's is checked here.
        return _origin("subdomain_host", _env("SUBDOMAIN_HOST"))

    @validate("subdomain_host")
    def _check_subdomain_host(self, proposal):
        return _origin("subdomain_host", proposal["value"])

    ssl_cert = Unicode(
        help="""TLS certificate file (PEM, with its chain) for the public proxy: with it and ``ssl_key`` the
        platform serves HTTPS only, and the hub's, the services' and the servers' cookies are ``Secure``.
        Env: LEARNHUB_SSL_CERT."""
    ).tag(config=True)
    ssl_key = Unicode(help="TLS private key file (PEM) of ``ssl_cert``. Env: LEARNHUB_SSL_KEY.").tag(config=True)

    ssl_ca = Unicode(
        help="""CA bundle (PEM) that the platform's own parts trust when they call each other through the
        public HTTPS URL (services, learners' servers): needed only when ``ssl_cert`` is not signed by a
        public CA (a private CA or a self-signed certificate: give the certificate itself). Passed to them
        as ``SSL_CERT_FILE`` and ``REQUESTS_CA_BUNDLE``. Env: LEARNHUB_SSL_CA."""
    ).tag(config=True)

    @default("ssl_ca")
    def _default_ssl_ca(self):
        return _env("SSL_CA")

    @default("ssl_cert")
    def _default_ssl_cert(self):
        return _env("SSL_CERT")

    @default("ssl_key")
    def _default_ssl_key(self):
        return _env("SSL_KEY")

    authenticator = Unicode(
        help=f"""How people log in: ``native`` (sign-up at /hub/signup, the embedded default),
        ``oauth`` (any OpenID Connect provider: ``learnhub.oidc.LearnhubOIDCAuthenticator``, a
        GenericOAuthenticator; configure ``c.LearnhubOIDCAuthenticator`` / ``c.GenericOAuthenticator``,
        docs/authentication.md),
        ``lti`` (LTI 1.3 Advantage from an LMS, configure ``c.LtiSettings``; docs/lti.md), or the import path
        of any JupyterHub Authenticator class. Env: LEARNHUB_AUTHENTICATOR. Names: {sorted(AUTHENTICATORS)}."""
    ).tag(config=True)

    @default("authenticator")
    def _default_authenticator(self):
        return _env("AUTHENTICATOR", "native")

    spawner = Unicode(
        help="""Where learners' servers run: ``local`` (a bubblewrap-sandboxed local process, the
        embedded default), ``docker`` (DockerSpawner; configure ``c.DockerSpawner``), or the import
        path of any Spawner class. Env: LEARNHUB_SPAWNER."""
    ).tag(config=True)

    @default("spawner")
    def _default_spawner(self):
        return _env("SPAWNER", "local")

    singleuser_image = Unicode(
        help="""The image of learners' servers when they run in containers (``spawner = docker``):
        images/singleuser (JupyterLab, nbgrader, learnhub's extensions). Env: LEARNHUB_SINGLEUSER_IMAGE."""
    ).tag(config=True)

    @default("singleuser_image")
    def _default_singleuser_image(self):
        return _env("SINGLEUSER_IMAGE", "learnhub/singleuser:latest")

    docker_network = Unicode(
        help="""The Docker network learners' containers join (``spawner = docker``): the hub's own
        network in a Compose deployment (the hub then listens on all its addresses so they reach
        it), ``host`` where the engine has no bridge (they share the host's loopback with the hub),
        empty: Docker's default bridge. Env: LEARNHUB_DOCKER_NETWORK."""
    ).tag(config=True)

    @default("docker_network")
    def _default_docker_network(self):
        return _env("DOCKER_NETWORK")

    admin_username = Unicode(
        help="Name of the admin account created on first start. Env: LEARNHUB_ADMIN_USERNAME."
    ).tag(config=True)

    @default("admin_username")
    def _default_admin_username(self):
        return _env("ADMIN_USERNAME", "admin")

    admin_users = List(
        Unicode(),
        help="""More admins besides ``admin_username``: these people, when they log in (with any
        authenticator), are the hub's admins and hold the ``learnhub-admin`` role. With ``oauth``,
        ``c.LearnhubOIDCAuthenticator.admin_claim_groups`` makes admins from the provider's groups
        claim too. Env: LEARNHUB_ADMIN_USERS (comma-separated)."""
    ).tag(config=True)

    @default("admin_users")
    def _default_admin_users(self):
        return [name.strip() for name in _env("ADMIN_USERS").split(",") if name.strip()]

    bootstrap_service = Bool(
        True,
        help="""Register the ``learnhub-bootstrap`` service, whose token (``DATA_DIR/bootstrap-token``)
        lets ``learnhub up`` mint the admin's API token without a password. One start with False
        deletes the service and every token it had (JupyterHub drops services no longer configured):
        the way to retire a bootstrap token (docs/authentication.md). ``learnhub up`` then keeps the
        admin's token it has, and fails clearly if it has none."""
    ).tag(config=True)

    open_signup = Bool(
        help="""With the native authenticator: whether people who sign up can log in at once (True)
        or wait for an admin's approval at /hub/authorize (False). Env: LEARNHUB_OPEN_SIGNUP=0|1."""
    ).tag(config=True)

    @default("open_signup")
    def _default_open_signup(self):
        return _env("OPEN_SIGNUP", "1").lower() not in ("0", "false", "no")

    services = List(
        Unicode(),
        help="Which learnhub services the hub starts and routes to (all five by default).",
    ).tag(config=True)

    @default("services")
    def _default_services(self):
        return list(SERVICE_NAMES)

    demo_course = Bool(
        help="""Load the demo course shipped in ``courses/`` on start, when the catalogue is empty.
        Env: LEARNHUB_DEMO_COURSE=0|1."""
    ).tag(config=True)

    @default("demo_course")
    def _default_demo_course(self):
        return _env("DEMO_COURSE", "1").lower() not in ("0", "false", "no")

    key_file = Unicode(
        help="""File of the keys that encrypt personal data at rest (contact details; with an LMS or OIDC
        login also the hub's auth_state, which holds their identifiers), one Fernet key a line, newest
        first; made on first use. Keep it off the data dir's disk or backups. $LEARNHUB_SECRET_KEYS
        (comma-separated) replaces the file altogether. Env: LEARNHUB_KEY_FILE.
        Default: <data dir>-keys/contacts.key, beside the data dir and never in it.""",
    ).tag(config=True)

    @default("key_file")
    def _default_key_file(self):
        from .secrets import default_key_file

        return _env("KEY_FILE") or str(default_key_file(self.data_dir))

    @property
    def docker_spawner(self) -> bool:
        """Learners' servers are DockerSpawner containers (their homes: Docker volumes)."""
        return self.spawner == "docker" or SPAWNERS["docker"] in self.spawner

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def credentials_file(self) -> Path:
        return self.data_path / "admin-credentials.json"

    @property
    def bootstrap_token_file(self) -> Path:
        """The bootstrap service's hub token (0600): what lets ``learnhub up`` give the admin an API
        token without knowing any password, whatever the authenticator."""
        return self.data_path / "bootstrap-token"

    @property
    def all_admin_users(self) -> list[str]:
        """``admin_username`` first, then ``admin_users``, each once."""
        return list(dict.fromkeys([self.admin_username, *self.admin_users]))

    @property
    def config_file(self) -> Path:
        return self.data_path / CONFIG_FILE_NAME


def config_search_path(data_dir: str | None = None) -> list[Path]:
    """``learnhub_config.py`` is looked for in the data dir, then the working directory."""
    folders = []
    if data_dir:
        folders.append(Path(data_dir))
    folders.append(Path.cwd())
    env_file = _env("CONFIG")
    paths = [Path(env_file)] if env_file else []
    paths.extend(folder / CONFIG_FILE_NAME for folder in folders)
    return paths


def load_config_file(paths: list[Path]) -> tuple[Config, Path | None]:
    """The first existing config file in ``paths``, loaded (or an empty config)."""
    for path in paths:
        if path.is_file():
            loader = PyFileConfigLoader(path.name, path=str(path.parent))
            return loader.load_config(), path
    return Config(), None


def load_settings(data_dir: str | None = None, **overrides) -> tuple[LearnhubSettings, Path | None]:
    """Settings from defaults, environment, ``learnhub_config.py`` and explicit overrides."""
    config, path = load_config_file(config_search_path(data_dir))
    if data_dir:
        config.LearnhubSettings.data_dir = data_dir
    for name, value in overrides.items():
        if value is not None:
            setattr(config.LearnhubSettings, name, value)
    return LearnhubSettings(config=config), path
