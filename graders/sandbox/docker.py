"""DockerSandbox: the runner in a throw-away container of the grader image.

The image is built from ``images/grader/Dockerfile`` (python, IPython and the course's
scientific stack; no learnhub, no credentials). Each sandbox is one ``docker run -i``
talking the runner protocol over stdin/stdout: no network, read-only root filesystem,
a size-capped tmpfs /tmp, an unprivileged uid, no capabilities, no-new-privileges,
memory/pids/cpu limits from the same traits as every sandbox.

The runner starts under ``env -i`` with only the variables the sandbox sets: neither the image's
``ENV`` nor Docker's own (``HOSTNAME``) reach the learner's code, as with bubblewrap's
``--clearenv``. The runner is the container's PID 1 (no ``--init``): it marks itself not
dumpable, so the learner's process, the same uid, cannot read ``/proc/1/environ``, and a signal
the learner sends to PID 1 is ignored by the kernel. A warm pool (``WarmPool``) hides the
container's start (about a second) from the submit-to-graded latency.

No ``--rm``: when the runner exits 137 (SIGKILL) the engine's ``State.OOMKilled`` tells the
memory limit from a learner who killed its own processes, and only a container that still exists
can be asked; :meth:`cleanup` removes it. Containers carry the label ``learnhub.sandbox`` so that
any left by a grader that crashed can be found (``docker ps -a --filter label=learnhub.sandbox``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import threading

from traitlets import List, Unicode

from .base import LEARNER_SOURCE, RUNNER_SOURCE, Sandbox, SandboxError


class DockerSandbox(Sandbox):
    """Runs the runner in a container (production backend)."""

    image = Unicode("learnhub/grader:latest", help="The grader image (images/grader/Dockerfile).").tag(config=True)
    docker = Unicode("docker", help="The docker (or podman) CLI.").tag(config=True)
    container_python = Unicode("python", help="Python inside the image (found on container_path).").tag(config=True)
    container_path = Unicode(
        "/opt/venv/bin:/usr/local/bin:/usr/bin:/bin",
        help="PATH inside the container; the grader image's libraries are in /opt/venv.",
    ).tag(config=True)
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
            self.docker, "run", "-i",
            "--name", self.container_name,
            "--label", "learnhub.sandbox=1",
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
            *self.extra_args,
            self.image,
            "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in self.container_env().items()),
            self.container_python, "-I", "-c", RUNNER_SOURCE, json.dumps(limits), LEARNER_SOURCE,
        ]

    def container_env(self) -> dict[str, str]:
        """The runner's whole environment (everything else is cleared by ``env -i``)."""
        return {
            "PATH": self.container_path, "HOME": "/tmp", "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1", "MPLCONFIGDIR": "/tmp/.mpl", "MPLBACKEND": "Agg",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def start(self):
        if not shutil.which(self.docker):
            raise SandboxError(f"{self.docker!r} is not installed; DockerSandbox needs a Docker engine")
        return super().start()

    def backend_exit_reason(self, code) -> str | None:
        # docker run exits 137 when the runner was SIGKILLed, or passed on its learner's SIGKILL: the
        # OOM killer (--memory) or the learner's own doing; the engine knows which
        if code != 137:
            return None
        state = subprocess.run([self.docker, "inspect", "--format", "{{.State.OOMKilled}}", self.container_name],
                               capture_output=True, text=True, timeout=20)
        return "memory" if state.stdout.strip() == "true" else None

    def cleanup(self) -> None:
        if self.proc is not None:
            # in the background: the grading result is ready, removing the container is the engine's
            # business (half a second that no learner should wait for)
            remover = subprocess.Popen([self.docker, "rm", "--force", self.container_name],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            threading.Thread(target=remover.wait, name=f"rm-{self.container_name}", daemon=True).start()

    def interrupt(self) -> None:
        """SIGINT the runner, the container's PID 1, through the engine: the container's processes are
        no children of the docker CLI, so the base class's walk of /proc cannot find them. The runner's
        handler passes the interrupt on to the learner's interpreter (a kernel interrupt)."""
        if self.proc is not None and self.proc.poll() is None:
            subprocess.run([self.docker, "kill", "--signal", "INT", self.container_name],
                           capture_output=True, timeout=20)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # close() has just asked the runner to exit: give it a moment before asking the engine
            try:
                self.proc.wait(timeout=1.0 if self.stopped is None else 0.05)
            except subprocess.TimeoutExpired:
                # killing the docker CLI does not stop the container; ask the engine
                subprocess.run([self.docker, "kill", self.container_name], capture_output=True, timeout=20)
        super().kill()
