"""Kill a real sender process with SIGKILL in the middle of a batch: nothing lost, nothing doubled."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from learnhub.db import session_scope
from learnhub.extensions.notifications.models import Delivery, Notification
from learnhub.extensions.notifications.outbox import NewNotification

import notifications_peers as peers
from notifications_peers import make_engine, sendgrid_server  # noqa: F401  (fixtures)

SENDER_SCRIPT = textwrap.dedent("""
    import sys, threading
    from learnhub import db
    from learnhub.extensions.notifications.channels.inapp import InAppChannel
    from learnhub.extensions.notifications.channels.sendgrid import SendGridChannel
    from learnhub.extensions.notifications.crypto import ContactCipher
    from learnhub.extensions.notifications.preferences import PreferenceStore
    from learnhub.extensions.notifications.sender import Sender

    url, sendgrid_url, key = sys.argv[1:4]
    factory = db.make_session_factory(db.make_engine(url))
    channels = {"in_app": InAppChannel(), "email": SendGridChannel(api_key="SG.k", host=sendgrid_url, timeout=5)}
    sender = Sender(factory, channels, PreferenceStore(ContactCipher(key.encode())), batch_size=5, lease_seconds=2)
    print("ready", flush=True)
    sender.run(threading.Event())
""")


def test_sigkill_mid_batch_loses_nothing_and_doubles_nothing(make_engine, sendgrid_server, db_url, tmp_path):
    engine = make_engine(email="sendgrid", sendgrid=sendgrid_server, lease_seconds=2)
    users = [f"learner{i:02d}" for i in range(20)]
    for user in users:
        engine.set_prefs(user, {"email": f"{user}@example.org", "channels": {"announcement": {"email": True}}})
    engine.notify(*[NewNotification(u, "announcement", "Hello", "text", "py101", {"author": "t"}) for u in users])
    sendgrid_server.delay = 0.15  # a slow provider, so the kill lands inside a provider call
    script = tmp_path / "sender.py"
    script.write_text(SENDER_SCRIPT)
    process = subprocess.Popen([sys.executable, str(script), db_url, sendgrid_server.url, peers.KEY.decode()],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        # Kill while the 8th email is inside the provider call (received, not yet answered).
        while sendgrid_server.received < 8 and time.monotonic() < deadline:
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    time.sleep(0.3)  # the provider finishes the request that was in flight at the kill (and accepts it)
    assert 8 <= len(sendgrid_server.requests) < 20, "the kill should land mid-batch"
    with session_scope(engine.session_factory) as session:
        assert session.scalar(select(Delivery.id).where(Delivery.status == "sending")) is not None

    # A new sender takes over once the dead one's leases expire.
    sendgrid_server.delay = 0
    now = datetime.now(timezone.utc) + timedelta(seconds=3)
    while engine.sender.run_once(now):
        pass

    with session_scope(engine.session_factory) as session:
        statuses = session.execute(select(Delivery.channel, Delivery.status)).all()
        visible = session.scalars(select(Notification.user_name).where(Notification.in_app_at.is_not(None))).all()
    assert sorted(statuses) == sorted([("email", "sent")] * 20 + [("in_app", "sent")] * 20)  # nothing lost
    assert sorted(visible) == users  # in-app: exactly once, by construction
    # The provider accepted each message once (it dedupes on the idempotency key we send) ...
    assert len(sendgrid_server.accepted) == 20
    recipients = [r["body"] for r in sendgrid_server.accepted.values()]
    assert all(any(f"{u}@example.org" in body for body in recipients) for u in users)
    # ... and at most the one request in flight at the kill was sent twice (the documented window).
    assert len(sendgrid_server.requests) <= 21
