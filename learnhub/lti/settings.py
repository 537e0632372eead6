"""LTI settings, read from ``learnhub_config.py`` (``c.LtiSettings.*``) by the hub and the courses service."""
from __future__ import annotations

from traitlets import Bool, Dict, Float, Integer, List, Unicode
from traitlets.config import Configurable


class LtiSettings(Configurable):
    """How learnhub acts as an LTI 1.3 tool."""

    platforms = List(
        Dict(),
        help="""LMS registrations, each a dict with ``issuer``, ``client_id``, ``auth_login_url`` (the LMS's
        OIDC authorization endpoint), ``auth_token_url`` (its OAuth2 token endpoint), ``jwks_url`` (its public
        keys), ``deployment_ids`` (list; the deployments of this tool allowed to launch), and optionally
        ``name`` and ``token_audience`` (the ``aud`` its token endpoint expects in client assertions, when not
        its URL). Written to the database at every hub start; more can be added by admins through
        ``POST /services/courses/api/lti/platforms``.""",
    ).tag(config=True)

    username_claim = Unicode(
        "sub",
        help="""The id_token claim whose value becomes the learnhub user name: ``sub`` (the LMS's stable user
        id, the default), ``email``, ``preferred_username``, or a claim URI such as
        ``https://purl.imsglobal.org/spec/lti/claim/lis#person_sourcedid`` (claim#member). The value is
        lower-cased and characters a hub name cannot hold become ``-``. With several LMSs, choose a claim
        that is unique across them (``email``) or give each platform a ``username_prefix``.""",
    ).tag(config=True)

    create_courses = Bool(
        True,
        help="""Whether an instructor's first launch from an LMS course that is not yet linked creates a
        learnhub course for it (False: the launch is refused until the LMS placement names an existing
        course with the custom parameter ``learnhub_course``).""",
    ).tag(config=True)

    nonce_ttl = Float(600.0, help="Seconds a login initiation's state and nonce stay valid for the launch.").tag(config=True)

    clock_leeway = Float(
        60.0, help="Seconds of clock difference with an LMS accepted when checking an id_token's iat/exp."
    ).tag(config=True)

    http_timeout = Float(15.0, help="Seconds to wait for an LMS's JWKS, token, NRPS and AGS endpoints.").tag(config=True)

    score_max_attempts = Integer(
        8,
        help="""Attempts at posting one score to an LMS before it is marked ``failed`` (visible to the course's
        instructors at ``GET /services/courses/api/courses/<id>/lti/scores``, who may retry it).""",
    ).tag(config=True)

    score_retry_seconds = Float(
        5.0, help="Seconds before the first retry of a score the LMS refused or did not answer; doubled each time."
    ).tag(config=True)

    score_retry_max_seconds = Float(900.0, help="Longest wait between two attempts at one score.").tag(config=True)

    outbox_interval = Float(
        1.0, help="Seconds between two runs of the score outbox (new graded events in, due scores out)."
    ).tag(config=True)

    roster_sync_interval = Float(
        0.0, help="Seconds between two scheduled roster syncs (NRPS) of every linked context; 0: only on request."
    ).tag(config=True)

    extra_roles = Dict(
        help="""More LTI role names (the part after ``#`` or the last path segment of a role URI) mapped to a
        learnhub course role, on top of Learner→learner, TeachingAssistant→ta, Instructor→instructor,
        Administrator→instructor, e.g. ``{"Mentor": "ta"}``.""",
    ).tag(config=True)
