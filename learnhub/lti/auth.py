"""The hub side of LTI 1.3: an authenticator whose handlers are thin layers over :mod:`.engine`.

Routes (under the hub's base URL, ``/hub/``):

* ``lti/login``    OIDC login initiation (GET or POST from the LMS) → redirect to the LMS's auth endpoint
* ``lti/launch``   the LMS's form POST of the id_token → checked, course linked, person enrolled, logged in,
                   sent to JupyterLab at the course (or the deep-linked assignment)
* ``lti/deeplink`` the instructor's assignment picker of a deep linking request, and the signed response
* ``lti/jwks``     the tool's public keys
* ``lti/config``   what an LMS admin enters when registering the tool (URLs, JWKS, claims), as JSON

Why not jupyterhub-ltiauthenticator: see docs/lti.md (its launch handler is refused by the hub's XSRF
check on an LMS's cross-site form POST, its issue 118; it knows one issuer and keeps no server-side
nonces; it has no course linking, roster, grades or deep linking).
"""
from __future__ import annotations

import asyncio
import html
import json
from urllib.parse import quote

from jupyterhub.auth import Authenticator
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from sqlalchemy import select
from tornado import web
from traitlets import Bool, Unicode, default

from learnhub import db as lhdb

from .engine import DEEP_LINKING, LaunchEngine, LtiError
from .keys import ToolKeys
from .settings import LtiSettings

STATE_COOKIE = "learnhub-lti-state"
DEEP_LINK_COOKIE = "learnhub-lti-deep-link"


class _LtiHandler(BaseHandler):
    @property
    def lti(self) -> "LearnhubLTIAuthenticator":
        return self.authenticator

    def lti_error(self, exc: LtiError):
        self.log.warning("LTI: refused (%s): %s", exc.status, exc.message)
        self.set_status(exc.status)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(f"<!doctype html><title>LTI launch refused</title><h1>This launch was refused</h1>"
                    f"<p>{html.escape(exc.message)}</p>")

    async def run(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)


class LoginInitiationHandler(_LtiHandler):
    """The LMS's third-party initiated login (``iss``, ``login_hint``, ``target_link_uri``, ...)."""

    def check_xsrf_cookie(self):
        # The LMS POSTs here from its own site: no XSRF token can exist; state and nonce protect the launch.
        return None

    async def get(self):
        await self._initiate()

    async def post(self):
        await self._initiate()

    async def _initiate(self):
        params = {k: self.get_argument(k, "") for k in ("iss", "login_hint", "target_link_uri", "lti_message_hint",
                                                       "client_id", "lti_deployment_id")}
        try:
            url, state = await self.run(self.lti.engine.login_initiation, params)
        except LtiError as exc:
            return self.lti_error(exc)
        # Binds the launch to this browser. SameSite=None (with Secure) on https, so that the LMS's
        # cross-site form POST carries it back; on plain http a browser sends it back only if it has no
        # SameSite attribute (the top-level POST within two minutes that browsers allow).
        options = {"samesite": "None", "secure": True} if self.lti.cross_site_cookies else {}
        self._set_cookie(STATE_COOKIE, state, encrypted=True, path=self.hub.base_url,
                         expires_days=None, **options)
        self.redirect(url)


class LaunchHandler(_LtiHandler):
    """The LMS's form POST with ``id_token`` and ``state``."""

    def check_xsrf_cookie(self):
        # This is where jupyterhub-ltiauthenticator fails on Moodle (its issue 118): an LMS's cross-site
        # form POST cannot carry the hub's _xsrf token. The signed id_token, the state bound to this browser
        # (cookie) and the single-use nonce are what protect this endpoint.
        return None

    async def post(self):
        id_token, state = self.get_body_argument("id_token", ""), self.get_body_argument("state", "")
        cookie = self.get_secure_cookie(STATE_COOKIE, max_age_days=1)
        if self.lti.require_state_cookie and (cookie is None or cookie.decode() != state):
            return self.lti_error(LtiError(401, "this launch did not start in this browser (state cookie missing "
                                                "or different); open learnhub in a new window from the LMS"))
        self.clear_cookie(STATE_COOKIE, path=self.hub.base_url)
        try:
            user = await self.login_user({"id_token": id_token, "state": state})
        except LtiError as exc:
            return self.lti_error(exc)
        if user is None:
            return self.lti_error(LtiError(403, "learnhub refused this login"))
        result = self._lti_result
        if result.message_type == DEEP_LINKING:
            self._set_cookie(DEEP_LINK_COOKIE, json.dumps({**result.deep_linking, "user": user.name,
                                                           "course_id": result.course_id}),
                             encrypted=True, path=self.hub.base_url, expires_days=None)
            return self.redirect(url_path_join(self.hub.base_url, "lti/deeplink"))
        # The server extension's arrival page makes the course folder (and fetches a deep link's
        # assignment) before JupyterLab opens there: lab/tree/<course> of a new home does not exist.
        target = f"learnhub/open/{quote(result.course_id, safe='')}"
        if result.assignment_id:
            target += f"/{quote(result.assignment_id, safe='')}"
        self.redirect(url_path_join(self.hub.base_url, "user-redirect", target))


class DeepLinkHandler(_LtiHandler):
    """An instructor picks learnhub assignments for the LMS; the answer is a signed LtiDeepLinkingResponse
    posted to the LMS's return URL by an auto-submitting form."""

    def _request(self) -> dict:
        raw = self.get_secure_cookie(DEEP_LINK_COOKIE, max_age_days=1)
        if raw is None:
            raise LtiError(400, "no deep linking request is open: start again from the LMS")
        request = json.loads(raw)
        if self.current_user is None or self.current_user.name != request["user"]:
            raise LtiError(403, "this deep linking request belongs to another person")
        return request

    def _assignments(self, course_id: str) -> list[dict]:
        from learnhub.extensions.courses import models as cm

        with lhdb.session_scope(self.lti.sessions) as session:
            rows = session.scalars(select(cm.Assignment).where(cm.Assignment.course_id == course_id)
                                   .order_by(cm.Assignment.id)).all()
            return [{"id": r.id, "title": r.title or r.id, "max_score": getattr(r, "max_score", None)} for r in rows]

    @web.authenticated
    async def get(self):
        try:
            request = self._request()
        except LtiError as exc:
            return self.lti_error(exc)
        assignments = await self.run(self._assignments, request["course_id"])
        kind = "checkbox" if request.get("accept_multiple") else "radio"
        rows = "".join(f'<li><label><input type="{kind}" name="assignment" value="{html.escape(a["id"])}"> '
                       f'{html.escape(a["title"])}</label></li>' for a in assignments)
        self.finish(f"""<!doctype html><title>Choose learnhub assignments</title>
<h1>Add learnhub assignments to the LMS course</h1>
<form method="post"><input type="hidden" name="_xsrf" value="{self.xsrf_token.decode()}">
<ul>{rows or '<li>This course has no assignments yet.</li>'}</ul><button type="submit">Add</button></form>""")

    @web.authenticated
    async def post(self):
        try:
            request = self._request()
            chosen = self.get_body_arguments("assignment")
            response = await self.run(self.lti.deep_link_response, request, chosen)
        except LtiError as exc:
            return self.lti_error(exc)
        self.clear_cookie(DEEP_LINK_COOKIE, path=self.hub.base_url)
        self.finish(f"""<!doctype html><title>Returning to the LMS</title>
<form id="return" method="post" action="{html.escape(request['return_url'])}">
<input type="hidden" name="JWT" value="{html.escape(response)}"><noscript><button>Continue</button></noscript></form>
<script>document.getElementById("return").submit()</script>""")


class JWKSHandler(_LtiHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.lti.keys.jwks()))


class ToolConfigHandler(_LtiHandler):
    """What an LMS admin enters when registering learnhub (also in docs/lti.md)."""

    def get(self):
        base = self.lti.public_url.rstrip("/") + self.hub.base_url.rstrip("/")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({
            "title": "learnhub", "oidc_initiation_url": f"{base}/lti/login",
            "target_link_uri": f"{base}/lti/launch", "redirect_uris": [f"{base}/lti/launch"],
            "deep_linking_url": f"{base}/lti/launch", "jwks_url": f"{base}/lti/jwks",
            "scopes": ["https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
                       "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                       "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "messages": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
            "custom_parameters": {"learnhub_course": "(optional) an existing learnhub course id to link"},
        }, indent=1))


class LearnhubLTIAuthenticator(Authenticator):
    """Logs people in from LMS launches (LTI 1.3); every launch the engine accepts may log in."""

    login_service = "your LMS"

    db_url = Unicode(help="The learnhub database (courses, enrollments, LTI tables); set by learnhub's hub config.").tag(config=True)
    data_dir = Unicode(help="learnhub's data dir, where the tool's keys are kept (lti/keys.json, 0600).").tag(config=True)
    public_url = Unicode(help="The URL the LMS reaches learnhub at (launch, login and JWKS URLs are built on it).").tag(config=True)
    require_state_cookie = Bool(
        True, help="""Refuse a launch whose state is not the one this browser's login initiation set (a cookie).
        Turn off only for an LMS that opens learnhub in an iframe where the browser blocks third-party cookies;
        the single-use nonce then remains the replay protection.""").tag(config=True)
    cross_site_cookies = Bool(help="Set the state cookie SameSite=None; Secure (default: when public_url is https).").tag(config=True)

    @default("cross_site_cookies")
    def _default_cross_site(self):
        return self.public_url.startswith("https://")

    @default("allow_all")
    def _default_allow_all(self):
        # The LMS decides who may launch; the engine refuses anything it did not sign for this tool.
        return True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lti_settings = LtiSettings(parent=self)
        self.keys = ToolKeys(self.data_dir)
        self.keys.keys()  # first start: generate the signing key now, not at the first launch
        self.sessions = lhdb.make_session_factory(lhdb.make_engine(self.db_url))
        hub_base = "/hub/"
        self.launch_url = self.public_url.rstrip("/") + hub_base + "lti/launch"
        self.engine = LaunchEngine(self.sessions, self.keys, launch_url=self.launch_url, settings=self.lti_settings)
        self.engine.sync_config_platforms(self.lti_settings.platforms)

    def login_url(self, base_url):
        return url_path_join(base_url, "lti/login")

    def get_handlers(self, app):
        return [(r"/lti/login", LoginInitiationHandler), (r"/lti/launch", LaunchHandler),
                (r"/lti/deeplink", DeepLinkHandler), (r"/lti/jwks", JWKSHandler), (r"/lti/config", ToolConfigHandler)]

    async def authenticate(self, handler, data):
        loop = asyncio.get_running_loop()

        def check_and_apply():
            launch = self.engine.validate_launch(data.get("id_token", ""), data.get("state", ""))
            return launch, self.engine.apply_launch(launch)

        launch, result = await loop.run_in_executor(None, check_and_apply)
        handler._lti_result = result
        return {"name": result.user_name,
                "auth_state": {"lti": {"issuer": launch.platform["issuer"], "sub": launch.sub,
                                       "course_id": result.course_id, "role": result.role}}}

    def deep_link_response(self, request: dict, chosen: list[str]) -> str:
        from learnhub.extensions.courses import models as cm

        from .services import assignment_item, deep_linking_response

        if not chosen:
            raise LtiError(422, "choose at least one assignment")
        if len(chosen) > 1 and not request.get("accept_multiple"):
            raise LtiError(422, "the LMS accepts one item here: choose one assignment")
        items = []
        with lhdb.session_scope(self.sessions) as session:
            for assignment_id in chosen:
                row = session.get(cm.Assignment, (request["course_id"], assignment_id))
                if row is None:
                    raise LtiError(404, f"no assignment {assignment_id!r} in {request['course_id']}")
                items.append(assignment_item(self.launch_url, request["course_id"], row.id, row.title or row.id,
                                             getattr(row, "max_score", None) or 100))
        return deep_linking_response(self.keys, request, items)
