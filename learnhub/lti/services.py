"""LTI Advantage services, from the tool's side: the OAuth2 client-credentials JWT grant, Names and Role
Provisioning (roster sync), Assignment and Grade Services (line items and the score outbox), and the
signed deep linking response. No web code: the courses service runs these from handlers and loops.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from learnhub.db import session_scope
from learnhub.event_feed import EventFeed
from learnhub.event_schemas import Verb
from learnhub.timeutil import as_utc, iso, utcnow

from . import models as lm
from .engine import DL, LTI, LtiError, course_role, platform_dict
from .keys import ToolKeys

log = logging.getLogger("learnhub.lti.services")

SCOPE_NRPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
SCOPE_LINEITEM = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem"
SCOPE_SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"
NRPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class PlatformUnavailable(Exception):
    """The LMS did not answer, or answered with an error worth retrying (5xx, 429, a refused token)."""


class PlatformClient:
    """Calls to one LMS with access tokens from its token endpoint (client credentials with a JWT client
    assertion signed by the tool's key), cached until shortly before they expire."""

    def __init__(self, keys: ToolKeys, timeout: float = 15.0):
        self.keys = keys
        self.timeout = timeout
        self.http = requests.Session()
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, platform: dict, scopes: list[str]) -> str:
        key = (platform["id"], tuple(sorted(scopes)))
        with self._lock:
            cached = self._tokens.get(key)
            if cached and cached[1] > time.time() + 30:
                return cached[0]
        now = int(time.time())
        assertion = self.keys.sign({"iss": platform["client_id"], "sub": platform["client_id"],
                                    "aud": platform.get("token_audience") or platform["auth_token_url"],
                                    "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex})
        try:
            response = self.http.post(platform["auth_token_url"], timeout=self.timeout, data={
                "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion, "scope": " ".join(scopes)})
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"token endpoint {platform['auth_token_url']}: {exc}") from None
        if response.status_code != 200:
            raise PlatformUnavailable(f"token endpoint {platform['auth_token_url']} answered {answer_text(response)}")
        body = response.json()
        token = body["access_token"]
        with self._lock:
            self._tokens[key] = (token, time.time() + float(body.get("expires_in", 3600)))
        return token

    def request(self, platform: dict, scopes: list[str], method: str, url: str, *, accept: str = "",
                content_type: str = "", json_body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token(platform, scopes)}"}
        if accept:
            headers["Accept"] = accept
        if content_type:
            headers["Content-Type"] = content_type
        import json as _json

        try:
            response = self.http.request(method, url, headers=headers, timeout=self.timeout,
                                         data=_json.dumps(json_body) if json_body is not None else None)
        except requests.RequestException as exc:
            raise PlatformUnavailable(f"{method} {url}: {exc}") from None
        if response.status_code == 401:
            # the LMS may have revoked the token early: forget it, the next attempt gets a new one
            with self._lock:
                self._tokens.pop((platform["id"], tuple(sorted(scopes))), None)
        if response.status_code >= 500 or response.status_code in (401, 429):
            raise PlatformUnavailable(f"{method} {url} answered {answer_text(response)}")
        if response.status_code >= 400:
            raise LtiError(502, f"the LMS refused {method} {url}: {answer_text(response)}")
        return response


def answer_text(response: requests.Response) -> str:
    """An LMS's error answer for an instructor to read (the outbox's ``last_error``): the status, and
    what the LMS said when it is text or JSON; an HTML error page is only markup."""
    said = f"{response.status_code} {response.reason or ''}".strip()
    body = " ".join(response.text.split())
    if body and "html" not in response.headers.get("Content-Type", "") and not body.startswith("<"):
        said += f": {body[:300]}"
    return said


def _context_and_platform(session: Session, context_pk: str) -> tuple[lm.LtiContext, dict]:
    context = session.get(lm.LtiContext, context_pk)
    if context is None:
        raise LtiError(404, f"no LTI context {context_pk}")
    platform = session.get(lm.LtiPlatform, context.platform_id)
    if platform is None:
        raise LtiError(409, "the LMS of this course is no longer registered")
    return context, platform_dict(platform)


def context_dict(row: lm.LtiContext) -> dict:
    return {"id": row.id, "platform_id": row.platform_id, "deployment_id": row.deployment_id,
            "context_id": row.context_id, "title": row.title, "course_id": row.course_id,
            "roster_sync": bool(row.memberships_url), "grade_passback": bool(row.lineitems_url),
            "score_policy": row.score_policy, "last_roster_sync": iso(row.last_roster_sync) if row.last_roster_sync else None}


class RosterSync:
    """Names and Role Provisioning Services: the LMS's member list of a context into the course."""

    def __init__(self, session_factory, client: PlatformClient, extra_roles: dict | None = None,
                 user_name=None):
        self.sessions = session_factory
        self.client = client
        self.extra_roles = extra_roles or {}
        self.user_name = user_name  # (platform dict, member dict) -> learnhub name

    def sync(self, context_pk: str) -> dict:
        """Enroll every active member with their role, mark members the LMS no longer lists (or lists as
        Inactive) ``inactive`` and take their enrollment away (their submissions and grades stay, and so
        does the membership: listed again, they are enrolled again with it). Returns counts and
        ``dropped``, the names whose enrollment went (for the hub groups)."""
        from learnhub.extensions.courses import models as cm
        from learnhub.extensions.courses.catalog import Caller, Enrollments

        with session_scope(self.sessions) as session:
            context, platform = _context_and_platform(session, context_pk)
            url, course_id = context.memberships_url, context.course_id
        if not url:
            raise LtiError(409, "the LMS did not offer its roster service (NRPS) for this course")
        members, page = [], url
        for _ in range(1000):  # bounded: a platform that links its pages in a loop must not hang us
            response = self.client.request(platform, [SCOPE_NRPS], "GET", page, accept=NRPS_TYPE)
            members.extend(response.json().get("members", []))
            page = response.links.get("next", {}).get("url")
            if not page:
                break
        counts = {"enrolled": 0, "updated": 0, "inactive": 0, "unchanged": 0, "skipped": 0}
        seen, dropped = set(), []
        caller = Caller(name="lti", can_manage=True)
        with session_scope(self.sessions) as session:
            context = session.get(lm.LtiContext, context_pk)
            known = {m.sub: m for m in session.scalars(select(lm.LtiMember).where(lm.LtiMember.context_pk == context_pk))}

            def drop(row):
                """The LMS lists them no longer: the membership is kept (inactive), the course access goes
                unless another LMS course linked to this course still lists them. Their work stays."""
                row.status, row.updated_at = "inactive", utcnow()
                counts["inactive"] += 1
                session.flush()
                still_listed = session.scalar(
                    select(lm.LtiMember.sub).join(lm.LtiContext, lm.LtiContext.id == lm.LtiMember.context_pk)
                    .where(lm.LtiContext.course_id == course_id, lm.LtiMember.user_name == row.user_name,
                           lm.LtiMember.status == "active").limit(1))
                if still_listed is None and session.get(cm.Enrollment, (course_id, row.user_name)) is not None:
                    Enrollments(session).unenroll(caller, course_id, row.user_name)
                    dropped.append(row.user_name)
            for member in members:
                sub = str(member.get("user_id") or "")
                role = course_role(member.get("roles", []), self.extra_roles)
                if not sub or role is None:
                    counts["skipped"] += 1
                    continue
                seen.add(sub)
                row = known.get(sub)
                active = member.get("status", "Active") == "Active"
                if not active:
                    if row is not None and row.status != "inactive":
                        drop(row)
                    continue
                name = row.user_name if row is not None else self.user_name(platform, member)
                _enrollment, previous, created = Enrollments(session).enroll(caller, course_id,
                                                                            {"user": name, "role": role})
                if row is None:
                    session.add(lm.LtiMember(context_pk=context_pk, sub=sub, user_name=name, role=role))
                    counts["enrolled" if created else "updated"] += 1
                elif row.status != "active" or row.role != role or previous != role:
                    row.status, row.role, row.updated_at = "active", role, utcnow()
                    counts["updated"] += 1
                else:
                    counts["unchanged"] += 1
            for sub, row in known.items():
                if sub not in seen and row.status != "inactive":
                    drop(row)
            context.last_roster_sync = utcnow()
        return {**counts, "dropped": sorted(dropped)}


class GradePassback:
    """Assignment and Grade Services: line items (one per assignment, never two) and the score outbox.

    ``collect`` reads the event log's ``graded`` events (an :class:`EventFeed`) and writes one outbox row
    per graded submission of a learner who came from an LMS course with grade passback, in the same
    transaction that moves the feed's cursor; ``deliver`` posts due rows, with retries and backoff, and
    marks them ``sent`` (or ``failed`` after ``max_attempts``, for the instructor to see and retry).
    """

    def __init__(self, session_factory, client: PlatformClient, settings, *, feed_name: str = "lti-scores",
                 settle_seconds: float = 1.0):
        self.sessions = session_factory
        self.client = client
        self.settings = settings
        self.feed = EventFeed(session_factory, feed_name, [Verb.GRADED], settle_seconds=settle_seconds,
                              first_run_lookback=timedelta(days=1))
        self._lock = threading.Lock()

    # -- the outbox, in ----------------------------------------------------------------------

    def collect(self) -> int:
        return self.feed.poll(self._collect_one)

    def _collect_one(self, session: Session, event) -> None:
        context = event.context or {}
        assignment = context.get("assignment_id")
        # only graded submissions go to the gradebook: checks and executions are practice
        if not event.course_id or not assignment or context.get("mode", "grade") != "grade":
            return
        links = session.scalars(select(lm.LtiContext).where(lm.LtiContext.course_id == event.course_id,
                                                            lm.LtiContext.lineitems_url != "")).all()
        for link in links:
            # one row per event (and per LMS course, when several are linked to one learnhub course): the
            # feed repeats at most a batch after a crash, and this key keeps each score once
            key = event.id if len(links) == 1 else hashlib.sha256(f"{event.id}|{link.id}".encode()).hexdigest()
            if session.scalar(select(lm.LtiScore.id).where(lm.LtiScore.event_id == key)) is not None:
                continue
            member = session.scalar(select(lm.LtiMember).where(lm.LtiMember.context_pk == link.id,
                                                               lm.LtiMember.user_name == event.actor))
            if member is None:
                continue
            result = event.result or {}
            session.add(lm.LtiScore(event_id=key,
                                    context_pk=link.id, course_id=event.course_id, assignment_id=assignment,
                                    user_name=event.actor, sub=member.sub, score=float(result.get("score") or 0),
                                    max_score=float(result.get("max_score") or 0), graded_at=event.time))

    # -- line items --------------------------------------------------------------------------

    def line_item(self, context_pk: str, assignment_id: str, max_score: float) -> str:
        """The URL of the assignment's line item in the context, created on first need. Before creating,
        the LMS is asked for a line item with this ``resourceId`` (one learnhub made before losing track, or
        one the LMS made from a deep link), so a line item is never made twice."""
        with self._lock:  # one creator in this process; the primary key stops a second process
            with session_scope(self.sessions) as session:
                row = session.get(lm.LtiLineItem, (context_pk, assignment_id))
                if row is not None:
                    return row.url
                context, platform = _context_and_platform(session, context_pk)
                lineitems, course_id = context.lineitems_url, context.course_id
                title = self._assignment_title(session, course_id, assignment_id)
            scopes = [SCOPE_LINEITEM, SCOPE_SCORE]
            found = self.client.request(platform, scopes, "GET", _with_query(lineitems, resource_id=assignment_id),
                                        accept=LINEITEMS_TYPE).json()
            items = [i for i in found if i.get("resourceId") == assignment_id] if isinstance(found, list) else []
            if items:
                url = items[0]["id"]
            else:
                created = self.client.request(platform, scopes, "POST", lineitems, accept=LINEITEM_TYPE,
                                              content_type=LINEITEM_TYPE, json_body={
                                                  "scoreMaximum": max_score or 100, "label": title,
                                                  "resourceId": assignment_id, "tag": "learnhub"}).json()
                url = created["id"]
            with session_scope(self.sessions) as session:
                session.add(lm.LtiLineItem(context_pk=context_pk, assignment_id=assignment_id, url=url,
                                           score_maximum=max_score or 100))
            return url

    @staticmethod
    def _assignment_title(session: Session, course_id: str, assignment_id: str) -> str:
        from learnhub.extensions.courses import models as cm

        row = session.get(cm.Assignment, (course_id, assignment_id))
        return (row.title if row is not None and row.title else assignment_id)[:300]

    # -- the outbox, out ---------------------------------------------------------------------

    def deliver(self, limit: int = 100) -> dict:
        """Post the due scores, oldest first. Returns counts of sent, retried and failed rows."""
        counts = {"sent": 0, "retry": 0, "failed": 0}
        with session_scope(self.sessions) as session:
            due = session.scalars(select(lm.LtiScore.id).where(lm.LtiScore.status == "pending",
                                                               lm.LtiScore.next_attempt_at <= utcnow())
                                  .order_by(lm.LtiScore.graded_at, lm.LtiScore.created_at).limit(limit)).all()
        for score_id in due:
            counts[self._deliver_one(score_id)] += 1
        return counts

    def _deliver_one(self, score_id: str) -> str:
        with session_scope(self.sessions) as session:
            row = session.get(lm.LtiScore, score_id)
            if row is None or row.status != "pending":
                return "sent"
            context, platform = _context_and_platform(session, row.context_pk)
            payload = self._payload(session, row, context.score_policy)
            data = {"context_pk": row.context_pk, "assignment_id": row.assignment_id, "max": row.max_score}
        try:
            url = self.line_item(data["context_pk"], data["assignment_id"], data["max"])
            self.client.request(platform, [SCOPE_SCORE, SCOPE_LINEITEM], "POST", _scores_url(url),
                                content_type=SCORE_TYPE, json_body=payload)
        except (PlatformUnavailable, LtiError, requests.RequestException, KeyError, ValueError) as exc:
            return self._failed(score_id, str(exc))
        with session_scope(self.sessions) as session:
            row = session.get(lm.LtiScore, score_id)
            row.status, row.sent_at, row.posted, row.last_error = "sent", utcnow(), payload, ""
            row.attempts += 1
        return "sent"

    def _failed(self, score_id: str, error: str) -> str:
        with session_scope(self.sessions) as session:
            row = session.get(lm.LtiScore, score_id)
            row.attempts += 1
            row.last_error = error[:2000]
            if row.attempts >= self.settings.score_max_attempts:
                row.status = "failed"
                log.warning("gave up posting score %s to the LMS after %d attempts: %s", score_id, row.attempts, error)
                return "failed"
            wait = min(self.settings.score_retry_seconds * 2 ** (row.attempts - 1), self.settings.score_retry_max_seconds)
            row.next_attempt_at = utcnow() + timedelta(seconds=wait)
            log.info("score %s not delivered (attempt %d, next in %.0f s): %s", score_id, row.attempts, wait, error)
        return "retry"

    @staticmethod
    def _payload(session: Session, row: lm.LtiScore, policy: str) -> dict:
        """The AGS score of a graded submission. With the ``best`` policy, the best of the learner's graded
        submissions to that assignment so far (each graded submission still posts once, so the LMS's
        history shows every one); ``latest``: this submission's own."""
        score, maximum = row.score, row.max_score
        if policy == "best":
            earlier = session.scalars(select(lm.LtiScore).where(
                lm.LtiScore.context_pk == row.context_pk, lm.LtiScore.assignment_id == row.assignment_id,
                lm.LtiScore.user_name == row.user_name, lm.LtiScore.graded_at <= row.graded_at)).all()
            best = max(earlier, key=lambda r: (r.score / r.max_score) if r.max_score else r.score, default=row)
            score, maximum = best.score, best.max_score
        return {"userId": row.sub, "scoreGiven": score, "scoreMaximum": maximum or 0,
                "activityProgress": "Completed", "gradingProgress": "FullyGraded",
                "timestamp": as_utc(row.graded_at).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "comment": ""}

    def retry(self, session: Session, course_id: str, score_id: str | None = None) -> int:
        """Put failed scores of a course (or one) back in the outbox; returns how many."""
        query = select(lm.LtiScore).where(lm.LtiScore.course_id == course_id, lm.LtiScore.status == "failed")
        if score_id:
            query = query.where(lm.LtiScore.id == score_id)
        rows = session.scalars(query).all()
        for row in rows:
            row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
        return len(rows)


def score_dict(row: lm.LtiScore) -> dict:
    return {"id": row.id, "course_id": row.course_id, "assignment_id": row.assignment_id, "user": row.user_name,
            "score": row.score, "max_score": row.max_score, "status": row.status, "attempts": row.attempts,
            "last_error": row.last_error, "graded_at": iso(row.graded_at),
            "next_attempt_at": iso(row.next_attempt_at) if row.status == "pending" else None,
            "sent_at": iso(row.sent_at) if row.sent_at else None, "posted": row.posted}


def _with_query(url: str, **params) -> str:
    from urllib.parse import urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = "&".join(p for p in (parts.query, urlencode(params)) if p)
    return urlunsplit(parts._replace(query=query))


def _scores_url(line_item: str) -> str:
    """``<line item>/scores``, keeping a query string where it is (Moodle's line item URLs have one)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(line_item)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/scores"))


def deep_linking_response(keys: ToolKeys, request: dict, items: list[dict]) -> str:
    """The signed ``LtiDeepLinkingResponse`` JWT for the LMS's ``deep_link_return_url`` (``request``: what
    :meth:`LaunchEngine.apply_launch` kept of the deep linking request)."""
    now = int(time.time())
    claims = {"iss": request["client_id"], "aud": [request["issuer"]], "iat": now, "exp": now + 600,
              "nonce": uuid.uuid4().hex, LTI + "message_type": "LtiDeepLinkingResponse", LTI + "version": "1.3.0",
              LTI + "deployment_id": request["deployment_id"], DL + "content_items": items}
    if request.get("data") is not None:
        claims[DL + "data"] = request["data"]
    return keys.sign(claims)


def assignment_item(launch_url: str, course_id: str, assignment_id: str, title: str, max_score: float | None) -> dict:
    """A deep linking content item for one assignment: a resource link back to learnhub's launch URL whose
    custom parameters name the assignment, with a line item so the LMS gradebook has its column."""
    item = {"type": "ltiResourceLink", "title": title or assignment_id, "url": launch_url,
            "custom": {"learnhub_course": course_id, "learnhub_assignment": assignment_id}}
    if max_score:
        item["lineItem"] = {"scoreMaximum": max_score, "label": title or assignment_id, "resourceId": assignment_id,
                            "tag": "learnhub"}
    return item
