"""The dashboards' charts, as Plotly figures built from the report dicts (no I/O here).

Each function takes (part of) a report from :mod:`..reports` and returns a chart: a dict with the
Plotly figure (``{"data": [...], "layout": {...}}``, plain JSON that plotly.js draws in the browser),
its title, a text alternative for screen readers (``summary``), and what the page's script needs to
know about it (``filter``: the traces carry ``meta.assignment`` and follow the assignment filter;
``row_height``: a horizontal bar chart whose height follows its number of rows). A chart is ``None``
when there is nothing to draw yet; the page then says so, and its table is empty.

The figures are plain dicts rather than ``plotly.graph_objects`` so that building a page costs no
validation; the tests validate every figure against Plotly's schema instead.
"""
from __future__ import annotations

from datetime import date, timedelta
from html import escape

#: Okabe & Ito's palette: told apart with every common colour-vision deficiency, and each
#: colour has enough contrast on white for thin lines (the yellow of the palette is left out).
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000"]
AT_RISK_COLOR, NOT_AT_RISK_COLOR = "#D55E00", "#56B4E9"

DAY_MS = 86_400_000
FUNNEL_STAGES = ["enrolled", "fetched", "submitted", "graded", "passed"]
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def label(text) -> str:
    """A value shown as text by Plotly, which reads a few HTML tags (``<b>``, ``<a href>``) in labels:
    escaped, so that a learner's name or an exercise id is shown as written, never as markup."""
    return escape(str(text), quote=False)


def _axis(title: str, **extra) -> dict:
    return {"title": {"text": title}, "automargin": True, "gridcolor": "#e5e5e5", **extra}


def _count_axis(title: str, values, **extra) -> dict:
    """An axis of counts from zero; with small counts, ticks on whole numbers (no "0.5 learners")."""
    top = max([v for v in values if v is not None] + [0])
    if top <= 8:
        extra.setdefault("dtick", 1)
    return _axis(title, rangemode="tozero", **extra)


def _layout(title: str, xaxis: dict, yaxis: dict, **extra) -> dict:
    return {
        # The title at the top left, the legend (and a time axis' buttons) on a line of their own below it.
        "title": {"text": label(title), "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top",
                  "font": {"size": 16}},
        "font": {"family": FONT, "size": 13, "color": "#222"},
        "xaxis": xaxis, "yaxis": yaxis,
        "margin": {"l": 60, "r": 20, "t": 90, "b": 50},
        "height": 320,
        "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
        "hoverlabel": {"font": {"family": FONT}},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "colorway": COLORS,
        **extra,
    }


def _chart(chart_id: str, title: str, data: list[dict], layout: dict, summary: str, *,
           filter_by: str | None = None, row_height: int | None = None) -> dict:
    return {"id": chart_id, "title": title, "figure": {"data": data, "layout": layout}, "summary": summary,
            "filter": filter_by, "row_height": row_height}


def _day(value: str) -> str:
    """``2026-03-02T00:00:00Z`` or ``2026-03-02`` → ``2026-03-02`` (a date axis takes either; a day reads better)."""
    return str(value)[:10]


def _time_axis(days: list[str], unit_days: int, title: str) -> dict:
    """A date x axis to zoom on: drag to zoom, a range slider, and buttons for the last week / month / all.

    With few points Plotly's own range would be a few hours wide around a single day, so the
    starting range shows at least two weeks (a double click gives Plotly's own back).
    """
    first = date.fromisoformat(days[0]) - timedelta(days=unit_days)
    last = date.fromisoformat(days[-1]) + timedelta(days=unit_days)
    if (last - first).days < 14:
        first = last - timedelta(days=14)
    return _axis(title, type="date", range=[first.isoformat(), last.isoformat()],
                 hoverformat="%a %d %b %Y" if unit_days == 1 else "week of %d %b %Y",
                 rangeslider={"visible": True, "thickness": 0.08},
                 rangeselector={"x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom", "buttons": [
                     {"count": 7, "label": "1 week", "step": "day", "stepmode": "backward"},
                     {"count": 1, "label": "1 month", "step": "month", "stepmode": "backward"},
                     {"label": "all", "step": "all"}]})


def _time_series(chart_id: str, title: str, days: list[str], series: dict[str, list], *, unit: str,
                 y_title: str, unit_days: int = 1, kind: str = "lines", x_title: str = "Day") -> dict | None:
    """A time series on a date axis (one trace per entry of ``series``); ``unit`` names what is counted."""
    if not days:
        return None
    data = []
    for index, (name, values) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        trace = {"name": label(name), "x": days, "y": values, "marker": {"color": color},
                 "hovertemplate": f"%{{y}}{' ' + unit if unit else ''}<extra>{label(name)}</extra>"}
        if kind == "bar":
            # Bars side by side within their day (or week), placed explicitly: Plotly's own width for
            # a single bar on a date axis is 1 ms, a hairline, and with one day its grouping stacks
            # the series on top of each other.
            width = unit_days * DAY_MS * 0.8 / len(series)
            trace.update(type="bar", width=width, offset=-unit_days * DAY_MS * 0.4 + index * width)
        else:
            trace.update(type="scatter", mode="lines+markers", line={"color": color, "width": 2})
        data.append(trace)
    layout = _layout(title, _time_axis(days, unit_days, x_title),
                     # Zooming is on time: a drag zooms the x axis only.
                     _count_axis(y_title, [v for values in series.values() for v in values], fixedrange=True),
                     hovermode="x unified", height=380, barmode="group", showlegend=len(series) > 1)
    if len(series) > 1:
        # Below everything: the top right holds the time buttons.
        layout.update(legend={"orientation": "h", "x": 0, "xanchor": "left", "yref": "container", "y": 0,
                              "yanchor": "bottom"}, height=410)
        layout["margin"] = {**layout["margin"], "b": 80}
    peaks = []
    for name, values in series.items():
        top = max(range(len(values)), key=lambda i: values[i] or 0)
        peaks.append(f"{name}: highest {values[top]} on {days[top]}")
    period = "week" if unit_days == 7 else "day"
    summary = (f"{'Bar' if kind == 'bar' else 'Line'} chart, {title}: one value per {period} from {days[0]} to "
               f"{days[-1]} ({len(days)} {period}{'s' if len(days) != 1 else ''}). {'; '.join(peaks)}. "
               "The table below lists every value.")
    return _chart(chart_id, title, data, layout, summary)


# -- course dashboard ------------------------------------------------------------------------------

def assignment_options(report: dict) -> list[str]:
    """The assignments the course dashboard's filter offers: every assignment of the report, in order
    (those with activity, and those only named by an exercise)."""
    names = [a["assignment_id"] for a in report.get("assignments", [])]
    for exercise in report.get("exercises", []):
        if exercise.get("assignment_id") and exercise["assignment_id"] not in names:
            names.append(exercise["assignment_id"])
    return sorted(names)


def weekly_active_learners(report: dict) -> dict | None:
    weekly = report["activity"]["weekly"]
    return _time_series("chart-weekly-active", "Weekly active learners", [_day(w["week"]) for w in weekly],
                        {"active learners": [w["active_learners"] for w in weekly]}, unit="active learners",
                        y_title="Active learners (people)", unit_days=7, x_title="Week (starting Monday)")


def daily_events(report: dict) -> dict | None:
    daily = report["activity"]["daily"]
    return _time_series("chart-daily-events", "Learner events per day", [_day(d["day"]) for d in daily],
                        {"events": [d["events"] for d in daily]}, unit="events", kind="bar",
                        y_title="Events (count)")


def enrollment_over_time(report: dict) -> dict | None:
    weeks = report["enrollment"]["by_week"]
    return _time_series("chart-enrollment", "Learners enrolled", [_day(w["week"]) for w in weeks],
                        {"enrolled": [w["enrolled"] for w in weeks]}, unit="learners enrolled",
                        y_title="Learners enrolled (people, cumulative)", unit_days=7,
                        x_title="Week (starting Monday)")


def _assignment_bars(chart_id: str, title: str, categories: list[str], rows: list[tuple[str, list]],
                     *, x_title: str, y_title: str, unit: str, what: str) -> dict | None:
    """Grouped bars over ``categories``, one trace per assignment (``rows``: (assignment, values))."""
    if not rows:
        return None
    data = [{"type": "bar", "name": label(name), "x": categories, "y": values,
             "marker": {"color": COLORS[index % len(COLORS)]}, "meta": {"assignment": name},
             "hovertemplate": f"{label(name)}<br>%{{x}}: %{{y}} {unit}<extra></extra>"}
            for index, (name, values) in enumerate(rows)]
    layout = _layout(title, _axis(x_title, type="category", fixedrange=True),
                     _count_axis(y_title, [v for _, values in rows for v in values], fixedrange=True),
                     barmode="group", hovermode="closest")
    summary = (f"Bar chart, {title}: {what} for {len(rows)} assignment{'s' if len(rows) != 1 else ''} "
               f"({', '.join(name for name, _ in rows)}). The table below lists every value.")
    return _chart(chart_id, title, data, layout, summary, filter_by="assignment")


def assignment_funnel(report: dict) -> dict | None:
    """Per assignment, how many learners reached each stage: enrolled → fetched → submitted → graded → passed."""
    rows = [(a["assignment_id"], [a["funnel"][stage] for stage in FUNNEL_STAGES]) for a in report["assignments"]]
    return _assignment_bars("chart-funnel", "Assignment funnel", FUNNEL_STAGES, rows,
                            x_title="Stage", y_title="Learners (people)", unit="learners",
                            what="learners at each stage from enrolled to passed")


def score_bin_labels(bins: list[int]) -> list[str]:
    """``[0, 10, ..., 100]`` → ``["0–10", ..., "90–100"]`` (each bin holds its lower bound; the last, 100 too)."""
    return [f"{low}–{high}" for low, high in zip(bins[:-1], bins[1:])]


def score_histogram(report: dict) -> dict | None:
    """Per assignment, how many graded learners scored in each tenth of the maximum (their best grade)."""
    graded = [a for a in report["assignments"] if sum(a["scores"]["counts"])]
    if not graded:
        return None
    rows = [(a["assignment_id"], a["scores"]["counts"]) for a in graded]
    return _assignment_bars("chart-scores", "Score distribution", score_bin_labels(graded[0]["scores"]["bins"]),
                            rows, x_title="Best score (% of the maximum)", y_title="Learners (people)",
                            unit="learners", what="learners per range of best score")


def exercise_pass_rates(report: dict) -> dict | None:
    """Per exercise, the share of learners who attempted it and passed, one trace (colour) per assignment."""
    exercises = [e for e in report["exercises"] if e["pass_rate"] is not None]
    if not exercises:
        return None
    by_assignment: dict[str, list[dict]] = {}
    for exercise in exercises:
        by_assignment.setdefault(exercise["assignment_id"] or "(no assignment)", []).append(exercise)
    data = []
    for index, (name, rows) in enumerate(sorted(by_assignment.items())):
        data.append({
            "type": "bar", "orientation": "h", "name": label(name), "meta": {"assignment": name},
            "y": [label(e["exercise_id"]) for e in rows], "x": [round(100 * e["pass_rate"], 1) for e in rows],
            "customdata": [[e["learners_passed"], e["learners_attempted"]] for e in rows],
            "marker": {"color": COLORS[index % len(COLORS)]},
            # %{x} comes with the axis' "%" suffix.
            "hovertemplate": "%{y}: %{x} passed (%{customdata[0]} of %{customdata[1]} learners)<extra></extra>"})
    layout = _layout("Pass rate per exercise",
                     _axis("Learners who passed (% of those who attempted)", range=[0, 100], ticksuffix="%",
                           fixedrange=True),
                     _axis("Exercise", type="category", autorange="reversed", fixedrange=True),
                     hovermode="closest", height=_rows_height(len(exercises)), bargap=0.25)
    hardest = min(exercises, key=lambda e: e["pass_rate"])
    summary = (f"Horizontal bar chart, Pass rate per exercise: {len(exercises)} exercises; the lowest is "
               f"{hardest['exercise_id']} at {100 * hardest['pass_rate']:.0f}%. The table below lists every value.")
    return _chart("chart-pass-rates", "Pass rate per exercise", data, layout, summary, filter_by="assignment",
                  row_height=ROW_HEIGHT)


ROW_HEIGHT, ROWS_FRAME = 26, 150


def _rows_height(rows: int) -> int:
    """The height of a horizontal bar chart of ``rows`` bars (the script recomputes it when filtering)."""
    return ROWS_FRAME + ROW_HEIGHT * max(rows, 1)


def learners_at_risk(report: dict, limit: int = 20) -> dict | None:
    """The ``limit`` learners most at risk, with their estimated risk of failing or withdrawing."""
    rows = report["at_risk"][:limit]
    if not rows:
        return None
    data = []
    for flag, name, color in ((True, "at risk (50% or more)", AT_RISK_COLOR),
                              (False, "below 50%", NOT_AT_RISK_COLOR)):
        mine = [r for r in rows if r["at_risk"] is flag]
        if mine:
            data.append({"type": "bar", "orientation": "h", "name": name, "marker": {"color": color},
                         "y": [label(r["learner"]) for r in mine], "x": [round(100 * r["risk"], 1) for r in mine],
                         "hovertemplate": "%{y}: %{x} risk<extra></extra>"})  # %{x} has the axis' "%"
    layout = _layout("Learners most at risk",
                     _axis("Estimated risk of failing or withdrawing (%)", range=[0, 100], ticksuffix="%",
                           fixedrange=True),
                     # Most at risk first, whichever trace (colour) a learner is in.
                     _axis("Learner", type="category", autorange="reversed", fixedrange=True,
                           categoryorder="array", categoryarray=[label(r["learner"]) for r in rows]),
                     hovermode="closest", height=_rows_height(len(rows)), bargap=0.25, barmode="overlay")
    flagged = sum(1 for r in rows if r["at_risk"])
    summary = (f"Horizontal bar chart, Learners most at risk: {len(rows)} learners, {flagged} of them at risk "
               f"(50% or more); the highest is {rows[0]['learner']} at {100 * rows[0]['risk']:.0f}%. "
               "The table below lists every learner with the reasons.")
    return _chart("chart-at-risk", "Learners most at risk", data, layout, summary)


def course_charts(report: dict) -> dict:
    """Every chart of the course dashboard, by the name the template places it under."""
    return {"weekly_active": weekly_active_learners(report), "daily_events": daily_events(report),
            "enrollment": enrollment_over_time(report), "funnel": assignment_funnel(report),
            "scores": score_histogram(report), "pass_rates": exercise_pass_rates(report),
            "at_risk": learners_at_risk(report)}


# -- platform dashboard ----------------------------------------------------------------------------

def platform_days(report: dict) -> list[str]:
    """The days on which servers were spawned, work submitted or graded, in order."""
    days = set()
    for key in ("servers_spawned", "submissions", "graded"):
        days.update(report[key]["daily"])
    return sorted(days)


def daily_active_users(report: dict) -> dict | None:
    daily = report["active_users"]["daily"]
    return _time_series("chart-daily-active", "Daily active users", [_day(d["day"]) for d in daily],
                        {"active users": [d["active_users"] for d in daily]}, unit="active users",
                        y_title="Active users (people)")


def platform_load(report: dict) -> dict | None:
    days = platform_days(report)
    series = {name: [report[key]["daily"].get(day, 0) for day in days]
              for name, key in (("servers spawned", "servers_spawned"), ("submissions", "submissions"),
                                ("graded", "graded"))}
    return _time_series("chart-load", "Servers spawned, submissions and gradings per day", days, series,
                        unit="", kind="bar", y_title="Count (per day)")


def busiest_courses(report: dict) -> dict | None:
    rows = report["busiest_courses"]
    if not rows:
        return None
    data = [{"type": "bar", "orientation": "h", "name": "active learners",
             "y": [label(c["course_id"]) for c in rows], "x": [c["active_learners_7d"] for c in rows],
             "marker": {"color": COLORS[0]}, "hovertemplate": "%{y}: %{x} active learners<extra></extra>"}]
    layout = _layout("Active learners per course, last 7 days",
                     _count_axis("Active learners (people)", [c["active_learners_7d"] for c in rows], fixedrange=True),
                     _axis("Course", type="category", autorange="reversed", fixedrange=True),
                     hovermode="closest", height=_rows_height(len(rows)), showlegend=False, bargap=0.25)
    summary = (f"Horizontal bar chart, Active learners per course, last 7 days: {len(rows)} "
               f"course{'s' if len(rows) != 1 else ''}; the "
               f"busiest is {rows[0]['course_id']} with {rows[0]['active_learners_7d']}. The table below lists every value.")
    return _chart("chart-courses", "Active learners per course, last 7 days", data, layout, summary)


LATENCY_KEYS = ("p50", "p90", "p99", "max")


def grading_latency(report: dict) -> dict | None:
    latency = report["grading"].get("latency_seconds") or {}
    if not latency.get("count"):
        return None
    keys = [k for k in LATENCY_KEYS if latency.get(k) is not None]
    data = [{"type": "bar", "name": "latency", "x": keys, "y": [latency[k] for k in keys],
             "marker": {"color": COLORS[2]}, "text": [f"{latency[k]:g} s" for k in keys], "textposition": "auto",
             "hovertemplate": "%{x}: %{y} s<extra></extra>"}]
    layout = _layout(f"Grading latency ({latency['count']} gradings)",
                     _axis("Percentile of gradings (max: the slowest)", type="category", fixedrange=True),
                     _axis("Submission to grade (seconds)", rangemode="tozero", fixedrange=True),
                     showlegend=False, hovermode="closest", height=320)
    summary = (f"Bar chart, Grading latency over {latency['count']} gradings: "
               + ", ".join(f"{k} {latency[k]:g} s" for k in keys) + ". The table below lists the same values.")
    return _chart("chart-latency", "Grading latency", data, layout, summary)


def platform_charts(report: dict) -> dict:
    """Every chart of the platform dashboard, by the name the template places it under."""
    return {"daily_active": daily_active_users(report), "load": platform_load(report),
            "courses": busiest_courses(report), "latency": grading_latency(report)}


def page_data(charts: dict, assignment: str | None = None) -> dict:
    """What the page's script reads from its JSON block: the charts to draw and the filter's state."""
    return {"charts": [chart for chart in charts.values() if chart is not None], "assignment": assignment or ""}

