"""Sandbox backends for executing learner notebooks: bubblewrap, Docker, local (unsafe).

Chosen like JupyterHub's spawner_class: ``GradingEngine.sandbox_class`` takes a class, an
import string or one of the short names below.
"""
from __future__ import annotations

import importlib

from .base import LIMIT_NAMES, Sandbox, SandboxError
from .bubblewrap import BubblewrapSandbox, bwrap_path
from .docker import DockerSandbox
from .local import LocalSandbox

SANDBOX_CLASSES = {
    "bubblewrap": BubblewrapSandbox,
    "bwrap": BubblewrapSandbox,
    "docker": DockerSandbox,
    "local": LocalSandbox,
}


def default_sandbox_class() -> type[Sandbox]:
    if bwrap_path():
        return BubblewrapSandbox
    raise SandboxError(
        "no sandbox available: install bubblewrap, or configure sandbox_class='docker' "
        "(or 'local' with allow_unsafe_local=True for trusted code only)"
    )


def resolve_sandbox_class(value) -> type[Sandbox]:
    """A Sandbox subclass from a class, a short name or an import string ("pkg.mod.Class")."""
    if isinstance(value, type):
        if not issubclass(value, Sandbox):
            raise TypeError(f"{value!r} is not a Sandbox subclass")
        return value
    if not value:
        return default_sandbox_class()
    if value in SANDBOX_CLASSES:
        return SANDBOX_CLASSES[value]
    module, _, name = str(value).rpartition(".")
    if not module:
        raise ValueError(f"unknown sandbox {value!r}; use one of {sorted(SANDBOX_CLASSES)} or an import string")
    cls = getattr(importlib.import_module(module), name)
    return resolve_sandbox_class(cls)


__all__ = [
    "Sandbox", "SandboxError", "BubblewrapSandbox", "DockerSandbox", "LocalSandbox",
    "LIMIT_NAMES", "SANDBOX_CLASSES", "resolve_sandbox_class", "default_sandbox_class",
]
