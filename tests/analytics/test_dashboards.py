"""The dashboards: the Plotly figures built from report dicts (titles, labelled axes, hover, a date axis
to zoom, the assignment filter), the pages (no script from another site, no inline script, a table and a
text alternative for every chart), and the analytics service serving plotly.js itself.

The reports are real: synthetic course activity appended through the event log and reported by
:mod:`reports`, on SQLite (what is tested here does not depend on the database). The service is
tested in-process, with the hub's token check replaced by a table of users as in
test_analytics_service.py; test_hub.py and tests/e2e/test_dashboards_e2e.py cover the real hub and browser.
"""
from __future__ import annotations

import gzip
import json
import re
from datetime import date, datetime, timezone
from html.parser import HTMLParser

import plotly.graph_objects as go
import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from learnhub import db as lhdb
from learnhub.events import EventLog, Verb, make_event
from learnhub.extensions.analytics import AnalyticsService, reports, synthetic
from learnhub.extensions.analytics.dashboards import (
    CONTENT_SECURITY_POLICY, asset_path, asset_version, charts, render_course, render_platform,
)
from learnhub.extensions.analytics.risk import AtRiskClassifier

PREFIX = "/services/analytics/"
TIME_SERIES = {"weekly_active", "daily_events", "enrollment", "daily_active", "load"}
#: Which table holds the numbers of which chart.
TABLES = {"chart-weekly-active": "table-weekly", "chart-daily-events": "table-daily",
          "chart-enrollment": "table-enrollment", "chart-funnel": "table-funnel", "chart-scores": "table-scores",
          "chart-pass-rates": "table-exercises", "chart-at-risk": "table-at-risk",
          "chart-daily-active": "table-daily-active", "chart-load": "table-load", "chart-courses": "table-courses",
          "chart-latency": "table-latency"}


def tiny_model() -> AtRiskClassifier:
    return AtRiskClassifier().fit([[0, 0, 3, 60, 3], [1, 90, 0, 1, 3], [0.3, 40, 2, 30, 3], [1, 80, 0, 2, 3]],
                                  [1, 0, 1, 0])


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """A course report and a platform report of 30 synthetic learners, 3 assignments of 4 exercises."""
    url = f"sqlite:///{tmp_path_factory.mktemp('dashboards') / 'learnhub.sqlite'}"
    lhdb.upgrade(url)
    engine = lhdb.make_engine(url)
    factory = lhdb.make_session_factory(engine)
    with lhdb.session_scope(factory) as session:
        EventLog().append(session, list(synthetic.course_events("c1", learners=30, assignments=3,
                                                                exercises_per_assignment=4, days=60)))
    with lhdb.session_scope(factory) as session:
        course = reports.course_report(session, "c1", tiny_model())
        platform = reports.platform_report(session, now=datetime(2026, 2, 20, tzinfo=timezone.utc))
    engine.dispose()
    # What the service sends to the page went through JSON: test the same.
    return json.loads(json.dumps({"course": course, "platform": platform}, default=str))


def all_charts(reported) -> dict:
    return {**charts.course_charts(reported["course"]), **charts.platform_charts(reported["platform"])}


def value_axis(figure: dict) -> str:
    """The axis that carries the numbers: x for horizontal bars, else y."""
    return "xaxis" if figure["data"][0].get("orientation") == "h" else "yaxis"


# -- the figures ------------------------------------------------------------------------------------

def test_every_chart_is_valid_plotly_with_a_title_labelled_axes_and_units(reported):
    drawn = all_charts(reported)
    assert None not in drawn.values(), [name for name, chart in drawn.items() if chart is None]
    assert len({chart["id"] for chart in drawn.values()}) == len(drawn)
    for name, chart in drawn.items():
        figure = chart["figure"]
        go.Figure(figure)  # raises on any attribute plotly.js does not know
        layout = figure["layout"]
        assert layout["title"]["text"].strip(), name
        assert layout["xaxis"]["title"]["text"].strip() and layout["yaxis"]["title"]["text"].strip(), name
        # The axis with the numbers says what they count: "Learners (people)", "… (seconds)", "… (%)".
        assert re.search(r"\(.+\)", layout[value_axis(figure)]["title"]["text"]), (name, layout[value_axis(figure)])
        assert figure["data"] and all(trace.get("hovertemplate") for trace in figure["data"]), name
        assert chart["summary"].startswith(("Line chart", "Bar chart", "Horizontal bar chart")), name
        assert chart["title"] in chart["summary"] or chart["title"].lower() in chart["summary"].lower(), name


def test_colours_are_the_colour_blind_safe_palette(reported):
    for name, chart in all_charts(reported).items():
        for trace in chart["figure"]["data"]:
            assert trace["marker"]["color"] in charts.COLORS + [charts.AT_RISK_COLOR, charts.NOT_AT_RISK_COLOR], name


def test_time_series_have_a_date_axis_to_zoom_on_time(reported):
    drawn = all_charts(reported)
    for name in TIME_SERIES:
        layout = drawn[name]["figure"]["layout"]
        assert layout["xaxis"]["type"] == "date" and layout["xaxis"]["rangeslider"]["visible"], name
        assert layout["yaxis"]["fixedrange"] is True, name  # a drag zooms on time, not on counts
        first, last = (date.fromisoformat(day) for day in layout["xaxis"]["range"])
        for trace in drawn[name]["figure"]["data"]:
            days = [date.fromisoformat(day) for day in trace["x"]]
            assert days == sorted(days) and first < days[0] and days[-1] < last, name
    daily = drawn["daily_events"]["figure"]["data"][0]
    assert daily["y"] == [d["events"] for d in reported["course"]["activity"]["daily"]]


def test_a_single_day_still_gets_a_readable_time_axis():
    report = {"active_users": {"daily": [{"day": "2026-03-02T00:00:00Z", "active_users": 3}]}}
    layout = charts.daily_active_users(report)["figure"]["layout"]
    first, last = (date.fromisoformat(day) for day in layout["xaxis"]["range"])
    assert (last - first).days >= 14 and first < date(2026, 3, 2) < last


def test_the_filter_offers_the_courses_assignments_and_the_charts_follow_it(reported):
    course = reported["course"]
    assert charts.assignment_options(course) == ["a01", "a02", "a03"]
    drawn = charts.course_charts(course)
    filtered = {name for name, chart in drawn.items() if chart["filter"]}
    assert filtered == {"funnel", "scores", "pass_rates"}
    for name in filtered:
        traces = drawn[name]["figure"]["data"]
        assert [trace["meta"]["assignment"] for trace in traces] == ["a01", "a02", "a03"], name
    a02 = next(t for t in drawn["pass_rates"]["figure"]["data"] if t["meta"]["assignment"] == "a02")
    assert a02["y"] == [e["exercise_id"] for e in course["exercises"] if e["assignment_id"] == "a02"]
    assert a02["x"] == [round(100 * e["pass_rate"], 1) for e in course["exercises"] if e["assignment_id"] == "a02"]
    funnel = next(t for t in drawn["funnel"]["figure"]["data"] if t["meta"]["assignment"] == "a01")
    a01 = next(a for a in course["assignments"] if a["assignment_id"] == "a01")
    assert funnel["x"] == charts.FUNNEL_STAGES and funnel["y"] == [a01["funnel"][s] for s in charts.FUNNEL_STAGES]


def test_an_assignment_named_only_by_its_exercises_is_offered_too():
    report = {"assignments": [{"assignment_id": "a1"}],
              "exercises": [{"exercise_id": "a2/x", "assignment_id": "a2"}, {"exercise_id": "y", "assignment_id": None}]}
    assert charts.assignment_options(report) == ["a1", "a2"]


def test_names_are_shown_as_written_never_as_markup():
    report = {"at_risk": [{"learner": "<b>eve</b>", "risk": 0.7, "at_risk": True}]}
    [trace] = charts.learners_at_risk(report)["figure"]["data"]
    assert trace["y"] == ["&lt;b&gt;eve&lt;/b&gt;"]  # plotly.js shows the entity as the character


def test_a_course_without_activity_draws_no_empty_chart():
    empty = {"course_id": "new", "as_of": None, "learners": 0,
             "enrollment": {"enrolled": 0, "unenrolled": 0, "by_week": []},
             "activity": {"weekly": [], "daily": []}, "assignments": [], "exercises": [], "at_risk": [],
             "at_risk_model": None}
    assert set(charts.course_charts(empty).values()) == {None}
    page = render_course(empty, "ivy", PREFIX)
    assert 'class="plot"' not in page and "no activity yet" in page
    assert Page(page).data == {"charts": [], "assignment": ""}


# -- the pages ----------------------------------------------------------------------------------------

class Page(HTMLParser):
    """What a page holds: its scripts, elements by id (with their attributes and position), hidden rows."""

    def __init__(self, html: str):
        super().__init__()
        self.scripts, self.ids, self.order, self.hidden_rows, self.shown_rows = [], {}, [], [], []
        self._in_script, self._script_text = None, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids[attrs["id"]] = attrs
            self.order.append(attrs["id"])
        if tag == "tr" and "data-assignment" in attrs:
            (self.hidden_rows if "hidden" in attrs else self.shown_rows).append(attrs["data-assignment"])
        if tag == "script":
            self._in_script, self._script_text = attrs, []

    def handle_data(self, data):
        if self._in_script is not None:
            self._script_text.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._in_script is not None:
            self.scripts.append((self._in_script, "".join(self._script_text)))
            self._in_script = None

    @property
    def data(self) -> dict:
        [block] = [text for attrs, text in self.scripts if attrs.get("type") == "application/json"]
        return json.loads(block)


def pages(reported) -> dict:
    return {"course": render_course(reported["course"], "ivy", PREFIX),
            "platform": render_platform(reported["platform"], "admin", PREFIX)}


def test_pages_load_scripts_only_from_the_service_and_run_no_inline_script(reported):
    for name, html in pages(reported).items():
        page = Page(html)
        sources = [attrs["src"] for attrs, _ in page.scripts if "src" in attrs]
        assert sources == [f"{PREFIX}static/plotly.min.js?v={asset_version('plotly.min.js')}",
                           f"{PREFIX}static/dashboards.js?v={asset_version('dashboards.js')}"], name
        assert not any("cdn" in src.lower() or "://" in src for src in sources), sources
        assert "https://" not in html and "cdn." not in html.lower(), name
        for attrs, text in page.scripts:
            # A script either comes from the service or is data, which browsers never run.
            assert ("src" in attrs and not text.strip()) or attrs.get("type") == "application/json", (name, attrs)


def test_every_chart_has_a_text_alternative_and_a_table_after_it(reported):
    for name, html in pages(reported).items():
        page = Page(html)
        drawn = page.data["charts"]
        assert drawn, name
        for chart in drawn:
            div = page.ids[chart["id"]]
            assert div["role"] == "img" and div["aria-label"] == chart["summary"], chart["id"]
            table = TABLES[chart["id"]]
            assert table in page.ids and page.order.index(table) > page.order.index(chart["id"]), chart["id"]
        assert "the chart needs JavaScript; its numbers are in the table below" in html


def test_the_page_data_is_the_charts_built_from_the_report(reported):
    page = Page(pages(reported)["course"])
    expected = charts.page_data(charts.course_charts(reported["course"]))
    assert page.data == json.loads(json.dumps(expected))
    options = [attrs for key, attrs in page.ids.items() if key == "assignment-filter"]
    assert options and "<option value=\"a02\"" in pages(reported)["course"]


def test_the_filter_works_as_a_form_without_javascript(reported):
    html = render_course(reported["course"], "ivy", PREFIX, assignment="a02")
    page = Page(html)
    assert page.data["assignment"] == "a02"
    assert '<option value="a02" selected>' in html and "Showing assignment a02 only." in html
    assert set(page.shown_rows) == {"a02"} and {"a01", "a03"} <= set(page.hidden_rows)
    # An assignment the course does not have shows everything.
    unknown = Page(render_course(reported["course"], "ivy", PREFIX, assignment="zz"))
    assert unknown.data["assignment"] == "" and not unknown.hidden_rows


def test_a_hostile_name_cannot_end_the_data_block():
    report = {"course_id": "c1", "as_of": None, "learners": 1,
              "enrollment": {"enrolled": 1, "unenrolled": 0, "by_week": []}, "activity": {"weekly": [], "daily": []},
              "assignments": [], "exercises": [],
              "at_risk": [{"learner": "</script><script>alert(1)</script>", "risk": 0.9, "at_risk": True,
                           "reasons": [], "last_active": None, "features": {}}], "at_risk_model": None}
    page = Page(render_course(report, "ivy", PREFIX))
    assert len(page.scripts) == 3  # plotly.js, dashboards.js, the data: nothing injected
    assert page.data["charts"][0]["figure"]["data"][0]["y"] == ["&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"]


# -- the service --------------------------------------------------------------------------------------

ACCESS = "access:services!service=analytics"
USERS = {
    "learner": {"kind": "user", "name": "lena", "admin": False, "groups": ["course-c1-learners"], "scopes": [ACCESS]},
    "instructor": {"kind": "user", "name": "ines", "admin": False, "groups": ["course-c1-instructors"],
                   "scopes": [ACCESS]},
    "ta": {"kind": "user", "name": "tom", "admin": False, "groups": ["course-c1-tas"], "scopes": [ACCESS]},
    "other": {"kind": "user", "name": "otto", "admin": False, "groups": ["course-c2-instructors"], "scopes": [ACCESS]},
    "admin": {"kind": "user", "name": "root", "admin": True, "groups": [], "scopes": [ACCESS]},
}


@pytest.fixture
async def service(db_url):
    app = AnalyticsService(db_url=db_url, api_token="unused", hub_api_url="http://127.0.0.1:9/hub/api",
                           risk_model_enabled=False)
    app.initialize([])

    def fake_get_user(handler, sync=True):
        # The dashboards ask synchronously (tornado's get_current_user), the API asynchronously.
        token = handler.request.headers.get("Authorization", "").removeprefix("token ")
        model = dict(USERS[token]) if token in USERS else None
        if model:
            handler._token_authenticated = True
        if sync:
            return model

        async def later():
            return model
        return later()

    app.hub_auth.get_user = fake_get_user
    with lhdb.session_scope(app.session_factory) as session:
        outcome = EventLog().append(session, [
            make_event("lena", Verb.ENROLLED, "course", "c1", course_id="c1", result={"role": "learner"}),
            make_event("lena", Verb.FETCHED, "assignment", "a1", course_id="c1", context={"assignment_id": "a1"}),
            make_event("lena", Verb.GRADED, "assignment", "a1", course_id="c1", context={"assignment_id": "a1"},
                       result={"score": 3, "max_score": 4})])
    assert outcome.rejected == []  # the pages below are drawn from these
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app.make_app())
    server.add_sockets(sockets)
    base = f"http://127.0.0.1:{sockets[0].getsockname()[1]}{PREFIX.rstrip('/')}"

    async def get(path, who=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if who:
            headers["Authorization"] = f"token {who}"
        return await AsyncHTTPClient().fetch(base + path, headers=headers, raise_error=False,
                                             follow_redirects=False, **kwargs)

    yield get
    server.stop()
    app.engine.dispose()


async def test_the_service_serves_plotly_js_itself_with_caching_headers(service):
    version = asset_version("plotly.min.js")
    response = await service(f"/static/plotly.min.js?v={version}")  # no login: the file holds no data
    assert response.code == 200
    assert response.body == asset_path("plotly.min.js").read_bytes()
    assert b"plotly.js v" in response.body[:200]
    assert "javascript" in response.headers["Content-Type"]
    assert "immutable" in response.headers["Cache-Control"] and "max-age=" in response.headers["Cache-Control"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Sent compressed to a browser that says it takes gzip (4.8 MB → well under half).
    raw = await service(f"/static/plotly.min.js?v={version}", headers={"Accept-Encoding": "gzip"},
                        decompress_response=False)
    assert raw.headers["Content-Encoding"] == "gzip" and len(raw.body) < len(response.body) / 2
    assert gzip.decompress(raw.body) == response.body
    # Without a version, browsers revalidate with the ETag instead of caching for good.
    plain = await service("/static/dashboards.js")
    assert plain.code == 200 and "immutable" not in plain.headers.get("Cache-Control", "")
    again = await service("/static/dashboards.js", headers={"If-None-Match": plain.headers["Etag"]})
    assert again.code == 304


async def test_only_the_dashboards_assets_are_served(service):
    for path in ("/static/nothing.js", "/static/__init__.py", "/static/..%2F__init__.py", "/static/course.html"):
        response = await service(path)
        assert response.code == 404, path
        assert json.loads(response.body)["error"]["status"] == 404


async def test_dashboards_keep_their_permissions_and_send_a_strict_script_policy(service):
    for who, code in (("instructor", 200), ("ta", 200), ("admin", 200), ("learner", 403), ("other", 403)):
        response = await service("/courses/c1/dashboard", who)
        assert response.code == code, who
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    for who, code in (("admin", 200), ("instructor", 403), ("learner", 403)):
        assert (await service("/platform/dashboard", who)).code == code, who
    anonymous = await service("/courses/c1/dashboard")
    assert anonymous.code == 302  # to the hub's login
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'"  # no inline script, no other site
    page = await service("/courses/c1/dashboard?assignment=a1", "instructor")
    parsed = Page(page.body.decode())
    assert parsed.data["assignment"] == "a1" and [c["id"] for c in parsed.data["charts"]][:1] == ["chart-weekly-active"]
    for attrs, _ in parsed.scripts:  # what the page loads is there
        if "src" in attrs:
            assert (await service(attrs["src"].removeprefix(PREFIX.rstrip("/")))).code == 200, attrs["src"]


def test_bars_of_several_series_stand_side_by_side_within_their_day():
    """Placed explicitly: with a single day Plotly's grouping would draw the series over each other."""
    report = {key: {"daily": {"2026-03-02": n}} for key, n in
              (("servers_spawned", 2), ("submissions", 4), ("graded", 4))}
    traces = charts.platform_load(report)["figure"]["data"]
    spans = sorted((t["offset"], t["offset"] + t["width"]) for t in traces)
    assert len(spans) == 3 and spans[0][0] >= -charts.DAY_MS / 2 and spans[-1][1] <= charts.DAY_MS / 2
    assert all(left[1] <= right[0] + 1e-6 for left, right in zip(spans, spans[1:]))
    assert [t["y"] for t in traces] == [[2], [4], [4]]
