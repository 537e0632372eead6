"""Email through SendGrid's v3 API, with the official ``sendgrid`` SDK."""
from __future__ import annotations

import logging
import urllib.error

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail
from traitlets import Unicode

from . import Channel, OutgoingMessage, PermanentError, TransientError, transient_for_status

# python_http_client logs request payloads (recipient addresses) at DEBUG: never let it.
logging.getLogger("python_http_client").setLevel(logging.INFO)


class SendGridChannel(Channel):
    contact = "email"

    api_key = Unicode("", help="SendGrid API key; empty disables this channel. "
                               "Env: SENDGRID_API_KEY.").tag(config=True)
    host = Unicode("https://api.sendgrid.com", help="SendGrid API base URL (the SDK's ``host``: "
                                                    "the EU region, or a local server in tests).").tag(config=True)
    from_address = Unicode("no-reply@learnhub.local", help="Verified sender address.").tag(config=True)

    def _api_key(self) -> str:
        import os

        return self.api_key or os.environ.get("SENDGRID_API_KEY", "")

    @property
    def configured(self) -> bool:
        return bool(self._api_key())

    def send(self, message: OutgoingMessage) -> str | None:
        client = SendGridAPIClient(api_key=self._api_key(), host=self.host)
        client.client.timeout = self.timeout
        mail = Mail(from_email=self.from_address, to_emails=message.to, subject=message.subject,
                    plain_text_content=message.text, html_content=message.html or None)
        # SendGrid has no request idempotency; the key travels with the message (webhooks echo it)
        # and as a header, so a dedupe-capable relay can honour it.
        mail.custom_arg = CustomArg("idempotency_key", message.idempotency_key)
        try:
            response = client.client.mail.send.post(request_body=mail.get(),
                                                    request_headers={"Idempotency-Key": message.idempotency_key})
        except HTTPError as exc:
            if transient_for_status(exc.status_code):
                raise TransientError(f"SendGrid answered {exc.status_code}") from None
            raise PermanentError(f"SendGrid refused the message: {exc.status_code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise TransientError(f"SendGrid unreachable: {type(exc).__name__}") from None
        return response.headers.get("X-Message-Id") if response.headers else None
