"""SMS through Twilio's Messages API, with the official ``twilio`` SDK."""
from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit, urlunsplit

import requests
from traitlets import Unicode
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from . import Channel, OutgoingMessage, PermanentError, TransientError, transient_for_status


# The SDK logs every request's URL and headers at INFO; ours must stay quiet (the URL is harmless,
# but nothing about a recipient belongs in the logs, so we keep the SDK at WARNING).
_sdk_logger = logging.getLogger("learnhub.notifications.twilio_sdk")
_sdk_logger.setLevel(logging.WARNING)


class LearnhubTwilioHttpClient(TwilioHttpClient):
    """The SDK's own HTTP client, plus two things: a base URL override (the SDK builds absolute
    ``https://api.twilio.com`` URLs; we swap scheme and host, keeping the path) and extra headers
    on every request (our idempotency key)."""

    def __init__(self, base_url: str = "", extra_headers: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")
        self.extra_headers = extra_headers or {}

    def request(self, method, url, params=None, data=None, headers=None, auth=None, timeout=None,
                allow_redirects=False):
        if self.base_url:
            base, target = urlsplit(self.base_url), urlsplit(url)
            url = urlunsplit((base.scheme, base.netloc, base.path + target.path, target.query, target.fragment))
        headers = {**(headers or {}), **self.extra_headers}
        return super().request(method, url, params=params, data=data, headers=headers, auth=auth,
                               timeout=timeout, allow_redirects=allow_redirects)


class TwilioChannel(Channel):
    contact = "phone"

    account_sid = Unicode("", help="Twilio account SID; empty disables SMS. Env: TWILIO_ACCOUNT_SID.").tag(config=True)
    auth_token = Unicode("", help="Twilio auth token. Env: TWILIO_AUTH_TOKEN.").tag(config=True)
    from_number = Unicode("", help="Sending number (E.164), unless a messaging service is set.").tag(config=True)
    messaging_service_sid = Unicode("", help="Twilio Messaging Service SID to send from.").tag(config=True)
    base_url = Unicode("", help="Override of https://api.twilio.com (a local server in tests).").tag(config=True)

    def _sid(self) -> str:
        return self.account_sid or os.environ.get("TWILIO_ACCOUNT_SID", "")

    def _token(self) -> str:
        return self.auth_token or os.environ.get("TWILIO_AUTH_TOKEN", "")

    @property
    def configured(self) -> bool:
        return bool(self._sid() and self._token() and (self.from_number or self.messaging_service_sid))

    def send(self, message: OutgoingMessage) -> str | None:
        # A client per message is cheap and carries this message's key on its requests.
        http = LearnhubTwilioHttpClient(base_url=self.base_url, timeout=self.timeout, logger=_sdk_logger,
                                        extra_headers={"I-Twilio-Idempotency-Token": message.idempotency_key})
        client = Client(self._sid(), self._token(), http_client=http)
        kwargs = {"to": message.to, "body": message.text[:1600]}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        try:
            sent = client.messages.create(**kwargs)
        except TwilioRestException as exc:
            if transient_for_status(exc.status):
                raise TransientError(f"Twilio answered {exc.status}") from None
            raise PermanentError(f"Twilio refused the message: {exc.status} code {exc.code}") from None
        except (requests.RequestException, TwilioException, OSError) as exc:
            raise TransientError(f"Twilio unreachable: {type(exc).__name__}") from None
        return sent.sid
