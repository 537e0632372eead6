"""A learner's kernel meets the server's memory limit: JupyterLab says so, naming the limit (issue 14).

Everything real: ``learnhub up`` as root (the learner's server in its sandbox, in a memory cgroup of
its own with a small limit, behind its network fence), JupyterLab with the learnhub extension as
installed from this checkout, and Debian's Chromium driven by Playwright. The learner runs a memory
bomb in a notebook; the kernel's OOM killer kills the kernel (the server lives), jupyter_server
restarts it, and the learnhub extension, asking the server's ``learnhub/api/limits``, shows a
notification that names the limit. The restarted kernel then computes.

SQLite only, as the other browser tests: what is checked is the browser's side.
"""
from __future__ import annotations

import os

import nbformat
import pytest
import requests

from hubtools import LearnhubProcess, write_services_config
from labtools import LAB_READY, LAB_TIMEOUT_MS, browser, open_lab, run_cell, screenshot, sign_up_and_log_in  # noqa: F401 (browser: a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.hub,
              pytest.mark.skipif(os.geteuid() != 0, reason="the memory cgroup of a learner's server needs root")]

PASSWORD = "e2e-passw0rd-long"
MEM_MIB = 384
#: Grows resident memory 16 MiB at a time (the bytes are written, so the pages are really used) until
#: the kernel kills it at the cgroup's limit; one huge allocation would be refused with MemoryError
#: instead (the overcommit check), which is not what this is about.
BOMB = "chunks = []\nwhile True:\n    chunks.append(b'x' * (16 * 1024 ** 2))"
AFTER = "print(6 * 7)"
RESULT_MS = 120_000


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e-memory")
    data = folder / "data"
    data.mkdir()
    # A small memory limit (and a small home image) for the learner's server; the courses service only.
    write_services_config(data, ["courses"], f"c.SandboxedLocalSpawner.mem_limit = {MEM_MIB * 1024 ** 2}\n"
                                             'c.SandboxedLocalSpawner.disk_limit = "64M"\n'
                                             "c.SandboxedLocalSpawner.require_limits = True\n")
    hub = LearnhubProcess(data, f"sqlite:///{folder / 'learnhub.sqlite'}", f"sqlite:///{folder / 'hub.sqlite'}").start()
    yield hub
    hub.stop()


def put_notebook(hub: LearnhubProcess, user: str, path: str, cells: list[str]) -> None:
    """The notebook, saved into the learner's home through their server's contents API."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    response = requests.put(f"{hub.url}/user/{user}/api/contents/{path}", timeout=60,
                            headers={"Authorization": f"token {hub.user_token(user)}"},
                            json={"type": "notebook", "format": "json", "content": notebook})
    assert response.status_code in (200, 201), response.text


def test_a_kernel_killed_by_the_memory_limit_is_said_so_and_restarts(platform, browser, tmp_path):
    hub = platform
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_up_and_log_in(page, hub.url, "mia", PASSWORD)
    open_lab(page, hub.url, "mia")
    put_notebook(hub, "mia", "bomb.ipynb", [BOMB, AFTER])
    page.goto(f"{hub.url}/user/mia/lab/tree/bomb.ipynb", timeout=LAB_TIMEOUT_MS)
    page.wait_for_selector(LAB_READY, timeout=LAB_TIMEOUT_MS)
    notebook = page.locator(".jp-NotebookPanel:visible")
    notebook.wait_for(timeout=LAB_TIMEOUT_MS)
    cells = notebook.locator(".jp-CodeCell")
    cells.nth(1).wait_for()

    run_cell(page, notebook, cells.nth(0), until=r"\[(\*|\d+)\]")

    # learnhub's message, naming the limit (JupyterLab's notification toast).
    toast = page.locator(".jp-Notification-Toast, .Toastify__toast").filter(has_text="memory limit")
    toast.first.wait_for(timeout=RESULT_MS)
    text = toast.first.inner_text()
    assert f"used more than {MEM_MIB} MiB, this server's memory limit" in text, text
    assert "The kernel of bomb.ipynb was stopped" in text and "restarts" in text, text
    # JupyterLab's own dialog about the restart comes too; the learner closes it.
    restarting = page.locator(".jp-Dialog", has_text="Kernel Restarting")
    restarting.wait_for(timeout=RESULT_MS)
    screenshot(page, "memory-limit", tmp_path)
    restarting.locator(".jp-mod-accept").click()
    restarting.wait_for(state="detached")
    # One kill, one message (however many kernel statuses the death brought).
    assert toast.count() == 1, [toast.nth(i).inner_text() for i in range(toast.count())]
    # What to do, behind the notification's button (its message has 140 characters at most); using
    # the button closes the notification, as JupyterLab does with every notification's action.
    toast.first.get_by_role("button", name="What can I do?").click()
    advice = page.locator(".jp-Dialog", has_text="del large objects")
    advice.wait_for()
    assert f"memory limit of {MEM_MIB} MiB" in advice.inner_text()
    advice.locator(".jp-mod-accept").click()
    advice.wait_for(state="detached")

    # The server lived (this page still talks to it) and the restarted kernel computes.
    run_cell(page, notebook, cells.nth(1), until=r"\[(\*|\d+)\]")
    cells.nth(1).locator(".jp-OutputArea-output", has_text="42").wait_for(timeout=RESULT_MS)
    # No second message came for the same kill (the restarted kernel's statuses looked again).
    toast.first.wait_for(state="detached")
    assert toast.count() == 0, [toast.nth(i).inner_text() for i in range(toast.count())]
    context.close()
