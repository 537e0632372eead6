"""Email over SMTP, for on-premises mail relays (``smtplib``)."""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from traitlets import Bool, Integer, Unicode

from . import Channel, OutgoingMessage, PermanentError, TransientError


class SMTPChannel(Channel):
    contact = "email"

    host = Unicode("", help="SMTP server host; empty disables email over SMTP.").tag(config=True)
    port = Integer(25, help="SMTP server port (587 with STARTTLS, 465 with implicit TLS).").tag(config=True)
    starttls = Bool(False, help="Upgrade the connection with STARTTLS before sending.").tag(config=True)
    use_ssl = Bool(False, help="Connect with implicit TLS (SMTPS, usually port 465).").tag(config=True)
    username = Unicode("", help="SMTP login user, if the server needs one.").tag(config=True)
    password = Unicode("", help="SMTP login password.").tag(config=True)
    from_address = Unicode("learnhub <no-reply@learnhub.local>", help="The From: header.").tag(config=True)
    message_id_domain = Unicode("learnhub", help="Domain part of the Message-ID built from the idempotency "
                                                 "key, so a receiver can drop a resent duplicate.").tag(config=True)

    @property
    def configured(self) -> bool:
        return bool(self.host)

    def build(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.to
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        # The same key gives the same Message-ID on a resend: mail systems dedupe on it.
        email["Message-ID"] = f"<{message.idempotency_key.replace(':', '.')}@{self.message_id_domain}>"
        email["X-Learnhub-Idempotency-Key"] = message.idempotency_key
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        return email

    def send(self, message: OutgoingMessage) -> str | None:
        email = self.build(message)
        try:
            cls = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
            with cls(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password)
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise TransientError(f"SMTP recipient temporarily refused ({codes})") from None
            raise PermanentError(f"SMTP recipient refused ({codes})") from None
        except smtplib.SMTPResponseException as exc:
            # Only the code: the server's text may quote the address.
            if 400 <= exc.smtp_code < 500:
                raise TransientError(f"SMTP temporary failure {exc.smtp_code}") from None
            raise PermanentError(f"SMTP permanent failure {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"SMTP server unreachable: {type(exc).__name__}") from None
        return email["Message-ID"]
