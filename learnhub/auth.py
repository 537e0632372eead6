"""Authentication pieces the hub uses in the embedded default."""
from __future__ import annotations

import json
from pathlib import Path

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import LoginHandler as NativeLoginHandler
from traitlets import Unicode


class _NullTimer:
    def start(self):
        return self

    def stop(self, send=True):
        return None

    def send(self):
        return None

    @property
    def ms(self):
        return 0.0


class _NullStatsd:
    def timer(self, _name):
        return _NullTimer()

    def incr(self, *_args, **_kwargs):
        return None


class LoginHandler(NativeLoginHandler):
    """NativeAuthenticator's login form, runnable on JupyterHub 6.

    NativeAuthenticator 1.3 (its newest release) times logins with the handler's
    ``statsd`` client, which JupyterHub 6 removed; without one every login fails with 500.
    """

    @property
    def statsd(self):
        return getattr(super(), "statsd", None) or _NullStatsd()


class LearnhubNativeAuthenticator(NativeAuthenticator):
    """NativeAuthenticator that creates the first admin account itself.

    ``learnhub up`` writes the admin's username and a generated password to
    ``bootstrap_credentials_file`` before the hub starts; on start this
    authenticator registers that account (once: it never changes an existing one),
    so a new platform can be administered without anyone racing for the admin name
    at /hub/signup.
    """

    bootstrap_credentials_file = Unicode(
        "",
        config=True,
        help="JSON file with the admin's `username` and `password` to register if missing.",
    )

    def get_handlers(self, app):
        return [(route, LoginHandler if handler is NativeLoginHandler else handler)
                for route, handler in super().get_handlers(app)]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._bootstrapping = False
        self._bootstrap_admin()

    def create_user(self, username, password, **kwargs):
        info = super().create_user(username, password, **kwargs)
        # NativeAuthenticator authorizes anyone who signs up under a name in admin_users at once:
        # whoever came first would be an admin (LearnhubSettings.admin_users). Such a sign-up waits
        # for an admin's approval at /hub/authorize instead, whatever open_signup says.
        if info is not None and not self._bootstrapping and info.username in self.admin_users:
            info.is_authorized = False
            self.db.commit()
            self.log.info("Sign-up of admin name %s waits for an admin's approval", info.username)
        return info

    def _bootstrap_admin(self) -> None:
        path = Path(self.bootstrap_credentials_file) if self.bootstrap_credentials_file else None
        if path is None or not path.is_file():
            return
        credentials = json.loads(path.read_text())
        username = self.normalize_username(credentials["username"])
        if self.user_exists(username):
            return
        # create_user refuses (returns None) when sign-up is closed or the password is
        # weak; the admin account must exist whatever the sign-up policy is.
        enable_signup, self.enable_signup = self.enable_signup, True
        self._bootstrapping = True
        try:
            info = self.create_user(username, credentials["password"])
        finally:
            self.enable_signup = enable_signup
            self._bootstrapping = False
        if info is None:
            raise RuntimeError(f"could not register the admin account {username!r} from {path}")
        info.is_authorized = True
        self.db.commit()
        self.log.info("Registered the admin account %s", username)
