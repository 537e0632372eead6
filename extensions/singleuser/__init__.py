"""The learnhub single-user server extension (``learnhub.extensions.singleuser``).

What it does in every user's server:

* nbgrader uses learnhub's HTTP exchange (the courses service) instead of a shared directory:
  ``jupyter-config/nbgrader_config.py`` in this package sets ``c.ExchangeFactory`` and nbgrader's layout
  ``<course>/<assignment>/`` (``c.Exchange.path_includes_course``) — nbgrader's CLI, its Assignments panel
  and its Formgrader read it from the Jupyter config path;
* it is the bridge between JupyterLab and learnhub's hub services: JupyterLab talks only to its own
  server (same origin, jupyter_server's authentication and XSRF), and the endpoints under
  ``<base url>learnhub/api/`` call the hub and the services with the server's own token
  (:mod:`.handlers`, :mod:`.bridge`, :mod:`.assignments`, :mod:`.stream`; see ``README.md`` here);
* notebook activity (opened, saved, cells run) goes to the analytics service (:mod:`.activity`).

This server extension is enabled by ``jupyter-config/jupyter_server_config.d/learnhub-singleuser.json``;
``jupyter-config/jupyter_lab_config.json`` turns off JupyterLab's news feed and update check (a learner's
sandboxed server has no business reaching the internet, and the news prompt covers learnhub's own
notifications).
How it gets enabled: the spawner puts :func:`config_dir` first on ``JUPYTER_CONFIG_PATH``
(``c.Spawner.environment``), so no file in the user's home is needed or trusted.
Loading is light (no nbgrader, no requests): JupyterLab's start is not held up.
"""
from __future__ import annotations

import os
from pathlib import Path

from learnhub.event_schemas import EventContract, Verb

# What the server extension writes to the event log (tests/core/test_event_contract.py).
EVENTS = EventContract("single-user server", "singleuser",
                       produces=(Verb.OPENED, Verb.SAVED, Verb.EXECUTED, Verb.ACTIVE),
                       notes="notebook activity, through the analytics service's API (activity.py)")

CONFIG_DIR = Path(__file__).resolve().with_name("jupyter-config")

EXCHANGE_CLASSES = {
    "exchange": "HTTPExchange",
    "fetch_assignment": "ExchangeFetchAssignment",
    "fetch_feedback": "ExchangeFetchFeedback",
    "release_assignment": "ExchangeReleaseAssignment",
    "release_feedback": "ExchangeReleaseFeedback",
    "list": "ExchangeList",
    "submit": "ExchangeSubmit",
    "collect": "ExchangeCollect",
}


def config_dir() -> str:
    """The folder to put on ``JUPYTER_CONFIG_PATH`` in every user's server."""
    return str(CONFIG_DIR)


def configure_nbgrader(c) -> None:
    """Point nbgrader's ExchangeFactory at learnhub's HTTP exchange, with learnhub's layout
    ``<course>/<assignment>/`` for fetched assignments (used by the shipped nbgrader_config.py)."""
    for trait, cls in EXCHANGE_CLASSES.items():
        setattr(c.ExchangeFactory, trait, f"learnhub.extensions.singleuser.exchange.{cls}")
    # The layout the server extension's fetch and submit use and activity.course_of reads back.
    c.Exchange.path_includes_course = True
    # Feedback HTML never carries hidden tests (nbgrader's own keeps their code and tracebacks).
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    from learnhub.course_content.redaction import RedactHiddenTests

    c.GenerateFeedback.preprocessors = [RedactHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
    # Autograding (Formgrader, `nbgrader autograde`) executes learners' notebooks in learnhub's grading
    # sandboxes, not in a kernel of this server: nbgrader's own list with Execute replaced (.autograde).
    c.Autograde.autograde_preprocessors = autograde_preprocessors()


#: what takes nbgrader's Execute's place in its autograde (``Autograde.autograde_preprocessors``)
SANDBOXED_EXECUTE = "learnhub.extensions.singleuser.autograde.SandboxedExecute"


def autograde_preprocessors() -> list:
    """nbgrader's ``Autograde.autograde_preprocessors`` with its ``Execute`` replaced by
    :data:`SANDBOXED_EXECUTE`; the rest (IgnorePattern, ClearMetadata, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata) is nbgrader's own, in its order. Only nbgrader's apps read
    this config file, so importing nbgrader here costs a server nothing."""
    from nbgrader.converters.autograde import Autograde
    from nbgrader.preprocessors import Execute

    replaced = []
    for preprocessor in Autograde.class_traits()["autograde_preprocessors"].default():
        is_execute = isinstance(preprocessor, type) and issubclass(preprocessor, Execute)
        replaced.append(SANDBOXED_EXECUTE if is_execute else preprocessor)
    if SANDBOXED_EXECUTE not in replaced:  # pragma: no cover - an nbgrader without Execute in its list
        raise RuntimeError("nbgrader's autograde has no Execute step to replace; refusing to autograde unsandboxed")
    return replaced


def _jupyter_server_extension_points():
    return [{"module": "learnhub.extensions.singleuser"}]


def courses_service_url() -> str:
    """Where the courses service is: $LEARNHUB_COURSES_URL, else $LEARNHUB_PUBLIC_URL/services/courses/."""
    if os.environ.get("LEARNHUB_COURSES_URL"):
        return os.environ["LEARNHUB_COURSES_URL"]
    public = os.environ.get("LEARNHUB_PUBLIC_URL", "http://127.0.0.1:8000")
    return public.rstrip("/") + "/services/courses/"


def _load_jupyter_server_extension(serverapp) -> None:
    # Nothing heavy here (no nbgrader import): it runs in every server's start-up.
    from jupyter_server.utils import url_path_join

    from .assignments import Assignments
    from .bridge import HubBridge
    from .handlers import handlers

    bridge = HubBridge(parent=serverapp, log=serverapp.log)
    if bridge.public_url.startswith("https://"):
        # Behind an HTTPS proxy the server's _xsrf cookie must be Secure too (its login cookie already is).
        serverapp.web_app.settings.setdefault("xsrf_cookie_kwargs", {})["secure"] = True
    serverapp.web_app.settings["learnhub_bridge"] = bridge
    serverapp.web_app.settings["learnhub_assignments"] = Assignments(bridge, serverapp.root_dir, serverapp.log)
    base_url = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [(url_path_join(base_url, pattern), handler)
                                           for pattern, handler in handlers()])
    token = "set" if bridge.api_token else "missing"
    serverapp.log.info("learnhub: services at %s, nbgrader exchange over HTTP at %s (hub token %s)",
                       bridge.services_url, bridge.service_url("courses"), token)
    try:
        from .activity import ActivityRecorder

        serverapp.web_app.settings["learnhub_activity"] = ActivityRecorder.attach(serverapp)
    except Exception:  # analytics must never keep a learner's server from starting
        serverapp.log.exception("learnhub: notebook activity will not be recorded")
