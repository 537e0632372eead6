"""The analytics notebook client: course data as pandas DataFrames, with your own hub token.

In an instructor's JupyterLab::

    from learnhub.analytics import Client
    client = Client()                        # JUPYTERHUB_API_TOKEN and the platform's URL from the server
    events = client.events("intro-python")   # one row per event, result/context fields as columns
    client.learners("intro-python")          # one row per learner: activity, submissions, scores, risk
    client.exercises("intro-python").sort_values("pass_rate").head()

Everything goes over the analytics service's HTTP API, so the permissions are the API's: an
instructor or TA sees their own courses, an admin every course.
"""
from __future__ import annotations

import io
import json
import os
from typing import Any, Iterable

import pandas as pd
import requests

from .event_schemas import Verb


class AnalyticsError(RuntimeError):
    """The analytics service said no (``status``, ``message`` and ``details`` from its JSON error)."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.details = status, message, details or {}


def _default_url() -> str:
    if os.environ.get("LEARNHUB_ANALYTICS_URL"):
        return os.environ["LEARNHUB_ANALYTICS_URL"]
    public = os.environ.get("LEARNHUB_PUBLIC_URL", "http://127.0.0.1:8000")
    return public.rstrip("/") + "/services/analytics"


class Client:
    """A small client of the analytics service.

    ``url``: the service's base URL (default ``$LEARNHUB_ANALYTICS_URL``, else
    ``$LEARNHUB_PUBLIC_URL/services/analytics``); ``token``: a hub API token (default
    ``$JUPYTERHUB_API_TOKEN``, which every single-user server has).
    """

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 60,
                 session: requests.Session | None = None):
        self.url = (url or _default_url()).rstrip("/")
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout
        self.http = session or requests.Session()

    # -- HTTP --------------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"token {self.token}"
        response = self.http.request(method, f"{self.url}/{path.lstrip('/')}", headers=headers,
                                     timeout=self.timeout, **kwargs)
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
            except (ValueError, KeyError, TypeError):
                error = {"message": response.text[:200]}
            raise AnalyticsError(response.status_code, error.get("message", ""), error.get("details"))
        return response

    def _get(self, path: str, **params) -> Any:
        return self._request("GET", path, params=params or None).json()

    # -- raw data ----------------------------------------------------------------------------

    def report(self, course_id: str) -> dict:
        """The course report as the dashboard sees it (a dict)."""
        return self._get(f"api/courses/{course_id}/report")

    def platform(self) -> dict:
        """The platform report (admins)."""
        return self._get("api/platform/report")

    def post_events(self, events: Iterable[dict]) -> dict:
        """Append events (your own, unless you are an admin); returns stored/duplicate counts.
        Invalid events raise :class:`AnalyticsError` with the reasons in ``details["rejected"]``
        (the valid ones of the batch are stored)."""
        return self._request("POST", "api/events", data=json.dumps(list(events)),
                             headers={"Content-Type": "application/json"}).json()

    # -- DataFrames --------------------------------------------------------------------------

    def events(self, course_id: str) -> pd.DataFrame:
        """Every event of the course, oldest first. ``time`` is a UTC timestamp; the common result and
        context fields (``score``, ``max_score``, ``success``, ``duration``, ``error_type``,
        ``assignment_id``) are columns of their own; ``result`` and ``context`` stay as dicts."""
        text = self._request("GET", f"api/courses/{course_id}/export", params={"format": "csv"}).text
        frame = pd.read_csv(io.StringIO(text), dtype={"id": str, "actor": str, "object_id": str,
                                                      "course_id": str, "source": str},
                            keep_default_na=False)
        if frame.empty:
            return frame.assign(time=pd.to_datetime(frame["time"], utc=True))
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
        for column in ("result", "context"):
            frame[column] = [json.loads(v) if v else {} for v in frame[column]]
        for key in ("score", "max_score", "success", "duration", "error_type"):
            frame[key] = [r.get(key) for r in frame["result"]]
        frame["assignment_id"] = [c.get("assignment_id") for c in frame["context"]]
        return frame

    def learners(self, course_id: str) -> pd.DataFrame:
        """One row per learner: events, active days, submissions, mean score, last active, and the
        at-risk score with its reasons where the report ranks the learner."""
        events = self.events(course_id)
        if events.empty:
            return pd.DataFrame(columns=["events", "active_days", "submissions", "mean_score_pct",
                                         "last_active", "risk", "reasons"])
        graded = events[events.verb == Verb.GRADED].copy()
        graded["pct"] = 100 * graded.score.astype(float) / graded.max_score.astype(float)
        table = events.groupby("actor").agg(events=("id", "size"),
                                            active_days=("time", lambda t: t.dt.date.nunique()),
                                            last_active=("time", "max"))
        table["submissions"] = events[events.verb == Verb.SUBMITTED].groupby("actor").size()
        table["mean_score_pct"] = graded.groupby("actor").pct.mean()
        risk = pd.DataFrame(self.report(course_id)["at_risk"])
        if not risk.empty:
            table = table.join(risk.set_index("learner")[["risk", "reasons"]])
        table["submissions"] = table["submissions"].fillna(0).astype(int)
        return table.sort_values("risk", ascending=False) if "risk" in table else table

    def exercises(self, course_id: str) -> pd.DataFrame:
        """One row per exercise: pass rate, attempts, attempts to pass, median time to pass, errors."""
        rows = self.report(course_id)["exercises"]
        frame = pd.json_normalize(rows) if rows else pd.DataFrame(columns=["exercise_id"])
        return frame.set_index("exercise_id")

    def assignments(self, course_id: str) -> pd.DataFrame:
        """One row per assignment: the funnel and the mean score."""
        rows = self.report(course_id)["assignments"]
        frame = pd.json_normalize(rows) if rows else pd.DataFrame(columns=["assignment_id"])
        return frame.set_index("assignment_id")

    def weekly_activity(self, course_id: str) -> pd.DataFrame:
        """Active learners, events and active hours per week."""
        frame = pd.DataFrame(self.report(course_id)["activity"]["weekly"])
        if not frame.empty:
            frame["week"] = pd.to_datetime(frame["week"])
            frame = frame.set_index("week")
        return frame
