"""Data rights (GDPR): one person's data exported from, or erased in, every learnhub service.

Each service answers for its own tables (``GET api/data/export?user=``, ``POST api/data/erase``, the
service kit's :class:`~learnhub.service.DataExportHandler`); :class:`DataRightsCoordinator` asks every
one over HTTP (so no service reads another's tables) and adds what the core holds — the event log,
the audit log and the person's home folder ``DATA_DIR/users/<name>``. The courses service hosts it
(``api/data/archives``, ``api/data/erasures``, and the erasure that follows the hub's deletion of a
user); ``learnhub data export|erase`` call those endpoints. No web code here.

Erasure deletes what is the person's own (submissions and their files, help requests, notifications,
addresses, profile, home folder) and keeps under one random pseudonym, ``erased-<hex>``, what the
course's statistics are made of (the events, the analytics summaries, grading jobs' scores): the same
pseudonym in every service, so the statistics still add up, and nothing that leads back to the name.
"""
from __future__ import annotations

import base64
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import String, cast, delete, or_, select, update
from sqlalchemy.orm import Session
from traitlets import Float, Integer, default
from traitlets.config import Configurable

from . import audit, erasures
from . import db as lhdb
from .erasures import replace_name  # noqa: F401 (part of this module's interface)
from .models import Event
from .timeutil import iso, utcnow

log = logging.getLogger("learnhub.data_rights")

#: the services asked, in this order (the courses service last: its erasure also ends the person's
#: hub-group memberships, and it holds the coordinator)
SERVICES = ("feedback", "notifications", "recommender", "analytics", "courses")


class ErasureRefused(RuntimeError):
    """The person cannot be erased now (something of theirs still runs and would write again); nothing
    was erased. The API answers 409."""


def new_pseudonym() -> str:
    return f"erased-{uuid.uuid4().hex[:16]}"


def mentions(column, name: str):
    """SQL: the JSON or text ``column`` contains ``name`` somewhere (a coarse filter; the exact
    match is :func:`replace_name`'s)."""
    return cast(column, String).contains(name, autoescape=True)


def file_entries(root: Path, prefix: str = "") -> list[dict]:
    """Every file under ``root`` as ``{"path", "content_b64"}`` (for an archive)."""
    found = []
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found.append({"path": prefix + str(path.relative_to(root)),
                          "content_b64": base64.b64encode(path.read_bytes()).decode("ascii")})
    return found


class CoreData:
    """What the core holds about a person: events, audit entries, the home folder — or, with
    DockerSpawner, their home volume (``docker_homes``, a :class:`learnhub.docker_spawner.DockerHomes`)."""

    def __init__(self, session_factory, data_dir: str | os.PathLike, *, hold_hours: float = 24.0,
                 docker_homes=None):
        self.session_factory = session_factory
        self.data_dir = Path(data_dir)
        self.docker_homes = docker_homes
        #: how long events still appended naming an erased person get their pseudonym (learnhub.erasures)
        self.hold = timedelta(hours=hold_hours)

    def home(self, user: str) -> Path:
        # The sandboxed spawner's home_dir_template (learnhub.hub.configure_hub): DATA_DIR/users/<name>.
        home = (self.data_dir / "users" / user).resolve()
        if home.parent != (self.data_dir / "users").resolve():
            raise ValueError(f"not a user name: {user!r}")
        return home

    def home_image(self, user: str) -> Path:
        """The size-capped home of ``SandboxedLocalSpawner.disk_limit`` (its default
        ``disk_image_template``): while the server is stopped the person's files are in this ext4
        image and the home folder is empty."""
        return self.home(user).parent / ".images" / f"{user}.ext4"

    def home_files(self, user: str) -> list[dict]:
        volumes = self.docker_homes.files(user, "home/") if self.docker_homes else []
        return volumes + self.local_home_files(user)

    def local_home_files(self, user: str) -> list[dict]:
        home, image = self.home(user), self.home_image(user)
        if image.is_file() and not os.path.ismount(home):
            # Read the stopped server's image without mounting it (no root needed): debugfs copies
            # its tree out as it is (e2fsprogs, which the spawner's mkfs.ext4 comes with).
            with tempfile.TemporaryDirectory() as scratch:
                done = subprocess.run(["debugfs", "-R", f"rdump / {scratch}", str(image)],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"cannot read the home image {image}: {done.stderr.strip()}")
                inside = [entry for entry in file_entries(Path(scratch), "home/")
                          if not entry["path"].startswith("home/lost+found/")]  # the file system's own
                return inside + file_entries(home, "home/")
        return file_entries(home, "home/")

    def _events_of(self, session: Session, user: str):
        return session.scalars(select(Event).where(or_(
            Event.actor == user, Event.object_id == user, mentions(Event.result, user),
            mentions(Event.context, user)))).all()

    def export(self, user: str) -> dict:
        with lhdb.session_scope(self.session_factory) as session:
            events = [{"id": e.id, "time": iso(e.time), "actor": e.actor, "verb": e.verb, "object_type": e.object_type,
                       "object_id": e.object_id, "course_id": e.course_id, "result": e.result, "context": e.context,
                       "source": e.source} for e in self._events_of(session, user)]
            entries = audit.about(session, user)
        return {"data": {"events": events, "audit_log": entries}, "files": self.home_files(user)}

    def check_erasable(self, user: str) -> None:
        """Raise :class:`ErasureRefused` while something of the person's runs (their container)."""
        if self.docker_homes:
            self.docker_homes.check_erasable(user)

    def erase(self, user: str, pseudonym: str) -> dict:
        self.check_erasable(user)  # before anything is erased: a refusal leaves all as it was
        counts = {"events": 0}
        with lhdb.session_scope(self.session_factory) as session:
            # Writers in flight commit first (their rows are pseudonymised below) and later ones find the
            # tombstone (learnhub.erasures): no event appended from now on names the person.
            erasures.exclude_writers(session)
            erasures.hold(session, user, pseudonym, utcnow() + self.hold)
            erasures.purge_expired(session)
            for event in self._events_of(session, user):
                if event.actor == user:
                    event.actor = pseudonym
                if event.object_id == user:
                    event.object_id = pseudonym
                for field in ("result", "context"):
                    value, changed = replace_name(getattr(event, field), user, pseudonym)
                    if changed:
                        setattr(event, field, value)
                counts["events"] += 1
            forgotten = audit.forget(session, user)
        home, image = self.home(user), self.home_image(user)
        removed = home.exists()
        if removed:
            shutil.rmtree(home)
        imaged = image.exists()
        if imaged:
            image.unlink()
        erased = {"audit_subjects": forgotten, "home_folder": int(removed), "home_image": int(imaged)}
        if self.docker_homes:
            erased["home_volumes"] = self.docker_homes.erase(user)
        return {"erased": erased, "pseudonymised": counts}

    def purge_erased_names(self) -> int:
        """Delete the tombstones whose hold has passed (the retention job runs it, even with retention off)."""
        with lhdb.session_scope(self.session_factory) as session:
            return erasures.purge_expired(session)

    def purge_course_events(self, course_ids: list[str], before) -> int:
        """Retention: delete the events of ``course_ids`` older than ``before``."""
        if not course_ids:
            return 0
        with lhdb.session_scope(self.session_factory) as session:
            return session.execute(delete(Event).where(Event.course_id.in_(course_ids), Event.time < before)).rowcount


class DataRetention(Configurable):
    """How long learnhub keeps what a finished course leaves behind (``c.DataRetention.*``)."""

    archived_course_days = Integer(
        help="""Days after a course was archived (its last change while archived) after which its submissions,
        their files, feedback, extensions and fetches and its events are deleted; the course itself, its
        assignments and the analytics summaries (already counts, no submissions) stay. 0: keep forever.
        Applied by the courses service every ``interval_hours`` and by ``learnhub data retention``.
        Env: LEARNHUB_RETENTION_ARCHIVED_COURSE_DAYS.""",
    ).tag(config=True)

    interval_hours = Float(
        24.0, help="Hours between two runs of the retention job in the courses service (0: only on demand).",
    ).tag(config=True)

    erased_names_hold_hours = Float(
        help="""Hours after an erasure during which events still appended naming the erased person (work that
        was in flight: a grading job finishing, a recommendation being announced) are stored under their
        pseudonym (learnhub.erasures); the salted hash of the name is deleted after that. Names reused
        within this time are pseudonymised too. Env: LEARNHUB_ERASED_NAMES_HOLD_HOURS.""",
    ).tag(config=True)

    @default("erased_names_hold_hours")
    def _default_erased_names_hold_hours(self):
        return float(os.environ.get("LEARNHUB_ERASED_NAMES_HOLD_HOURS", "24") or 24)

    @default("archived_course_days")
    def _default_archived_course_days(self):
        return int(os.environ.get("LEARNHUB_RETENTION_ARCHIVED_COURSE_DAYS", "0") or 0)

    def cutoff(self, now=None):
        return (now or utcnow()) - timedelta(days=self.archived_course_days)


class DataRightsCoordinator:
    """Export or erase one person in every service (blocking: run it in a worker thread).

    ``services``: name → :class:`~learnhub.hubapi.ServiceAPI` with the coordinating service's token
    (which holds ``custom:learnhub:data:admin``); ``core``: the :class:`CoreData`.
    """

    def __init__(self, services: dict, core: CoreData):
        self.services = services
        self.core = core

    def export_parts(self, user: str) -> dict[str, dict]:
        parts = {}
        for name, api in self.services.items():
            parts[name] = api.request_sync("GET", "data/export", params={"user": user})
        parts["core"] = dict(self.core.export(user), service="core", user=user)
        return parts

    def export_archive(self, user: str) -> bytes:
        """One zip: ``manifest.json``, ``<service>.json`` per service, and ``files/<service>/...``
        (submissions, feedback and the home folder under ``files/core/home/``)."""
        parts = self.export_parts(user)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            manifest = {"user": user, "exported_at": iso(utcnow()), "services": {}}
            for name, part in parts.items():
                files = part.pop("files", []) or []
                for item in files:
                    archive.writestr(f"files/{name}/{item['path']}", base64.b64decode(item["content_b64"]))
                archive.writestr(f"{name}.json", json.dumps(part, indent=2, default=str))
                manifest["services"][name] = {"file": f"{name}.json", "files": [i["path"] for i in files]}
            archive.writestr("manifest.json", json.dumps(manifest, indent=2))
        return buffer.getvalue()

    def erase(self, user: str, pseudonym: str | None = None) -> dict:
        """Erase ``user`` everywhere; raises on the first service that cannot (a second run completes
        what the first began: every step is idempotent — though it picks a new pseudonym for what the
        first run had not reached)."""
        pseudonym = pseudonym or new_pseudonym()
        report = {"user": user, "pseudonym": pseudonym, "services": {}}
        # The core first: services whose state is learnt from the event log (the recommender's models)
        # relearn it from the pseudonymised log.
        report["services"]["core"] = self.core.erase(user, pseudonym)
        for name, api in self.services.items():
            answer = api.request_sync("POST", "data/erase", {"user": user, "pseudonym": pseudonym})
            report["services"][name] = {k: answer.get(k, {}) for k in ("erased", "pseudonymised")}
        return report
