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
from .hub_events import HubEventRecorder

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
    "courses": ["admin:groups", "groups"],  # mirrors enrollments into the hub's course groups
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
        "PYTHONUNBUFFERED": "1",
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


def roles(settings: LearnhubSettings) -> list[dict]:
    return [
        # Every user may reach every learnhub service; each service checks course roles itself.
        {"name": "user", "scopes": ["self", "access:services"]},
        {"name": "learnhub-admin", "description": "Everything learnhub can do.",
         "scopes": sorted(CUSTOM_SCOPES) + ["access:services", "read:metrics"],
         "users": [settings.admin_username]},
        {"name": "learnhub-instructor", "description": "May create courses.",
         "scopes": ["custom:learnhub:courses:create", "access:services"],
         "groups": [INSTRUCTORS_GROUP]},
    ] + [{"name": f"learnhub-service-{name}", "description": f"learnhub's {name} service.",
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
    if settings.ssl_cert:
        c.JupyterHub.ssl_cert = settings.ssl_cert
        c.JupyterHub.ssl_key = settings.ssl_key

    c.JupyterHub.authenticator_class = hub_class("authenticator", settings.authenticator)
    c.Authenticator.admin_users = {settings.admin_username}
    if settings.authenticator == "native":
        c.NativeAuthenticator.open_signup = settings.open_signup
        # NativeAuthenticator already refuses accounts an admin has not approved
        # (unless sign-up is open), so every account it authenticates may log in.
        c.NativeAuthenticator.allow_all = True
        c.NativeAuthenticator.minimum_password_length = 8
        c.LearnhubNativeAuthenticator.bootstrap_credentials_file = str(settings.credentials_file)

    c.JupyterHub.spawner_class = hub_class("spawner", settings.spawner)
    c.Spawner.default_url = "/lab"
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    c.Spawner.environment = {"LEARNHUB_PUBLIC_URL": settings.public_url}
    if settings.spawner == "local":
        c.SandboxedLocalSpawner.home_dir_template = str(data / "users" / "{username}")
        # Every server loads learnhub's single-user extension and nbgrader uses the HTTP exchange
        # (docs/courses.md). Container images set JUPYTER_CONFIG_PATH themselves (their own path).
        c.Spawner.environment["JUPYTER_CONFIG_PATH"] = singleuser_config_dir()
    elif settings.spawner == "docker" or SPAWNERS["docker"] in settings.spawner:
        # The singleuser image sets JUPYTER_CONFIG_PATH itself (learnhub's extension, nbgrader's
        # HTTP exchange); each learner's work is a named volume that outlives the container.
        c.DockerSpawner.image = settings.singleuser_image
        c.DockerSpawner.remove = True
        c.DockerSpawner.notebook_dir = "/home/jovyan/work"
        c.DockerSpawner.volumes = {"learnhub-user-{username}": "/home/jovyan/work"}
        if settings.docker_network:
            c.DockerSpawner.network_name = settings.docker_network
        if settings.docker_network and settings.docker_network != "host":
            # containers on a Docker network reach the hub at its address there, not at loopback
            c.JupyterHub.hub_ip = "0.0.0.0"
            c.DockerSpawner.use_internal_ip = True

    # Logins and server starts go to the event log (analytics' platform report counts them).
    recorder = HubEventRecorder(settings.db_url)
    c.Authenticator.post_auth_hook = recorder.post_auth_hook
    c.Spawner.pre_spawn_hook = recorder.pre_spawn_hook

    c.JupyterHub.services = service_specs(settings)
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
