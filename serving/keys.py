"""API keys: create, list, revoke, authenticate.

A key is `sn_` + 43 URL-safe characters (32 random bytes from `secrets`). Only its SHA-256
is stored. A slow password hash (bcrypt, scrypt) exists to stop guessing of low-entropy
human passwords; a 256-bit random token cannot be guessed, so a fast hash is enough and
keeps authentication cheap on the hot path (the same reasoning GitHub and Stripe tokens use).
Lookup is by the hash (unique index), so no timing comparison leaks anything about the key.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from safetynet.db.tables import api_keys

ROLES = ("platform", "caseworker", "admin")
KEY_PREFIX = "sn_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, role and (for caseworkers) assigned districts."""

    key_id: int
    role: str
    districts: frozenset[str] = field(default_factory=frozenset)

    def may_see(self, district: str | None) -> bool:
        """Platform and admin keys see every household; caseworkers only their districts."""
        return self.role != "caseworker" or (district is not None and district in self.districts)


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_key(
    engine: Engine, role: str, districts: list[str] | None = None, name: str | None = None
) -> tuple[int, str]:
    """Create a key; returns (id, token). The token is shown once and never stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    districts = sorted({d.strip() for d in (districts or []) if d.strip()})
    if role == "caseworker" and not districts:
        raise ValueError("a caseworker key needs at least one district (--districts D1,D2)")
    if role != "caseworker" and districts:
        raise ValueError("only caseworker keys are limited to districts")
    token = KEY_PREFIX + secrets.token_urlsafe(32)
    with engine.begin() as conn:
        key_id = conn.execute(
            api_keys.insert().values(
                name=name, role=role, districts=districts, key_hash=hash_key(token),
                prefix=token[:8], created_at=datetime.now(UTC),
            )
        ).inserted_primary_key[0]
    return int(key_id), token


def list_keys(engine: Engine) -> list[dict]:
    """All keys (without hashes), oldest first."""
    cols = [c for c in api_keys.c if c.name != "key_hash"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*cols).order_by(api_keys.c.id)).mappings().all()
    return [dict(r) for r in rows]


def revoke_key(engine: Engine, key_id: int) -> bool:
    """Revoke a key; False when no active key has that id."""
    with engine.begin() as conn:
        res = conn.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return res.rowcount == 1


def lookup(engine: Engine, token: str) -> Principal | None:
    """The principal of an active key, or None."""
    if not token.startswith(KEY_PREFIX) or len(token) > 100:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(api_keys.c.id, api_keys.c.role, api_keys.c.districts).where(
                api_keys.c.key_hash == hash_key(token), api_keys.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    return Principal(int(row.id), row.role, frozenset(row.districts or []))


class KeyCache:
    """Remembers checked keys for `ttl` seconds so a request does not always hit the database.

    A revocation takes effect within `ttl` seconds (0 disables the cache).
    """

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._hits: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> Principal | None:
        now = time.monotonic()
        hit = self._hits.get(token)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        principal = lookup(self.engine, token)
        if self.ttl > 0:
            with self._lock:
                if len(self._hits) > 10_000:  # unknown tokens must not grow memory without bound
                    self._hits.clear()
                self._hits[token] = (now, principal)
        return principal
