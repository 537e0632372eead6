"""The in-sandbox runner: executes notebook cells one by one and answers over a pipe.

This file is *not* imported by the grader. Its source text is handed to the sandbox's
python with ``python -I -c <source> <limits-json>``, so nothing of learnhub (and no file
of the assignment) has to exist inside the sandbox. It must therefore only use the
standard library and IPython, which the sandbox's python provides.

Protocol (JSON lines, one object a line):

* runner -> grader, once start-up is done: ``{"type": "ready", "pid": ..., "ipython": bool}``
* grader -> runner: ``{"op": "exec", "code": "...", "timeout": 30}``; code arrives only when
  it is executed, so test code (hidden tests included) never exists as a file in the sandbox.
* runner -> grader: ``{"type": "result", "status": "ok"|"error", "execution_count": n,
  "outputs": [nbformat v4 outputs], "ename", "evalue", "traceback", "output_truncated": bool}``
* grader -> runner: ``{"op": "put", "files": {"rel/path": "<base64>"}}`` (assignment data
  files) -> ``{"type": "put", "status": "ok"}``
* grader -> runner: ``{"op": "exit"}``

The runner imports IPython *before* announcing itself ready, so a warm sandbox pays
none of that cost at grading time. The cell semantics are IPython's (magics, display
hook, ``display()``, tracebacks), like the ipykernel nbgrader runs, and the outputs are
shaped as nbclient would write them, so nbgrader's ``determine_grade`` sees the same thing.
"""
import json
import os
import resource
import sys

LIMITS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def _limit(name, soft, hard=None):
    if not soft:
        return
    res = getattr(resource, name)
    hard = hard or soft
    try:
        resource.setrlimit(res, (int(soft), int(hard)))
    except (ValueError, OSError):
        pass


# Limits first: they hold for everything this process and its children ever do,
# and an unprivileged process can never raise a hard limit again.
_limit("RLIMIT_CPU", LIMITS.get("cpu_time"), (LIMITS.get("cpu_time") or 0) + 2)
_limit("RLIMIT_AS", LIMITS.get("memory"))
_limit("RLIMIT_NPROC", LIMITS.get("max_processes"))
_limit("RLIMIT_FSIZE", LIMITS.get("max_file_size"))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

# The protocol lives on private duplicates of stdin/stdout (not inheritable, so child
# processes never get them); fds 0/1 become /dev/null so that stray reads cannot eat
# protocol lines and C-level writes cannot corrupt them.
_proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8", newline="\n")
_proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
_devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(_devnull, 0)
os.dup2(_devnull, 1)

MAX_OUTPUT = int(LIMITS.get("max_output_bytes") or 1 << 20)
_state = {"outputs": [], "written": 0, "truncated": False, "count": 0}


def _send(obj):
    _proto_out.write(json.dumps(obj) + "\n")
    _proto_out.flush()


def _room(n):
    """How much of an n-character write still fits under the output cap."""
    left = MAX_OUTPUT - _state["written"]
    if left <= 0:
        if not _state["truncated"]:
            _state["truncated"] = True
            _add_stream("stderr", "\n[learnhub] output truncated: limit of %d bytes reached\n" % MAX_OUTPUT, force=True)
        return 0
    return min(n, left)


def _add_stream(name, text, force=False):
    if not force:
        keep = _room(len(text))
        if keep < len(text):
            text = text[:keep]
            _room(1)  # records the truncation notice
        if not text:
            return
        _state["written"] += len(text)
    outs = _state["outputs"]
    # nbclient merges consecutive writes of the same stream into one output
    if outs and outs[-1]["output_type"] == "stream" and outs[-1]["name"] == name:
        outs[-1]["text"] += text
    else:
        outs.append({"output_type": "stream", "name": name, "text": text})


class _Stream:
    encoding = "utf-8"
    errors = "replace"

    def __init__(self, name):
        self.name = name

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        _add_stream(self.name, text)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def readable(self):
        return False

    def writable(self):
        return True

    def fileno(self):
        import io

        raise io.UnsupportedOperation("fileno")


def _json_safe(data):
    try:
        json.dumps(data)
        return data
    except (TypeError, ValueError):
        return {k: str(v) for k, v in data.items()}


def _sized(data):
    n = len(json.dumps(data, default=str))
    if _room(n) < n:
        return False
    _state["written"] += n
    return True


os.environ.setdefault("NBGRADER_EXECUTION", "autograde")
os.environ.setdefault("MPLBACKEND", "Agg")

try:
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class _Hook(DisplayHook):
        def start_displayhook(self):
            self._fmt = None

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            data = _json_safe(format_dict)
            if _sized(data):
                _state["outputs"].append(
                    {"output_type": "execute_result", "execution_count": self.prompt_count,
                     "data": data, "metadata": md_dict or {}}
                )

        def finish_displayhook(self):
            pass

    class _Pub(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
            data = _json_safe(data)
            if _sized(data):
                _state["outputs"].append(
                    {"output_type": "display_data", "data": data, "metadata": metadata or {}}
                )

        def clear_output(self, wait=False):
            _state["outputs"].clear()

    from traitlets.config import Config

    _cfg = Config()
    # as nbgrader's Execute.extra_arguments: no history file
    _cfg.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=_cfg, displayhook_class=_Hook, display_pub_class=_Pub,
                                      colors="NoColor")

    def _showtraceback(etype, evalue, stb):
        _state["outputs"].append(
            {"output_type": "error", "ename": str(etype.__name__), "evalue": str(evalue), "traceback": stb}
        )

    shell._showtraceback = _showtraceback
    if hasattr(shell, "_tee"):
        # IPython >= 9 copies every write of a cell into its output history (for %history -o),
        # without a cap: a cell printing in a loop would exhaust the memory limit long before
        # the runner's own output cap ends it. The runner keeps the outputs itself.
        import contextlib

        shell._tee = lambda channel: contextlib.nullcontext()
    HAVE_IPYTHON = True
except Exception:  # pragma: no cover - minimal pythons without IPython
    HAVE_IPYTHON = False
    shell = None
    _ns = {"__name__": "__main__"}

sys.stdout = _Stream("stdout")
sys.stderr = _Stream("stderr")
sys.stdin = open(os.devnull)
os.chdir(LIMITS.get("workdir") or os.getcwd())


def _run_plain(code):
    """Fallback without IPython: exec the cell, echo the last expression's repr."""
    import ast
    import traceback

    _state["count"] += 1
    try:
        tree = ast.parse(code)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<cell>", "exec"), _ns)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), _ns)
            if value is not None:
                _state["outputs"].append(
                    {"output_type": "execute_result", "execution_count": _state["count"],
                     "data": {"text/plain": repr(value)}, "metadata": {}})
        return None
    except BaseException as exc:  # noqa: BLE001 - the cell's error is the result
        e = {"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc),
             "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)}
        _state["outputs"].append(e)
        return e


_send({"type": "ready", "pid": os.getpid(), "ipython": HAVE_IPYTHON})

for line in _proto_in:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    op = msg.get("op")
    if op == "exit":
        break
    if op == "put":
        # assignment data files, written next to the notebook; paths stay inside the workdir
        import base64

        for rel, data in (msg.get("files") or {}).items():
            target = os.path.realpath(os.path.join(os.getcwd(), rel))
            if not target.startswith(os.path.realpath(os.getcwd()) + os.sep):
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(base64.b64decode(data))
        _send({"type": "put", "status": "ok"})
        continue
    if op != "exec":
        continue
    _state["outputs"] = []
    reply = {"type": "result", "status": "ok"}
    try:
        if HAVE_IPYTHON:
            res = shell.run_cell(msg.get("code", ""), store_history=True, silent=False)
            reply["execution_count"] = shell.execution_count - 1
            err = res.error_in_exec or res.error_before_exec
            if err is not None:
                reply.update(status="error", ename=type(err).__name__, evalue=str(err), traceback=[])
        else:
            e = _run_plain(msg.get("code", ""))
            reply["execution_count"] = _state["count"]
            if e:
                reply.update(status="error", ename=e["ename"], evalue=e["evalue"], traceback=[])
    except BaseException as exc:  # noqa: BLE001 - e.g. KeyboardInterrupt between cells
        reply.update(status="error", ename=type(exc).__name__, evalue=str(exc), traceback=[])
    reply["outputs"] = _state["outputs"]
    reply["output_truncated"] = _state["truncated"]
    try:
        _send(reply)
    except (BrokenPipeError, ValueError):
        break
