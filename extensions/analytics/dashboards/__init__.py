"""Dashboards: HTML pages with server-rendered SVG charts (no JavaScript, no CDN, nothing to fetch).

Charts are drawn here as inline SVG from report dicts, so the pages work offline, print well and are
readable by screen readers (each chart has a <title> and the numbers are in a table beside it).
"""
from __future__ import annotations

from html import escape
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

TEMPLATES = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))

COLORS = ["#3563c9", "#2a9d8f", "#e9a23b", "#e76f51", "#8e5bd0", "#5b8c2a"]


def _frame(width: int, height: int, title: str, body: str) -> Markup:
    return Markup(f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
                  f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{escape(title)}</title>{body}</svg>')


def _axis_max(values) -> float:
    top = max([v for v in values if v is not None] + [1])
    return float(top)


def bar_chart(labels: list[str], values: list[float], title: str, color: str = COLORS[0],
              width: int = 640, height: int = 220) -> Markup:
    """Vertical bars with the value above each bar."""
    if not values:
        return Markup(f"<p class='empty'>{escape(title)}: no data yet.</p>")
    left, bottom, top = 36, 40, 16
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = _axis_max(values)
    step = plot_w / len(values)
    bar = max(2.0, step * 0.75)
    parts = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{peak:g}</text>']
    every = max(1, len(labels) // 12)
    for i, (label, value) in enumerate(zip(labels, values)):
        h = 0 if not value else plot_h * value / peak
        x = left + i * step + (step - bar) / 2
        parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                     f'fill="{color}"><title>{escape(str(label))}: {value:g}</title></rect>')
        if len(values) <= 24 and value:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h - h - 3:.1f}" text-anchor="middle" '
                         f'font-size="10">{value:g}</text>')
        if i % every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                         f'font-size="10">{escape(str(label))[:12]}</text>')
    return _frame(width, height, title, "".join(parts))


def line_chart(labels: list[str], series: dict[str, list[float]], title: str,
               width: int = 640, height: int = 220) -> Markup:
    """One or more lines over shared x labels, with a legend."""
    if not labels:
        return Markup(f"<p class='empty'>{escape(title)}: no data yet.</p>")
    left, bottom, top = 36, 40, 24
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = _axis_max([v for values in series.values() for v in values])
    step = plot_w / max(1, len(labels) - 1)
    parts = [f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">{peak:g}</text>']
    for k, (name, values) in enumerate(series.items()):
        color = COLORS[k % len(COLORS)]
        points = " ".join(f"{left + i * step:.1f},{top + plot_h - plot_h * (v or 0) / peak:.1f}"
                          for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        for i, v in enumerate(values):
            parts.append(f'<circle cx="{left + i * step:.1f}" cy="{top + plot_h - plot_h * (v or 0) / peak:.1f}" '
                         f'r="2.5" fill="{color}"><title>{escape(str(labels[i]))} {escape(name)}: {v:g}</title></circle>')
        parts.append(f'<rect x="{left + 8 + k * 150}" y="4" width="10" height="10" fill="{color}"/>'
                     f'<text x="{left + 22 + k * 150}" y="13" font-size="11">{escape(name)}</text>')
    every = max(1, len(labels) // 10)
    for i, label in enumerate(labels):
        if i % every == 0:
            parts.append(f'<text x="{left + i * step:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                         f'font-size="10">{escape(str(label))[:10]}</text>')
    return _frame(width, height, title, "".join(parts))


def hbar_chart(labels: list[str], values: list[float], title: str, fmt: str = "{:g}", color: str = COLORS[3],
               width: int = 640, max_value: float | None = None) -> Markup:
    """Horizontal bars, one row per label (exercise difficulty, at-risk learners)."""
    if not values:
        return Markup(f"<p class='empty'>{escape(title)}: no data yet.</p>")
    row, left = 20, 170
    height = row * len(values) + 10
    peak = max_value or _axis_max(values)
    parts = []
    for i, (label, value) in enumerate(zip(labels, values)):
        w = (width - left - 60) * (value or 0) / peak
        y = 5 + i * row
        parts.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end" font-size="11">{escape(str(label))[:26]}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{color}">'
                     f'<title>{escape(str(label))}: {escape(fmt.format(value))}</title></rect>'
                     f'<text x="{left + w + 4:.1f}" y="{y + 13}" font-size="11">{escape(fmt.format(value))}</text>')
    return _frame(width, height, title, "".join(parts))


def render_course(report: dict, user: str) -> str:
    weekly = report["activity"]["weekly"]
    charts = {
        "activity": line_chart([w["week"] for w in weekly],
                               {"active learners": [w["active_learners"] for w in weekly]},
                               "Weekly active learners"),
        "events": bar_chart([w["week"][5:] for w in weekly], [w["events"] for w in weekly], "Events per week",
                            color=COLORS[1]),
        "funnel": [], "scores": [],
        "difficulty": hbar_chart([e["exercise_id"] for e in report["exercises"]],
                                 [round(100 * (e["pass_rate"] or 0), 1) for e in report["exercises"]],
                                 "Pass rate per exercise (%)", fmt="{:g}%", color=COLORS[2], max_value=100),
        "risk": hbar_chart([r["learner"] for r in report["at_risk"][:20]],
                           [round(100 * r["risk"], 1) for r in report["at_risk"][:20]],
                           "Risk of failing or withdrawing (%)", fmt="{:g}%", max_value=100),
    }
    for assignment in report["assignments"]:
        funnel = assignment["funnel"]
        charts["funnel"].append((assignment["assignment_id"], bar_chart(
            list(funnel), list(funnel.values()), f"Funnel of {assignment['assignment_id']}", color=COLORS[4],
            width=420, height=180)))
        scores = assignment["scores"]
        charts["scores"].append((assignment["assignment_id"], bar_chart(
            [f"{b}" for b in scores["bins"][:-1]], scores["counts"], f"Scores of {assignment['assignment_id']} (%)",
            width=420, height=180)))
    return _env.get_template("course.html").render(report=report, user=user, charts=charts)


def render_platform(report: dict, user: str) -> str:
    daily = report["active_users"]["daily"]
    spawned = report["servers_spawned"]["daily"]
    submitted = report["submissions"]["daily"]
    days = sorted(set(spawned) | set(submitted))
    charts = {
        "active": line_chart([d["day"] for d in daily], {"active users": [d["active_users"] for d in daily]},
                             "Daily active users"),
        "load": line_chart(days, {"servers spawned": [spawned.get(d, 0) for d in days],
                                  "submissions": [submitted.get(d, 0) for d in days]},
                           "Servers spawned and submissions per day"),
        "courses": hbar_chart([c["course_id"] for c in report["busiest_courses"]],
                              [c["active_learners_7d"] for c in report["busiest_courses"]],
                              "Active learners per course, last 7 days", color=COLORS[0]),
    }
    return _env.get_template("platform.html").render(report=report, user=user, charts=charts)


def render_forbidden(user: str, course_id: str | None) -> str:
    return _env.get_template("forbidden.html").render(user=user, course_id=course_id)


def render_index(user: str, courses: list[str], platform: bool) -> str:
    """The list of dashboards a person may open (linked from the hub's home page)."""
    return _env.get_template("index.html").render(user=user, courses=courses, platform=platform)
