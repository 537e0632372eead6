"""The trusted runner inside a grading sandbox: runs the tests, and the learner's interpreter beside it.

This file is *not* imported by the grader. Its source (with ``capture.py`` and ``wire.py`` put in
place of their imports) is handed to the sandbox's python as ``python -I -c <source> <limits-json>
<learner-source>``, so nothing of learnhub and no file of the assignment has to exist inside the
sandbox; it uses only the standard library and IPython.

Two interpreters, so that what the learner's code does cannot decide the score:

* the **learner's interpreter** (``learner.py``, a child of this process, its pipes the only channel)
  runs every cell that is not a test — the learner's answers and the instructor's set-up cells;
* **this interpreter** runs the test cells (nbgrader's autograder tests). Their names resolve to the
  learner's namespace through the tests' globals (``_lookup``) — values cross as values, other objects as handles
  (``wire.py``) — and the built-in names are always this interpreter's own. Test code never reaches
  the learner's interpreter, the outputs of a test cell are written here, and this process is not
  dumpable (``PR_SET_DUMPABLE``), so that the learner's code, which runs as the same user, cannot
  read its memory, its files descriptors or its pipe to the grader.

Protocol with the grader (JSON lines on stdin/stdout):

* runner -> grader, once both interpreters are up: ``{"type": "ready", "pid", "learner_pid", "ipython"}``
* grader -> runner: ``{"op": "exec", "code": "...", "kind": "test" | "learner"}``
* runner -> grader: ``{"type": "result", "status": "ok"|"error", "execution_count": n, "outputs": [...],
  "ename", "evalue", "traceback", "output_truncated": bool, "tampered": [what was seen, so far],
  "origin": "learner" | "test"}`` (``origin``: who raised the error of a test cell)
* grader -> runner: ``{"op": "put", "files": {"rel/path": "<base64>"}}`` -> ``{"type": "put", "status": "ok"}``
* grader -> runner: ``{"op": "exit"}``
"""
import builtins
import json
import os
import resource
import signal
import subprocess
import sys

from learnhub.graders.sandbox.capture import LateNamespace, OutputCapture, ipython_shell  # the grader puts the sources of
from learnhub.graders.sandbox.wire import (  # capture.py and wire.py here
    Connection, Decoder, Encoder, PeerGone, WireError, is_mutable_value, update_in_place,
)

LIMITS = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
LEARNER_SOURCE = sys.argv[2] if len(sys.argv) > 2 else ""


def _set_dumpable(flag):
    # The learner's code runs as this process's user: without this it could ptrace this process,
    # or read its memory and file descriptors through /proc.
    try:
        import ctypes

        PR_SET_DUMPABLE = 4
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)
    except Exception:  # noqa: BLE001 - not Linux: nothing to do
        pass


_set_dumpable(0)
for _name, _value in (("RLIMIT_CPU", LIMITS.get("cpu_time")), ("RLIMIT_AS", LIMITS.get("memory"))):
    if _value:
        try:
            hard = int(_value) + (2 if _name == "RLIMIT_CPU" else 0)
            resource.setrlimit(getattr(resource, _name), (int(_value), hard))
        except (ValueError, OSError):
            pass
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

_proto_in = os.fdopen(os.dup(0), "r", encoding="utf-8", newline="\n")
_proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
_devnull = os.open(os.devnull, os.O_RDWR)
os.dup2(_devnull, 0)
os.dup2(_devnull, 1)


def _send_grader(obj):
    _proto_out.write(json.dumps(obj) + "\n")
    _proto_out.flush()


# -- the learner's interpreter ----------------------------------------------------------------

def _warm_imports():
    # What both interpreters import, imported once here before the learner's interpreter is forked
    # from this one: a fork shares it, a new python would import it again (a third of a sandbox's
    # start-up). Nothing has run yet that the learner may not see: no test has arrived.
    try:
        import IPython.core.displayhook  # noqa: F401
        import IPython.core.displaypub  # noqa: F401
        import IPython.core.interactiveshell  # noqa: F401
        import traitlets.config  # noqa: F401
    except Exception:  # noqa: BLE001 - minimal pythons without IPython: the learner does without
        pass


class _Learner:
    """The learner's interpreter: a fork of this process, before any test code has reached it, running
    ``learner.py``'s source in a fresh ``__main__``, with its own pipe pair to this process on its
    fds 0/1 and no other descriptor of ours (not the pipes to the grader)."""

    def __init__(self, source, argument):
        to_child, from_parent = os.pipe()
        to_parent, from_child = os.pipe()
        pid = os.fork()
        if pid == 0:  # the learner's interpreter
            status = 70
            try:
                os.dup2(to_child, 0)
                os.dup2(from_child, 1)
                os.closerange(3, _max_fd())
                _set_dumpable(1)  # as a new python would be; this process's memory holds no secret
                import types

                main = types.ModuleType("__main__")
                main.__dict__["__builtins__"] = builtins
                sys.modules["__main__"] = main
                sys.argv = ["-c", argument]
                exec(compile(source, "<string>", "exec"), main.__dict__)
                status = 0
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException:  # noqa: BLE001 - as python -c would: the traceback on stderr
                import traceback

                try:
                    traceback.print_exc()
                except BaseException:  # noqa: BLE001
                    pass
                status = 1
            finally:
                os._exit(status)
        os.close(to_child)
        os.close(from_child)
        self.pid = pid
        self.returncode = None
        self.stdin = os.fdopen(from_parent, "w", encoding="utf-8", buffering=1)
        self.stdout = os.fdopen(to_parent, "r", encoding="utf-8", newline="\n")

    def wait(self, timeout=None):
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG if deadline is not None else 0)
            except ChildProcessError:
                self.returncode = 0
                break
            if pid:
                self.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
                break
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired("learner", timeout)
            time.sleep(0.01)
        return self.returncode


def _max_fd():
    try:
        return max(int(fd) for fd in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return 1024


_warm_imports()
_learner = _Learner(LEARNER_SOURCE, json.dumps(LIMITS))
#: what the learner's interpreter did that it should not have (machinery it changed, protocol it broke)
tampered = []
_state = {"count": 0, "remote": 0, "in_test": False, "broken": None}


def _note(sign):
    if sign not in tampered:
        tampered.append(sign)


capture = OutputCapture(int(LIMITS.get("max_output_bytes") or 1 << 20))

# -- handles and values -------------------------------------------------------------------------

_callbacks = {}   # id -> object of the tests, given to learner code
_callback_ids = {}
_handles = {}     # handle id -> Handle (one proxy per learner object)


class LearnerError(Exception):
    """Marks exceptions raised by learner code (their messages are the learner's words)."""


def _raise_from(reply):
    error = reply.get("error") or {}
    message = str(error.get("message", ""))
    name = str(error.get("type", "Exception"))
    for base in error.get("bases") or ():
        cls = getattr(builtins, str(base), None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            exc = cls(message if base == name else f"{name}: {message}")
            exc.__learnhub_origin__ = "learner"
            raise exc
    raise LearnerError(f"{name}: {message}")


def _callback_of(obj):
    ident = _callback_ids.get(id(obj))
    if ident is None or _callbacks.get(ident) is not obj:
        ident = len(_callbacks) + 1
        _callbacks[ident], _callback_ids[id(obj)] = obj, ident
    return {"$cb": ident}


def _known(obj):
    if isinstance(obj, Handle):
        return {"$h": object.__getattribute__(obj, "_h")}
    return None


def _resolve(tag, data):
    if tag == "$cb":
        ident = data.get("$cb")
        if ident not in _callbacks:
            raise WireError("a callback this interpreter did not give out")
        return _callbacks[ident]
    ident = data.get("$h")
    if not isinstance(ident, int):
        raise WireError("not a handle")
    if data.get("module"):
        module = _trusted_module(str(data["module"]))
        if module is not None:
            return module
    handle = _handles.get(ident)
    if handle is None:
        handle = _handles[ident] = Handle(ident, str(data.get("type", "object"))[:200], bool(data.get("call")))
    return handle


def _trusted_module(name):
    """The module ``name`` as this interpreter imports it (from the read-only system: ``-I`` keeps the
    learner-writable working directory off ``sys.path``), or None."""
    import importlib

    try:
        module = importlib.import_module(name)
    except Exception:  # noqa: BLE001 - the learner's own module, or nothing: stays a handle
        return None
    where = getattr(module, "__file__", None) or ""
    workdir = os.path.realpath(LIMITS.get("workdir") or os.getcwd())
    if where and os.path.realpath(where).startswith(workdir + os.sep):
        return None
    return module


def _encode(value):
    return Encoder(_callback_of, _known)(value)


def _decode(data):
    return Decoder(_resolve)(data)


def _arguments(args, kwargs):
    return {"args": [_encode(a) for a in args], "kwargs": [[str(k), _encode(v)] for k, v in kwargs.items()]}


def _ask(message, args=(), kwargs=None):
    """A request to the learner's interpreter; what it printed goes to the running cell's outputs,
    what it did to our arguments is copied back, its error is raised here."""
    kwargs = kwargs or {}
    if _state["broken"]:
        # once the learner's interpreter broke the protocol, nothing it says can be trusted
        raise RuntimeError(_state["broken"])
    _state["remote"] += 1
    try:
        reply = _conn.request(message)
    except PeerGone:
        raise _LearnerGone() from None
    except WireError as exc:
        _note("protocol")
        _state["broken"] = f"the notebook's interpreter broke the grading protocol: {exc}"
        raise RuntimeError(_state["broken"]) from None
    finally:
        _state["remote"] -= 1
    for output in reply.get("outputs") or []:
        capture.add(output)
    for index, after in reply.get("after") or []:
        target = args[index] if isinstance(index, int) and 0 <= index < len(args) else kwargs.get(index)
        if target is not None and is_mutable_value(target):
            update_in_place(target, _decode(after))
    if not reply.get("ok"):
        _raise_from(reply)
    return reply


class _LearnerGone(BaseException):
    """The learner's interpreter exited or was killed: nothing more can be graded."""


_NO_CONCLUSION = ("a test cannot compare, test the truth of, or do arithmetic with a {type} object from the "
                  "notebook; tests draw their conclusions from values (numbers, text, lists, dicts, ...)")


class Handle:
    """A learner's object the tests may call, read, index, iterate and print — and nothing else."""

    __slots__ = ("_h", "_type", "_callable", "__weakref__")

    def __init__(self, ident, type_name, is_callable):
        object.__setattr__(self, "_h", ident)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_callable", is_callable)

    def _ask(self, op, call_args=(), call_kwargs=None, **fields):
        message = {"op": op, "h": object.__getattribute__(self, "_h"), **fields}
        return _decode(_ask(message, call_args, call_kwargs)["value"])

    def __call__(self, *args, **kwargs):
        return self._ask("call", args, kwargs, **_arguments(args, kwargs))

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") and name not in ("__name__", "__qualname__", "__doc__",
                                                                              "__module__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __setattr__(self, name, value):
        self._ask("setattr", name=name, value=_encode(value))

    def __getitem__(self, key):
        return self._ask("getitem", key=_encode(key))

    def __setitem__(self, key, value):
        self._ask("setitem", key=_encode(key), value=_encode(value))

    def __delitem__(self, key):
        self._ask("delitem", key=_encode(key))

    def __iter__(self):
        return self._ask("iter")

    def __next__(self):
        return self._ask("next")

    def __len__(self):
        return self._ask("len")

    def __str__(self):
        return self._ask("str")

    def __repr__(self):
        return self._ask("repr")

    def __format__(self, spec):
        return format(str(self), spec)

    @property
    def __signature__(self):
        import inspect

        params = []
        for name, kind, default in self._ask_raw("signature"):
            value = inspect.Parameter.empty if default == {"$empty": 1} else _decode(default)
            params.append(inspect.Parameter(str(name), inspect._ParameterKind(int(kind)), default=value))
        return inspect.Signature(params)

    def _ask_raw(self, op):
        return _ask({"op": op, "h": object.__getattribute__(self, "_h")})["value"]

    def _refuse(self, *_):
        raise TypeError(_NO_CONCLUSION.format(type=object.__getattribute__(self, "_type")))

    # identity only: the learner's __eq__ never decides a test
    def __eq__(self, other):
        return self is other

    def __ne__(self, other):
        return self is not other

    def __hash__(self):
        return hash(("learnhub-handle", object.__getattribute__(self, "_h")))

    __bool__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = _refuse
    __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = __pow__ = __rpow__ = __neg__ = __pos__ = _refuse
    __abs__ = __int__ = __float__ = __index__ = __round__ = _refuse


def _lookup(name):
    """A name the test cells' globals (a ``LateNamespace``) do not have: their own names come first,
    then the learner's notebook, by value.

    Built-in names are never looked up in the notebook: learner code that rebinds ``isinstance``,
    ``len`` or ``AssertionError`` changes its own cells, not the tests."""
    if not isinstance(name, str) or hasattr(builtins, name) or name.startswith("__") and name.endswith("__"):
        raise KeyError(name)
    reply = _ask({"op": "lookup", "name": name})
    if reply.get("missing"):
        raise KeyError(name)
    return _decode(reply["value"])


def _answer_learner(request):
    """A request of learner code: call a function the tests gave it."""
    if request.get("op") != "call" or request.get("cb") not in _callbacks:
        _note("protocol")
        raise WireError("the notebook's interpreter asked for something it may not")
    func = _callbacks[request["cb"]]
    args = [_decode(a) for a in request.get("args") or []]
    kwargs = {str(k): _decode(v) for k, v in request.get("kwargs") or []}
    try:
        value = func(*args, **kwargs)
    except _LearnerGone:
        raise
    except BaseException as exc:  # noqa: BLE001 - the exception is the answer, raised there
        bases = [c.__name__ for c in type(exc).__mro__ if getattr(builtins, c.__name__, None) is c]
        return {"ok": False, "error": {"type": type(exc).__name__, "bases": bases, "message": str(exc)[:2000]}}
    after = [[i, _encode(a)] for i, a in enumerate(args) if is_mutable_value(a)]
    return {"ok": True, "value": _encode(value), "after": after}


_conn = Connection(_learner.stdout, _learner.stdin, _answer_learner)
try:
    _ready = _conn.receive()
except (PeerGone, WireError):
    _ready = {}
if _ready.get("type") != "ready":
    sys.exit(3)

# -- the tests' interpreter --------------------------------------------------------------------

os.environ.setdefault("NBGRADER_EXECUTION", "autograde")
os.environ.setdefault("MPLBACKEND", "Agg")
shell = ipython_shell(capture, LateNamespace({"__name__": "__main__", "__builtins__": builtins}), adopt="runner")
namespace = shell.user_ns if shell is not None else LateNamespace({"__name__": "__main__", "__builtins__": builtins})
if type(namespace).__name__ != "LateNamespace" or namespace.get("__builtins__") is not builtins:
    raise SystemExit("the tests' namespace is not the runner's")
namespace.resolver = _lookup
sys.stdout, sys.stderr = capture.stream("stdout"), capture.stream("stderr")
sys.stdin = open(os.devnull)
os.chdir(LIMITS.get("workdir") or os.getcwd())


def _on_interrupt(signum, frame):
    # The grader interrupts a cell that ran too long. The learner's interpreter is interrupted in
    # every case (a test waiting for learner code, or a learner cell); a test's own code is
    # interrupted here only when it is not waiting for the learner (that wait ends with the
    # learner's KeyboardInterrupt, in order).
    try:
        os.kill(_learner.pid, signal.SIGINT)
    except OSError:
        pass
    if _state["in_test"] and not _state["remote"]:
        raise KeyboardInterrupt


signal.signal(signal.SIGINT, _on_interrupt)


def _run_plain(code):
    import traceback

    try:
        exec(compile(code, "<cell>", "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001
        capture.outputs.append({"output_type": "error", "ename": type(exc).__name__, "evalue": str(exc),
                                "traceback": traceback.format_exception(type(exc), exc, exc.__traceback__)})
        return exc
    return None


def _test_cell(code):
    capture.push()
    reply = {"type": "result", "status": "ok"}
    _state["in_test"] = True
    err = None
    try:
        if shell is not None:
            res = shell.run_cell(code, store_history=False, silent=False)
            err = res.error_in_exec or res.error_before_exec
        else:
            err = _run_plain(code)
    except _LearnerGone:
        raise
    except BaseException as exc:  # noqa: BLE001
        err = exc
    finally:
        _state["in_test"] = False
        outputs = capture.pop()
    if isinstance(err, _LearnerGone):
        raise err
    if err is not None:
        reply.update(status="error", ename=type(err).__name__, evalue=str(err)[:2000], traceback=[],
                     origin=getattr(err, "__learnhub_origin__", "test"))
    for output in outputs:
        if output.get("output_type") == "execute_result":
            output["execution_count"] = _state["count"]
    reply["outputs"] = outputs
    return reply


_ALLOWED = ("stream", "display_data", "execute_result", "error")


def _learner_cell(code):
    reply = _ask({"op": "exec", "code": code})
    for sign in reply.get("tampered") or []:
        _note(str(sign)[:100])
    outputs = []
    for output in reply.get("outputs") or []:
        if isinstance(output, dict) and output.get("output_type") in _ALLOWED:
            outputs.append(output)
    result = {"type": "result", "status": "error" if reply.get("status") == "error" else "ok", "outputs": outputs,
              "output_truncated": bool(reply.get("output_truncated"))}
    if result["status"] == "error":
        result.update(ename=str(reply.get("ename", "Error"))[:200], evalue=str(reply.get("evalue", ""))[:2000],
                      traceback=[])
    return result


def _learner_stopped():
    """The learner's interpreter is gone: this runner ends too, with its status, so that the grader
    tells why (memory, CPU time, a crash) as it would for one interpreter."""
    try:
        code = _learner.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None
    if code is not None and code < 0:
        os._exit(128 - code)
    os._exit(code if code else 70)


_send_grader({"type": "ready", "pid": os.getpid(), "learner_pid": _learner.pid, "ipython": shell is not None})

for line in _proto_in:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    op = msg.get("op")
    if op == "exit":
        try:
            _conn.send({"op": "exit", "id": 0})
        except (OSError, ValueError):
            pass
        break
    try:
        if op == "put":
            _ask({"op": "put", "files": msg.get("files") or {}})
            _send_grader({"type": "put", "status": "ok"})
            continue
        if op != "exec":
            continue
        _state["count"] += 1
        if msg.get("kind") == "test":
            reply = _test_cell(msg.get("code", ""))
        else:
            reply = _learner_cell(msg.get("code", ""))
    except _LearnerGone:
        _learner_stopped()
    except KeyboardInterrupt:
        reply = {"type": "result", "status": "error", "ename": "KeyboardInterrupt", "evalue": "", "traceback": [],
                 "outputs": []}
    except Exception:  # noqa: BLE001 - the protocol broken during a learner cell (noted in `tampered`)
        reply = {"type": "result", "status": "error", "ename": "GradingStopped",
                 "evalue": "This cell could not be run by the grader.", "traceback": [], "outputs": []}
    reply["execution_count"] = _state["count"]
    reply["output_truncated"] = reply.get("output_truncated") or capture.truncated
    reply["tampered"] = list(tampered)
    try:
        _send_grader(reply)
    except (BrokenPipeError, ValueError):
        break
