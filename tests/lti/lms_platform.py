"""A small LTI 1.3 platform (an LMS as far as learnhub can tell) for tests, on loopback.

It is written from the IMS specifications (LTI Core 1.3, Security Framework 1.0, NRPS 2.0, AGS 2.0,
Deep Linking 2.0), not from learnhub's code: it serves its JWKS, answers the OIDC authorization request
of a login initiation with a signed id_token in an auto-submitting form, checks the tool's client
assertions at its OAuth2 token endpoint against the tool's published JWKS, serves a paged roster, keeps
line items and records every score POSTed to them. ``down = True`` makes its service endpoints answer
503, as an LMS under maintenance does.
"""
from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import threading
import time
import uuid
from urllib.parse import urlencode

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

from hubtools import free_port

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
DL = "https://purl.imsglobal.org/spec/lti-dl/claim/"
ROLE = {"learner": "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
        "instructor": "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
        "ta": "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"}
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"


def new_rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class _Handler(web.RequestHandler):
    @property
    def lms(self) -> "Platform":
        return self.settings["lms"]

    def check_xsrf_cookie(self):
        return None

    def bearer_scopes(self) -> set[str]:
        header = self.request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        scopes = self.lms.tokens.get(token)
        if scopes is None:
            raise web.HTTPError(401, "unknown access token")
        return scopes

    def prepare(self):
        if self.lms.down and self.request.path not in ("/jwks", "/auth"):
            raise web.HTTPError(503, "under maintenance")


class JWKS(_Handler):
    def get(self):
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.lms.key.public_key()))
        public.update({"kid": self.lms.kid, "alg": "RS256", "use": "sig"})
        self.finish({"keys": [public]})


class Auth(_Handler):
    """The OIDC authorization endpoint: what the browser reaches after the tool's login initiation."""

    def get(self):
        lms = self.lms
        args = {k: self.get_argument(k, "") for k in ("scope", "response_type", "response_mode", "prompt", "client_id",
                                                      "redirect_uri", "state", "nonce", "login_hint", "lti_message_hint")}
        lms.auth_requests.append(args)
        if (args["scope"], args["response_type"], args["response_mode"], args["prompt"]) != \
                ("openid", "id_token", "form_post", "none") or args["client_id"] != lms.client_id:
            raise web.HTTPError(400, "not an LTI 1.3 authentication request")
        if args["redirect_uri"] not in lms.redirect_uris:
            raise web.HTTPError(400, f"redirect_uri {args['redirect_uri']} is not registered")
        launch = lms.pending.pop(args["lti_message_hint"] or args["login_hint"], None)
        if launch is None:
            raise web.HTTPError(400, "no launch prepared for this login hint")
        token = lms.id_token(launch, args["nonce"])
        lms.issued.append({"id_token": token, "state": args["state"]})
        self.finish(f"""<!doctype html><form id="f" method="post" action="{html.escape(args['redirect_uri'])}">
<input type="hidden" name="id_token" value="{token}"><input type="hidden" name="state" value="{html.escape(args['state'])}">
</form><script>document.getElementById('f').submit()</script>""")


class Token(_Handler):
    """The token endpoint: client credentials with a JWT client assertion (RFC 7523) signed by the tool."""

    def post(self):
        lms = self.lms
        if self.get_body_argument("grant_type", "") != "client_credentials" or self.get_body_argument(
                "client_assertion_type", "") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            raise web.HTTPError(400, "unsupported grant")
        assertion = self.get_body_argument("client_assertion", "")
        try:
            if lms.tool_jwks is not None:  # in-process tests: the tool's keys object itself
                kid = jwt.get_unverified_header(assertion)["kid"]
                key = jwt.PyJWKSet.from_dict(lms.tool_jwks())[kid].key
            else:
                key = jwt.PyJWKClient(lms.tool_jwks_url).get_signing_key_from_jwt(assertion).key
            claims = jwt.decode(assertion, key, algorithms=["RS256"], audience=lms.token_url)
        except jwt.PyJWTError as exc:
            self.set_status(401)
            return self.finish({"error": "invalid_client", "error_description": str(exc)})
        if claims.get("iss") != lms.client_id or claims.get("sub") != lms.client_id or claims.get("jti") in lms.jtis:
            self.set_status(401)
            return self.finish({"error": "invalid_client"})
        lms.jtis.add(claims["jti"])
        scopes = set(self.get_body_argument("scope", "").split())
        token = secrets.token_hex(16)
        lms.tokens[token] = scopes
        lms.token_requests += 1
        self.finish({"access_token": token, "token_type": "Bearer", "expires_in": 3600, "scope": " ".join(sorted(scopes))})


class Memberships(_Handler):
    def get(self, context_id):
        if "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly" not in self.bearer_scopes():
            raise web.HTTPError(403)
        if "application/vnd.ims.lti-nrps.v2.membershipcontainer+json" not in self.request.headers.get("Accept", ""):
            raise web.HTTPError(406)
        members = self.lms.rosters.get(context_id, [])
        start = int(self.get_argument("page", "0"))
        size = 2  # small pages, so that paging is exercised
        if start + size < len(members):
            self.set_header("Link", f'<{self.lms.url}/nrps/{context_id}?page={start + size}>; rel="next"')
        self.set_header("Content-Type", "application/vnd.ims.lti-nrps.v2.membershipcontainer+json")
        self.finish({"id": self.request.full_url(), "context": {"id": context_id},
                     "members": members[start:start + size]})


class LineItems(_Handler):
    def get(self, context_id):
        self.bearer_scopes()
        items = [i for i in self.lms.line_items.values() if i["context"] == context_id]
        resource = self.get_argument("resource_id", None)
        if resource is not None:
            items = [i for i in items if i["resourceId"] == resource]
        self.set_header("Content-Type", "application/vnd.ims.lis.v2.lineitemcontainer+json")
        self.finish(json.dumps([{k: v for k, v in i.items() if k != "context"} for i in items]))

    def post(self, context_id):
        if "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem" not in self.bearer_scopes():
            raise web.HTTPError(403)
        body = json.loads(self.request.body)
        if not isinstance(body.get("scoreMaximum"), (int, float)) or body["scoreMaximum"] <= 0 or not body.get("label"):
            raise web.HTTPError(400, "a line item needs label and scoreMaximum > 0")
        item_id = f"{self.lms.url}/ags/{context_id}/lineitems/{uuid.uuid4().hex[:8]}"
        item = {"id": item_id, "context": context_id, **body}
        self.lms.line_items[item_id] = item
        self.set_status(201)
        self.set_header("Content-Type", "application/vnd.ims.lis.v2.lineitem+json")
        self.finish({k: v for k, v in item.items() if k != "context"})


class Scores(_Handler):
    def post(self, context_id, item):
        if "https://purl.imsglobal.org/spec/lti-ags/scope/score" not in self.bearer_scopes():
            raise web.HTTPError(403)
        if self.request.headers.get("Content-Type", "").split(";")[0] != SCORE_TYPE:
            raise web.HTTPError(415, f"scores are {SCORE_TYPE}")
        url = f"{self.lms.url}/ags/{context_id}/lineitems/{item}"
        if url not in self.lms.line_items:
            raise web.HTTPError(404)
        body = json.loads(self.request.body)
        for key in ("userId", "activityProgress", "gradingProgress", "timestamp"):
            if key not in body:
                raise web.HTTPError(400, f"a score needs {key}")
        self.lms.scores.append({"line_item": url, **body})
        self.set_status(204 if self.lms.scores_answer_204 else 200)
        self.finish()


class DeepLinkReturn(_Handler):
    def post(self):
        self.lms.deep_link_responses.append(self.get_body_argument("JWT"))
        self.finish("received")


class LaunchPage(_Handler):
    """What a person's browser gets on clicking the tool's link in the LMS: a form that posts the
    third-party login initiation to the tool by itself."""

    def get(self, hint):
        login_url = self.lms.launch_pages.pop(hint, None)
        if login_url is None:
            raise web.HTTPError(404, "no launch prepared")
        fields = {"iss": self.lms.issuer, "login_hint": hint, "client_id": self.lms.client_id,
                  "target_link_uri": login_url.replace("/login", "/launch"),
                  "lti_deployment_id": self.lms.deployment_id}
        inputs = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in fields.items())
        self.finish(f"""<!doctype html><form id="f" method="post" action="{html.escape(login_url)}">{inputs}</form>
<script>document.getElementById('f').submit()</script>""")


class Platform:
    """The test LMS: start(), then ``prepare_launch`` + ``launch`` (or the handlers' URLs directly)."""

    def __init__(self, client_id: str = "learnhub-tool", deployment_id: str = "dep-1"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.issuer = self.url
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.key = new_rsa_key()
        self.kid = uuid.uuid4().hex
        self.token_url = f"{self.url}/token"
        self.tool_jwks_url = ""
        self.tool_jwks = None  # or a callable returning the tool's JWKS
        self.redirect_uris: set[str] = set()
        self.pending: dict[str, dict] = {}
        self.issued: list[dict] = []
        self.auth_requests: list[dict] = []
        self.tokens: dict[str, set] = {}
        self.jtis: set[str] = set()
        self.token_requests = 0
        self.rosters: dict[str, list[dict]] = {}
        self.line_items: dict[str, dict] = {}
        self.scores: list[dict] = []
        self.deep_link_responses: list[str] = []
        self.launch_pages: dict[str, str] = {}  # login hint -> the tool's login initiation URL
        self.down = False
        self.scores_answer_204 = False
        self._loop: IOLoop | None = None
        self._thread: threading.Thread | None = None

    def registration(self, **extra) -> dict:
        """What the tool's admin registers for this LMS (``c.LtiSettings.platforms`` item)."""
        return {"issuer": self.issuer, "client_id": self.client_id, "auth_login_url": f"{self.url}/auth",
                "auth_token_url": self.token_url, "jwks_url": f"{self.url}/jwks",
                "deployment_ids": [self.deployment_id], **extra}

    def start(self) -> "Platform":
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(asyncio.new_event_loop())
            app = web.Application([
                (r"/jwks", JWKS), (r"/auth", Auth), (r"/token", Token), (r"/nrps/([^/]+)", Memberships),
                (r"/ags/([^/]+)/lineitems", LineItems), (r"/ags/([^/]+)/lineitems/([^/]+)/scores", Scores),
                (r"/deeplink-return", DeepLinkReturn), (r"/launch/([^/]+)", LaunchPage)], lms=self)
            server = HTTPServer(app)
            server.listen(self.port, "127.0.0.1")
            self._loop = IOLoop.current()
            ready.set()
            self._loop.start()
            server.stop()

        self._thread = threading.Thread(target=run, daemon=True, name="lti-platform")
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.add_callback(self._loop.stop)
            self._thread.join(10)

    # -- launches ---------------------------------------------------------------------------

    def claims(self, sub: str, role: str, context_id: str = "course-101", *, message_type: str = "LtiResourceLinkRequest",
               custom: dict | None = None, email: str | None = None, title: str = "Data Science 101") -> dict:
        claims = {
            "sub": sub, "name": sub.title(), "email": email or f"{sub}@lms.test",
            LTI + "message_type": message_type, LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id, LTI + "roles": [ROLE[role]],
            LTI + "context": {"id": context_id, "label": "DS101", "title": title,
                              "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]},
            LTI + "target_link_uri": "", LTI + "custom": custom or {},
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": f"{self.url}/nrps/{context_id}", "service_versions": ["2.0"]},
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                          "https://purl.imsglobal.org/spec/lti-ags/scope/score"],
                "lineitems": f"{self.url}/ags/{context_id}/lineitems"},
        }
        if message_type == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = {"id": f"link-{context_id}"}
        else:
            claims[DL + "deep_linking_settings"] = {
                "deep_link_return_url": f"{self.url}/deeplink-return", "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["window"], "accept_multiple": True, "data": "opaque-123"}
        return claims

    def prepare_launch(self, claims: dict, *, key=None, aud=None, exp_in: int = 300, nonce=None) -> str:
        """Keep a launch for the next authorization request with this hint; returns the hint.
        ``key``/``aud``/``exp_in``/``nonce`` forge it (another signing key, audience, expiry, nonce)."""
        hint = uuid.uuid4().hex
        self.pending[hint] = {"claims": claims, "key": key, "aud": aud, "exp_in": exp_in, "nonce": nonce}
        return hint

    def id_token(self, launch: dict, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": launch["aud"] or self.client_id, "azp": self.client_id,
                  "iat": now - 5, "exp": now + launch["exp_in"], "nonce": launch["nonce"] or nonce, **launch["claims"]}
        key = launch["key"] or self.key
        return jwt.encode(claims, pem(key), algorithm="RS256", headers={"kid": self.kid})

    def launch(self, session: requests.Session, login_url: str, claims: dict, **forge) -> requests.Response:
        """A browser's launch: the LMS's login initiation to the tool, the tool's redirect to our auth
        endpoint, our auto-submitted form back to the tool's launch URL. Returns the launch's response."""
        hint = self.prepare_launch(claims, **forge)
        started = session.post(login_url, data={"iss": self.issuer, "login_hint": hint, "client_id": self.client_id,
                                                "target_link_uri": login_url.replace("/login", "/launch"),
                                                "lti_deployment_id": self.deployment_id}, allow_redirects=False)
        assert started.status_code == 302, (started.status_code, started.text[:500])
        form = session.get(started.headers["Location"], allow_redirects=False)
        assert form.status_code == 200, (form.status_code, form.text[:500])
        return self.submit_form(session, form.text)

    def launch_page(self, login_url: str, claims: dict) -> str:
        """The URL a real browser opens to launch the tool as ``claims`` say (the LMS's page with the
        auto-submitted login initiation; from there the browser follows the whole OIDC flow itself)."""
        hint = self.prepare_launch(claims)
        self.launch_pages[hint] = login_url
        return f"{self.url}/launch/{hint}"

    @staticmethod
    def form_fields(page: str) -> tuple[str, dict]:
        action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))
        fields = {html.unescape(n): html.unescape(v)
                  for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page)}
        return action, fields

    def submit_form(self, session: requests.Session, page: str) -> requests.Response:
        action, fields = self.form_fields(page)
        return session.post(action, data=fields, allow_redirects=False)

    def roster_member(self, sub: str, role: str, status: str = "Active") -> dict:
        return {"user_id": sub, "roles": [ROLE[role]], "status": status, "name": sub.title(), "email": f"{sub}@lms.test"}


def login_url_for(hub_url: str) -> str:
    return f"{hub_url}/hub/lti/login"


__all__ = ["Platform", "ROLE", "new_rsa_key", "login_url_for", "urlencode"]
