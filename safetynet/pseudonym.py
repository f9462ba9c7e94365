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


def pseudonym(secret: bytes, kind: str, value: str) -> str:
    """Pseudonym of one value; `kind` ('person' or 'household') separates the two key spaces."""
    msg = f"{kind}:{value}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()[:PSEUDONYM_CHARS]


def pseudonymize(secret: bytes, kind: str, values: pd.Series) -> pd.Series:
    """Pseudonyms for a column; each distinct value is hashed once. NA stays NA."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    hashed = pd.array([pseudonym(secret, kind, v) for v in uniques] + [pd.NA], dtype="string")
    return pd.Series(hashed[codes], index=values.index, dtype="string")
