"""The learner's interpreter inside a grading sandbox: runs the notebook's own cells, answers the tests.

Started by the trusted runner (``runner.py``), never by the grader directly, as
``python -I -c <this source> <limits-json>``, with a pipe pair to the runner as its only channel. It
runs every cell that is not a test — the learner's answers and the instructor's set-up cells — in
IPython, as nbgrader's kernel would. The tests run in the runner's interpreter; when they use a name
of the notebook, call a function of the learner's or read an item of a learner's object, the runner
asks here, and what crosses back is a value (see ``wire.py``). Test code never reaches this process.

Nothing learner code does here can change a test's outcome other than by what its functions return;
that code can still tamper with this interpreter (IPython's transformers, hooks, the protocol), and
after every cell this process looks for signs of that and reports them, so that an instructor can
review the submission. A learner who disables the report gains nothing: the score is the tests'.
"""
import json
import os
import resource
import sys

from learnhub.graders.sandbox.capture import OutputCapture, ipython_shell  # the grader puts the sources of
from learnhub.graders.sandbox.wire import (  # capture.py and wire.py here
    Connection, Decoder, Encoder, PeerGone, WireError, is_mutable_value, update_in_place,
)

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

# The protocol lives on private duplicates of stdin/stdout (not inheritable, so child processes
# never get them); fds 0/1 become /dev/null so that stray reads cannot eat protocol lines and
# C-level writes cannot corrupt them.
_proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8", newline="\n")
_proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
_devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(_devnull, 0)
os.dup2(_devnull, 1)

capture = OutputCapture(int(LIMITS.get("max_output_bytes") or 1 << 20))
_state = {"count": 0}

os.environ.setdefault("NBGRADER_EXECUTION", "autograde")
os.environ.setdefault("MPLBACKEND", "Agg")

shell = ipython_shell(capture, adopt="learner")  # the warm parent's, when there is one (zygote.py)
HAVE_IPYTHON = shell is not None
namespace = shell.user_ns if HAVE_IPYTHON else {"__name__": "__main__"}

_stdout, _stderr = capture.stream("stdout"), capture.stream("stderr")
sys.stdout, sys.stderr = _stdout, _stderr
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
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            value = eval(compile(last, "<cell>", "eval"), namespace)
            if value is not None:
                capture.outputs.append(
                    {"output_type": "execute_result", "execution_count": _state["count"],
                     "data": {"text/plain": repr(value)}, "metadata": {}})
        return None
    except BaseException as exc:  # noqa: BLE001 - the cell's error is the result
        e = {"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc),
             "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)}
        capture.outputs.append(e)
        return e


# -- signs of tampering ------------------------------------------------------------------------

import builtins as _builtins  # noqa: E402

_MACHINERY = ("run_cell", "run_ast_nodes", "run_code", "showtraceback", "_showtraceback", "showsyntaxerror",
              "transform_cell")


def _machinery():
    """What learner code has no business changing: how cells are transformed, run and reported."""
    seen = {
        "sys.settrace": sys.gettrace(), "sys.setprofile": sys.getprofile(), "sys.excepthook": sys.excepthook,
        "json.dumps": json.dumps, "json.loads": json.loads, "runner.reply": _answer,
    }
    for name in dir(_builtins):
        if name != "_":  # the last result, which Python's own display hook keeps there
            seen["builtins." + name] = getattr(_builtins, name)
    if shell is not None:
        for name in _MACHINERY:
            seen["ipython." + name] = (getattr(type(shell), name, None), name in vars(shell))
        seen["ipython._showtraceback"] = shell._showtraceback
        seen["ipython.input_transformers_cleanup"] = tuple(shell.input_transformers_cleanup)
        seen["ipython.input_transformers_post"] = tuple(shell.input_transformers_post)
        seen["ipython.ast_transformers"] = tuple(shell.ast_transformers)
        seen["ipython.custom_exceptions"] = (shell.custom_exceptions, shell.CustomTB)
        seen["ipython.displayhook"] = type(shell.displayhook)
    return seen


def _tampering(baseline):
    """The names of what changed since ``baseline``; puts the output streams back (learner code may
    have swapped them, which only loses its own outputs)."""
    changed = []
    now = _machinery()
    for key, value in baseline.items():
        current = now.get(key)
        if current is value or current == value:
            continue
        try:
            if current == value:
                continue
        except Exception:  # noqa: BLE001 - a comparison learner code broke is a change too
            pass
        changed.append(key)
    changed += [key for key in now if key not in baseline]
    if sys.stdout is not _stdout or sys.stderr is not _stderr:
        sys.stdout, sys.stderr = _stdout, _stderr
    return sorted(set(changed))


# -- answering the runner -----------------------------------------------------------------------

_objects = {}  # handle id -> object this process keeps, for the tests
_ids = {}      # id(object) -> handle id (while the object is kept)


def _handle_of(obj):
    import types

    key = id(obj)
    ident = _ids.get(key)
    if ident is None or _objects.get(ident) is not obj:
        ident = len(_objects) + 1
        while ident in _objects:
            ident += 1
        _objects[ident], _ids[key] = obj, ident
    out = {"$h": ident, "type": type(obj).__qualname__, "call": callable(obj)}
    if isinstance(obj, types.ModuleType):
        out["module"] = obj.__name__
    return out


class _Callback:
    """A function the tests passed to learner code: calling it asks the runner to run it."""

    __slots__ = ("_cb",)

    def __init__(self, ident):
        self._cb = ident

    def __call__(self, *args, **kwargs):
        reply = _conn.request({"op": "call", "cb": self._cb, **_encode_arguments(args, kwargs)})
        return _result_of(reply, args, kwargs)

    def __repr__(self):
        return "<function of the tests>"


def _known(obj):
    if isinstance(obj, _Callback):
        return {"$cb": obj._cb}
    return None


def _resolve(tag, data):
    if tag == "$h":
        ident = data.get("$h")
        if ident not in _objects:
            raise WireError("a handle this interpreter did not give out")
        return _objects[ident]
    return _Callback(data.get("$cb"))


def _encode(value):
    return Encoder(_handle_of, _known)(value)


def _decode(data):
    return Decoder(_resolve)(data)


def _encode_arguments(args, kwargs):
    return {"args": [_encode(a) for a in args], "kwargs": [[k, _encode(v)] for k, v in kwargs.items()]}


def _result_of(reply, args, kwargs):
    """The value a reply carries, after copying back what the other side did to our arguments;
    an error reply is raised as the nearest built-in exception."""
    for index, after in reply.get("after") or []:
        target = args[index] if isinstance(index, int) else kwargs.get(index)
        if target is not None:
            update_in_place(target, _decode(after))
    if reply.get("ok"):
        return _decode(reply.get("value"))
    error = reply.get("error") or {}
    for name in error.get("bases") or ():
        cls = getattr(_builtins, str(name), None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            raise cls(str(error.get("message", "")))
    raise RuntimeError(str(error.get("message", "")))


def _error(exc):
    bases = [c.__name__ for c in type(exc).__mro__ if getattr(_builtins, c.__name__, None) is c]
    return {"ok": False, "error": {"type": type(exc).__name__, "bases": bases, "message": str(exc)[:2000]}}


def _copied_back(args, kwargs):
    after = [[i, _encode(a)] for i, a in enumerate(args) if is_mutable_value(a)]
    after += [[k, _encode(v)] for k, v in kwargs.items() if is_mutable_value(v)]
    return after


def _target(request):
    ident = request.get("h")
    if ident not in _objects:
        raise WireError("a handle this interpreter did not give out")
    return _objects[ident]


def _serve(request):
    """One request of the runner, in its own output frame."""
    op = request.get("op")
    if op == "lookup":
        name = request.get("name")
        if not isinstance(name, str) or name not in namespace:
            return {"ok": True, "missing": True}
        return {"ok": True, "value": _encode(namespace[name])}
    if op == "call":
        func = _target(request)
        args = [_decode(a) for a in request.get("args") or []]
        kwargs = {str(k): _decode(v) for k, v in request.get("kwargs") or []}
        result = func(*args, **kwargs)
        return {"ok": True, "value": _encode(result), "after": _copied_back(args, kwargs)}
    if op == "getattr":
        return {"ok": True, "value": _encode(getattr(_target(request), str(request.get("name"))))}
    if op == "setattr":
        setattr(_target(request), str(request.get("name")), _decode(request.get("value")))
        return {"ok": True, "value": None}
    if op == "getitem":
        return {"ok": True, "value": _encode(_target(request)[_decode(request.get("key"))])}
    if op == "setitem":
        _target(request)[_decode(request.get("key"))] = _decode(request.get("value"))
        return {"ok": True, "value": None}
    if op == "delitem":
        del _target(request)[_decode(request.get("key"))]
        return {"ok": True, "value": None}
    if op == "iter":
        return {"ok": True, "value": _handle_of(iter(_target(request)))}
    if op == "next":
        return {"ok": True, "value": _encode(next(_target(request)))}
    if op == "len":
        return {"ok": True, "value": int(len(_target(request)))}
    if op in ("str", "repr"):
        text = (str if op == "str" else repr)(_target(request))
        return {"ok": True, "value": str(text)[:100_000]}
    if op == "signature":
        import inspect

        sig = inspect.signature(_target(request))
        params = [[p.name, int(p.kind), _encode(p.default) if p.default is not p.empty else {"$empty": 1}]
                  for p in sig.parameters.values()]
        return {"ok": True, "value": params}
    if op == "release":
        for ident in request.get("ids") or []:
            obj = _objects.pop(ident, None)
            if obj is not None:
                _ids.pop(id(obj), None)
        return {"ok": True, "value": None}
    raise WireError(f"unknown request {op!r}")


def _answer(request):
    op = request.get("op")
    if op == "exec":
        return _exec(request)
    if op == "put":
        return _put(request)
    capture.push()
    try:
        try:
            reply = _serve(request)
        except (PeerGone, WireError):
            raise
        except BaseException as exc:  # noqa: BLE001 - the learner's exception is the answer
            reply = _error(exc)
        reply["outputs"] = capture.outputs
        return reply
    finally:
        capture.pop()


def _exec(request):
    code = request.get("code", "")
    capture.push()
    reply = {"ok": True, "status": "ok"}
    try:
        if HAVE_IPYTHON:
            res = shell.run_cell(code, store_history=True, silent=False)
            reply["execution_count"] = shell.execution_count - 1
            err = res.error_in_exec or res.error_before_exec
            if err is not None:
                reply.update(status="error", ename=type(err).__name__, evalue=str(err)[:2000], traceback=[])
        else:
            e = _run_plain(code)
            reply["execution_count"] = _state["count"]
            if e:
                reply.update(status="error", ename=e["ename"], evalue=e["evalue"], traceback=[])
    except BaseException as exc:  # noqa: BLE001 - e.g. KeyboardInterrupt between statements
        reply.update(status="error", ename=type(exc).__name__, evalue=str(exc)[:2000], traceback=[])
    finally:
        reply["outputs"] = capture.pop()
    reply["output_truncated"] = capture.truncated
    reply["tampered"] = _tampering(_BASELINE)
    return reply


def _put(request):
    """Assignment data files, written next to the notebook; paths stay inside the workdir."""
    import base64

    root = os.path.realpath(os.getcwd())
    for rel, data in (request.get("files") or {}).items():
        target = os.path.realpath(os.path.join(root, rel))
        if not target.startswith(root + os.sep):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(base64.b64decode(data))
    return {"ok": True}


_conn = Connection(_proto_in, _proto_out, _answer)
_BASELINE = _machinery()
_conn.send({"type": "ready", "pid": os.getpid(), "ipython": HAVE_IPYTHON})

while True:
    try:
        message = _conn.receive()
    except (PeerGone, WireError):
        break
    if message.get("op") == "exit":
        break
    if "op" not in message or not isinstance(message.get("id"), int):
        break
    try:
        _conn.answer(message)
    except (PeerGone, BrokenPipeError, ValueError):
        break
