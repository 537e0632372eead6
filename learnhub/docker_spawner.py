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
