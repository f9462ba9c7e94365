"""Caseworker sessions: a signed cookie that names the API key, never contains it.

The cookie holds `{"kid": key id, "sid": random session id}` signed with itsdangerous
(HMAC-SHA1 over a key derived from the settings, with a timestamp checked against the
session lifetime). Every request re-reads the key by id, so revoking the API key ends its
web sessions at once. The CSRF token of a form is an HMAC of the session id: it is bound to
this session, and a page on another site can neither read it nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.engine import Engine

from safetynet.config import Settings
from safetynet.db.tables import api_keys
from safetynet.serving.keys import Principal

COOKIE = "sn_cw_session"
ROLES = ("caseworker", "admin")  # platform keys are for machines, not for this page


def session_secret(settings: Settings) -> bytes:
    """The signing key: the configured one, else derived from the pseudonymization secret
    (a one-way derivation, so the cookie key never reveals the pseudonym key)."""
    if settings.caseworker_session_secret:
        return settings.caseworker_session_secret.encode()
    return hmac.new(settings.secret(), b"safetynet caseworker session v1", "sha256").digest()


@dataclass(frozen=True)
class Session:
    key_id: int
    sid: str


class SessionCodec:
    """Signs and checks session cookies and the CSRF tokens bound to them."""

    def __init__(self, secret: bytes, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="safetynet-caseworker-session")
        self._csrf_key = hmac.new(secret, b"csrf", "sha256").digest()
        self.max_age = int(max_age_seconds)

    def new(self, key_id: int) -> tuple[Session, str]:
        """A fresh session for `key_id` and its cookie value."""
        session = Session(key_id, secrets.token_urlsafe(18))
        return session, self._serializer.dumps({"kid": key_id, "sid": session.sid})

    def read(self, cookie: str | None) -> Session | None:
        """The session of a cookie value, or None if absent, forged or expired."""
        if not cookie:
            return None
        try:
            data: Any = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:  # also SignatureExpired
            return None
        if not (isinstance(data, dict) and isinstance(data.get("kid"), int)
                and isinstance(data.get("sid"), str)):
            return None
        return Session(data["kid"], data["sid"])

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), str(token))


def principal_by_id(engine: Engine, key_id: int) -> Principal | None:
    """The principal of an active (not revoked) key by its id.

    `safetynet.serving.keys` looks keys up by token only; a session knows just the id.
    """
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(api_keys.c.id, api_keys.c.role, api_keys.c.districts).where(
                api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    return Principal(int(row.id), row.role, frozenset(row.districts or []))
