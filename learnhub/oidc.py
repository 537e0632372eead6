"""Log in with any OpenID Connect provider: oauthenticator's GenericOAuthenticator, completed for OIDC.

``c.LearnhubSettings.authenticator = "oauth"`` selects :class:`LearnhubOIDCAuthenticator`. It is a
GenericOAuthenticator (every ``c.GenericOAuthenticator.*`` option applies) that adds what
GenericOAuthenticator leaves to each deployment (docs/authentication.md):

- the endpoints from the issuer's discovery document (``.well-known/openid-configuration``), unless
  they are given explicitly;
- the id_token checked (signature against the issuer's JWKS, issuer, audience, expiry) and its claims
  merged with the userinfo endpoint's (whose ``sub`` must be the id_token's);
- who is an instructor (hub group ``learnhub-instructors``) or an admin, from a groups claim;
- RP-initiated logout at the provider's ``end_session_endpoint``.

Token refresh is GenericOAuthenticator's own (``refresh_user`` with the refresh token kept in the
encrypted auth state, which learnhub's hub configuration turns on with a key in the data dir).
"""
from __future__ import annotations

import json
import os
import time
from functools import reduce
from urllib.parse import urlencode

import jwt
from jupyterhub import orm
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler, OAuthLogoutHandler
from tornado import web
from traitlets import Bool, Integer, Set, Unicode, default

#: The hub group whose members may create courses (learnhub.hub.INSTRUCTORS_GROUP, repeated here so
#: that importing the authenticator does not import the hub composition).
INSTRUCTORS_GROUP = "learnhub-instructors"

#: id_token signatures accepted: asymmetric ones only (a symmetric one would be keyed by the client
#: secret, which this hub also holds: it proves nothing about the provider).
ASYMMETRIC_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]


class DiscoveryError(Exception):
    pass


class LearnhubOIDCLoginHandler(OAuthLoginHandler):
    async def get(self):
        await self.authenticator.discover_or_fail()
        return super().get()


class LearnhubOIDCCallbackHandler(OAuthCallbackHandler):
    async def get(self):
        await self.authenticator.discover_or_fail()
        return await super().get()

    async def auth_to_user(self, authenticated, user=None):
        # The hub's group sync (Authenticator.manage_groups) would make the provider the only source of
        # every group, course groups included; only the instructors group follows the provider here.
        user = await super().auth_to_user(authenticated, user)
        if "learnhub_instructor" in authenticated:
            self.authenticator.sync_instructor_group(self.db, user, authenticated["learnhub_instructor"])
        return user


class LearnhubOIDCLogoutHandler(OAuthLogoutHandler):
    _id_token = None

    async def default_handle_logout(self):
        # The id_token must be read before the login cookie goes: it is the provider's hint of whose
        # session to end.
        user = self.current_user
        if user is not None and self.authenticator.enable_auth_state:
            auth_state = await user.get_auth_state() or {}
            self._id_token = auth_state.get("id_token")
        await super().default_handle_logout()

    async def render_logout_page(self):
        authenticator = self.authenticator
        if authenticator.rp_initiated_logout and not authenticator.logout_redirect_url:
            try:
                await authenticator.discover()
            except DiscoveryError as exc:
                self.log.warning("Logging out of the hub only: %s", exc)
            if authenticator.end_session_url:
                back = authenticator.post_logout_redirect_url or (
                    f"{self.request.protocol}://{self.request.host}{self.settings['login_url']}")
                self.redirect(authenticator.end_session_redirect(self._id_token, back))
                return
        return await super().render_logout_page()


class LearnhubOIDCAuthenticator(GenericOAuthenticator):
    """GenericOAuthenticator for any OpenID Connect provider: discovery, checked id_tokens, instructor
    and admin groups from a claim, RP-initiated logout."""

    login_handler = LearnhubOIDCLoginHandler
    callback_handler = LearnhubOIDCCallbackHandler
    logout_handler = LearnhubOIDCLogoutHandler

    issuer = Unicode(
        "",
        config=True,
        help="""The provider's issuer URL, e.g. ``https://id.example.edu/realms/campus``. Its discovery
        document (``<issuer>/.well-known/openid-configuration``) gives every endpoint not set
        explicitly (``authorize_url``, ``token_url``, ``userdata_url``, ``end_session_url``,
        ``jwks_url``), and its ``issuer`` must be this very URL. Empty: no discovery; then
        ``authorize_url`` and ``token_url`` must be set.""",
    )

    discovery_ttl = Integer(
        3600,
        config=True,
        help="Seconds a discovery document and the provider's JWKS are kept before being fetched again.",
    )

    jwks_url = Unicode(
        "",
        config=True,
        help="""The provider's JSON Web Key Set, to check id_token signatures (from discovery when
        empty). Without it (no issuer, none given) an id_token's claims are used unchecked, as the
        OIDC spec allows for a token received directly from the token endpoint over TLS.""",
    )

    end_session_url = Unicode(
        "",
        config=True,
        help="""The provider's RP-initiated logout endpoint (``end_session_endpoint``; from discovery
        when empty). Logging out of the hub then also ends the session at the provider.""",
    )

    rp_initiated_logout = Bool(
        True,
        config=True,
        help="""Whether logging out of the hub sends the person on to the provider's
        ``end_session_endpoint`` (when it has one) with the id_token as hint, so that the next login
        asks for their credentials again. ``logout_redirect_url``, when set, wins.""",
    )

    post_logout_redirect_url = Unicode(
        "",
        config=True,
        help="""Where the provider sends people after logging them out (register it with the provider
        as a post-logout redirect URI). Empty: the hub's login page at the URL the request came to.""",
    )

    groups_claim = Unicode(
        "groups",
        config=True,
        help="""The claim (of the id_token or userinfo; a dotted path for a nested one, e.g.
        ``realm_access.roles``) whose value — a string or a list of strings — names the person's
        groups or roles at the provider; ``instructor_groups`` and ``admin_claim_groups`` are matched
        against it.""",
    )

    instructor_groups = Set(
        Unicode(),
        config=True,
        help="""Values of ``groups_claim`` that make someone an instructor (member of the hub group
        ``learnhub-instructors``, so they may create courses). Set: the provider decides that group's
        membership at every login (someone no longer in these groups is taken out). Empty: the group is
        left to admins.""",
    )

    admin_claim_groups = Set(
        Unicode(),
        config=True,
        help="""Values of ``groups_claim`` that make someone a hub admin. Set: the provider decides at
        every login (someone no longer in these groups stops being admin, unless they are in
        ``admin_users``). Named so because GenericOAuthenticator's own ``admin_groups`` needs
        ``manage_groups``, which would make the provider the source of every hub group, course groups
        included.""",
    )

    @default("username_claim")
    def _default_username_claim(self):
        return "preferred_username"

    @default("scope")
    def _default_scope(self):
        return ["openid", "profile", "email"]

    @default("login_service")
    def _default_login_service(self):
        return "your university"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._discovered_at: float | None = None
        self._metadata: dict = {}
        self._jwks: dict = {}
        self._jwks_at = 0.0
        # What discovery filled in (not what the configuration gave), so a later discovery updates it.
        self._from_discovery: set[str] = set()
        self._basic_auth_configured = "OAUTH2_BASIC_AUTH" in os.environ or any(
            "basic_auth" in self.config.get(section, {})
            for section in ("OAuthenticator", "GenericOAuthenticator", type(self).__name__))

    # -- discovery ---------------------------------------------------------------------------------

    async def discover(self) -> None:
        """Fill the endpoints the configuration left empty from the issuer's discovery document."""
        if not self.issuer or (self._discovered_at is not None
                               and time.monotonic() - self._discovered_at < self.discovery_ttl):
            return
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            metadata = await self.httpfetch(url, "Fetching the OpenID provider's discovery document",
                                            validate_cert=self.validate_server_cert)
        except Exception as exc:
            raise DiscoveryError(f"the OpenID provider's discovery document at {url} cannot be read: {exc}") from exc
        if not isinstance(metadata, dict) or metadata.get("issuer", "").rstrip("/") != self.issuer.rstrip("/"):
            # OIDC Discovery 1.0, 4.3: a document for another issuer must not be used.
            raise DiscoveryError(f"{url} is the discovery document of issuer {metadata.get('issuer')!r}"
                                 f", not of {self.issuer!r}" if isinstance(metadata, dict) else f"{url} is no JSON object")
        for trait, key in (("authorize_url", "authorization_endpoint"), ("token_url", "token_endpoint"),
                           ("userdata_url", "userinfo_endpoint"), ("end_session_url", "end_session_endpoint"),
                           ("jwks_url", "jwks_uri")):
            if metadata.get(key) and (not getattr(self, trait) or trait in self._from_discovery):
                setattr(self, trait, metadata[key])
                self._from_discovery.add(trait)
        if not self._basic_auth_configured:
            # How the client authenticates at the token endpoint: client_secret_basic when the provider
            # says nothing (OIDC Discovery 1.0, section 3), client_secret_post if it supports only that.
            methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            self.basic_auth = "client_secret_basic" in methods
        self._metadata = metadata
        self._discovered_at = time.monotonic()

    async def discover_or_fail(self) -> None:
        try:
            await self.discover()
        except DiscoveryError as exc:
            self.log.error("OIDC: %s", exc)
            raise web.HTTPError(503, "The identity provider cannot be reached; try again later.") from exc
        if not (self.authorize_url and self.token_url):
            raise web.HTTPError(500, "OIDC is not configured: set LearnhubOIDCAuthenticator.issuer, or "
                                     "authorize_url and token_url")

    # -- tokens and claims -------------------------------------------------------------------------

    async def _signing_key(self, kid: str | None, force: bool = False):
        if force or not self._jwks or time.monotonic() - self._jwks_at > self.discovery_ttl:
            self._jwks = await self.httpfetch(self.jwks_url, "Fetching the OpenID provider's keys",
                                              validate_cert=self.validate_server_cert)
            self._jwks_at = time.monotonic()
        for key in jwt.PyJWKSet.from_dict(self._jwks).keys:
            if kid is None or key.key_id == kid:
                return key
        if not force:
            # A key not seen yet: the provider rotated its keys since they were fetched.
            return await self._signing_key(kid, force=True)
        raise web.HTTPError(403, f"The id_token is signed with a key the provider does not publish ({kid})")

    async def verified_id_token(self, id_token: str) -> dict:
        """The claims of ``id_token`` once its signature, issuer, audience and expiry are checked."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise web.HTTPError(403, f"The provider's id_token is not a JWT: {exc}") from exc
        options = {"require": ["exp", "iat", "sub"]}
        try:
            if self.jwks_url:
                allowed = [alg for alg in self._metadata.get("id_token_signing_alg_values_supported",
                                                              ASYMMETRIC_ALGORITHMS) if alg in ASYMMETRIC_ALGORITHMS]
                if header.get("alg") not in allowed:
                    raise web.HTTPError(403, f"id_token signature algorithm {header.get('alg')!r} is not accepted")
                key = await self._signing_key(header.get("kid"))
                return jwt.decode(id_token, key=key.key, algorithms=allowed, audience=self.client_id,
                                  issuer=self.issuer or None, options=options, leeway=60)
            return jwt.decode(id_token, audience=self.client_id, leeway=60,
                              options=dict(options, verify_signature=False))
        except jwt.PyJWTError as exc:
            raise web.HTTPError(403, f"The provider's id_token is not valid: {exc}") from exc

    async def token_to_user(self, token_info):
        claims = {}
        if token_info.get("id_token"):
            claims = await self.verified_id_token(token_info["id_token"])
        if not self.userdata_url:
            if not claims:
                raise web.HTTPError(500, "The provider returned no id_token and has no userinfo endpoint")
            return claims
        user_info = await super().token_to_user(token_info)
        if claims and user_info.get("sub") != claims.get("sub"):
            # OIDC Core 5.3.2: userinfo about someone else must not be used.
            raise web.HTTPError(403, "The provider's userinfo is not about the person of the id_token")
        return {**claims, **user_info}

    def claimed_groups(self, user_info: dict) -> set[str]:
        try:
            value = reduce(lambda d, key: d.get(key) if isinstance(d, dict) else None,
                           self.groups_claim.split("."), user_info)
        except AttributeError:
            value = None
        if value is None:
            return set()
        if isinstance(value, str):
            return {value}
        if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
            return set(value)
        self.log.warning("OIDC claim %s is neither a string nor a list of strings: %s",
                         self.groups_claim, json.dumps(value)[:200])
        return set()

    async def update_auth_model(self, auth_model):
        auth_model = await super().update_auth_model(auth_model)
        user_info = (auth_model.get("auth_state") or {}).get(self.user_auth_state_key) or {}
        groups = self.claimed_groups(user_info)
        if self.admin_claim_groups and auth_model.get("name") not in self.admin_users:
            auth_model["admin"] = bool(groups & self.admin_claim_groups)
        if self.instructor_groups:
            auth_model["learnhub_instructor"] = bool(groups & self.instructor_groups)
        return auth_model

    async def refresh_user(self, user, handler=None, **kwargs):
        try:
            await self.discover()
        except DiscoveryError as exc:
            # The provider is away: keep the session rather than log everyone out.
            self.log.warning("OIDC: not refreshing %s: %s", user.name, exc)
            return True
        if self.enable_auth_state and user.name in self.admin_users and not await user.get_auth_state():
            # The admin account of `learnhub up` (admin_username) is an API account that never logs in
            # at the provider: there is nothing to refresh, and its token must keep working.
            return True
        refreshed = await super().refresh_user(user, handler, **kwargs)
        if isinstance(refreshed, dict) and refreshed.get("auth_state") is not None:
            # A refresh grant's answer need not carry an id_token (OIDC Core 12.2): keep the one of the
            # login, the hint RP-initiated logout sends.
            previous = await user.get_auth_state() or {}
            if not refreshed["auth_state"].get("id_token") and previous.get("id_token"):
                refreshed["auth_state"]["id_token"] = previous["id_token"]
        if isinstance(refreshed, dict) and "learnhub_instructor" in refreshed:
            # Claims are read again at every refresh: a person the provider no longer counts as
            # faculty stops being an instructor within auth_refresh_age, not at their next login.
            self.sync_instructor_group(user.db, user, refreshed["learnhub_instructor"])
        return refreshed

    # -- groups and logout -------------------------------------------------------------------------

    def sync_instructor_group(self, db, user, instructor: bool) -> None:
        """Put ``user`` in the instructors group, or take them out, as the provider's claim says."""
        group = orm.Group.find(db, INSTRUCTORS_GROUP)
        if group is None:
            group = orm.Group(name=INSTRUCTORS_GROUP)
            db.add(group)
        member = group in user.orm_user.groups
        if instructor and not member:
            user.orm_user.groups.append(group)
            self.log.info("OIDC: %s is an instructor (%s)", user.name, self.groups_claim)
        elif member and not instructor:
            user.orm_user.groups.remove(group)
            self.log.info("OIDC: %s is no longer an instructor (%s)", user.name, self.groups_claim)
        db.commit()

    def end_session_redirect(self, id_token: str | None, post_logout_redirect_uri: str) -> str:
        params = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token:
            params["id_token_hint"] = id_token
        separator = "&" if "?" in self.end_session_url else "?"
        return f"{self.end_session_url}{separator}{urlencode(params)}"
