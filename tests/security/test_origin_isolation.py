"""Origin isolation in a real browser: with ``subdomain_host`` each learner's server is an origin of its own.

``learnhub up`` with ``LEARNHUB_SUBDOMAIN_HOST=http://localhost:PORT``: the hub and learnhub's services
stay at ``localhost``, ada's server is at ``ada.localhost``, bob's at ``bob.localhost`` — Chromium resolves
every ``*.localhost`` name to loopback, so no DNS is needed. Debian's Chromium, driven by Playwright, signs
ada up, opens her JupyterLab and, from her notebook server's page (where a learner's notebook JavaScript
would run), tries what such code could do on a shared origin: read the hub's API, read another learner's
server. The browser refuses both (cross-origin, no CORS grant), and the hub's login cookie never reaches
her origin. learnhub's services still work: her server's learnhub bridge lists the catalogue through
the services, and a service's own page logs her in through the hub.

SQLite only, like the other browser tests: the platform's database behaviour is tested on both elsewhere.
"""
from __future__ import annotations

import os

import pytest

from hubtools import LearnhubProcess, free_port, start_server
from labtools import LAB_READY, LAB_TIMEOUT_MS, browser, sign_up_and_log_in  # noqa: F401 (browser: a fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.hub]

PASSWORD = "origin-passw0rd-long"


class SubdomainLearnhub(LearnhubProcess):
    """The hub is reached at ``localhost`` (the proxy routes by host name)."""

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"


@pytest.fixture(scope="module")
def subdomain_hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subdomains")
    port = free_port()
    # With the network fence (the default as root): a fenced server calls the platform at localhost too
    # (its loopback ports lead to the host's), so the proxy's host routing sees the platform's own name.
    hub = SubdomainLearnhub(folder / "data", f"sqlite:///{folder / 'learnhub.sqlite'}",
                            f"sqlite:///{folder / 'hub.sqlite'}", port=port, demo=True,
                            extra_env={"LEARNHUB_SUBDOMAIN_HOST": f"http://localhost:{port}"}).start()
    yield hub
    assert hub.stop() == 0, hub.log_tail()


def cross_origin_read(page, url: str) -> str:
    """What a script on the page gets when it reads ``url`` with the browser's cookies."""
    return page.evaluate("""async (url) => {
        try {
            const response = await fetch(url, {credentials: 'include'});
            return 'read ' + response.status + ': ' + (await response.text()).slice(0, 200);
        } catch (error) {
            return 'refused: ' + error.name;
        }
    }""", url)


def test_each_learner_has_an_origin_of_their_own(subdomain_hub, browser):
    hub = subdomain_hub
    port = hub.port
    assert hub.hub_api("POST", "/users/bob").status_code in (201, 409)
    start_server(hub, "bob")

    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    sign_up_and_log_in(page, hub.url, "ada", PASSWORD)
    page.goto(f"{hub.url}/hub/spawn/ada", timeout=LAB_TIMEOUT_MS)
    lab_url = f"http://ada.localhost:{port}/user/ada/lab"
    page.wait_for_url(lab_url + "**", timeout=LAB_TIMEOUT_MS)
    page.wait_for_selector(LAB_READY, timeout=LAB_TIMEOUT_MS)
    assert page.evaluate("location.origin") == f"http://ada.localhost:{port}"
    if os.geteuid() == 0:  # where the fence can be put up, her server is behind it
        assert "fence" in hub.hub_api("GET", "/users/ada").json()["servers"][""]["state"]

    # The hub's login cookie is the hub's alone: the browser never sends it to ada's origin.
    cookies_on_ada = {c["name"] for c in context.cookies(f"http://ada.localhost:{port}/user/ada/")}
    assert "jupyterhub-hub-login" not in cookies_on_ada, cookies_on_ada
    assert "jupyterhub-hub-login" in {c["name"] for c in context.cookies(f"{hub.url}/hub/")}
    assert "jupyterhub-hub-login" not in page.evaluate("document.cookie")

    # Script on ada's origin cannot read the hub's API, nor bob's server, with her browser's credentials.
    assert cross_origin_read(page, f"{hub.url}/hub/api/user").startswith("refused"), "hub API readable"
    assert cross_origin_read(page, f"http://bob.localhost:{port}/user/bob/api/contents").startswith("refused")
    # Her own server answers her (same origin), as JupyterLab's own requests do.
    own = page.evaluate("""async () => {
        const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
        const response = await fetch('/user/ada/learnhub/api/services/courses/courses?limit=5',
                                     {headers: {'X-XSRFToken': xsrf}});
        return [response.status, await response.text()];
    }""")
    # learnhub's bridge reached the courses service through the hub's host: the services still work.
    assert own[0] == 200 and "intro-python" in own[1], own

    # A service's page, on the hub's host, logs her in through the hub (HubOAuth) as before.
    page.goto(f"{hub.url}/services/courses/")
    page.wait_for_selector("#user")
    assert page.inner_text("#user") == "ada"
    assert page.evaluate("location.origin") == hub.url
    context.close()
