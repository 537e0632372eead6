"""The data-rights engines without a platform: the audit log's subjects and erasure, its migration
both ways, retention of archived courses, the keys outside the data dir and their rotation, and the
pseudonymisation of names inside JSON. Real databases (SQLite, or PostgreSQL under test)."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from learnhub import audit
from learnhub import db as lhdb
from learnhub.data_rights import CoreData, DataRetention, replace_name
from learnhub.events import Verb, record
from learnhub.models import AuditEntry, AuditSubject, Event
from learnhub.timeutil import utcnow

pytestmark = pytest.mark.db


def test_replace_name_touches_exact_values_and_keys_only():
    value = {"learner": "ann", "note": "announcement", "ann": 3, "list": ["ann", "anna", {"by": "ann"}]}
    out, changed = replace_name(value, "ann", "erased-1")
    assert changed and out == {"learner": "erased-1", "note": "announcement", "erased-1": 3,
                               "list": ["erased-1", "anna", {"by": "erased-1"}]}
    assert replace_name({"a": "bob"}, "ann", "x") == ({"a": "bob"}, False)


def test_audit_entries_name_people_until_they_are_erased(db_session_factory):
    with lhdb.session_scope(db_session_factory) as session:
        audit.record(session, "prof", "grade-overridden", target="ann", course_id="c1", details={"score": 3},
                     ip="10.0.0.9", source="courses")
        audit.record(session, "prof", "extension-granted", target="bob", course_id="c1", source="courses")
        with pytest.raises(ValueError, match="unknown audit action"):
            audit.record(session, "prof", "made-coffee", source="courses")
    with lhdb.session_scope(db_session_factory) as session:
        items = audit.entries(session)
        assert [(i["actor"], i["action"], i["target"], i["ip"]) for i in items] == [
            ("prof", "grade-overridden", "ann", "10.0.0.9"), ("prof", "extension-granted", "bob", None)]
        assert [i["action"] for i in audit.entries(session, target="ann")] == ["grade-overridden"]
        assert [i["action"] for i in audit.about(session, "ann")] == ["grade-overridden"]
        assert audit.forget(session, "ann") == 1
    with lhdb.session_scope(db_session_factory) as session:
        items = audit.entries(session)
        assert [i["target"] for i in items] == [audit.ERASED, "bob"]  # the entry stays, naming nobody
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 2
        assert session.scalar(select(func.count()).select_from(AuditSubject).where(AuditSubject.name == "ann")) == 0


def test_the_audit_migration_goes_down_and_up(db_url):
    from alembic import command

    command.downgrade(lhdb.alembic_config(db_url), "0011")
    engine = lhdb.make_engine(db_url)
    try:
        from sqlalchemy import inspect

        assert "audit_log" not in inspect(engine).get_table_names()
        lhdb.upgrade(db_url)
        assert {"audit_log", "audit_subjects"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert lhdb.current_revision(db_url) == "0015"


def test_core_erasure_pseudonymises_events_and_removes_the_home(db_session_factory, tmp_path):
    home = tmp_path / "users" / "ann"
    home.mkdir(parents=True)
    (home / "work.py").write_text("print('mine')")
    with lhdb.session_scope(db_session_factory) as session:
        record(session, "ann", Verb.ENROLLED, "course", "c1", course_id="c1", result={"role": "learner"},
               source="courses")
        record(session, "ian", Verb.ANSWERED_HELP, "help-request", "q1", course_id="c1",
               context={"assignment_id": "a1", "learner": "ann", "role": "ta"}, source="feedback")
        record(session, "bob", Verb.ENROLLED, "course", "c1", course_id="c1", result={"role": "learner"},
               source="courses")
    core = CoreData(db_session_factory, tmp_path)
    exported = core.export("ann")
    assert len(exported["data"]["events"]) == 2 and exported["files"][0]["path"] == "home/work.py"
    result = core.erase("ann", "erased-00ff")
    assert result["pseudonymised"]["events"] == 2 and result["erased"]["home_folder"] == 1 and not home.exists()
    with lhdb.session_scope(db_session_factory) as session:
        rows = session.execute(select(Event.actor, Event.context)).all()
    assert sorted(r[0] for r in rows) == ["bob", "erased-00ff", "ian"]
    assert ["erased-00ff"] == [r[1]["learner"] for r in rows if "learner" in r[1]]
    with pytest.raises(ValueError):
        core.home("../etc")


def test_a_stopped_servers_home_image_is_exported_and_erased(db_session_factory, tmp_path):
    """With ``disk_limit`` the person's files live in an ext4 image while their server is stopped (the
    home folder is then empty): a real image, made by mkfs.ext4 as the spawner makes it, filled from a
    folder (``-d``, so no mount and no root is needed)."""
    if not shutil.which("mkfs.ext4") or not shutil.which("debugfs"):
        pytest.skip("e2fsprogs (mkfs.ext4, debugfs) is not installed; bootstrap.sh installs it")
    content = tmp_path / "content"
    (content / "notebooks").mkdir(parents=True)
    (content / "notebooks" / "mine.ipynb").write_text('{"cells": []} by ann')
    (tmp_path / "users" / "ann").mkdir(parents=True)  # the empty mount point
    image = tmp_path / "users" / ".images" / "ann.ext4"
    image.parent.mkdir()
    with image.open("wb") as sparse:
        sparse.truncate(8 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-d", str(content), str(image)], check=True)
    core = CoreData(db_session_factory, tmp_path)
    files = {entry["path"]: base64.b64decode(entry["content_b64"]) for entry in core.export("ann")["files"]}
    assert files == {"home/notebooks/mine.ipynb": b'{"cells": []} by ann'}
    result = core.erase("ann", "erased-00ff")
    assert result["erased"]["home_image"] == 1 and not image.exists() and not (tmp_path / "users" / "ann").exists()
    assert core.export("ann")["files"] == []


def test_retention_deletes_the_work_of_long_archived_courses(db_session_factory, tmp_path):
    from learnhub.extensions.courses import models as m
    from learnhub.extensions.courses.data import CoursesData
    from learnhub.extensions.courses.store import FileStore

    store = FileStore(tmp_path / "store")
    old, shared = store.put(b"old work"), store.put(b"release notebook")
    kept = store.put(b"current work")
    long_ago = utcnow() - timedelta(days=400)
    with lhdb.session_scope(db_session_factory) as session:
        for course_id, status, when, blob in (("old", "archived", long_ago, old), ("new", "published", utcnow(), kept)):
            session.add(m.Course(id=course_id, title=course_id, status=status, updated_at=when))
            session.flush()
            session.add(m.Assignment(course_id=course_id, id="a1", release_files=[{"path": "r.ipynb", "sha256": shared, "size": 1}]))
            session.flush()
            session.add(m.Submission(course_id=course_id, assignment_id="a1", user_name="ann", attempt=1, timestamp="t",
                                     files=[{"path": "w.ipynb", "sha256": blob, "size": 1},
                                            {"path": "r.ipynb", "sha256": shared, "size": 1}]))
            record(session, "ann", Verb.ENROLLED, "course", course_id, course_id=course_id,
                   result={"role": "learner"}, source="courses", time=when)
    # the course's last change is what counts: updated_at is set on every update, so set it after the flush
    with lhdb.session_scope(db_session_factory) as session:
        session.get(m.Course, "old").updated_at = long_ago
    retention = DataRetention(archived_course_days=365)
    with lhdb.session_scope(db_session_factory) as session:
        result = CoursesData(session, store).apply_retention(retention.cutoff())
    assert result == {"courses": ["old"], "submissions": 1, "store_files": 1}
    assert not store.has(old) and store.has(shared) and store.has(kept)
    assert CoreData(db_session_factory, tmp_path).purge_course_events(result["courses"], retention.cutoff()) == 1
    with lhdb.session_scope(db_session_factory) as session:
        assert session.scalars(select(m.Submission.course_id)).all() == ["new"]
        assert session.scalars(select(Event.course_id)).all() == ["new"]
        assert session.get(m.Course, "old") is not None  # the course itself stays


def test_keys_live_outside_the_data_dir_and_rotate(db_session_factory, tmp_path, monkeypatch):
    from learnhub.config import LearnhubSettings
    from learnhub.extensions.notifications.crypto import ContactCipher, load_or_create_key
    from learnhub.extensions.notifications.data import reencrypt_preferences
    from learnhub.extensions.notifications.models import Preference
    from learnhub.secrets import rotate_key

    for name in ("LEARNHUB_NOTIFICATIONS_KEY", "LEARNHUB_SECRET_KEYS", "LEARNHUB_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    (data / "notifications.key").write_bytes(__import__("cryptography.fernet").fernet.Fernet.generate_key())
    legacy = (data / "notifications.key").read_bytes().strip()
    settings = LearnhubSettings(data_dir=str(data))
    assert Path(settings.key_file) == tmp_path / "data-keys" / "contacts.key"
    # learnhub 0.x's key in the data dir moves out, and still opens what it encrypted
    assert load_or_create_key("", data, settings.key_file) == [legacy]
    assert not (data / "notifications.key").exists() and oct(Path(settings.key_file).stat().st_mode & 0o777) == "0o600"

    old_cipher = ContactCipher(lambda: load_or_create_key("", data, settings.key_file))
    with lhdb.session_scope(db_session_factory) as session:
        session.add(Preference(user_name="ann", settings={}, email_ciphertext=old_cipher.encrypt("ann@example.org")))
    path, count = rotate_key(settings)
    assert count == 2 and path.with_suffix(".previous").exists()
    cipher = ContactCipher(lambda: load_or_create_key("", data, settings.key_file))
    with lhdb.session_scope(db_session_factory) as session:
        row = session.get(Preference, "ann")
        assert cipher.decrypt(row.email_ciphertext) == "ann@example.org"  # old key still decrypts
        assert reencrypt_preferences(session, cipher) == 1
        assert reencrypt_preferences(session, cipher) == 0  # already under the newest key
    rotate_key(settings, drop_old=True)
    newest_only = ContactCipher(lambda: load_or_create_key("", data, settings.key_file))
    with lhdb.session_scope(db_session_factory) as session:
        assert newest_only.decrypt(session.get(Preference, "ann").email_ciphertext) == "ann@example.org"
    assert ContactCipher([legacy]).decrypt(old_cipher.encrypt("x")) == "x"
    assert ContactCipher([legacy]).decrypt(newest_only.encrypt("x")) is None  # the dropped key opens nothing new
    monkeypatch.setenv("LEARNHUB_SECRET_KEYS", "abc")
    with pytest.raises(SystemExit, match="rotate them there"):
        rotate_key(settings)


def test_lms_logins_keep_their_identifiers_encrypted_with_learnhubs_keys(tmp_path, monkeypatch):
    """With LTI (or OIDC), the hub's auth_state — where the LMS's identifiers live — is on, encrypted by
    JupyterHub's CryptKeeper with learnhub's keys, from the key file outside the data dir."""
    import base64

    from traitlets.config import Config

    from learnhub.config import LearnhubSettings
    from learnhub.hub import configure_hub
    from learnhub.secrets import load_keys

    for name in ("JUPYTERHUB_CRYPT_KEY", "LEARNHUB_SECRET_KEYS", "LEARNHUB_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    c = Config()
    configure_hub(c, LearnhubSettings(data_dir=str(data), authenticator="lti"))
    assert c.Authenticator.enable_auth_state is True
    keys = load_keys(None, data)
    assert c.CryptKeeper["keys"] == [base64.urlsafe_b64decode(k) for k in keys] and len(c.CryptKeeper["keys"][0]) == 32
    assert not any(p.name.endswith(".key") for p in data.rglob("*"))  # the key is not in the data dir
    # a key an earlier learnhub kept in the data dir still decrypts, after learnhub's own
    from cryptography.fernet import Fernet
    from jupyterhub.crypto import CryptKeeper

    legacy = Fernet.generate_key()
    (data / "auth-state-key").write_bytes(legacy)
    again = Config()
    configure_hub(again, LearnhubSettings(data_dir=str(data), authenticator="lti"))
    assert again.CryptKeeper["keys"][1:] == [legacy.decode()]
    keeper = CryptKeeper(keys=again.CryptKeeper["keys"])
    old_state = Fernet(legacy).encrypt(b"lms-id")
    assert keeper.fernet.decrypt(old_state) == b"lms-id"
    native = Config()
    configure_hub(native, LearnhubSettings(data_dir=str(tmp_path / "native")))
    assert "enable_auth_state" not in native.Authenticator  # the native authenticator keeps no auth_state


def test_analytics_pseudonymisation_folds_onto_rows_the_pseudonym_already_has(db_session_factory):
    from datetime import date

    from learnhub.extensions.analytics.aggregates import activity_table
    from learnhub.extensions.analytics.data import AnalyticsData

    day = date(2026, 12, 1)
    with lhdb.session_scope(db_session_factory) as session:
        for actor, d in (("ann", day), ("ann", date(2026, 12, 2)), ("erased-00aa", day)):
            session.execute(activity_table.insert().values(course_id="c1", actor=actor, day=d, week=day, events=1,
                                                           active_seconds=1.0))
    with lhdb.session_scope(db_session_factory) as session:
        result = AnalyticsData(session).erase("ann", "erased-00aa")
    assert result["erased"]["analytics_activity"] == 1 and result["pseudonymised"]["analytics_activity"] == 1
    with lhdb.session_scope(db_session_factory) as session:
        rows = sorted(session.execute(select(activity_table.c.actor, activity_table.c.day)).all())
    assert rows == [("erased-00aa", day), ("erased-00aa", date(2026, 12, 2))]


def test_retention_deletes_the_feedback_services_rows_of_archived_courses(db_session_factory):
    """The feedback service's part of retention: grading jobs, help requests and regrades of the courses the
    courses service names; a job a worker still holds stays (with its regrade) for the next run."""
    from learnhub.extensions.feedback.data import FeedbackData
    from learnhub.extensions.feedback.models import GradingRegrade, HelpRequest
    from learnhub.graders.models import GRADED, RUNNING, GradingJob

    with lhdb.session_scope(db_session_factory) as session:
        for course in ("old", "new"):
            session.add(HelpRequest(course_id=course, assignment_id="a1", learner="ann", question="why?"))
            session.add(GradingRegrade(id=f"r-{course}", course_id=course, assignment_id="a1", requested_by="prof",
                                       targets=[{"learner": "ann"}]))
            session.add(GradingJob(course_id=course, assignment_id="a1", learner_id="ann", source_path="/s",
                                   status=GRADED, score=1.0, regrade_id=f"r-{course}"))
        session.add(GradingRegrade(id="r-busy", course_id="old", assignment_id="a2", requested_by="prof"))
        session.add(GradingJob(id="j-busy", course_id="old", assignment_id="a2", learner_id="bob", source_path="/s",
                               status=RUNNING, regrade_id="r-busy"))
    with lhdb.session_scope(db_session_factory) as session:
        result = FeedbackData(session).apply_retention(["old"])
    assert result == {"grading_jobs": 1, "help_requests": 1, "grading_regrades": 1}
    with lhdb.session_scope(db_session_factory) as session:
        assert sorted(session.scalars(select(GradingJob.course_id))) == ["new", "old"]
        assert session.scalars(select(GradingJob.id).where(GradingJob.course_id == "old")).all() == ["j-busy"]
        assert session.scalars(select(HelpRequest.course_id)).all() == ["new"]
        assert sorted(session.scalars(select(GradingRegrade.id))) == ["r-busy", "r-new"]
        assert FeedbackData(session).apply_retention([]) == {"grading_jobs": 0, "help_requests": 0,
                                                             "grading_regrades": 0}
