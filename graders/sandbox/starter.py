"""Sandbox processes are started from one thread that lives as long as the grader.

bwrap's ``--die-with-parent`` is ``PR_SET_PDEATHSIG``, and Linux sends that signal when the *thread*
that forked the process ends, not when its process does. A bwrap started from a short-lived thread (a
class grading pool's worker, an executor thread, a test's thread) is therefore killed as soon as that
thread returns, and with the warm parent (zygote.py) goes every sandbox it forked, whichever thread
is using them: a runner that "did not start", with nothing on its stderr. Starting every such process
from :func:`start_process`'s thread keeps the signal for what it is meant for: the grader's death.
"""
from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future

_lock = threading.Lock()
_requests: "queue.SimpleQueue | None" = None
_thread: threading.Thread | None = None


def _serve(requests: "queue.SimpleQueue") -> None:
    while True:
        future, function, args, kwargs = requests.get()
        if not future.set_running_or_notify_cancel():
            continue
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            future.set_exception(exc)


def _forget_after_fork() -> None:
    # a forked child has no starter thread (threads do not survive fork); it makes its own on first use
    global _requests, _thread, _lock
    _requests, _thread, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def start_process(function, *args, **kwargs):
    """``function(*args, **kwargs)`` (e.g. ``subprocess.Popen``) run on the starter thread; its result
    or exception, in the caller's thread."""
    global _requests, _thread
    with _lock:
        if _thread is None or not _thread.is_alive():
            _requests = queue.SimpleQueue()
            _thread = threading.Thread(target=_serve, args=(_requests,), daemon=True, name="sandbox-starter")
            _thread.start()
        requests, thread = _requests, _thread
    if threading.current_thread() is thread:
        return function(*args, **kwargs)
    future: Future = Future()
    requests.put((future, function, args, kwargs))
    return future.result()
