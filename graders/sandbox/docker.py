"""DockerSandbox: the runner in a throw-away container of the grader image.

The image is built from ``images/grader/Dockerfile`` (python, IPython and the course's
scientific stack; no learnhub, no credentials). Each sandbox is one ``docker run --rm -i``
talking the runner protocol over stdin/stdout: no network, read-only root filesystem,
a size-capped tmpfs /tmp, an unprivileged uid, no capabilities, no-new-privileges,
memory/pids/cpu limits from the same traits as every sandbox.
"""
from __future__ import annotations

import json
import shutil
import subprocess

from traitlets import List, Unicode

from .base import LEARNER_SOURCE, RUNNER_SOURCE, Sandbox, SandboxError


class DockerSandbox(Sandbox):
    """Runs the runner in a container (production backend)."""

    image = Unicode("learnhub/grader:latest", help="The grader image (images/grader/Dockerfile).").tag(config=True)
    docker = Unicode("docker", help="The docker (or podman) CLI.").tag(config=True)
    container_python = Unicode("python", help="Python inside the image.").tag(config=True)
    user = Unicode("65534:65534", help="uid:gid the notebook runs as.").tag(config=True)
    cpus = Unicode("1", help="docker run --cpus.").tag(config=True)
    extra_args = List(Unicode(), [], help="More docker run arguments (e.g. --runtime=runsc for gVisor).").tag(config=True)

    @property
    def container_name(self) -> str:
        return f"learnhub-grader-{self.id}"

    def build_command(self) -> list[str]:
        limits = self.limits_payload()
        limits["workdir"] = "/tmp"
        return [
            self.docker, "run", "--rm", "-i",
            "--name", self.container_name,
            "--network", "none",
            "--read-only",
            "--tmpfs", f"/tmp:rw,nosuid,nodev,size={self.tmp_size},mode=1777",
            "--workdir", "/tmp",
            "--user", self.user,
            "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges",
            "--memory", str(self.memory), "--memory-swap", str(self.memory),
            "--pids-limit", str(self.max_processes),
            "--cpus", self.cpus,
            "--ulimit", f"cpu={self.cpu_time}:{self.cpu_time + 2}",
            "--ulimit", f"nproc={self.max_processes}",
            "--ulimit", "core=0",
            "--env", "HOME=/tmp", "--env", "OPENBLAS_NUM_THREADS=1", "--env", "MPLCONFIGDIR=/tmp/.mpl",
            *self.extra_args,
            self.image,
            self.container_python, "-I", "-c", RUNNER_SOURCE, json.dumps(limits), LEARNER_SOURCE,
        ]

    def start(self):
        if not shutil.which(self.docker):
            raise SandboxError(f"{self.docker!r} is not installed; DockerSandbox needs a Docker engine")
        return super().start()

    def backend_exit_reason(self, code) -> str | None:
        # docker run exits 137 when the container was SIGKILLed (the OOM killer, with --memory)
        return "memory" if code == 137 else None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # killing the docker CLI does not stop the container; ask the engine
            subprocess.run([self.docker, "kill", self.container_name], capture_output=True, timeout=20)
        super().kill()
