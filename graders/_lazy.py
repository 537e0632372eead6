"""Start-up speed of the grading command line: imports that cost seconds and are not used.

``jsonschema`` (which nbformat, nbgrader and jupyter_events import) imports ``rfc3987_syntax``
when it is installed, to check the ``iri`` and ``iri-reference`` formats, and that package
compiles its Lark grammar at import: 1.5–2 s of CPU, most of ``import nbgrader``, in every
``learnhub grade`` (and every ``nbgrader`` command). Grading never checks those formats.
:func:`defer_rfc3987_syntax` puts a stand-in package in ``sys.modules`` whose
``is_valid_syntax`` imports the real module on its first call, so the formats are still checked
exactly as before when something asks for them — only the cost moves to that moment.

Only the command-line entry points call it (a process of their own, before anything imports
``jsonschema``); library code never changes the import system of a process it does not own.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types

_NAME = "rfc3987_syntax"


def defer_rfc3987_syntax() -> bool:
    """Make ``rfc3987_syntax`` load on first use; False when it is loaded already or not installed."""
    if _NAME in sys.modules or "jsonschema" in sys.modules:
        return False  # too late (or nothing to do): leave the process as it is
    try:
        spec = importlib.util.find_spec(_NAME)
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    shim = types.ModuleType(_NAME, "rfc3987_syntax, imported on first use (learnhub.graders._lazy).")
    # A package with the real folder on its path: its submodules import from where they are.
    shim.__path__ = list(spec.submodule_search_locations)

    def real():
        # The package's __init__ is `from .syntax_helpers import *`: the helpers are the package.
        module = importlib.import_module(f"{_NAME}.syntax_helpers")
        for name in getattr(module, "__all__", [n for n in vars(module) if not n.startswith("_")]):
            setattr(shim, name, getattr(module, name))
        return module

    def is_valid_syntax(term, value):
        return real().is_valid_syntax(term, value)

    def __getattr__(name):  # noqa: N807 - the module-level __getattr__ of PEP 562
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(real(), name)

    shim.is_valid_syntax = is_valid_syntax
    shim.__getattr__ = __getattr__
    sys.modules[_NAME] = shim
    return True
