"""Sandbox backends for executing learner notebooks: bubblewrap, Docker, local (unsafe).

Chosen like JupyterHub's spawner_class: ``GradingEngine.sandbox_class`` takes a class, an
import string or the name of a ``learnhub.sandboxes`` entry point (``bubblewrap``, ``docker``, ``local``).
"""
from __future__ import annotations

from .base import LIMIT_NAMES, Sandbox, SandboxError
from .bubblewrap import BubblewrapSandbox, bwrap_path
from .docker import DockerSandbox
from .local import LocalSandbox

#: The entry point group sandbox backends are registered in (learnhub's: bubblewrap, docker, local).
SANDBOX_GROUP = "learnhub.sandboxes"


def default_sandbox_class() -> type[Sandbox]:
    if bwrap_path():
        return BubblewrapSandbox
    raise SandboxError(
        "no sandbox available: install bubblewrap, or configure sandbox_class='docker' "
        "(or 'local' with allow_unsafe_local=True for trusted code only)"
    )


def sandbox_trait(**kwargs):
    """The trait that names a sandbox backend, as JupyterHub's ``spawner_class`` names a spawner: a
    Sandbox subclass, its import string, or the name of a ``learnhub.sandboxes`` entry point."""
    from jupyterhub.traitlets import EntryPointType

    return EntryPointType(klass=Sandbox, entry_point_group=SANDBOX_GROUP, **kwargs)


def resolve_sandbox_class(value) -> type[Sandbox]:
    """A Sandbox subclass from a class, an entry point name or an import string; empty: the default."""
    from traitlets import TraitError

    if not value:
        return default_sandbox_class()
    trait = sandbox_trait()
    try:
        return trait.validate(None, value)
    except (TraitError, ImportError) as exc:
        raise ValueError(f"unknown sandbox {value!r}; use one of {', '.join(sorted(trait.load_entry_points()))} "
                         f"or an import string ({exc})") from None


__all__ = [
    "Sandbox", "SandboxError", "BubblewrapSandbox", "DockerSandbox", "LocalSandbox",
    "LIMIT_NAMES", "SANDBOX_GROUP", "resolve_sandbox_class", "default_sandbox_class", "sandbox_trait",
]
