"""nbgrader's fetch and submit over learnhub's HTTP exchange, for the server extension's endpoints.

The classes of :mod:`.exchange` do the work (the same code the
``nbgrader fetch_assignment`` and ``nbgrader submit`` commands run, with the configuration the shipped
``jupyter-config/nbgrader_config.py`` gives them). The subclasses here change only what a web API needs:
a refusal of the courses service keeps its HTTP status and JSON body (nbgrader's CLI turns it into a
message), and failures are logged as warnings, not as fatal errors of the server.

Imported on first use only (nbgrader is heavy): never at server start.
"""
from __future__ import annotations

import os
from pathlib import Path

from jupyter_core.paths import jupyter_config_path
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc import ExchangeError
from traitlets.config import Config
from traitlets.config.loader import ConfigFileNotFound, JSONFileConfigLoader, PyFileConfigLoader

from .bridge import Relayed, ServiceUnavailable, relayed_or_unavailable
from .exchange import ExchangeFetchAssignment, ExchangeSubmit


class Refused(ExchangeError):
    """The courses service said no: its answer, to be relayed."""

    def __init__(self, relayed: Relayed):
        super().__init__(f"the courses service answered {relayed.status}")
        self.relayed = relayed


class RelayingMixin:
    """Keep the courses service's status and body when it refuses (see the module's docstring)."""

    def api(self, method: str, path: str, **kwargs):
        answers = []
        kwargs["hooks"] = {"response": lambda response, *args, **kw: answers.append(response)}
        try:
            return super().api(method, path, **kwargs)
        except ExchangeError:
            if not answers:  # nothing came back: refused connection, timeout
                raise ServiceUnavailable("courses") from None
            last = answers[-1]
            relayed = relayed_or_unavailable("courses", last.status_code, last.content,
                                             last.headers.get("Content-Type", ""))
            if relayed.status >= 400:
                raise Refused(relayed) from None
            raise

    def fail(self, msg):
        self.log.warning("learnhub exchange: %s", msg)
        raise ExchangeError(msg)


class FetchAssignment(RelayingMixin, ExchangeFetchAssignment):
    pass


class Submit(RelayingMixin, ExchangeSubmit):
    pass


def load_nbgrader_config(root_dir: str, log) -> Config:
    """nbgrader's configuration as ``nbgrader`` run in ``root_dir`` reads it: ``nbgrader_config.{json,py}`` from
    the Jupyter config path (lowest priority first; the shipped one included), then ``root_dir``'s own."""
    config = Config()
    folders = list(reversed(jupyter_config_path())) + [root_dir]
    for folder in folders:
        for loader_class, name in ((JSONFileConfigLoader, "nbgrader_config.json"),
                                   (PyFileConfigLoader, "nbgrader_config.py")):
            if not os.path.isfile(os.path.join(folder, name)):
                continue
            try:
                config.merge(loader_class(name, path=folder, log=log).load_config())
            except ConfigFileNotFound:
                continue
            except Exception:  # a broken user file must not stop fetch and submit
                log.exception("learnhub: could not load %s", os.path.join(folder, name))
    return config


def run_exchange(kind: str, root_dir: str, course: str, assignment: str, *, service_url: str, api_token: str,
                 timeout: float, log):
    """Run nbgrader's ``fetch`` or ``submit`` for one assignment; returns the exchange object."""
    config = load_nbgrader_config(root_dir, log)
    # learnhub's layout, whatever a config file says: <root>/<course>/<assignment>/ (activity.course_of too).
    config.Exchange.assignment_dir = str(Path(root_dir).resolve())
    config.Exchange.path_includes_course = True
    config.HTTPExchange.service_url = service_url
    config.HTTPExchange.api_token = api_token
    config.HTTPExchange.timeout = timeout
    config.CourseDirectory.root = str(Path(root_dir).resolve())
    config.CourseDirectory.course_id = course
    config.CourseDirectory.assignment_id = assignment
    coursedir = CourseDirectory(config=config, log=log)
    authenticator = Authenticator(config=config, log=log)
    cls = {"fetch": FetchAssignment, "submit": Submit}[kind]
    exchange = cls(coursedir=coursedir, authenticator=authenticator, config=config, log=log)
    exchange.start()
    return exchange
