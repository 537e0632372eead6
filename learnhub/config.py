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

from traitlets import Bool, Integer, List, Unicode, default, validate
from traitlets.config import Configurable, Config, PyFileConfigLoader

#: learnhub's short names for JupyterHub authenticators and spawners. The values are what
#: ``c.JupyterHub.authenticator_class`` / ``spawner_class`` take — entry point names (learnhub registers
#: its own under ``jupyterhub.authenticators`` / ``jupyterhub.spawners``) or import paths — so JupyterHub
#: itself resolves them; any other value is passed to JupyterHub as it is.
AUTHENTICATORS = {
    "native": "learnhub-native",
    "oauth": "generic-oauth",
    "lti": "ltiauthenticator.lti13.auth.LTI13Authenticator",
}
SPAWNERS = {
    "local": "learnhub-sandboxed",
    "docker": "learnhub.docker_spawner.LearnhubDockerSpawner",
}
SERVICE_NAMES = ("courses", "feedback", "recommender", "analytics", "notifications")
CONFIG_FILE_NAME = "learnhub_config.py"


def _env(name: str, fallback: str = "") -> str:
    return os.environ.get(f"LEARNHUB_{name}", fallback)


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
        return _env("PUBLIC_URL") or f"{scheme}://{self.ip}:{self.port}"

    ssl_cert = Unicode(help="TLS certificate file for the public proxy. Env: LEARNHUB_SSL_CERT.").tag(config=True)
    ssl_key = Unicode(help="TLS private key file for the public proxy. Env: LEARNHUB_SSL_KEY.").tag(config=True)

    @default("ssl_cert")
    def _default_ssl_cert(self):
        return _env("SSL_CERT")

    @default("ssl_key")
    def _default_ssl_key(self):
        return _env("SSL_KEY")

    authenticator = Unicode(
        help=f"""How people log in: ``native`` (sign-up at /hub/signup, the embedded default),
        ``oauth`` (any OIDC / OAuth 2.0 provider, configure ``c.GenericOAuthenticator``),
        ``lti`` (LTI 1.3 from an LMS, configure ``c.LTI13Authenticator``), or the import path
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

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def credentials_file(self) -> Path:
        return self.data_path / "admin-credentials.json"

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
