"""Execute one notebook in a grading sandbox and hand back its outputs; nothing is scored here.

This is nbgrader's *execute* step alone, for an ``nbgrader autograde`` that runs somewhere else —
an instructor's own server, whose Formgrader or terminal would otherwise run the learner's code in
the instructor's kernel, with the instructor's token and files
(``learnhub.extensions.singleuser.autograde``). The feedback service's workers run it for
``mode="execute"`` jobs; nbgrader then scores the outputs in the instructor's process, with its own
code, as it always does.

The execution is the engine's: :class:`~learnhub.graders.engine.SandboxExecute` on a sandbox with
the limits the engine gives the assignment (``limits_for``), the files placed through the pipe. The
sandbox sees the notebook's cells as they are sent and the data files, nothing else.
"""
from __future__ import annotations

import threading
from typing import Callable

import nbformat

from .engine import GradingEngine, SandboxExecute
from .sandbox.base import Sandbox

#: the largest notebook an execution takes (the engine's own bound for a submitted notebook)
MAX_NOTEBOOK_BYTES = 32 * 1024 * 1024


def execute_notebook(engine: GradingEngine, notebook: dict | nbformat.NotebookNode, files: dict[str, bytes], *,
                     assignment_id: str | None = None, limits: dict | None = None,
                     sandbox_factory: Callable[[dict], Sandbox] | None = None) -> dict:
    """Run every code cell of ``notebook`` in a fresh sandbox, as nbgrader's Execute would.

    Returns ``{"cells": [{"index", "execution_count", "outputs"}], "limits_hit", "limit_messages"}``:
    one entry per code cell that ran (the index is the cell's position in the notebook), with
    nbformat outputs. The rules are SandboxExecute's (nbclient's): empty and ``skip-execution``
    cells do not run, an error does not stop the notebook, a timed-out cell gets nbgrader's
    ``CellTimeoutError``, cells after a limit stopped the sandbox get an error output."""
    nb = nbformat.from_dict(notebook) if not isinstance(notebook, nbformat.NotebookNode) else notebook
    limits = engine.limits_for(assignment_id, limits)
    factory = sandbox_factory or engine.new_sandbox
    sandbox = factory(limits)
    try:
        sandbox.apply_limits({k: v for k, v in limits.items() if k in ("cell_timeout", "wall_time")})
        sandbox.claim()
        engine._put_files(sandbox, files)  # noqa: SLF001 - the engine's own placement rules (no '..', no '/')
        ran: dict[int, object] = {}

        def on_cell(cell, _reply):
            ran[id(cell)] = cell

        nb, _ = SandboxExecute(sandbox, on_cell=on_cell)(nb, {})
        limits_hit = list(sandbox.limit_hits)
        messages = [sandbox.explain(hit) for hit in limits_hit]
    finally:
        # killing and cleaning up takes a moment; the answer does not wait for it
        threading.Thread(target=sandbox.close, daemon=True, name=f"close-{sandbox.id}").start()
    cells = [{"index": index, "execution_count": cell.get("execution_count"),
              "outputs": [dict(output) for output in cell.get("outputs", [])]}
             for index, cell in enumerate(nb.cells) if id(cell) in ran]
    return {"cells": cells, "limits_hit": limits_hit, "limit_messages": messages}


def read_execution(folder) -> tuple[dict, dict[str, bytes]]:
    """The one notebook and the data files of an execution job's folder (its unzipped blob)."""
    from pathlib import Path

    folder = Path(folder)
    notebooks = sorted(p for p in folder.rglob("*.ipynb") if p.is_file() and not p.is_symlink())
    if len(notebooks) != 1:
        raise ValueError(f"an execution takes exactly one notebook, this one has {len(notebooks)}")
    if notebooks[0].stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError("the notebook is larger than 32 MB")
    notebook = nbformat.read(str(notebooks[0]), as_version=4)
    files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
             if p.is_file() and not p.is_symlink() and p.suffix != ".ipynb"}
    return notebook, files
