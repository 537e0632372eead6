"""Tables of LTI 1.3 (migration ``0013_lti``)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from learnhub.db import Base
from learnhub.models import new_id
from learnhub.timeutil import utcnow


class LtiPlatform(Base):
    """One LMS registration: the issuer and the client id the LMS gave this tool, its endpoints, and the
    deployments of the tool on it that may launch (an issuer can hold several client ids)."""

    __tablename__ = "lti_platforms"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    auth_login_url: Mapped[str] = mapped_column(String(1024))
    auth_token_url: Mapped[str] = mapped_column(String(1024))
    jwks_url: Mapped[str] = mapped_column(String(1024))
    #: the token endpoint's audience for client assertions when it differs from its URL (Moodle, Canvas)
    token_audience: Mapped[str] = mapped_column(String(1024), default="")
    deployment_ids: Mapped[list] = mapped_column(JSON, default=list)
    #: put before every user name from this platform (keeps two LMSs' ``sub`` values apart)
    username_prefix: Mapped[str] = mapped_column(String(64), default="")
    #: "config" (from learnhub_config.py, rewritten at each hub start) or "api"
    source: Mapped[str] = mapped_column(String(16), default="api")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("issuer", "client_id", name="uq_lti_platform"),)


class LtiNonce(Base):
    """A login initiation's state and nonce: a launch must bring both back, once, before they expire."""

    __tablename__ = "lti_nonces"

    state: Mapped[str] = mapped_column(String(128), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), unique=True)
    platform_id: Mapped[str] = mapped_column(String(36))
    target_link_uri: Mapped[str] = mapped_column(String(1024), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LtiContext(Base):
    """An LMS course (an LTI context of one deployment) and the learnhub course it is linked to, with the
    service endpoints its launches announced (NRPS, AGS) and which score counts for the gradebook."""

    __tablename__ = "lti_contexts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    platform_id: Mapped[str] = mapped_column(String(36))
    deployment_id: Mapped[str] = mapped_column(String(255))
    context_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(300), default="")
    course_id: Mapped[str] = mapped_column(String(128))
    memberships_url: Mapped[str] = mapped_column(String(1024), default="")
    lineitems_url: Mapped[str] = mapped_column(String(1024), default="")
    ags_scopes: Mapped[list] = mapped_column(JSON, default=list)
    #: "latest" or "best": which of a learner's graded submissions the gradebook shows
    score_policy: Mapped[str] = mapped_column(String(16), default="latest")
    last_roster_sync: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (UniqueConstraint("platform_id", "deployment_id", "context_id", name="uq_lti_context"),
                      Index("ix_lti_contexts_course", "course_id"))


class LtiMember(Base):
    """A person of an LTI context as the LMS knows them: their LTI ``sub``, their learnhub name, and
    whether the LMS still lists them (``inactive`` after a roster sync no longer does; never deleted)."""

    __tablename__ = "lti_members"

    context_pk: Mapped[str] = mapped_column(String(36), primary_key=True)
    sub: Mapped[str] = mapped_column(String(255), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_lti_members_user", "context_pk", "user_name"),)


class LtiLineItem(Base):
    """The LMS gradebook column of one assignment in one context: created once, found again by its
    ``resourceId`` if learnhub lost track of it, never created twice."""

    __tablename__ = "lti_line_items"

    context_pk: Mapped[str] = mapped_column(String(36), primary_key=True)
    assignment_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    url: Mapped[str] = mapped_column(String(1024))
    score_maximum: Mapped[float] = mapped_column(Float, default=100.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LtiScore(Base):
    """The outbox of grade passback: one row per graded submission (the ``graded`` event's id), written
    in the transaction that reads the event, delivered to the LMS with retries."""

    __tablename__ = "lti_scores"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    context_pk: Mapped[str] = mapped_column(String(36))
    course_id: Mapped[str] = mapped_column(String(128))
    assignment_id: Mapped[str] = mapped_column(String(128))
    user_name: Mapped[str] = mapped_column(String(255))
    sub: Mapped[str] = mapped_column(String(255))
    score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    graded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: "pending" (to send), "sent", or "failed" (gave up after max attempts; an instructor may retry)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: what was posted (the score after the context's policy), for the instructor's view
    posted: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_lti_scores_due", "status", "next_attempt_at"),
                      Index("ix_lti_scores_course", "course_id", "assignment_id"))
