"""The parts without a hub: the file store, the migration, course import and the demo load."""
from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import inspect, select

from learnhub import db as lhdb
from learnhub.course_content import load_course
from learnhub.extensions.courses import models as m
from learnhub.extensions.courses.demo import DEMO_FOLDER, load_demo_course
from learnhub.extensions.courses.importer import import_course
from learnhub.extensions.courses.store import FileStore, StoreError


def test_store_is_content_addressed_and_verified(tmp_path):
    store = FileStore(tmp_path / "store")
    sha = store.put(b"hello")
    assert store.put(b"hello") == sha and store.get(sha) == b"hello"
    blob = tmp_path / "store" / sha[:2] / sha
    blob.write_bytes(b"hellp")  # corrupted on disk
    with pytest.raises(StoreError, match="corrupted"):
        store.get(sha)
    with pytest.raises(StoreError):
        store.get("../../etc/passwd")
    assert not list((tmp_path / "store").rglob(".tmp-*"))


def test_migration_creates_the_course_tables(db_engine):
    tables = set(inspect(db_engine).get_table_names())
    assert {"courses", "course_skills", "enrollments", "course_assignments", "course_exercises",
            "learner_profiles", "assignment_fetches", "submissions", "feedback_files"} <= tables


def test_demo_load_then_import_is_idempotent(db_url, tmp_path):
    settings = SimpleNamespace(demo_course=True, db_url=db_url, data_dir=str(tmp_path / "data"))
    assert load_demo_course(settings, "http://unused") == "intro-python"
    assert load_demo_course(settings, "http://unused") is None  # catalogue not empty: untouched

    engine = lhdb.make_engine(db_url)
    factory = lhdb.make_session_factory(engine)

    # The demo's schedule starts a week from today, with the course's own spacing kept.
    with lhdb.session_scope(factory) as s:
        dues = [a.due.replace(tzinfo=timezone.utc) if a.due.tzinfo is None else a.due
                for a in s.scalars(select(m.Assignment).order_by(m.Assignment.position))]
    days_ahead = (dues[0] - datetime.now(timezone.utc)).total_seconds() / 86400
    assert 6 < days_ahead <= 8, dues
    written = [a.due for a in load_course(DEMO_FOLDER).assignments]
    assert [b - a for a, b in zip(dues, dues[1:])] == [b - a for a, b in zip(written, written[1:])]

    def snapshot():
        with lhdb.session_scope(factory) as s:
            course = s.get(m.Course, "intro-python")
            assignments = s.scalars(select(m.Assignment).order_by(m.Assignment.position)).all()
            return (course.status, course.open_enrollment,
                    [(a.id, a.released, a.max_attempts, a.max_score, [f["sha256"] for f in a.release_files])
                     for a in assignments],
                    len(s.scalars(select(m.Exercise)).all()), len(s.scalars(select(m.CourseSkill)).all()))

    first = snapshot()
    assert first[0] == "published" and first[1] is True
    assert [a[0] for a in first[2]] == ["01-basics", "02-control-flow", "03-functions-and-data"]
    assert all(a[1] for a in first[2])  # the demo releases every assignment
    assert first[3] >= 12 and first[4] >= 6
    store = FileStore(tmp_path / "data" / "store")
    for *_rest, shas in first[2]:
        assert shas and all(store.get(sha) for sha in shas)

    result = import_course(DEMO_FOLDER, db_url, tmp_path / "data" / "store", log=lambda *_: None)
    assert result.created is False and result.exercises == first[3]
    assert snapshot() == first  # same rows, same files, status kept
    engine.dispose()


def test_an_installation_without_the_checkout_finds_its_copy_of_the_courses(db_url, tmp_path, monkeypatch):
    """The hub image carries courses/ outside the wheel (LEARNHUB_SHIPPED_COURSES): the demo load and
    both services' source roots use that copy, not the (absent) checkout's."""
    import shutil

    from learnhub.course_sources import CHECKOUT_COURSES, SourceLocator, default_source_roots
    from learnhub.extensions.courses.demo import demo_folder

    assert demo_folder() == DEMO_FOLDER and default_source_roots("/d")[-1] == str(CHECKOUT_COURSES)
    copy = tmp_path / "opt-courses"
    shutil.copytree(CHECKOUT_COURSES, copy)
    monkeypatch.setenv("LEARNHUB_SHIPPED_COURSES", str(copy))
    assert demo_folder() == copy / "intro-python"
    roots = default_source_roots(tmp_path / "data")
    assert roots == [str(tmp_path / "data" / "courses"), str(copy)]
    assert SourceLocator(roots).find("intro-python", "01-basics") == copy / "intro-python" / "source" / "01-basics"
    settings = SimpleNamespace(demo_course=True, db_url=db_url, data_dir=str(tmp_path / "data"))
    course_yaml = copy / "intro-python" / "course.yaml"
    course_yaml.write_text(course_yaml.read_text().replace("title: Introduction to Python",
                                                           "title: Introduction to Python (the copy)", 1))
    assert load_demo_course(settings, "http://unused") == "intro-python"
    engine = lhdb.make_engine(db_url)
    try:
        with lhdb.session_scope(lhdb.make_session_factory(engine)) as s:
            assert s.get(m.Course, "intro-python").title == "Introduction to Python (the copy)"
    finally:
        engine.dispose()


def test_singleuser_config_enables_the_extension_and_the_http_exchange(tmp_path):
    """With the spawner's JUPYTER_CONFIG_PATH, a server enables the extension and nbgrader uses HTTP."""
    import os
    import subprocess
    import sys

    from learnhub.extensions.singleuser import config_dir

    probe = (
        "from jupyter_core.paths import jupyter_config_path\n"
        "from jupyter_server.extension.config import ExtensionConfigManager\n"
        "from nbgrader.apps.nbgraderapp import NbGraderApp\n"
        "exts = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()\n"
        "app = NbGraderApp(); app.load_config_file()\n"
        "print(exts.get('learnhub.extensions.singleuser'), app.config.ExchangeFactory.submit)\n"
    )
    env = {**os.environ, "JUPYTER_CONFIG_PATH": config_dir(), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "learnhub.extensions.singleuser.exchange.ExchangeSubmit"]


def test_course_import_cli_says_what_is_wrong(tmp_path, db_url):
    import subprocess
    import sys

    folder = tmp_path / "broken-course"
    folder.mkdir()
    (folder / "course.yaml").write_text("id: Not A Slug\ntitle: x\n")
    done = subprocess.run([sys.executable, "-m", "learnhub", "course", "import", str(folder), "--db-url", db_url,
                           "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "course.yaml" in done.stderr and "learnhub course import" in done.stderr
