"""The LTI 1.3 launch: platforms, OIDC login initiation, id_token checks, course linking and enrollment.

Nothing here knows of the web: the hub's handlers (:mod:`learnhub.lti.auth`) pass request parameters in
and get URLs, claims and results back; errors are :class:`LtiError` with a status and a message for the
person who launched (or the LMS admin who configured the placement).
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlparse

import jwt
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from learnhub.db import session_scope
from learnhub.timeutil import as_utc, utcnow

from . import models as lm
from .keys import ToolKeys

log = logging.getLogger("learnhub.lti")

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
RESOURCE_LINK = "LtiResourceLinkRequest"
DEEP_LINKING = "LtiDeepLinkingRequest"

#: LTI role names (after ``#`` or the last path segment of the role URI) and the course role they give.
BASE_ROLES = {"Learner": "learner", "Student": "learner", "TeachingAssistant": "ta",
              "Instructor": "instructor", "Administrator": "instructor", "Faculty": "instructor"}
ROLE_RANK = {"learner": 0, "ta": 1, "instructor": 2}
PLATFORM_FIELDS = {"issuer", "client_id", "name", "auth_login_url", "auth_token_url", "jwks_url",
                   "token_audience", "deployment_ids", "username_prefix"}
_NAME_BAD = re.compile(r"[^a-z0-9._@-]+")


class LtiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def course_role(roles: list[str], extra: dict[str, str] | None = None) -> str | None:
    """The learnhub course role of an LTI roles claim (or NRPS member's roles): TeachingAssistant wins over
    Instructor (a TA is sent as the sub-role ``membership/Instructor#TeachingAssistant``, often beside
    ``membership#Instructor``), then Instructor over Learner. None: no role learnhub knows."""
    known = {**BASE_ROLES, **(extra or {})}
    found = set()
    for uri in roles or []:
        if not isinstance(uri, str):
            continue
        name = uri.rsplit("#", 1)[-1] if "#" in uri else uri.rstrip("/").rsplit("/", 1)[-1]
        if name in known:
            found.add(known[name])
        # system and institution roles (…/system/person#Administrator) do not make course staff
        if "/system/" in uri or "/institution/" in uri:
            found.discard(known.get(name))
    if "ta" in found:
        return "ta"
    return max(found, key=ROLE_RANK.get) if found else None


def _check_url(value: Any, field_name: str) -> str:
    if not isinstance(value, str) or urlparse(value).scheme not in ("http", "https") or not urlparse(value).netloc:
        raise LtiError(422, f"{field_name} must be an http(s) URL")
    return value


def validate_platform(data: Any) -> dict:
    """A platform registration as the config or the admin API gives it, checked."""
    if not isinstance(data, dict):
        raise LtiError(422, "a platform is a JSON object")
    unknown = set(data) - PLATFORM_FIELDS
    if unknown:
        raise LtiError(422, f"unknown platform field(s): {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(sorted(PLATFORM_FIELDS))}")
    out = {}
    for key in ("issuer", "client_id"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise LtiError(422, f"{key} is required (a string)")
        out[key] = data[key].strip()
    for key in ("auth_login_url", "auth_token_url", "jwks_url"):
        out[key] = _check_url(data.get(key), key)
    if data.get("token_audience"):
        out["token_audience"] = str(data["token_audience"])
    deployments = data.get("deployment_ids", [])
    if not isinstance(deployments, list) or not deployments or not all(isinstance(d, str) and d for d in deployments):
        raise LtiError(422, "deployment_ids must be a non-empty list of the LMS's deployment ids of this tool")
    out["deployment_ids"] = list(dict.fromkeys(deployments))
    out["name"] = str(data.get("name") or urlparse(out["issuer"]).netloc or out["issuer"])[:255]
    prefix = data.get("username_prefix", "")
    if not isinstance(prefix, str) or (prefix and _NAME_BAD.sub("", prefix.lower()) != prefix):
        raise LtiError(422, "username_prefix may hold only a-z 0-9 . _ @ -")
    out["username_prefix"] = prefix
    return out


def platform_dict(row: lm.LtiPlatform) -> dict:
    return {"id": row.id, "issuer": row.issuer, "client_id": row.client_id, "name": row.name,
            "auth_login_url": row.auth_login_url, "auth_token_url": row.auth_token_url, "jwks_url": row.jwks_url,
            "token_audience": row.token_audience, "deployment_ids": list(row.deployment_ids or []),
            "username_prefix": row.username_prefix, "source": row.source}


@dataclass
class Launch:
    """A checked launch: who, from which platform, deployment and context, with which message."""

    platform: dict
    claims: dict
    message_type: str
    deployment_id: str
    user_name: str
    sub: str
    role: str
    context: dict = field(default_factory=dict)


@dataclass
class LaunchResult:
    user_name: str
    role: str
    course_id: str
    context_pk: str
    assignment_id: str | None
    message_type: str
    created_course: bool = False
    deep_linking: dict | None = None


class JWKSCache:
    """Platforms' public keys, one :class:`jwt.PyJWKClient` per JWKS URL (it caches keys and refetches on
    an unknown ``kid``, which is how a platform's key rotation reaches us)."""

    def __init__(self, timeout: float = 15.0):
        self.timeout = timeout
        self._clients: dict[str, jwt.PyJWKClient] = {}
        self._lock = threading.Lock()

    def signing_key(self, url: str, token: str):
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = self._clients[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600,
                                                              timeout=self.timeout)
        try:
            return client.get_signing_key_from_jwt(token).key
        except jwt.PyJWKClientConnectionError as exc:
            raise LtiError(502, f"the LMS's keys could not be fetched from {url}: {exc}") from None
        except jwt.PyJWKClientError as exc:
            raise LtiError(401, f"the id_token's signing key is not among the LMS's keys: {exc}") from None


class LaunchEngine:
    """Platforms, login initiation, launch validation and what a launch does in learnhub."""

    def __init__(self, session_factory, keys: ToolKeys, *, launch_url: str, settings=None):
        from .settings import LtiSettings

        self.sessions = session_factory
        self.keys = keys
        self.launch_url = launch_url
        self.settings = settings or LtiSettings()
        self.jwks = JWKSCache(self.settings.http_timeout)

    # -- platforms ------------------------------------------------------------------------------

    def sync_config_platforms(self, platforms: list[dict]) -> None:
        """Make the ``config`` platforms equal to ``platforms`` (those added through the API stay)."""
        checked = [validate_platform(p) for p in platforms]
        with session_scope(self.sessions) as session:
            rows = {(r.issuer, r.client_id): r for r in session.scalars(select(lm.LtiPlatform))}
            wanted = set()
            for data in checked:
                key = (data["issuer"], data["client_id"])
                wanted.add(key)
                row = rows.get(key)
                if row is None:
                    row = lm.LtiPlatform(issuer=data["issuer"], client_id=data["client_id"])
                    session.add(row)
                for name, value in data.items():
                    setattr(row, name, value)
                row.source = "config"
            for key, row in rows.items():
                if row.source == "config" and key not in wanted:
                    session.delete(row)

    def list_platforms(self, session: Session) -> list[dict]:
        return [platform_dict(r) for r in session.scalars(select(lm.LtiPlatform).order_by(lm.LtiPlatform.created_at))]

    def add_platform(self, session: Session, body: Any) -> dict:
        data = validate_platform(body)
        exists = session.scalar(select(lm.LtiPlatform).where(lm.LtiPlatform.issuer == data["issuer"],
                                                           lm.LtiPlatform.client_id == data["client_id"]))
        if exists is not None:
            raise LtiError(409, f"platform {data['issuer']} with client id {data['client_id']} is registered "
                                f"already (id {exists.id}); change it with PATCH")
        row = lm.LtiPlatform(**data, source="api")
        session.add(row)
        session.flush()
        return platform_dict(row)

    def update_platform(self, session: Session, platform_id: str, body: Any) -> dict:
        row = session.get(lm.LtiPlatform, platform_id)
        if row is None:
            raise LtiError(404, f"no LTI platform {platform_id}")
        if row.source == "config":
            raise LtiError(409, "this platform comes from learnhub_config.py (c.LtiSettings.platforms); change it there")
        if not isinstance(body, dict):
            raise LtiError(422, "send a JSON object")
        unknown = set(body) - PLATFORM_FIELDS
        if unknown:
            raise LtiError(422, f"unknown platform field(s): {', '.join(sorted(unknown))}")
        merged = {k: v for k, v in platform_dict(row).items() if k in PLATFORM_FIELDS}
        data = validate_platform({**merged, **body})
        for name, value in data.items():
            setattr(row, name, value)
        return platform_dict(row)

    def delete_platform(self, session: Session, platform_id: str) -> None:
        row = session.get(lm.LtiPlatform, platform_id)
        if row is None:
            raise LtiError(404, f"no LTI platform {platform_id}")
        if row.source == "config":
            raise LtiError(409, "this platform comes from learnhub_config.py; remove it there")
        session.delete(row)

    def _platform(self, session: Session, issuer: str, client_id: str | None) -> lm.LtiPlatform:
        query = select(lm.LtiPlatform).where(lm.LtiPlatform.issuer == issuer)
        if client_id:
            query = query.where(lm.LtiPlatform.client_id == client_id)
        rows = session.scalars(query).all()
        if not rows:
            raise LtiError(403, f"the LMS {issuer!r}" + (f" with client id {client_id!r}" if client_id else "")
                           + " is not registered with this learnhub; an admin registers it (docs/lti.md)")
        if len(rows) > 1:
            raise LtiError(400, f"{issuer!r} is registered with several client ids; the LMS must send client_id")
        return rows[0]

    # -- login initiation (OIDC third-party initiated login) ----------------------------------

    def login_initiation(self, params: dict[str, str]) -> tuple[str, str]:
        """The URL to send the browser to (the LMS's authorization endpoint) and the state, which the
        handler also keeps in a cookie so that the launch comes back to the browser that started it."""
        issuer, login_hint = params.get("iss", ""), params.get("login_hint", "")
        target = params.get("target_link_uri", "") or self.launch_url
        if not issuer or not login_hint:
            raise LtiError(400, "an LTI login initiation needs iss and login_hint")
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with session_scope(self.sessions) as session:
            platform = self._platform(session, issuer, params.get("client_id"))
            deployment = params.get("lti_deployment_id")
            if deployment and deployment not in (platform.deployment_ids or []):
                raise LtiError(403, f"deployment {deployment!r} of {issuer} is not registered with this learnhub")
            # expired rows go when new ones come: the table stays as small as the logins of nonce_ttl
            session.execute(delete(lm.LtiNonce).where(
                lm.LtiNonce.created_at < utcnow() - timedelta(seconds=self.settings.nonce_ttl * 2)))
            session.add(lm.LtiNonce(state=state, nonce=nonce, platform_id=platform.id, target_link_uri=target[:1024]))
            query = {"scope": "openid", "response_type": "id_token", "response_mode": "form_post",
                     "prompt": "none", "client_id": platform.client_id, "redirect_uri": self.launch_url,
                     "state": state, "nonce": nonce, "login_hint": login_hint}
            if params.get("lti_message_hint"):
                query["lti_message_hint"] = params["lti_message_hint"]
            url = platform.auth_login_url
        return f"{url}{'&' if '?' in url else '?'}{urlencode(query)}", state

    # -- the launch -------------------------------------------------------------------------

    def validate_launch(self, id_token: str, state: str) -> Launch:
        """Check an id_token as LTI 1.3 requires: signature with the platform's JWKS, issuer, audience
        (and ``azp``), expiry, a nonce issued here and not used before (used now), the deployment, the
        message type and version. Raises :class:`LtiError` (401/403/400) for anything else."""
        if not id_token or not state:
            raise LtiError(400, "the launch must carry id_token and state")
        try:
            unverified = jwt.decode(id_token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise LtiError(400, f"the id_token is not a JWT: {exc}") from None
        issuer, aud = unverified.get("iss", ""), unverified.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        with session_scope(self.sessions) as session:
            nonce_row = session.get(lm.LtiNonce, state)
            if nonce_row is None:
                raise LtiError(401, "unknown state: start the launch again from the LMS")
            platform = session.get(lm.LtiPlatform, nonce_row.platform_id)
            if platform is None or platform.issuer != issuer:
                raise LtiError(401, "the id_token comes from another issuer than the login initiation")
            if platform.client_id not in audiences:
                raise LtiError(401, f"the id_token is not for this tool (aud {aud!r}, client id {platform.client_id!r})")
            pdata = platform_dict(platform)
        key = self.jwks.signing_key(pdata["jwks_url"], id_token)
        try:
            claims = jwt.decode(id_token, key, algorithms=["RS256", "RS384", "RS512", "ES256"],
                                audience=pdata["client_id"], issuer=pdata["issuer"],
                                leeway=self.settings.clock_leeway,
                                options={"require": ["exp", "iat", "sub", "nonce", "aud", "iss"]})
        except jwt.ExpiredSignatureError:
            raise LtiError(401, "the id_token has expired: launch again from the LMS") from None
        except jwt.InvalidSignatureError:
            raise LtiError(401, "the id_token's signature does not verify with the LMS's keys") from None
        except jwt.PyJWTError as exc:
            raise LtiError(401, f"the id_token was refused: {exc}") from None
        if len(audiences) > 1 and claims.get("azp") != pdata["client_id"]:
            raise LtiError(401, "an id_token for several audiences must name this tool in azp")
        with session_scope(self.sessions) as session:
            nonce_row = session.get(lm.LtiNonce, state, with_for_update=True)
            if nonce_row is None or nonce_row.nonce != claims["nonce"]:
                raise LtiError(401, "the id_token's nonce is not the one this login initiation issued")
            if nonce_row.used_at is not None:
                raise LtiError(401, "this launch was used already (replayed id_token)")
            if as_utc(nonce_row.created_at) < utcnow() - timedelta(seconds=self.settings.nonce_ttl):
                raise LtiError(401, "the login initiation is too old: launch again from the LMS")
            nonce_row.used_at = utcnow()
        if claims.get(LTI + "version") != "1.3.0":
            raise LtiError(400, f"LTI version {claims.get(LTI + 'version')!r} is not 1.3.0")
        message_type = claims.get(LTI + "message_type")
        if message_type not in (RESOURCE_LINK, DEEP_LINKING):
            raise LtiError(400, f"LTI message type {message_type!r} is not supported here")
        deployment = claims.get(LTI + "deployment_id")
        if deployment not in pdata["deployment_ids"]:
            raise LtiError(403, f"deployment {deployment!r} of {pdata['issuer']} is not registered with this learnhub")
        role = course_role(claims.get(LTI + "roles", []), self.settings.extra_roles)
        if role is None:
            raise LtiError(403, "the launch carries no course role learnhub knows (Learner, TeachingAssistant, "
                                "Instructor)")
        context = claims.get(LTI + "context") or {}
        if not context.get("id"):
            raise LtiError(400, "the launch has no context (LMS course): place the tool in a course")
        return Launch(platform=pdata, claims=claims, message_type=message_type, deployment_id=deployment,
                      user_name=self.user_name(pdata, claims), sub=str(claims["sub"]), role=role, context=context)

    def user_name(self, platform: dict, claims: dict) -> str:
        claim = self.settings.username_claim
        value: Any = claims
        for part in (claim.split("#", 1) if claim.startswith("http") and "#" in claim else [claim]):
            value = value.get(part) if isinstance(value, dict) else None
        if not isinstance(value, str) or not value.strip():
            raise LtiError(400, f"the launch has no {claim!r} to name the user by (c.LtiSettings.username_claim)")
        name = _NAME_BAD.sub("-", (platform.get("username_prefix", "") + value.strip()).lower()).strip("-")
        return name[:255]

    # -- what a launch does in learnhub -----------------------------------------------------------

    def apply_launch(self, launch: Launch) -> LaunchResult:
        """Link (or create) the course of the launch's context, enroll the person with the LTI role, and
        remember the context's NRPS and AGS endpoints. One transaction."""
        from learnhub.extensions.courses import models as cm
        from learnhub.extensions.courses.catalog import Caller, CourseError, Enrollments

        custom = launch.claims.get(LTI + "custom") or {}
        nrps = launch.claims.get(NRPS_CLAIM) or {}
        ags = launch.claims.get(AGS_CLAIM) or {}
        created = False
        try:
            with session_scope(self.sessions) as session:
                row = session.scalar(select(lm.LtiContext).where(
                    lm.LtiContext.platform_id == launch.platform["id"],
                    lm.LtiContext.deployment_id == launch.deployment_id,
                    lm.LtiContext.context_id == str(launch.context["id"])))
                if row is None:
                    course_id, created = self._course_for_new_context(session, launch, custom)
                    row = lm.LtiContext(platform_id=launch.platform["id"], deployment_id=launch.deployment_id,
                                        context_id=str(launch.context["id"]), course_id=course_id)
                    session.add(row)
                row.title = str(launch.context.get("title") or launch.context.get("label") or "")[:300]
                if nrps.get("context_memberships_url"):
                    row.memberships_url = nrps["context_memberships_url"]
                if ags.get("lineitems"):
                    row.lineitems_url = ags["lineitems"]
                    row.ags_scopes = list(ags.get("scope") or [])
                session.flush()
                if session.get(cm.Course, row.course_id) is None:
                    raise LtiError(409, f"the learnhub course {row.course_id} linked to this LMS course was deleted; "
                                        "an admin relinks it (PATCH /services/courses/api/lti/contexts/<id>)")
                Enrollments(session).enroll(Caller(name="lti", can_manage=True), row.course_id,
                                            {"user": launch.user_name, "role": launch.role})
                self._remember_member(session, row.id, launch.sub, launch.user_name, launch.role)
                assignment = custom.get("learnhub_assignment")
                if assignment and session.get(cm.Assignment, (row.course_id, assignment)) is None:
                    assignment = None
                result = LaunchResult(user_name=launch.user_name, role=launch.role, course_id=row.course_id,
                                      context_pk=row.id, assignment_id=assignment, message_type=launch.message_type,
                                      created_course=created)
        except CourseError as exc:
            raise LtiError(exc.status if hasattr(exc, "status") else 409, str(exc)) from None
        except IntegrityError:
            # two first launches of one context at once: the other one linked it; do it again
            return self.apply_launch(launch)
        if launch.message_type == DEEP_LINKING:
            if launch.role != "instructor":
                raise LtiError(403, "only instructors may pick learnhub assignments for the LMS")
            settings = launch.claims.get(DL + "deep_linking_settings") or {}
            if not settings.get("deep_link_return_url"):
                raise LtiError(400, "the deep linking request has no deep_link_return_url")
            result.deep_linking = {"return_url": settings["deep_link_return_url"], "data": settings.get("data"),
                                   "issuer": launch.platform["issuer"], "client_id": launch.platform["client_id"],
                                   "deployment_id": launch.deployment_id,
                                   "accept_multiple": bool(settings.get("accept_multiple", True))}
        return result

    def _course_for_new_context(self, session: Session, launch: Launch, custom: dict) -> tuple[str, bool]:
        from learnhub.extensions.courses import models as cm
        from learnhub.extensions.courses.catalog import Caller, CourseCatalog

        wanted = custom.get("learnhub_course")
        if wanted:
            course = session.get(cm.Course, wanted)
            if course is None:
                raise LtiError(404, f"the LMS placement names learnhub course {wanted!r}, which does not exist")
            enrolled = session.get(cm.Enrollment, (wanted, launch.user_name))
            if launch.role != "instructor" or (enrolled is None or enrolled.role != "instructor"):
                raise LtiError(403, f"linking this LMS course to {wanted!r} needs a launch by an instructor of {wanted!r}")
            return wanted, False
        if launch.role != "instructor":
            raise LtiError(403, "this LMS course is not linked to a learnhub course yet: its instructor launches "
                                "learnhub once first")
        if not self.settings.create_courses:
            raise LtiError(403, "this learnhub creates no courses from LMS launches: the LMS placement must name "
                                "an existing course (custom parameter learnhub_course)")
        label = str(launch.context.get("label") or launch.context.get("title") or "lms")
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "lms"
        digest = hashlib.sha256(f"{launch.platform['id']}|{launch.deployment_id}|{launch.context['id']}".encode())
        course_id = f"{slug}-{digest.hexdigest()[:8]}"
        title = str(launch.context.get("title") or label)[:300]
        CourseCatalog(session).create(Caller(name=launch.user_name, can_create=True), {"id": course_id, "title": title})
        return course_id, True

    @staticmethod
    def _remember_member(session: Session, context_pk: str, sub: str, user_name: str, role: str) -> None:
        member = session.get(lm.LtiMember, (context_pk, sub))
        if member is None:
            session.add(lm.LtiMember(context_pk=context_pk, sub=sub, user_name=user_name, role=role))
        else:
            member.user_name, member.role, member.status, member.updated_at = user_name, role, "active", utcnow()
