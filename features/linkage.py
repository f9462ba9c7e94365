"""Resident-ID normalization and pseudonyms, computed once per distinct value.

Department files repeat the same person many times (36 monthly contribution rows each), so
IDs are normalized and hashed on the distinct values only and joined back in DuckDB.
"""

from __future__ import annotations

import pandas as pd

from safetynet.ids import normalize_series_legacy
from safetynet.pseudonym import pseudonymize

ID_DETAILS = {  # reason -> ledger detail (the ID itself is personal and never recorded)
    "missing_id": "resident ID is empty",
    "malformed_id": "resident ID is not 18 characters (17 digits + check character) "
                    "or 15 legacy digits",
    "invalid_birth_date": "the birth date inside the resident ID is not a calendar date",
    "invalid_id_check": "check character does not match (ISO 7064 MOD 11-2)",
}
ID_REASON = {"invalid_birth_date": "malformed_id"}  # folded into the documented reason codes


def id_map(raw_ids: pd.Series, secret: bytes) -> pd.DataFrame:
    """One row per distinct raw ID: raw, person_key (NA if invalid), reason, detail, legacy.

    `legacy` marks valid 15-digit numbers converted to 18 characters.
    """
    raw = pd.Series(raw_ids.dropna().unique(), dtype="string")
    norm, why, legacy = normalize_series_legacy(raw)
    out = pd.DataFrame({
        "raw": raw,
        "person_key": pseudonymize(secret, "person", norm),
        "reason": why.map(lambda r: ID_REASON.get(r, r), na_action="ignore").astype("string"),
        "detail": why.map(ID_DETAILS, na_action="ignore").astype("string"),
        "legacy": legacy.astype(bool),
    })
    return out


def household_map(raw_ids: pd.Series, secret: bytes) -> pd.DataFrame:
    """One row per distinct household registry number: raw, household_key."""
    raw = pd.Series(raw_ids.dropna().unique(), dtype="string")
    return pd.DataFrame({"raw": raw, "household_key": pseudonymize(secret, "household", raw)})
