"""DockerSpawner for learnhub: learners' servers in the ``learnhub/singleuser`` image.

``learnhub up --spawner docker`` (or ``LEARNHUB_SPAWNER=docker``) uses this class. It is
DockerSpawner with one addition: host networking (``LEARNHUB_DOCKER_NETWORK=host``), for engines
without a bridge, where every container shares the host's loopback with the hub. There each
server gets a free port of its own (two containers cannot both listen on 8888) and the hub reaches
it at 127.0.0.1; DockerSpawner itself asks the engine for a published port, which host networking
does not have.
"""
from __future__ import annotations

from dockerspawner import DockerSpawner
from jupyterhub.utils import random_port
from traitlets import Unicode

from .data_rights import ErasureRefused


class LearnhubDockerSpawner(DockerSpawner):
    """DockerSpawner with learnhub's volume naming and host networking support."""

    host_network_ip = Unicode(
        "127.0.0.1", help="Where the hub reaches a server on the host's network (network_name 'host')."
    ).tag(config=True)

    @property
    def host_network(self) -> bool:
        return self.network_name == "host"

    async def start(self, *args, **kwargs):
        if self.host_network:
            # no port publishing on the host's network: the server listens on a port of its own
            self.use_internal_ip = True
            self.port = random_port()
        return await super().start(*args, **kwargs)

    def get_env(self):
        env = super().get_env()
        if self.host_network:
            env["JUPYTERHUB_SERVICE_URL"] = f"http://{self.host_network_ip}:{self.port}/"
        return env

    async def get_ip_and_port(self):
        if self.host_network:
            return self.host_network_ip, self.port
        return await super().get_ip_and_port()


#: Each learner's work with DockerSpawner: a named volume that outlives their containers
#: (learnhub.hub.configure_hub mounts it at /home/jovyan/work). ``{username}`` is DockerSpawner's
#: escaped name (its default ``escape``), as DockerSpawner renders it.
HOME_VOLUME = "learnhub-user-{username}"


class HomeInUse(ErasureRefused):
    """A running container mounts the person's home volume: it would write there again."""


class DockerHomes:
    """The learners' home volumes of a DockerSpawner deployment, for their export and erasure
    (:class:`learnhub.data_rights.CoreData` uses it when ``spawner = docker``). Talks to the Docker
    engine the spawner uses (docker-py, DockerSpawner's own client library; ``DOCKER_HOST`` etc.).

    ``image``: what the short-lived, never started container that reads a volume out for an export is
    made from — the learners' image, which the engine has wherever DockerSpawner has started a server.
    """

    def __init__(self, image: str, volume_templates: tuple[str, ...] = (HOME_VOLUME,), client=None):
        self.image = image
        self.volume_templates = volume_templates
        self._client = client

    @property
    def client(self):
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def volume_names(self, user: str) -> list[str]:
        return [template.format(username=DockerSpawner._escape(user)) for template in self.volume_templates]

    def _volumes(self, user: str) -> list:
        from docker.errors import NotFound

        found = []
        for name in self.volume_names(user):
            try:
                found.append(self.client.volumes.get(name))
            except NotFound:
                pass
        return found

    def _containers_using(self, volume_name: str) -> list:
        return self.client.containers.list(all=True, filters={"volume": volume_name})

    def check_erasable(self, user: str) -> None:
        """Raise :class:`HomeInUse` while a running container mounts one of the person's volumes."""
        for name in self.volume_names(user):
            running = [c.name for c in self._containers_using(name) if c.status in ("running", "restarting", "paused")]
            if running:
                raise HomeInUse(f"{user}'s container {', '.join(running)} uses their volume {name}; stop "
                                f"their server first")

    def files(self, user: str, prefix: str = "home/") -> list[dict]:
        """Every file of the person's volumes as ``{"path", "content_b64"}``, read through a container
        that is created with the volume mounted read-only and never started (``docker cp`` of it)."""
        import base64
        import tarfile
        import tempfile

        entries = []
        for volume in self._volumes(user):
            helper = self.client.containers.create(
                self.image, command=["true"], entrypoint=[], network_mode="none",
                volumes={volume.name: {"bind": "/learnhub-export", "mode": "ro"}},
                labels={"learnhub.purpose": "data-export"})
            try:
                stream, _ = helper.get_archive("/learnhub-export")  # members: learnhub-export/<path>
                with tempfile.TemporaryFile() as spool:  # a volume may be large: not all in memory at once
                    for chunk in stream:
                        spool.write(chunk)
                    spool.seek(0)
                    with tarfile.open(fileobj=spool) as archive:
                        for member in archive:
                            if not member.isfile():
                                continue
                            path = member.name.split("/", 1)[1]
                            content = archive.extractfile(member).read()
                            entries.append({"path": prefix + path,
                                            "content_b64": base64.b64encode(content).decode("ascii")})
            finally:
                helper.remove(force=True)
        return sorted(entries, key=lambda e: e["path"])

    def erase(self, user: str) -> int:
        """Remove the person's volumes (and the stopped containers of theirs that still mount them, which
        Docker would otherwise refuse the removal for); returns how many volumes went."""
        self.check_erasable(user)
        removed = 0
        for volume in self._volumes(user):
            for container in self._containers_using(volume.name):
                container.remove()
            volume.remove()
            removed += 1
        return removed
