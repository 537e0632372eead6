"""JupyterLab's load time with and without the learnhub extension, in the same browser run; bundle size.

    python tests/benchmarks/bench_lab_load.py [--rounds 5]

Two Jupyter servers start side by side from the same installation: one as a learner's server runs
(learnhub's server extension on through its config dir, the labextension enabled), one with the
learnhub labextension disabled in its page config and no learnhub server extension. The rounds
alternate between them, each in a fresh browser context (cold cache, as a new login is), so a busy
machine slows both alike. Load time = from navigation until JupyterLab's shell has drawn its main
area and the launcher (``.jp-Launcher``), which only happens after every plugin that JupyterLab
waits for is activated. Reports medians and the ratio with / without (goal: at most 1.10).

Browser: Debian's Chromium (tests/e2e/labtools.py), never a downloaded one.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))

from labtools import launch_browser  # noqa: E402

LAB_EXTENSION = "@learnhub/labextension"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def labextension_dir() -> Path:
    """The built extension JupyterLab serves: <sys.prefix>/share/jupyter/labextensions/<name>."""
    from jupyter_core.paths import jupyter_path

    for root in jupyter_path("labextensions"):
        candidate = Path(root) / LAB_EXTENSION
        if (candidate / "package.json").exists():
            return candidate
    raise SystemExit(f"{LAB_EXTENSION} is not installed: pip install -e . builds and installs it")


def bundle_size(folder: Path) -> dict:
    static = folder / "static"
    files = sorted(static.glob("*.js"), key=lambda p: p.stat().st_size, reverse=True)
    return {"static_bytes": sum(p.stat().st_size for p in static.rglob("*") if p.is_file()),
            "js_files": len(files),
            "largest_chunks": {p.name: p.stat().st_size for p in files[:3]}}


def start_server(root: Path, with_learnhub: bool) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ)
    config = Path(tempfile.mkdtemp(prefix="lab-config-"))
    if with_learnhub:
        from learnhub.extensions.singleuser import config_dir

        env["JUPYTER_CONFIG_PATH"] = config_dir()
    else:
        (config / "labconfig").mkdir()
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {LAB_EXTENSION: True}}))
        env.pop("JUPYTER_CONFIG_PATH", None)
    env["JUPYTER_CONFIG_DIR"] = str(config)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
               f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
               "--ServerApp.disable_check_xsrf=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI machines and containers
        command.append("--allow-root")
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/status", timeout=2).status_code == 200:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"jupyter lab did not start on {url}")


def load_once(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{url}/lab?reset", timeout=120_000)
    page.wait_for_selector(".jp-Launcher", timeout=120_000)
    seconds = time.perf_counter() - started
    context.close()
    return seconds


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    bundle = bundle_size(labextension_dir())
    root = Path(tempfile.mkdtemp(prefix="lab-root-"))
    servers = {"with": start_server(root, True), "without": start_server(root, False)}
    times: dict[str, list[float]] = {"with": [], "without": []}
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            for name, (_, url) in servers.items():
                load_once(browser, url)  # warm the servers' own caches (templates, settings)
            for _ in range(args.rounds):
                for name, (_, url) in servers.items():
                    times[name].append(load_once(browser, url))
            browser.close()
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(30)
    result = {name: {"median_s": round(statistics.median(v), 3), "samples_s": [round(x, 3) for x in v]}
              for name, v in times.items()}
    result["ratio_with_to_without"] = round(result["with"]["median_s"] / result["without"]["median_s"], 3)
    result["bundle"] = bundle
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
