"""The composition root's logic: JupyterHub configuration from :class:`LearnhubSettings`.

``hub_config/jupyterhub_config.py`` calls :func:`configure_hub`; everything a
deployment may change is a setting, and anything else can still be set on
``c`` in ``learnhub_config.py``, which the hub loads after these defaults.
"""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from .config import AUTHENTICATORS, SPAWNERS, LearnhubSettings
from .hub_events import HubEventRecorder, erasing_authenticator

#: learnhub's own permissions, checked by its services (JupyterHub custom scopes).
CUSTOM_SCOPES = {
    "custom:learnhub:courses:create": {"description": "Create courses in the learnhub catalogue."},
    "custom:learnhub:courses:manage": {
        "description": "Manage every course: settings, enrollments, assignments, grades."},
    "custom:learnhub:grades:read": {"description": "Read every learner's submissions, grades and feedback."},
    "custom:learnhub:analytics:read": {"description": "Read platform-wide analytics and reports."},
    "custom:learnhub:notifications:admin": {"description": "See and retry undeliverable notifications."},
    "custom:learnhub:data:admin": {"description": "Export or erase a person's learnhub data (GDPR)."},
    "custom:learnhub:courses:read": {
        "description": "Read every course's schedule and every learner's profile (learnhub's services)."},
    "custom:learnhub:submissions:write": {
        "description": "Record a submission for a learner under the course's rules (the feedback service)."},
    "custom:learnhub:grading:read": {"description": "Read the grading queue's depth and latency."},
}

INSTRUCTORS_GROUP = "learnhub-instructors"

#: What every learnhub service may do: look people up and read course groups in the hub, call the
#: other services (each checks the service's scopes as it checks a person's).
SERVICE_SCOPES = ["list:users", "read:users", "read:users:groups", "list:groups", "read:groups",
                  "read:roles:users", "access:services"]

#: What one service needs beyond that, and only it: least privilege between services.
SERVICE_EXTRA_SCOPES = {
    # mirrors enrollments into the hub's course groups; coordinates data export and erasure
    "courses": ["admin:groups", "groups", "custom:learnhub:data:admin"],
    "feedback": ["custom:learnhub:submissions:write", "custom:learnhub:grades:read"],  # submits, then grades
    "recommender": ["custom:learnhub:courses:read"],  # learner profiles and due dates
    "notifications": ["custom:learnhub:courses:read"],  # due dates for reminders
    "analytics": ["custom:learnhub:grading:read"],  # the grading queue for the platform report
}

#: What a single-user server's token may do: report activity, and call learnhub's services as its user.
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", "access:services",
                       "read:users:name!user", "read:users:groups!user"]


#: Credentials of notification providers, read by their official SDKs from the environment.
PROVIDER_VARIABLES = ("SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")


_ports_given: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now, and never one this process handed out before: the
    ports are all chosen before any service binds, and the kernel may offer a just-freed port again
    (two services on one port means one of them cannot start, and its URL reaches the other)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def hub_class(kind: str, name: str) -> str:
    """What ``c.JupyterHub.<kind>_class`` gets for learnhub's setting ``name``: learnhub's short names
    (:data:`AUTHENTICATORS`, :data:`SPAWNERS`) become JupyterHub's entry point names or import paths;
    the value is checked here with JupyterHub's own trait, so a typo fails before the hub starts."""
    from jupyterhub.auth import Authenticator
    from jupyterhub.spawner import Spawner
    from jupyterhub.traitlets import EntryPointType
    from traitlets import TraitError

    known, klass = {"authenticator": (AUTHENTICATORS, Authenticator), "spawner": (SPAWNERS, Spawner)}[kind]
    value = known.get(name, name)
    trait = EntryPointType(klass=klass, entry_point_group=f"jupyterhub.{kind}s")
    try:
        trait.validate(None, value)
    except (TraitError, ImportError) as exc:
        raise ValueError(f"unknown {kind} {name!r}: use one of {', '.join(sorted(known))}, a name from "
                         f"{', '.join(sorted(trait.load_entry_points()))}, or an import path ({exc})") from None
    return value


def subdomain_hook(name: str, domain: str, kind: str) -> str:
    """With ``subdomain_host``: each user's server on a subdomain of its own (JupyterHub's own naming,
    ``ada.learn.example.edu``); learnhub's services stay on the hub's host, ``/services/<name>/``, so the
    services, the servers and the command line keep reaching them at the public URL (one certificate name,
    no DNS entry per service), and their pages — learnhub's code, not learners' — share the hub's origin."""
    from jupyterhub.utils import subdomain_hook_idna

    if kind == "service":
        return domain
    return subdomain_hook_idna(name, domain, kind)


def ca_environment(settings: LearnhubSettings) -> dict:
    """What makes the platform's own HTTPS clients (requests, tornado, ssl) trust ``ssl_ca``."""
    if not settings.ssl_ca:
        return {}
    path = str(Path(settings.ssl_ca).resolve())
    return {"SSL_CERT_FILE": path, "REQUESTS_CA_BUNDLE": path}


def authenticator_class(value) -> type:
    """The class ``c.JupyterHub.authenticator_class`` names (a class, an import path or an entry point)."""
    from jupyterhub.auth import Authenticator
    from jupyterhub.traitlets import EntryPointType

    return EntryPointType(klass=Authenticator, entry_point_group="jupyterhub.authenticators").validate(None, value)


def service_specs(settings: LearnhubSettings) -> list[dict]:
    """Hub-managed service entries for ``c.JupyterHub.services``."""
    # Every LEARNHUB_* variable of the hub's environment reaches the services, so that a
    # service's own settings (LEARNHUB_GRADER_WORKERS, ...) can be given to `learnhub up`.
    environment = {name: value for name, value in os.environ.items()
                   if name.startswith("LEARNHUB_") or name in PROVIDER_VARIABLES}
    environment.update({
        "LEARNHUB_DB_URL": settings.db_url,
        "LEARNHUB_DATA_DIR": settings.data_dir,
        "LEARNHUB_PUBLIC_URL": settings.public_url,
        "LEARNHUB_KEY_FILE": settings.key_file,
        "PYTHONUNBUFFERED": "1",
        **ca_environment(settings),
    })
    specs = []
    for name in settings.services:
        specs.append({
            "name": name,
            "url": f"http://127.0.0.1:{free_port()}",
            "command": [sys.executable, "-m", "learnhub", "service", name],
            "environment": dict(environment),
            "oauth_no_confirm": True,
            # A loaded machine can take longer than JupyterHub's default to start a Python
            # service; giving up would take the whole hub down with it.
            "timeout": 120,
            "display": False,
            "info": {"learnhub": True},
        })
    return specs


#: The hub service whose token ``learnhub up`` uses to give the admin an API token: no process, no URL.
BOOTSTRAP_SERVICE = "learnhub-bootstrap"


def ensure_bootstrap_token(settings: LearnhubSettings) -> str:
    """The bootstrap service's token, created once and kept in the data dir readable by its owner only
    (like the cookie secret). It may do nothing but read the admin accounts and mint their tokens, so it
    is worth what the admin's token in ``admin-credentials.json`` is worth, and is kept alike.

    It is not rotated per start: JupyterHub keeps every token a service was ever configured with, so
    a new one would not retire the old (docs/authentication.md says how to retire it)."""
    return private_secret(settings.bootstrap_token_file)


def private_secret(path: Path) -> str:
    """A random secret kept in ``path`` (mode 0600), created on first use, never half-written."""
    import secrets

    if path.is_file():
        secret = path.read_text().strip()
        if secret:
            return secret
    secret = secrets.token_hex(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return secret


def bootstrap_service_spec(settings: LearnhubSettings) -> dict:
    return {"name": BOOTSTRAP_SERVICE, "api_token": ensure_bootstrap_token(settings), "display": False,
            "info": {"learnhub": True}}


def bootstrap_roles(settings: LearnhubSettings) -> list[dict]:
    if not settings.bootstrap_service:
        return []
    # Only what `learnhub up` needs to hand each configured admin an API token without a password
    # (the admin accounts themselves are created by the hub from Authenticator.admin_users).
    return [{"name": "learnhub-bootstrap", "description": "Mints the admins' API tokens for learnhub up.",
             "scopes": [f"{scope}!user={name}" for name in settings.all_admin_users
                        for scope in ("read:users", "tokens")],
             "services": [BOOTSTRAP_SERVICE]}]


def roles(settings: LearnhubSettings) -> list[dict]:
    return [
        # Every user may reach every learnhub service; each service checks course roles itself.
        {"name": "user", "scopes": ["self", "access:services"]},
        {"name": "learnhub-admin", "description": "Everything learnhub can do.",
         "scopes": sorted(CUSTOM_SCOPES) + ["access:services", "read:metrics"],
         "users": settings.all_admin_users},
        {"name": "learnhub-instructor", "description": "May create courses.",
         "scopes": ["custom:learnhub:courses:create", "access:services"],
         "groups": [INSTRUCTORS_GROUP]},
    ] + bootstrap_roles(settings) + [{"name": f"learnhub-service-{name}", "description": f"learnhub's {name} service.",
          "scopes": SERVICE_SCOPES + SERVICE_EXTRA_SCOPES.get(name, []), "services": [name]}
         for name in settings.services]


def singleuser_config_dir() -> str:
    """The ``jupyter-config`` folder of ``learnhub.extensions.singleuser`` (nbgrader's HTTP exchange
    and the server extension's enablement), found without importing the extension."""
    import importlib.util

    spec = importlib.util.find_spec("learnhub.extensions.singleuser")
    return str(Path(list(spec.submodule_search_locations)[0]) / "jupyter-config")


def configure_hub(c, settings: LearnhubSettings) -> None:
    """Fill JupyterHub's config ``c`` for learnhub."""
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True)

    c.JupyterHub.ip = settings.ip
    c.JupyterHub.port = settings.port
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = settings.hub_port or free_port()
    if settings.hub_connect_ip:
        c.JupyterHub.hub_connect_ip = settings.hub_connect_ip
    c.JupyterHub.db_url = settings.hub_db_url
    c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings.proxy_api_port or free_port()}"
    c.ConfigurableHTTPProxy.pid_file = str(data / "jupyterhub-proxy.pid")
    if settings.ssl_cert or settings.ssl_key:
        for name in ("ssl_cert", "ssl_key"):
            value = getattr(settings, name)
            if not value or not Path(value).is_file():
                raise ValueError(f"HTTPS needs both ssl_cert and ssl_key as readable PEM files; "
                                 f"{name} is {value or 'not set'!r} (LEARNHUB_{name.upper()})")
        # The proxy then listens with TLS only: a plain-HTTP request to the port gets no page.
        c.JupyterHub.ssl_cert = settings.ssl_cert
        c.JupyterHub.ssl_key = settings.ssl_key
        # The hub marks its login cookies Secure on HTTPS requests itself; its _xsrf cookie only when told.
        c.JupyterHub.tornado_settings = {"xsrf_cookie_kwargs": {"secure": True}, "cookie_options": {"secure": True}}
    if settings.subdomain_host:
        c.JupyterHub.subdomain_host = settings.subdomain_host
        c.JupyterHub.subdomain_hook = subdomain_hook

    # Logins, server starts and deleted users go to the event log (analytics counts the first two;
    # a deleted user's data is erased in every service, learnhub.data_rights).
    recorder = HubEventRecorder(settings.db_url)
    named = hub_class("authenticator", settings.authenticator)
    c.JupyterHub.authenticator_class = erasing_authenticator(authenticator_class(named), recorder)
    c.JupyterHub.authenticator_class.learnhub_named = named  # what the settings named (the wrapped class)
    c.Authenticator.admin_users = set(settings.all_admin_users)
    if settings.authenticator == "native":
        c.NativeAuthenticator.open_signup = settings.open_signup
        # NativeAuthenticator already refuses accounts an admin has not approved
        # (unless sign-up is open), so every account it authenticates may log in.
        c.NativeAuthenticator.allow_all = True
        c.NativeAuthenticator.minimum_password_length = 8
        c.LearnhubNativeAuthenticator.bootstrap_credentials_file = str(settings.credentials_file)
    elif settings.authenticator == "oauth":
        # The provider's tokens (refresh token, id_token for the logout hint) are kept in the hub's
        # encrypted auth state (below, with learnhub's keys).
        # Behind a reverse proxy the request's host is not the public one: the provider must get the
        # redirect URI registered with it.
        # (A public URL on a wildcard address names no host: then oauthenticator uses the request's.)
        from urllib.parse import urlparse

        if urlparse(settings.public_url).hostname not in ("0.0.0.0", "::", None):
            public = settings.public_url.rstrip("/")
            c.GenericOAuthenticator.oauth_callback_url = f"{public}/hub/oauth_callback"
            c.LearnhubOIDCAuthenticator.post_logout_redirect_url = f"{public}/hub/login"
    elif settings.authenticator == "lti":
        # learnhub's own LTI 1.3 tool (docs/lti.md): it links courses and enrolls people in learnhub's
        # database and keeps its signing keys in the data dir.
        c.LearnhubLTIAuthenticator.db_url = settings.db_url
        c.LearnhubLTIAuthenticator.data_dir = settings.data_dir
        c.LearnhubLTIAuthenticator.public_url = settings.public_url

    if settings.authenticator != "native":
        # LMS/OIDC logins keep the provider's identifiers and tokens in auth_state: encrypted at rest,
        # with learnhub's keys (learnhub.secrets), unless JUPYTERHUB_CRYPT_KEY says otherwise.
        from .secrets import hub_crypt_keys, load_keys

        c.Authenticator.enable_auth_state = True
        if not os.environ.get("JUPYTERHUB_CRYPT_KEY"):
            keys = hub_crypt_keys(load_keys(settings.key_file, settings.data_dir))
            legacy = data / "auth-state-key"
            if legacy.is_file():
                # A key an earlier learnhub kept in the data dir: it still decrypts what it encrypted (each
                # login re-encrypts under the first key); delete the file once everyone has logged in again.
                keys.append(legacy.read_text().strip())
            c.CryptKeeper.keys = keys

    c.JupyterHub.spawner_class = hub_class("spawner", settings.spawner)
    c.Spawner.default_url = "/lab"
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    c.Spawner.environment = {"LEARNHUB_PUBLIC_URL": settings.public_url, **ca_environment(settings)}
    if settings.spawner == "local":
        c.SandboxedLocalSpawner.home_dir_template = str(data / "users" / "{username}")
        # Every server loads learnhub's single-user extension and nbgrader uses the HTTP exchange
        # (docs/courses.md). Container images set JUPYTER_CONFIG_PATH themselves (their own path).
        c.Spawner.environment["JUPYTER_CONFIG_PATH"] = singleuser_config_dir()
        if settings.ssl_ca:
            # The server calls the services through the public HTTPS URL: it must see the CA it trusts.
            c.SandboxedLocalSpawner.extra_ro_binds = [str(Path(settings.ssl_ca).resolve())]
    elif settings.docker_spawner:
        from .docker_spawner import HOME_VOLUME

        # The singleuser image sets JUPYTER_CONFIG_PATH itself (learnhub's extension, nbgrader's
        # HTTP exchange); each learner's work is a named volume that outlives the container.
        c.DockerSpawner.image = settings.singleuser_image
        c.DockerSpawner.remove = True
        c.DockerSpawner.notebook_dir = "/home/jovyan/work"
        c.DockerSpawner.volumes = {HOME_VOLUME: "/home/jovyan/work"}
        if settings.docker_network:
            c.DockerSpawner.network_name = settings.docker_network
        if settings.docker_network and settings.docker_network != "host":
            # containers on a Docker network reach the hub at its address there, not at loopback
            c.JupyterHub.hub_ip = "0.0.0.0"
            c.DockerSpawner.use_internal_ip = True

    c.Authenticator.post_auth_hook = recorder.post_auth_hook
    c.Spawner.pre_spawn_hook = recorder.pre_spawn_hook

    c.JupyterHub.services = service_specs(settings) + (
        [bootstrap_service_spec(settings)] if settings.bootstrap_service else [])
    c.JupyterHub.custom_scopes = CUSTOM_SCOPES
    c.JupyterHub.load_roles = roles(settings)
    c.JupyterHub.load_groups = {INSTRUCTORS_GROUP: {"users": []}}
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.template_vars = {"learnhub_services": list(settings.services)}
    # learnhub's pages extend the hub's own (home: links to the dashboards).
    c.JupyterHub.template_paths = [str(Path(__file__).resolve().with_name("hub_templates"))]


def hub_config_file() -> Path:
    """``hub_config/jupyterhub_config.py`` of this checkout, or the packaged copy."""
    checkout = Path(__file__).resolve().parents[1] / "hub_config" / "jupyterhub_config.py"
    if checkout.is_file():
        return checkout
    return Path(__file__).with_name("jupyterhub_config.py")
