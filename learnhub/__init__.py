"""learnhub: a learning platform built on JupyterHub."""
from ._version import __version__

__all__ = ["__version__"]
