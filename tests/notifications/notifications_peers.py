"""Helpers and fixtures of the notifications suite (imported by its test modules): the engine in-process
(an aiosmtpd SMTP server, recording HTTP servers for the SendGrid and Twilio SDKs)."""
from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography.fernet import Fernet

from learnhub.extensions.notifications.channels.inapp import InAppChannel
from learnhub.extensions.notifications.channels.sendgrid import SendGridChannel
from learnhub.extensions.notifications.channels.smtp import SMTPChannel
from learnhub.extensions.notifications.channels.twilio import TwilioChannel
from learnhub.extensions.notifications.crypto import ContactCipher
from learnhub.extensions.notifications.outbox import Outbox
from learnhub.extensions.notifications.preferences import PreferenceStore
from learnhub.extensions.notifications.sender import Sender
from learnhub.extensions.notifications.templating import Renderer


class RecordingServer:
    """A local stand-in for a provider's HTTP API: records every request, answers like the
    provider, fails on purpose (``fail_next`` 500s, or a fixed ``status``), and — like a provider
    that honours idempotency keys — keeps ``accepted`` deduplicated by the key header."""

    def __init__(self, kind: str, key_header: str, delay: float = 0.0):
        self.kind, self.key_header, self.delay = kind, key_header, delay
        self.requests: list[dict] = []
        self.accepted: dict[str, dict] = {}
        self.fail_next = 0
        self.received = 0  # requests that arrived, even if the client died before the answer
        self.status = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                record = {"path": self.path, "headers": dict(self.headers), "body": body}
                with server.lock:
                    server.received += 1
                if server.delay:
                    time.sleep(server.delay)
                with server.lock:
                    server.requests.append(record)
                    if server.fail_next > 0:
                        server.fail_next -= 1
                        return self._answer(500, {"message": "provider down"})
                    if server.status:
                        return self._answer(server.status, {"errors": [{"message": "bad request"}],
                                                            "code": 21211, "message": "invalid", "status": server.status})
                    key = self.headers.get(server.key_header, "")
                    server.accepted.setdefault(key, record)
                if server.kind == "twilio":
                    return self._answer(201, {"sid": "SM" + "0" * 32, "status": "queued", "body": "x"})
                self.send_response(202)
                self.send_header("X-Message-Id", "sg-1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _answer(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sendgrid_server():
    server = RecordingServer("sendgrid", "Idempotency-Key")
    yield server
    server.stop()


@pytest.fixture
def twilio_server():
    server = RecordingServer("twilio", "I-Twilio-Idempotency-Token")
    yield server
    server.stop()


class SMTPRecorder:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    recorder = SMTPRecorder()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    recorder.port = port
    yield recorder
    controller.stop()


KEY = Fernet.generate_key()
LOG = logging.getLogger("learnhub.notifications.engine-under-test")


class Engine:
    """The notifications engine wired as the service wires it, without the web."""

    def __init__(self, session_factory, channels, template_paths=None, **sender_traits):
        self.session_factory = session_factory
        self.cipher = ContactCipher(KEY)
        self.preferences = PreferenceStore(self.cipher)
        self.channels = channels
        self.outbox = Outbox(self.preferences, channels)
        # An explicit logger: without a parent, traitlets would log to whichever Application the
        # process created last (another test's), which need not propagate to pytest's capture.
        self.sender = Sender(session_factory, channels, self.preferences, Renderer(template_paths or []),
                             backoff_base_seconds=1, log=LOG, **sender_traits)

    def set_prefs(self, user, update):
        from learnhub.db import session_scope

        with session_scope(self.session_factory) as session:
            return self.preferences.update(session, user, update)

    def notify(self, *items):
        return self.outbox.add_many(self.session_factory, list(items))


@pytest.fixture
def make_engine(db_session_factory):
    def make(email="smtp", sms=True, smtp=None, sendgrid=None, twilio=None, **kwargs):
        channels = {"in_app": InAppChannel(log=LOG)}
        if email == "smtp" and smtp is not None:
            channels["email"] = SMTPChannel(host="127.0.0.1", port=smtp.port, timeout=5, log=LOG)
        elif email == "sendgrid" and sendgrid is not None:
            channels["email"] = SendGridChannel(api_key="SG.test", host=sendgrid.url, timeout=5, log=LOG)
        if sms and twilio is not None:
            channels["sms"] = TwilioChannel(account_sid="AC" + "1" * 32, auth_token="secret",
                                            from_number="+15550001111", base_url=twilio.url, timeout=5, log=LOG)
        return Engine(db_session_factory, channels, **kwargs)

    return make
