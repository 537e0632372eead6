"""The notifications service application: wiring of engine parts, routes and background loops."""
from __future__ import annotations

import asyncio
import os
import threading
from datetime import datetime, timedelta, timezone

from traitlets import Dict, Float, List, Type, Unicode, default

from jupyterhub.traitlets import EntryPointType

from learnhub.hubapi import PeerUnavailable
from learnhub.service import ServiceApp

from .channels import Channel
from .channels.inapp import InAppChannel
from .channels.smtp import SMTPChannel
from .channels.twilio import TwilioChannel
from .crypto import ContactCipher, load_or_create_key
from .handlers import (AnnouncementsHandler, DeadLetterRetryHandler, DeadLettersHandler, InAppBroker,
                       NotificationsHandler, PreferencesHandler, ReadHandler, StreamHandler)
from .outbox import Outbox
from .preferences import PreferenceStore
from .sender import Sender
from .templating import Renderer
from .triggers import (CoursesServiceDueDates, DueSoonScheduler, EventTriggers, HubGroupRecipients,
                       RecipientResolver)


class NotificationsService(ServiceApp):
    """In-app, email and SMS notifications with user preferences."""

    service_name = "notifications"
    description = __doc__

    channel_classes = Dict(
        value_trait=EntryPointType(klass=Channel, entry_point_group="learnhub.notification_channels"),
        help="""Channel name → channel class, like JupyterHub's spawner_class: a Channel subclass, its
        import string, or a ``learnhub.notification_channels`` entry point name (``in-app``, ``smtp``,
        ``sendgrid``, ``twilio``). The names are the preference channels: ``in_app``, ``email``, ``sms``.
        Email: smtp (configure ``c.SMTPChannel.host``) or sendgrid (``c.SendGridChannel.api_key``).
        SMS: twilio. A channel left unconfigured sends nothing. Set it in ``learnhub_config.py``, e.g.
        ``c.NotificationsService.channel_classes = {"in_app": "in-app", "email": "sendgrid"}``.""",
    ).tag(config=True)

    @default("channel_classes")
    def _default_channel_classes(self):
        return {"in_app": InAppChannel, "email": SMTPChannel, "sms": TwilioChannel}

    encryption_key = Unicode(
        help="""Fernet key (urlsafe base64, 32 bytes) for stored email addresses and phone numbers.
        Env: LEARNHUB_NOTIFICATIONS_KEY. If neither is set, learnhub's keys are used
        (c.LearnhubSettings.key_file, by default <data dir>-keys/contacts.key, outside the data dir;
        learnhub.secrets), which ``learnhub keys rotate`` rotates."""
    ).tag(config=True)

    template_paths = List(Unicode(), help="Directories searched before the built-in templates "
                                          "(to override <type>.subject.txt / .txt / .html).").tag(config=True)

    public_url = Unicode(help="The platform's public URL, for links in emails. Env: LEARNHUB_PUBLIC_URL.").tag(config=True)

    @default("public_url")
    def _default_public_url(self):
        import os

        return os.environ.get("LEARNHUB_PUBLIC_URL", "")

    recipient_resolver_class = Type(
        HubGroupRecipients, klass=RecipientResolver, allow_none=True,
        help="Who is in a course (for announcements, releases, due-soon reminders). The default reads "
             "the hub group course-<id>-learners with the service's token.").tag(config=True)

    trigger_interval = Float(5.0, help="Seconds between reads of the event log.").tag(config=True)
    due_soon_interval = Float(300.0, help="Seconds between due-soon scans.").tag(config=True)
    due_soon_window_hours = Float(24.0, help="Remind learners of assignments due within this many hours.").tag(config=True)
    first_run_lookback_hours = Float(1.0, help="On the very first start (no cursor yet), read only this much "
                                               "of the event log's past, so old events do not notify.").tag(config=True)
    event_settle_seconds = Float(2.0, help="Read only events stored at least this long ago (a concurrent "
                                           "writer's transaction may commit late).").tag(config=True)

    # -- engine -------------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def init_engine(self) -> None:
        self.cipher = ContactCipher(lambda: load_or_create_key(self.encryption_key, self.data_dir,
                                                               os.environ.get("LEARNHUB_KEY_FILE") or None))
        self.preference_store = PreferenceStore(self.cipher)
        self.channels = {name: cls(parent=self) for name, cls in self.channel_classes.items()}
        self.outbox = Outbox(self.preference_store, self.channels, on_enqueued=self.wake_sender)
        self.sender = Sender(self.session_factory, self.channels, self.preference_store,
                             Renderer(self.template_paths, self.public_url), parent=self)
        self.broker = InAppBroker()
        self.sender.listeners.append(self.broker.publish)
        if not hasattr(self, "recipients"):
            self.recipients = self.recipient_resolver_class(self.hub_api)
        self.triggers = EventTriggers(self.session_factory, self.outbox, self.recipients,
                                      settle_seconds=self.event_settle_seconds,
                                      first_run_lookback=timedelta(hours=self.first_run_lookback_hours))
        self.due_soon = DueSoonScheduler(self.session_factory, self.outbox,
                                         CoursesServiceDueDates(self.service_api("courses")),
                                         self.recipients, timedelta(hours=self.due_soon_window_hours))

    def wake_sender(self) -> None:
        self.sender.wake.set()

    def initialize(self, argv=None):
        super().initialize(argv)
        self.init_engine()

    def data_export(self, user: str) -> dict:
        from learnhub.db import session_scope

        from .data import NotificationsData

        with session_scope(self.session_factory) as session:
            return NotificationsData(session, self.preference_store).export(user)

    def data_erase(self, user: str, pseudonym: str) -> dict:
        from learnhub.db import session_scope

        from .data import NotificationsData

        with session_scope(self.session_factory) as session:
            return NotificationsData(session, self.preference_store).erase(user, pseudonym)

    # -- routes -------------------------------------------------------------------------------

    def api_handlers(self):
        return [
            (r"api/notifications", NotificationsHandler),
            (r"api/notifications/stream", StreamHandler),
            (r"api/notifications/(?P<notification_id>[^/]+)/read", ReadHandler),
            (r"api/preferences", PreferencesHandler),
            (r"api/courses/(?P<course_id>[^/]+)/announcements", AnnouncementsHandler),
            (r"api/dead-letters", DeadLettersHandler),
            (r"api/dead-letters/(?P<delivery_id>[^/]+)/retry", DeadLetterRetryHandler),
        ]

    def openapi_paths(self):
        error = {"$ref": "#/components/responses/Error"}
        auth = {"401": error, "403": error}
        prefs_body = {"content": {"application/json": {"schema": {"type": "object", "properties": {
            "channels": {"type": "object", "description": "type → {in_app, email, sms: bool}"},
            "email": {"type": "string", "nullable": True}, "phone": {"type": "string", "nullable": True},
            "quiet_hours": {"type": "object", "nullable": True,
                            "description": "{start: HH:MM, end: HH:MM, timezone: IANA name}"},
            "digest": {"type": "object", "description": "{enabled: bool, hour: 0-23}"}}}}}}
        return {
            "/api/notifications": {"get": {
                "summary": "The caller's in-app notifications, newest first",
                "parameters": [{"name": "unread", "in": "query", "schema": {"type": "string"}},
                               {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                               {"name": "cursor", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{items, next, unread}"}, "422": error, **auth}}},
            "/api/notifications/stream": {"get": {
                "summary": "WebSocket of the caller's new in-app notifications ({type: hello|notification})",
                "responses": {"101": {"description": "switching to WebSocket"}, **auth}}},
            "/api/notifications/{notification_id}/read": {"post": {
                "summary": "Mark one of the caller's notifications read",
                "parameters": [{"name": "notification_id", "in": "path", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "the notification"}, "404": error, **auth}}},
            "/api/preferences": {
                "get": {"summary": "The caller's notification preferences (contact details masked)",
                        "responses": {"200": {"description": "preferences"}, **auth}},
                "put": {"summary": "Change preferences (merged; invalid email/phone → 422 naming the field)",
                        "requestBody": prefs_body,
                        "responses": {"200": {"description": "preferences"}, "400": error, "422": error, **auth}}},
            "/api/courses/{course_id}/announcements": {"post": {
                "summary": "Announce to everyone enrolled (course instructors or admins)",
                "parameters": [{"name": "course_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                    "title": {"type": "string"}, "body": {"type": "string"}}, "required": ["title"]}}}},
                "responses": {"202": {"description": "{id, course_id, recipients}"}, "422": error,
                              "503": error, **auth}}},
            "/api/dead-letters": {"get": {
                "summary": "Deliveries that failed for good (admin or custom:learnhub:notifications:admin)",
                "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                            "maximum": 200}},
                               {"name": "cursor", "in": "query", "description": "the previous page's next",
                                "schema": {"type": "string"}}],
                "responses": {"200": {"description": "{items, next}"}, "422": error, **auth}}},
            "/api/dead-letters/{delivery_id}/retry": {"post": {
                "summary": "Queue a dead-lettered delivery again",
                "parameters": [{"name": "delivery_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"202": {"description": "queued"}, "404": error, **auth}}},
        }

    # -- background work ----------------------------------------------------------------------

    def reencrypt_contacts(self) -> int:
        """Move every stored address under the newest key (after ``learnhub keys rotate``)."""
        from learnhub.db import session_scope

        from .data import reencrypt_preferences

        with session_scope(self.session_factory) as session:
            return reencrypt_preferences(session, self.cipher)

    async def on_start(self) -> None:
        self.broker.loop = asyncio.get_running_loop()
        try:
            moved = await asyncio.get_running_loop().run_in_executor(None, self.reencrypt_contacts)
            if moved:
                self.log.info("re-encrypted %d preference row(s) under the newest key", moved)
        except Exception:
            self.log.exception("re-encrypting contact details failed (they stay readable with the old key)")
        self._stop = threading.Event()
        # The sender blocks on provider calls: it gets a thread of its own, not the event loop.
        self._sender_thread = threading.Thread(target=self.sender.run, args=(self._stop,),
                                               name="notifications-sender", daemon=True)
        self._sender_thread.start()
        self._tasks = [asyncio.create_task(self._every(self.trigger_interval, self.triggers.run_once)),
                       asyncio.create_task(self._every(self.due_soon_interval, self.due_soon.run_once))]

    async def _every(self, seconds: float, work) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(None, work)
            except PeerUnavailable as exc:  # another service starting or restarting: next round
                self.log.warning("%s: %s", getattr(work, "__qualname__", work), exc)
            except Exception:
                self.log.exception("%s failed", getattr(work, "__qualname__", work))
            await asyncio.sleep(seconds)

    async def on_stop(self) -> None:
        for task in getattr(self, "_tasks", []):
            task.cancel()
        if hasattr(self, "_stop"):
            self._stop.set()
            self.sender.wake.set()
            await asyncio.get_running_loop().run_in_executor(None, self._sender_thread.join, 30)
