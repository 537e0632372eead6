"""Driving JupyterLab in a real browser: Playwright with Debian's Chromium, never a downloaded one."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

#: Where the browser is: $LEARNHUB_CHROMIUM, else Debian's package (``bootstrap.sh test`` installs it).
CHROMIUM = os.environ.get("LEARNHUB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

#: JupyterLab is ready when its main area and the learnhub side panels' tab bar are drawn.
LAB_READY = "#jp-main-dock-panel"

LAB_TIMEOUT_MS = 180_000


def launch_browser(playwright):
    """Headless Chromium; ``--no-sandbox`` because CI runs as root, where Chromium's own sandbox cannot start."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium is missing at {CHROMIUM}: run ./bootstrap.sh install (it installs Debian's)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-dev-shm-usage"])


def sign_up_and_log_in(page, hub_url: str, username: str, password: str) -> None:
    """The hub's own pages, filled in as a person would."""
    page.goto(f"{hub_url}/hub/signup")
    page.fill("input[name=username]", username)
    page.fill("input[name=signup_password]", password)
    page.fill("input[name=signup_password_confirmation]", password)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_selector("text=The signup was successful")
    log_in(page, hub_url, username, password)


def log_in(page, hub_url: str, username: str, password: str) -> None:
    page.goto(f"{hub_url}/hub/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("#login_submit, input[type=submit], button[type=submit]")
    page.wait_for_url(lambda url: "/hub/login" not in url, timeout=60_000)


def open_lab(page, hub_url: str, username: str) -> None:
    """Start the user's server from the hub (``/hub/spawn``) and wait until JupyterLab is drawn."""
    page.goto(f"{hub_url}/hub/spawn/{username}", timeout=LAB_TIMEOUT_MS)
    page.wait_for_url(f"**/user/{username}/lab**", timeout=LAB_TIMEOUT_MS)
    page.wait_for_selector(LAB_READY, timeout=LAB_TIMEOUT_MS)


def screenshot(page, name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (import this fixture by name into the module)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        yield chromium
        chromium.close()


def run_cell(page, notebook, cell, presses: int = 1, until: str = r"\[\d+\]") -> None:
    """Shift+Enter ``presses`` times from ``cell`` once the notebook's kernel is idle, until its prompt
    matches ``until`` (``[3]``: it ran; ``[*]`` too: it started).

    JupyterLab drops a run asked for while the kernel is still connecting (the cell stays ``[ ]``), so
    wait for the kernel's status to be idle first, and ask once more if nothing ran."""
    notebook.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=LAB_TIMEOUT_MS)
    for _attempt in range(2):
        cell.locator(".jp-InputArea-prompt").click()  # selects the cell, in command mode
        for _ in range(presses):
            page.keyboard.press("Shift+Enter")
        try:
            cell.locator(".jp-InputArea-prompt", has_text=re.compile(until)).wait_for(timeout=30_000)
            return
        except Exception:  # playwright's TimeoutError: not run
            continue
