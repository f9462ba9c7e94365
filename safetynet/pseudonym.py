"""Keyed pseudonyms (HMAC-SHA-256) for resident IDs and household numbers.

The feature store holds only pseudonyms. The same secret always gives the same
pseudonym, so deliveries link across time; without the secret a pseudonym cannot be
reversed or recomputed from a guessed ID number.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

PSEUDONYM_CHARS = 20  # 80 bits: collision odds ~1e-8 at ten million households
_BLOCK = 64  # SHA-256 block size in bytes


def pseudonym(secret: bytes, kind: str, value: str) -> str:
    """Pseudonym of one value; `kind` ('person' or 'household') separates the two key spaces."""
    msg = f"{kind}:{value}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def pseudonymize(secret: bytes, kind: str, values: pd.Series) -> pd.Series:
    """Pseudonyms for a column; each distinct value is hashed once. NA stays NA.

    The same HMAC as `pseudonym` (RFC 2104), with the keyed inner and outer SHA-256 states
    and the `kind:` prefix computed once instead of once per value (docs/ingest.md,
    Performance).
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    key = secret if len(secret) <= _BLOCK else hashlib.sha256(secret).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner0 = hashlib.sha256(bytes(b ^ 0x36 for b in key) + f"{kind}:".encode())
    outer0 = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    out: list = []
    for v in uniques.tolist():  # plain str objects: iterating a StringArray is slow
        inner = inner0.copy()
        inner.update(f"{v}".encode())  # as `pseudonym` formats it
        outer = outer0.copy()
        outer.update(inner.digest())
        out.append(outer.hexdigest()[:PSEUDONYM_CHARS])
    hashed = pd.array([*out, pd.NA], dtype="string")
    return pd.Series(hashed[codes], index=values.index, dtype="string")
