"""Notification preferences: validation, storage, and the questions the outbox and sender ask.

Settings document (what ``GET/PUT api/preferences`` speak)::

    {"channels": {"feedback_ready": {"in_app": true, "email": true, "sms": false}, ...},
     "email": "ada@example.org", "phone": "+441234567890",
     "quiet_hours": {"start": "22:00", "end": "07:00", "timezone": "Europe/London"} | null,
     "digest": {"enabled": false, "hour": 8}}

``PUT`` merges: keys left out keep their value; ``"email": null`` removes the address.
Contact details are stored encrypted and shown back masked.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from .crypto import ContactCipher, mask_email, mask_phone
from .models import Preference

TYPES = ("feedback_ready", "assignment_released", "due_soon", "help_answered", "recommendations",
         "announcement")
CHANNELS = ("in_app", "email", "sms")

# Deliberately simple: the provider is the final judge; this catches typos and garbage.
EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
PHONE_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")  # E.164, as Twilio wants it
HHMM_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class PreferenceError(ValueError):
    """Invalid preferences; ``field`` names what to fix."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def default_settings() -> dict:
    # In-app on for everything; email and SMS only when the user asks (and gives an address).
    return {"channels": {t: {"in_app": True, "email": False, "sms": False} for t in TYPES},
            "quiet_hours": None, "digest": {"enabled": False, "hour": 8}}


def validate_email(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 254 or not EMAIL_RE.match(value.strip()):
        raise PreferenceError("email", "Not a valid email address (expected name@domain.tld).")
    return value.strip()


def validate_phone(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PreferenceError("phone", "Phone number must be a string in E.164 form, e.g. +441234567890.")
    compact = re.sub(r"[\s().-]", "", value)
    if not PHONE_RE.match(compact):
        raise PreferenceError("phone", "Not a valid phone number: use E.164 form, e.g. +441234567890.")
    return compact


def merge_settings(current: dict, update: dict) -> dict:
    """``current`` with ``update`` applied, validated; contact fields are not handled here."""
    if not isinstance(update, dict):
        raise PreferenceError("body", "Preferences must be a JSON object.")
    unknown = set(update) - {"channels", "quiet_hours", "digest", "email", "phone"}
    if unknown:
        raise PreferenceError(sorted(unknown)[0], f"Unknown preference {sorted(unknown)[0]!r}.")
    settings = copy.deepcopy(current)
    if "channels" in update:
        channels = update["channels"]
        if not isinstance(channels, dict):
            raise PreferenceError("channels", "channels must map notification type to {channel: bool}.")
        for type_, choice in channels.items():
            if type_ not in TYPES:
                raise PreferenceError(f"channels.{type_}", f"Unknown notification type; use one of {list(TYPES)}.")
            if not isinstance(choice, dict):
                raise PreferenceError(f"channels.{type_}", "Expected {channel: true|false}.")
            for channel, on in choice.items():
                if channel not in CHANNELS:
                    raise PreferenceError(f"channels.{type_}.{channel}",
                                          f"Unknown channel; use one of {list(CHANNELS)}.")
                if not isinstance(on, bool):
                    raise PreferenceError(f"channels.{type_}.{channel}", "Expected true or false.")
                settings["channels"][type_][channel] = on
    if "quiet_hours" in update:
        quiet = update["quiet_hours"]
        if quiet is not None:
            if not isinstance(quiet, dict):
                raise PreferenceError("quiet_hours", "quiet_hours must be null or {start, end, timezone}.")
            for key in ("start", "end"):
                if not isinstance(quiet.get(key), str) or not HHMM_RE.match(quiet[key]):
                    raise PreferenceError(f"quiet_hours.{key}", "Expected a time as HH:MM (24 h).")
            tz = quiet.get("timezone", "UTC")
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError, TypeError):
                raise PreferenceError("quiet_hours.timezone", "Unknown time zone; use an IANA name like Europe/Paris.")
            quiet = {"start": quiet["start"], "end": quiet["end"], "timezone": tz}
        settings["quiet_hours"] = quiet
    if "digest" in update:
        digest = update["digest"]
        if not isinstance(digest, dict):
            raise PreferenceError("digest", "digest must be {enabled: bool, hour: 0-23}.")
        enabled = digest.get("enabled", settings["digest"]["enabled"])
        hour = digest.get("hour", settings["digest"]["hour"])
        if not isinstance(enabled, bool):
            raise PreferenceError("digest.enabled", "Expected true or false.")
        if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
            raise PreferenceError("digest.hour", "Expected an hour from 0 to 23.")
        settings["digest"] = {"enabled": enabled, "hour": hour}
    return settings


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(settings: dict, now: datetime) -> datetime | None:
    """If ``now`` falls in the user's quiet hours, when they end (UTC); else None."""
    quiet = settings.get("quiet_hours")
    if not quiet:
        return None
    tz = ZoneInfo(quiet.get("timezone") or "UTC")
    local = now.astimezone(tz)
    start, end = _hhmm(quiet["start"]), _hhmm(quiet["end"])
    if start == end:
        return None
    t = local.time()
    if start < end:
        inside = start <= t < end
        end_day = local.date()
    else:  # spans midnight, e.g. 22:00-07:00
        inside = t >= start or t < end
        end_day = local.date() + timedelta(days=1) if t >= start else local.date()
    if not inside:
        return None
    ends = datetime.combine(end_day, end, tzinfo=tz)
    return ends.astimezone(timezone.utc)


def next_digest_time(settings: dict, now: datetime) -> datetime:
    """The next time the user's daily digest goes out (UTC)."""
    quiet = settings.get("quiet_hours") or {}
    tz = ZoneInfo(quiet.get("timezone") or "UTC")
    local = now.astimezone(tz)
    at = datetime.combine(local.date(), time(settings["digest"]["hour"]), tzinfo=tz)
    if at <= local:
        at += timedelta(days=1)
    return at.astimezone(timezone.utc)


@dataclass
class UserPreferences:
    user_name: str
    settings: dict
    email: str | None
    phone: str | None

    def wants(self, type_: str, channel: str) -> bool:
        return bool(self.settings["channels"].get(type_, {}).get(channel, False))

    def contact(self, kind: str | None) -> str | None:
        return {"email": self.email, "phone": self.phone}.get(kind) if kind else None

    def public(self) -> dict:
        """The API's view: settings plus masked contact details."""
        return {**copy.deepcopy(self.settings), "email": mask_email(self.email), "phone": mask_phone(self.phone)}


class PreferenceStore:
    """Read and write preferences; knows the cipher, not the web."""

    def __init__(self, cipher: ContactCipher):
        self.cipher = cipher

    def load(self, session: Session, user_name: str) -> UserPreferences:
        row = session.get(Preference, user_name)
        settings = default_settings()
        if row is None:
            return UserPreferences(user_name, settings, None, None)
        # Merge over defaults, so a type added later gets its default choice.
        for type_, choice in (row.settings or {}).get("channels", {}).items():
            if type_ in settings["channels"]:
                settings["channels"][type_].update({c: v for c, v in choice.items() if c in CHANNELS})
        for key in ("quiet_hours", "digest"):
            if key in (row.settings or {}):
                settings[key] = row.settings[key]
        return UserPreferences(user_name, settings, self.cipher.decrypt(row.email_ciphertext),
                               self.cipher.decrypt(row.phone_ciphertext))

    def update(self, session: Session, user_name: str, update: dict) -> UserPreferences:
        """Validate and store ``update``; raises :class:`PreferenceError` (nothing stored) if invalid."""
        current = self.load(session, user_name)
        settings = merge_settings(current.settings, update)
        email = validate_email(update["email"]) if "email" in update else current.email
        phone = validate_phone(update["phone"]) if "phone" in update else current.phone
        row = session.get(Preference, user_name)
        if row is None:
            row = Preference(user_name=user_name)
            session.add(row)
        row.settings = settings
        row.email_ciphertext = self.cipher.encrypt(email)
        row.phone_ciphertext = self.cipher.encrypt(phone)
        row.updated_at = datetime.now(timezone.utc)
        session.flush()
        return UserPreferences(user_name, settings, email, phone)
