"""Sandboxes forked from the warm parent (``sandbox/zygote.py``) keep what a bwrap of their own gave.

Real bubblewrap sandboxes, two at once from the same zygote: one plays the other submission (it
leaves a file in its /tmp, listens on an abstract socket and on loopback), the other looks for it.
Also: no capability and no root in a sandbox, the learner's interpreter holds no pipe of the grader,
and a sandbox without the zygote (``zygote=False``) still starts."""
from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

from learnhub.graders.sandbox import bwrap_path
from learnhub.graders.sandbox.bubblewrap import BubblewrapSandbox

pytestmark = [
    pytest.mark.skipif(not bwrap_path(), reason="bubblewrap (bwrap) is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the warm parent is used as root only"),
]


#: the warm parent is used only when the python's prefix is outside /tmp (each sandbox's new /tmp would
#: hide it): a virtual environment under /tmp, as in a clone made there, grades with a bwrap per sandbox
needs_the_zygote = pytest.mark.skipif(
    not BubblewrapSandbox().zygote_usable(),
    reason="the warm parent is not used here: the python's prefix is under /tmp (BubblewrapSandbox.zygote_usable)")


def run(sandbox, code, kind="learner"):
    reply = sandbox.execute(code, kind=kind)
    assert reply["status"] == "ok", reply
    return "".join(o.get("text", "") for o in reply["outputs"] if o["output_type"] == "stream")


def report(sandbox, code):
    return json.loads(run(sandbox, code + "\nimport json; print(json.dumps(out))").strip().splitlines()[-1])


@needs_the_zygote
def test_two_forked_sandboxes_do_not_see_each_other():
    first, second = BubblewrapSandbox(), BubblewrapSandbox()
    with first, second:
        assert first.zygote_usable() and first.proc.__class__.__name__ == "ZygoteProcess"
        assert second.proc.__class__.__name__ == "ZygoteProcess"
        # the other submission: a file, an abstract socket, a loopback port, a process
        mine = report(first, "import os, socket, subprocess\n"
                             "open('/tmp/other-learner.txt', 'w').write('answer')\n"
                             "s = socket.socket(socket.AF_UNIX); s.bind('\\0learnhub-other'); s.listen()\n"
                             "t = socket.socket(); t.bind(('127.0.0.1', 47011)); t.listen()\n"
                             "p = subprocess.Popen(['sleep', '30'])\n"
                             "out = {'uid': os.getuid(), 'sleep': p.pid}")
        seen = report(second, "import os, socket\n"
                              "out = {'uid': os.getuid(), 'tmp': os.listdir('/tmp'),\n"
                              "       'pids': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}\n"
                              "for name, make, addr in (('abstract', lambda: socket.socket(socket.AF_UNIX), '\\0learnhub-other'),\n"
                              "                         ('loopback', socket.socket, ('127.0.0.1', 47011))):\n"
                              "    try:\n"
                              "        make().connect(addr); out[name] = 'connected'\n"
                              "    except OSError as exc:\n"
                              "        out[name] = type(exc).__name__\n"
                              "comms = []\n"
                              "for p in out['pids']:\n"
                              "    try: comms.append(open(f'/proc/{p}/comm').read().strip())\n"
                              "    except OSError: pass\n"
                              "out['comms'] = comms")
        assert seen["uid"] != mine["uid"] and 0 not in (seen["uid"], mine["uid"])
        assert "other-learner.txt" not in seen["tmp"]
        assert seen["abstract"] != "connected" and seen["loopback"] != "connected"
        # its own pid 1 (the reaper), the runner, the learner's interpreter: nothing of the other sandbox,
        # nothing of the zygote
        assert seen["pids"][:3] == [1, 2, 3] and "sleep" not in seen["comms"], seen
        assert len(seen["pids"]) <= 4, seen


def test_no_capability_no_root_no_grader_pipe():
    with BubblewrapSandbox() as sandbox:
        out = report(sandbox, "import os\n"
                              "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
                              "caps = {k: int(status[k].strip(), 16) for k in ('CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb')}\n"
                              "fds = {}\n"
                              "for fd in os.listdir('/proc/self/fd'):\n"
                              "    try: fds[fd] = os.readlink(f'/proc/self/fd/{fd}')\n"
                              "    except OSError: pass\n"
                              "out = {'caps': caps, 'nnp': status['NoNewPrivs'].strip(), 'uid': os.getuid(),\n"
                              "       'gid': os.getgid(), 'groups': os.getgroups(), 'fds': fds,\n"
                              "       'tmp_dev': os.stat('/tmp').st_dev, 'root_dev': os.stat('/usr').st_dev}")
        assert set(out["caps"].values()) == {0}, out["caps"]
        assert out["nnp"] == "1" and out["uid"] == sandbox.uid and out["gid"] == sandbox.uid and not out["groups"]
        # the learner's interpreter: its two pipes to the runner and stderr; never the runner's pipes to
        # the grader (a fork of the runner closes them)
        pipes = {target for target in out["fds"].values() if target.startswith("pipe:")}
        assert len(pipes) <= 3, out["fds"]
        # a test cell (the runner) sees the same sandbox
        assert "True" in run(sandbox, "import os\nprint(os.getuid() != 0)", kind="test")


@needs_the_zygote
def test_learner_killing_pid_1_and_its_runner():
    """pid 1 of the sandbox ignores the notebook's signals; killing the runner ends the sandbox, and the
    grader says so (``died``) instead of waiting."""
    sandbox = BubblewrapSandbox(cell_timeout=10)
    sandbox.start()
    try:
        out = run(sandbox, "import os, signal\nos.kill(1, signal.SIGKILL)\nprint('alive')")
        assert "alive" in out
        reply = sandbox.execute("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
        assert reply["ename"] == "SandboxStopped" and "died" in sandbox.limit_hits, reply
        assert sandbox.execute("print(1)").get("not_run")
    finally:
        sandbox.close()
    assert sandbox.proc.wait(timeout=5) is not None


def test_without_the_warm_parent():
    with BubblewrapSandbox(zygote=False) as sandbox:
        assert sandbox.proc.__class__.__name__ == "Popen"
        assert run(sandbox, "import os\nprint(os.getuid())").strip() == str(sandbox.uid)


@pytest.mark.parametrize("zygote", [pytest.param(True, marks=needs_the_zygote), False], ids=["warm-parent", "own-bwrap"])
def test_a_sandbox_outlives_the_thread_that_started_it(zygote):
    """bwrap dies with the *thread* that forked it (--die-with-parent is PR_SET_PDEATHSIG): a sandbox, or
    the warm parent with every sandbox it made, started from a worker thread that then returned was
    killed (in CI, a runner that "did not start" with nothing on its stderr). Sandboxes are started
    from a thread that lasts (sandbox/starter.py)."""
    from learnhub.graders.sandbox.bubblewrap import Zygote

    Zygote.close_all()  # the warm parent is made by the thread below, not found from an earlier test
    started = {}

    def start():
        started["sandbox"] = BubblewrapSandbox(zygote=zygote).start()

    worker = threading.Thread(target=start)
    worker.start()
    worker.join()
    sandbox = started["sandbox"]
    # the thread is gone; a signal sent when it ended would have ended the sandbox by now
    with pytest.raises(subprocess.TimeoutExpired):
        sandbox.proc.wait(timeout=1)
    try:
        assert sandbox.running, sandbox.limit_hits
        assert run(sandbox, "print(6 * 7)").strip() == "42"
        with BubblewrapSandbox(zygote=zygote) as another:  # and the warm parent it made still forks
            assert run(another, "print('second')").strip() == "second"
    finally:
        sandbox.close()
