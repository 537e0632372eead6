"""The warm parent ("zygote") of bubblewrap sandboxes: one python that has imported IPython, from which
every sandbox's runner is forked, each in namespaces of its own.

This file is *not* imported by the grader: like ``runner.py`` its source is handed to the sandbox's
python (``python -I -c <source> <control-fd> <runner-source> <learner-source> <capture-source>``), here inside one
bubblewrap sandbox that the grader starts once (see ``BubblewrapSandbox.zygote``). That sandbox gives
the read-only view of the system every grading sandbox has (``/usr``, the python prefix, a few
``/etc`` files, no network, no home, no data dir); this process keeps, of root's powers, only what it
needs to make one more sandbox inside it: ``CAP_SYS_ADMIN`` (namespaces, mounts), ``CAP_SETUID``,
``CAP_SETGID`` and ``CAP_SETPCAP`` (to give them all up). It never runs notebook code and never reads
anything but the grader's requests.

For each request (``{"op": "spawn", "id", "uid", "tmp_size", "limits"}`` on the control socket, with
the sandbox's stdin, stdout and stderr pipes passed as descriptors) it forks:

* **A**, which unshares mount, pid, network, IPC and UTS namespaces, makes its mounts private and puts
  a new, empty, size-capped tmpfs on ``/tmp``; it then waits for B and exits with B's status as
  bubblewrap does (128 + signal);
* **B**, pid 1 of the new pid namespace: its own ``/proc`` and ``/dev/pts``, a new session, the
  bounding set emptied, groups, gid and uid set to the sandbox's unprivileged uid (which clears every
  capability) and ``no_new_privs``; it checks that no capability is left, forks C and reaps
  (when it ends the kernel ends everything in the namespace);
* **C**, the trusted runner (``runner.py``'s code, compiled once here, in a fresh ``__main__``), which
  forks the learner's interpreter as it does in a sandbox of its own.

So every sandbox still has its own ``/tmp``, pids, network, IPC, uid and (set by the grader) cgroups,
as one started by ``bwrap`` would; what is shared is only memory this process filled before any
notebook existed (imported modules), copied on write. A process that ran notebook code is never
forked again. Replies: ``{"type": "ready"}`` once, ``{"type": "spawned", "id", "pid"}`` (A's pid, in
this namespace), ``{"type": "exited", "id", "code"}``, ``{"type": "error", "id", "error"}``.
"""
import builtins
import ctypes
import json
import os
import select
import signal
import socket
import sys
import types

CONTROL_FD = int(sys.argv[1])
RUNNER_SOURCE = sys.argv[2]
LEARNER_SOURCE = sys.argv[3]
CAPTURE_SOURCE = sys.argv[4] if len(sys.argv) > 4 else ""

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.unshare.argtypes = [ctypes.c_int]


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source, target, fstype, flags, data=None):
    enc = (lambda s: s.encode() if s is not None else None)
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _prctl(option, arg=0):
    _check(_libc.prctl(option, arg, 0, 0, 0), f"prctl {option}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _clear_capabilities():
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def _status_field(name):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    return ""


# -- warm: what every runner and learner's interpreter imports, imported once, before any sandbox ----

def _warm():
    for name in ("IPython.core.interactiveshell", "IPython.core.displayhook", "IPython.core.displaypub",
                 "traitlets.config", "subprocess", "resource", "traceback", "inspect", "base64", "ast"):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - minimal pythons without IPython: the runner does without
            pass


def _shell_ahead():
    """The IPython shells of the runner (tests' globals a ``LateNamespace``) and of the learner's
    interpreter, made here once (``capture.py``'s ``ipython_shell``; each runner and learner's
    interpreter adopts its copy of its own, pointed at its own outputs). A throwaway shell runs a
    constant cell and a traceback first, so that what IPython imports and caches on first use is
    here too. Nothing of a notebook has run in either; no thread is left (one would not survive a
    fork): else no shell is kept."""
    if not CAPTURE_SOURCE:
        return
    import gc
    import threading

    try:
        space = {"__name__": "learnhub_capture"}
        exec(compile(CAPTURE_SOURCE, "<capture>", "exec"), space)
        throwaway = space["ipython_shell"](space["OutputCapture"](1 << 20))
        if throwaway is None:
            return
        throwaway.run_cell("1", store_history=False, silent=False)
        throwaway.run_cell("raise ValueError('warm')", store_history=False, silent=False)
        # (each call discards the shell made before it)
        learner = space["ipython_shell"](space["OutputCapture"](1 << 20))
        runner = space["ipython_shell"](space["OutputCapture"](1 << 20), space["LateNamespace"](
            {"__name__": "__main__", "__builtins__": builtins}))
        from IPython.core.interactiveshell import InteractiveShell

        InteractiveShell.clear_instance()
        if threading.active_count() != 1 or learner is None or runner is None:
            raise RuntimeError("IPython left a thread")
        InteractiveShell._learnhub_ahead = {"learner": learner, "runner": runner}
    except Exception:  # noqa: BLE001 - every learner's interpreter makes its own shell then
        try:
            from IPython.core.interactiveshell import InteractiveShell

            InteractiveShell.clear_instance()
        except Exception:  # noqa: BLE001
            pass
    gc.collect()


_warm()
_shell_ahead()
RUNNER_CODE = compile(RUNNER_SOURCE, "<string>", "exec")
LAST_CAP = int(open("/proc/sys/kernel/cap_last_cap").read())
ZYGOTE_PID = os.getpid()
import gc  # noqa: E402

gc.collect()
# Everything made so far is kept for good: the collectors of the forked processes leave it alone
# (walking it would copy every page this process shares with them).
gc.freeze()


def _max_fd():
    try:
        return max(int(fd) for fd in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return 1024


def _exit_code(status):
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _runner(request):
    """C: the trusted runner, as ``python -I -c <runner> <limits> <learner>`` would run it."""
    status = 0
    try:
        main = types.ModuleType("__main__")
        main.__dict__["__builtins__"] = builtins
        sys.modules["__main__"] = main
        sys.argv = ["-c", json.dumps(request["limits"]), LEARNER_SOURCE]
        exec(RUNNER_CODE, main.__dict__)
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - as python -c would: the traceback on stderr
        import traceback

        traceback.print_exc()
        status = 1
    finally:
        try:
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
        os._exit(status)


def _init(request):
    """B: pid 1 of the sandbox's pid namespace; gives up every privilege, then starts and reaps."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    try:  # a pty instance of its own (best effort: a kernel without devpts multi-instance keeps bwrap's)
        _mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620")
    except OSError:
        pass
    os.setsid()
    uid = int(request["uid"])
    if uid <= 0:
        raise OSError("refusing to run a sandbox as root")
    for cap in range(LAST_CAP + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # from root to a non-zero uid: the permitted and effective sets are cleared
    _clear_capabilities()  # and the inheritable one (ambient follows)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if int(_status_field(field) or "1", 16) != 0:
            raise OSError(f"the sandbox kept capabilities ({field})")
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != uid or os.getgroups():
        raise OSError("the sandbox's uid could not be set")
    os.chdir("/tmp")
    runner = os.fork()
    if runner == 0:
        _runner(request)
    # what the runner and the learner's interpreter need of 0/1/2 they have; this process keeps none
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(70)
        if pid == runner:
            os._exit(_exit_code(status))


def _sandbox(request, fds):
    """A: new namespaces and a private /tmp, then B in them; exits with B's status."""
    signal.set_wakeup_fd(-1)
    # the dispositions a new python starts with
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
    os.closerange(3, _max_fd())
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != ZYGOTE_PID:  # the zygote ended while this was being forked
        os._exit(70)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=%d" % int(request["tmp_size"]))
    init = os.fork()
    if init == 0:
        try:
            _init(request)
        except BaseException as exc:  # noqa: BLE001 - the grader sees it as a sandbox that did not start
            try:
                os.write(2, f"learnhub zygote: {exc}\n".encode())
            finally:
                os._exit(71)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    while True:
        try:
            pid, status = os.waitpid(init, 0)
        except ChildProcessError:
            os._exit(70)
        except InterruptedError:
            continue
        if pid == init:
            os._exit(_exit_code(status))


def main():
    control = socket.socket(fileno=CONTROL_FD)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    children = {}

    def send(obj):
        control.send(json.dumps(obj).encode())

    def reap():
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if not pid:
                return
            ident = children.pop(pid, None)
            if ident is not None:
                send({"type": "exited", "id": ident, "code": _exit_code(status)})

    send({"type": "ready", "pid": os.getpid()})
    while True:
        request = None
        readable = select.select([control, wake_r], [], [])[0]
        if wake_r in readable:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        if control in readable:
            message, fds, _flags, _addr = socket.recv_fds(control, 1 << 20, 3)
            if not message:
                return  # the grader is gone; every sandbox goes with this process (PDEATHSIG)
            try:
                request = json.loads(message)
                if request.get("op") != "spawn" or len(fds) != 3:
                    raise ValueError("not a spawn request with three descriptors")
                pid = os.fork()
                if pid == 0:
                    try:
                        _sandbox(request, fds)
                    except BaseException as exc:  # noqa: BLE001
                        try:
                            os.write(2, f"learnhub zygote: {exc}\n".encode())
                        finally:
                            os._exit(71)
                children[pid] = request.get("id")
                send({"type": "spawned", "id": request.get("id"), "pid": pid})
            except Exception as exc:  # noqa: BLE001 - one bad request fails that sandbox, not the zygote
                send({"type": "error", "id": request.get("id") if isinstance(request, dict) else None,
                      "error": str(exc)[:500]})
            finally:
                for fd in fds:
                    os.close(fd)
        reap()


main()
