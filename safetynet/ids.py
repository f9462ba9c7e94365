"""Resident ID numbers (GB 11643-1999).

An 18-character number is: 6-digit region code, 8-digit birth date (YYYYMMDD),
3-digit sequence (odd = male, even = female) and a check character computed with
ISO 7064 MOD 11-2, where 'X' stands for 10. Legacy 15-digit numbers (before 1999)
have a 6-digit birth date (YYMMDD, 19xx) and no check character.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"  # indexed by (sum of weighted digits) mod 11
_SPACES = re.compile(r"[\s\-]")


class InvalidResidentId(ValueError):
    """A resident ID number that is malformed or fails its check character."""


def check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise InvalidResidentId("need exactly 17 digits to compute a check character")
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize(raw: str) -> str:
    """Strip spaces and dashes and upper-case a trailing 'x'; convert 15-digit legacy numbers.

    Raises InvalidResidentId if the result is not a valid 18-character number.
    """
    s = _SPACES.sub("", str(raw)).upper()
    if len(s) == 15:
        s = upgrade_legacy(s)
    _validate18(s)
    return s


def is_valid(raw: str) -> bool:
    """True if `raw` normalizes to a valid resident ID number."""
    try:
        normalize(raw)
    except InvalidResidentId:
        return False
    return True


def upgrade_legacy(id15: str) -> str:
    """Convert a legacy 15-digit number: insert the century '19' and append the check character."""
    if len(id15) != 15 or not id15.isdigit():
        raise InvalidResidentId("a legacy resident ID number has exactly 15 digits")
    first17 = id15[:6] + "19" + id15[6:]
    _parse_birth_date(first17[6:14])
    return first17 + check_char(first17)


def birth_date(raw: str) -> dt.date:
    """Birth date encoded in a resident ID number."""
    return _parse_birth_date(normalize(raw)[6:14])


def sex(raw: str) -> str:
    """'M' if the sequence number is odd, 'F' if even."""
    return "M" if int(normalize(raw)[16]) % 2 else "F"


def make(region: str, born: dt.date, sequence: int) -> str:
    """Build a valid 18-character number (used by the simulator and tests)."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)


def _validate18(s: str) -> None:
    if len(s) != 18 or not s[:17].isdigit() or s[17] not in "0123456789X":
        raise InvalidResidentId("a resident ID number has 17 digits and a check character 0-9 or X")
    _parse_birth_date(s[6:14])
    if check_char(s[:17]) != s[17]:
        raise InvalidResidentId("check character does not match (ISO 7064 MOD 11-2)")


def _parse_birth_date(yyyymmdd: str) -> dt.date:
    try:
        return dt.datetime.strptime(yyyymmdd, "%Y%m%d").date()
    except ValueError as exc:
        raise InvalidResidentId(f"birth date {yyyymmdd!r} is not a calendar date") from exc


# --- vectorised versions for whole columns -------------------------------------------------


def check_chars(first17: pd.Series) -> pd.Series:
    """Vectorised check character for a column of 17-digit strings."""
    digits = np.frombuffer("".join(first17).encode("ascii"), dtype=np.uint8).reshape(-1, 17) - 48
    total = digits.astype(np.int64) @ np.asarray(_WEIGHTS, dtype=np.int64)
    lookup = np.array(list(_CHECK_CHARS))
    return pd.Series(lookup[total % 11], index=first17.index)


def normalize_series(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Normalize a column of resident IDs.

    Returns (normalized, reason): `normalized` is the 18-character ID or NA, and
    `reason` is NA where valid, else one of 'missing_id', 'malformed_id',
    'invalid_birth_date', 'invalid_id_check'.
    """
    s = raw.astype("string").str.replace(_SPACES.pattern, "", regex=True).str.upper()
    reason = pd.Series(pd.NA, index=s.index, dtype="string")
    reason[s.isna() | (s == "")] = "missing_id"

    legacy = s.str.fullmatch(r"\d{15}").fillna(False)
    s = s.where(~legacy, s.str[:6] + "19" + s.str[6:])  # 17 digits now; check char appended below
    shaped18 = s.str.fullmatch(r"\d{17}[\dX]").fillna(False)
    shaped = shaped18 | legacy
    reason[reason.isna() & ~shaped] = "malformed_id"

    born = pd.to_datetime(s.where(shaped).str[6:14], format="%Y%m%d", errors="coerce")
    bad_date = shaped & born.isna()
    reason[reason.isna() & bad_date] = "invalid_birth_date"

    ok = shaped & ~bad_date
    expected = pd.Series(pd.NA, index=s.index, dtype="string")
    if ok.any():
        expected[ok] = check_chars(s[ok].str[:17].astype(str))
    s = s.where(~(legacy & ok), s + expected)
    reason[reason.isna() & ok & ~legacy & (s.str[17] != expected)] = "invalid_id_check"
    normalized = s.where(reason.isna())
    return normalized, reason
