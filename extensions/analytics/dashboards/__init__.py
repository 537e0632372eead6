"""Dashboards: HTML pages whose charts plotly.js draws in the browser, from data built in :mod:`.charts`.

Nothing is fetched from another site: the analytics service serves plotly.js itself, from the
``plotly`` Python package it depends on, and the page's own script (``static/dashboards.js``) under
its prefix (:data:`ASSETS`, :class:`..handlers.AssetHandler`). The page carries no inline script, so
its Content-Security-Policy allows scripts from the service only; the charts' data travels in a JSON
block (``<script type="application/json">``, which browsers never run). Every chart has a text
alternative and a table with its numbers, so the page still says everything without JavaScript.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..reports import SCORE_BINS
from . import charts as chart_data

TEMPLATES = Path(__file__).parent
STATIC = TEMPLATES / "static"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


#: The files the service serves under ``static/``, by name: nothing else is reachable there.
ASSETS = {
    "plotly.min.js": _plotly_js,
    "dashboards.js": lambda: STATIC / "dashboards.js",
}

#: Scripts from the service itself only (no inline script, no other site); styles inline too, since
#: plotly.js sets style attributes as it draws; images from data: URLs (plotly's "download as PNG").
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'self'")


def asset_path(name: str) -> Path | None:
    """Where the asset ``name`` is on disk, or None for a name the service does not serve."""
    find = ASSETS.get(name)
    return find() if find else None


@lru_cache(maxsize=None)
def asset_version(name: str) -> str:
    """A hash of the asset's content: its URL changes when the file does, so browsers may cache it for good."""
    return hashlib.sha256(asset_path(name).read_bytes()).hexdigest()[:16]


def asset_url(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/static/{name}?v={asset_version(name)}"


def _page(template: str, prefix: str, **context) -> str:
    scripts = [asset_url(prefix, "plotly.min.js"), asset_url(prefix, "dashboards.js")]
    return _env.get_template(template).render(scripts=scripts, **context)


def render_course(report: dict, user: str, prefix: str = "/services/analytics/", assignment: str = "") -> str:
    """The course dashboard; ``assignment`` (the filter's choice, from ``?assignment=``) restricts the
    per-assignment and per-exercise charts and tables to one assignment (also without JavaScript: the
    filter is a form, and the other assignments' rows are rendered hidden)."""
    options = chart_data.assignment_options(report)
    if assignment not in options:
        assignment = ""
    charts = chart_data.course_charts(report)
    return _page("course.html", prefix, report=report, user=user, charts=charts, options=options,
                 assignment=assignment, page_data=chart_data.page_data(charts, assignment),
                 score_bins=chart_data.score_bin_labels(SCORE_BINS))


def render_platform(report: dict, user: str, prefix: str = "/services/analytics/") -> str:
    charts = chart_data.platform_charts(report)
    return _page("platform.html", prefix, report=report, user=user, charts=charts, days=chart_data.platform_days(report),
                 page_data=chart_data.page_data(charts))


def render_forbidden(user: str, course_id: str | None) -> str:
    return _env.get_template("forbidden.html").render(user=user, course_id=course_id, scripts=[])


def render_index(user: str, courses: list[str], platform: bool) -> str:
    """The list of dashboards a person may open (linked from the hub's home page)."""
    return _env.get_template("index.html").render(user=user, courses=courses, platform=platform, scripts=[])
