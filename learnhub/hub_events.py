"""What the hub itself records in learnhub's event log: logins, servers that started, users deleted.

Installed by :func:`learnhub.hub.configure_hub` as JupyterHub hooks (``Authenticator.post_auth_hook``,
``Spawner.pre_spawn_hook``), so they work with every authenticator and spawner; a deletion through the hub's admin panel or API
reaches :meth:`HubEventRecorder.user_deleted` through the authenticator's ``delete_user`` (every
authenticator is wrapped by :func:`erasing_authenticator`), and the courses service erases the person's
data everywhere when it reads the event (``learnhub.data_rights``). Writes happen in a
worker thread: a slow database never holds up the hub's event loop or a login. An event that cannot
be written is logged and dropped — a login never fails because analytics could not count it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from . import db as lhdb
from .event_schemas import EventContract, Verb
from .events import record

log = logging.getLogger("learnhub.hub_events")
SOURCE = "hub"

EVENTS = EventContract("hub", SOURCE, produces=(Verb.LOGGED_IN, Verb.SERVER_SPAWNED, Verb.USER_DELETED),
                       notes="JupyterHub hooks installed by learnhub.hub.configure_hub")


class HubEventRecorder:
    """Appends the hub's events (``logged-in``, ``server-spawned``) to the learnhub database at ``db_url``."""

    #: how often a starting server is looked at (its start is timed to this resolution)
    poll_seconds = 0.25

    def __init__(self, db_url: str):
        self.db_url = db_url
        self._sessions = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="learnhub-hub-events")

    def __deepcopy__(self, memo):
        # traitlets deep-copies config values (our hooks are bound methods of this object): there is
        # one recorder per hub, with its thread and its database engine, never a copy.
        return self

    def _session_factory(self):
        if self._sessions is None:
            self._sessions = lhdb.make_session_factory(lhdb.make_engine(self.db_url))
        return self._sessions

    def _append(self, actor: str, verb: Verb, object_type: str, object_id: str, result: dict | None,
                required: bool = False) -> None:
        try:
            with lhdb.session_scope(self._session_factory()) as session:
                record(session, actor, verb, object_type, object_id, result=result, source=SOURCE)
        except Exception:
            log.exception("could not record %s of %s in the event log", verb, actor)
            if required:
                raise

    async def append(self, actor: str, verb: Verb, object_type: str, object_id: str,
                     result: dict | None = None) -> None:
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self._append, actor, verb, object_type, object_id, result)

    async def user_deleted(self, name: str) -> None:
        """The hub deleted ``name``. Unlike a login's count, this one must not be lost: it is what
        erases the person's data, so a failure to record it fails the deletion (the admin retries)."""
        await asyncio.get_running_loop().run_in_executor(
            self._executor, self._append, name, Verb.USER_DELETED, "platform", "hub", None, True)

    # -- hooks --------------------------------------------------------------------------------

    async def post_auth_hook(self, authenticator, handler, auth_model):
        """``c.Authenticator.post_auth_hook``: a successful login."""
        if auth_model and auth_model.get("name"):
            await self.append(auth_model["name"], Verb.LOGGED_IN, "platform", "hub")
        return auth_model

    def pre_spawn_hook(self, spawner) -> None:
        """``c.Spawner.pre_spawn_hook``: time the server's start, whichever spawner starts it."""
        asyncio.ensure_future(self._watch_start(spawner, time.monotonic()))

    async def _watch_start(self, spawner, started: float) -> None:
        deadline = started + spawner.start_timeout + spawner.http_timeout + 30
        while time.monotonic() < deadline:
            await asyncio.sleep(self.poll_seconds)
            if spawner.ready:
                await self.append(spawner.user.name, Verb.SERVER_SPAWNED, "server", spawner.name or "default",
                                  {"duration": round(time.monotonic() - started, 3)})
                return
            if not spawner.pending and not spawner.active:
                return  # it did not start: the hub says why; nothing started to count


def erasing_authenticator(cls: type, recorder: HubEventRecorder) -> type:
    """A subclass of the authenticator class ``cls`` whose ``delete_user`` (JupyterHub calls it when an
    admin deletes a user) records ``user-deleted`` first. Configuration for ``cls`` still applies
    (traitlets looks a subclass's settings up under its parents' names too)."""

    async def delete_user(self, user):
        await recorder.user_deleted(user.name)
        result = cls.delete_user(self, user)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    return type(cls.__name__, (cls,), {"delete_user": delete_user, "__module__": cls.__module__,
                                       "__doc__": cls.__doc__})
