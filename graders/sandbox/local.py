"""LocalSandbox: the runner as a plain child process. NO isolation.

Only the rlimits the runner sets on itself apply (CPU, address space, processes, file
size); the notebook can read every file this user can, and use the network. It exists for
development on machines without bubblewrap or Docker, and is refused unless
``allow_unsafe_local=True``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings

from traitlets import Bool

from .base import LEARNER_SOURCE, RUNNER_SOURCE, Sandbox, SandboxError


class LocalSandbox(Sandbox):
    """Runs the runner without isolation (trusted code only)."""

    requires_unsafe_opt_in = True

    allow_unsafe_local = Bool(
        False, help="Must be True to use this backend: it runs student code with the grader's rights."
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.isolated = False
        if not self.allow_unsafe_local:
            raise SandboxError("LocalSandbox has no isolation; set allow_unsafe_local=True to use it")
        warnings.warn("LocalSandbox runs notebooks WITHOUT isolation", RuntimeWarning, stacklevel=2)
        self._dir = tempfile.mkdtemp(prefix="learnhub-local-sbx-")
        self.workdir = self._dir

    def build_command(self) -> list[str]:
        return [self.python, "-I", "-c", RUNNER_SOURCE, json.dumps(self.limits_payload()), LEARNER_SOURCE]

    def popen_kwargs(self) -> dict:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self._dir, "LANG": "C.UTF-8",
               "OPENBLAS_NUM_THREADS": "1", "MPLCONFIGDIR": os.path.join(self._dir, ".mpl"),
               "IPYTHONDIR": os.path.join(self._dir, ".ipython")}
        return {"env": env, "cwd": self._dir}

    def cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)
