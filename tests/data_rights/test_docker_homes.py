"""With DockerSpawner a learner's home is a Docker volume (learnhub.docker_spawner.HOME_VOLUME): their
export holds its files and their erasure removes it, refused while a container of theirs runs.

A real Docker engine (``images/dockerd.sh``) and the learners' image (``images/build.sh``): the test
makes its own volume and containers, under names no one else uses, and removes whatever is left.
"""
from __future__ import annotations

import base64
import io
import sys
import tarfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "containers"))
from dockertools import need_docker  # noqa: E402

from learnhub import db as lhdb  # noqa: E402
from learnhub.data_rights import CoreData, ErasureRefused  # noqa: E402
from learnhub.events import Verb, record  # noqa: E402
from learnhub.models import Event  # noqa: E402

pytestmark = pytest.mark.db

IMAGE = "learnhub/singleuser:latest"  # LearnhubSettings.singleuser_image's default


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@pytest.fixture
def docker_client():
    need_docker(IMAGE)
    import docker

    client = docker.from_env()
    yield client
    client.close()


def test_the_home_volume_is_exported_and_removed_on_erasure(docker_client, db_session_factory, tmp_path):
    from docker.errors import NotFound

    from learnhub.docker_spawner import DockerHomes, HomeInUse

    user = f"ann.rights-{uuid.uuid4().hex[:8]}"  # a dot and a dash: DockerSpawner escapes both
    homes = DockerHomes(IMAGE)
    (volume_name,) = homes.volume_names(user)
    assert volume_name.startswith("learnhub-user-ann-2erights-2d")  # as DockerSpawner renders it
    made = []
    volume = docker_client.volumes.create(volume_name, labels={"learnhub.test": "data-rights"})
    try:
        # The person's stopped server container (DockerSpawner with remove=False keeps it), which
        # wrote their work into the volume; a created container takes files without being started.
        server = docker_client.containers.create(IMAGE, command=["true"], entrypoint=[], network_mode="none",
                                                 volumes={volume_name: {"bind": "/home/jovyan/work", "mode": "rw"}},
                                                 name=f"lh-test-server-{uuid.uuid4().hex[:8]}")
        made.append(server)
        assert server.put_archive("/home/jovyan/work", tar_of({"notes.txt": b"ann's notes", "lab/.hidden.py": b"x=1"}))
        with lhdb.session_scope(db_session_factory) as session:
            record(session, user, Verb.ENROLLED, "course", "c1", course_id="c1", result={"role": "learner"},
                   source="courses")
        core = CoreData(db_session_factory, tmp_path, docker_homes=homes)

        files = {e["path"]: base64.b64decode(e["content_b64"]) for e in core.export(user)["files"]}
        assert files == {"home/notes.txt": b"ann's notes", "home/lab/.hidden.py": b"x=1"}

        # While a container with their volume runs, nothing is erased.
        running = docker_client.containers.run(IMAGE, command=["sleep", "600"], entrypoint=[], detach=True,
                                               network_mode="none", name=f"lh-test-running-{uuid.uuid4().hex[:8]}",
                                               volumes={volume_name: {"bind": "/home/jovyan/work", "mode": "rw"}})
        made.append(running)
        with pytest.raises(HomeInUse) as refused:
            core.erase(user, "erased-00ff00ff00ff00ff")
        assert isinstance(refused.value, ErasureRefused) and volume_name in str(refused.value)
        docker_client.volumes.get(volume_name)  # still there
        with lhdb.session_scope(db_session_factory) as session:
            assert session.scalars(select(Event.actor)).all() == [user]  # and the log untouched
        running.remove(force=True)
        made.remove(running)

        result = core.erase(user, "erased-00ff00ff00ff00ff")
        assert result["erased"]["home_volumes"] == 1
        with pytest.raises(NotFound):
            docker_client.volumes.get(volume_name)
        with pytest.raises(NotFound):  # the stopped container of theirs went with it
            docker_client.containers.get(server.id)
        made.remove(server)
        assert core.export(user)["files"] == []
        assert core.erase(user, "erased-00ff00ff00ff00ff")["erased"]["home_volumes"] == 0  # idempotent
    finally:
        for container in made:
            try:
                container.remove(force=True)
            except NotFound:
                pass
        try:
            volume.remove(force=True)
        except NotFound:
            pass


def test_the_courses_service_uses_the_volumes_when_the_hub_spawns_with_docker(monkeypatch):
    """LEARNHUB_SPAWNER reaches the services as the hub has it (learnhub.hub.service_specs): with DockerSpawner
    the coordinator's core data is the learners' volumes, read with the learners' image; otherwise none."""
    from learnhub.docker_spawner import DockerHomes
    from learnhub.extensions.courses.app import CoursesService

    for spawner in ("docker", "learnhub.docker_spawner.LearnhubDockerSpawner"):
        monkeypatch.setenv("LEARNHUB_SPAWNER", spawner)
        monkeypatch.setenv("LEARNHUB_SINGLEUSER_IMAGE", "example/learners:1")
        homes = CoursesService().docker_homes()
        assert isinstance(homes, DockerHomes) and homes.image == "example/learners:1"
        assert homes.volume_names("dora") == ["learnhub-user-dora"]  # what test_docker_spawner.py finds mounted
    monkeypatch.setenv("LEARNHUB_SPAWNER", "local")
    assert CoursesService().docker_homes() is None
