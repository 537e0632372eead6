"""What the notifications service holds about one person — export and erasure (``api/data/*``). No web code.

Erased: their notifications and every delivery of them (whose errors may quote an address), their
preferences with the encrypted email address and phone number. Pseudonymised: where others'
notifications name them (the author of an announcement).
"""
from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from learnhub import erasures
from learnhub.data_rights import mentions, replace_name
from learnhub.timeutil import iso

from .models import Delivery, Notification, Preference
from .preferences import PreferenceStore


def _row(obj) -> dict:
    return {c.key: (iso(v) if hasattr(v, "tzinfo") else v) for c in obj.__table__.columns
            for v in [getattr(obj, c.key)]}


class NotificationsData:
    def __init__(self, session: Session, preferences: PreferenceStore):
        self.session = session
        self.preferences = preferences

    def export(self, user: str) -> dict:
        s = self.session
        notes = s.scalars(select(Notification).where(Notification.user_name == user)
                          .order_by(Notification.created_at)).all()
        ids = [n.id for n in notes]
        deliveries = s.scalars(select(Delivery).where(Delivery.notification_id.in_(ids))).all() if ids else []
        prefs = None
        if s.get(Preference, user) is not None:
            loaded = self.preferences.load(s, user)
            # The person's own addresses, decrypted: the export is theirs.
            prefs = {"settings": loaded.settings, "email": loaded.email, "phone": loaded.phone}
        return {"data": {"notifications": [_row(n) for n in notes], "deliveries": [_row(d) for d in deliveries],
                         "preferences": prefs}, "files": []}

    def erase(self, user: str, pseudonym: str) -> dict:
        s = self.session
        # A notification being queued for them now (from an event read before their erasure) commits
        # first and is deleted below, or is queued after this commits and finds their tombstone
        # (learnhub.erasures, Outbox.add). On SQLite the first statement, a write, takes the write lock.
        erasures.exclude_writers(s, "notifications")
        theirs = select(Notification.id).where(Notification.user_name == user)
        erased = {"notification_deliveries": s.execute(delete(Delivery).where(Delivery.notification_id.in_(theirs))
                                                       .execution_options(synchronize_session=False)).rowcount}
        erased["notifications"] = s.execute(delete(Notification).where(Notification.user_name == user)).rowcount
        erased["notification_preferences"] = s.execute(delete(Preference).where(Preference.user_name == user)).rowcount
        pseudonymised = {"notifications": 0}
        for note in s.scalars(select(Notification).where(mentions(Notification.data, user))):
            value, changed = replace_name(note.data, user, pseudonym)
            if changed:
                note.data = value
                pseudonymised["notifications"] += 1
        return {"erased": erased, "pseudonymised": pseudonymised}


def reencrypt_preferences(session: Session, cipher) -> int:
    """Every address not under the newest key re-encrypted under it; returns rows changed."""
    changed = 0
    for row in session.scalars(select(Preference).where(
            Preference.email_ciphertext.is_not(None) | Preference.phone_ciphertext.is_not(None))):
        email, phone = cipher.reencrypt(row.email_ciphertext), cipher.reencrypt(row.phone_ciphertext)
        if email:
            row.email_ciphertext = email
        if phone:
            row.phone_ciphertext = phone
        changed += bool(email or phone)
    return changed
