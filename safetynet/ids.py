"""Resident ID numbers (GB 11643-1999).

An 18-character number is: 6-digit region code, 8-digit birth date (YYYYMMDD),
3-digit sequence (odd = male, even = female) and a check character computed with
ISO 7064 MOD 11-2, where 'X' stands for 10. Legacy 15-digit numbers (before 1999)
have a 6-digit birth date (YYMMDD, 19xx) and no check character.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"  # indexed by (sum of weighted digits) mod 11
_SPACES = re.compile(r"[\s\-]")


class InvalidResidentId(ValueError):
    """A resident ID number that is malformed or fails its check character."""


def check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise InvalidResidentId("need exactly 17 digits to compute a check character")
    return _CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize(raw: str) -> str:
    """Strip spaces and dashes and upper-case a trailing 'x'; convert 15-digit legacy numbers.

    Raises InvalidResidentId if the result is not a valid 18-character number.
    """
    s = _SPACES.sub("", unicodedata.normalize("NFKC", str(raw))).upper()
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
    if len(id15) != 15 or not (id15.isascii() and id15.isdigit()):
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
    if len(s) != 18 or not (s[:17].isascii() and s[:17].isdigit()) or s[17] not in "0123456789X":
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
    normalized, reason, _legacy = normalize_series_legacy(raw)
    return normalized, reason


def normalize_series_legacy(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """`normalize_series` plus a boolean column: valid legacy 15-digit numbers (converted).

    Nearly all IDs arrive as plain ASCII: 17 digits and 0-9, X or x, or 15 legacy digits.
    For these nothing is stripped, and upper-casing can only change a trailing x, so they
    are checked on byte arrays (same rules, same `pd.to_datetime` for the birth date); every
    other value takes the general path.
    """
    s = raw.astype("string")
    arrow = pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.string())
    plain18, plain15 = (
        pc.fill_null(pc.match_substring_regex(arrow, pattern), False).to_numpy(
            zero_copy_only=False) for pattern in (r"^[0-9]{17}[0-9Xx]$", r"^[0-9]{15}$"))
    rest = ~(plain18 | plain15)
    if rest.all():
        return _normalize_general(s)
    reason = pd.Series(pd.NA, index=s.index, dtype="string")
    normalized = pd.Series(pd.NA, index=s.index, dtype="string")
    legacy = pd.Series(plain15, index=s.index)
    for mask, width in ((plain18, 18), (plain15, 15)):
        if not mask.any():
            continue
        codes = np.array(s[mask].tolist(), dtype=f"S{width}").view(np.uint8).reshape(-1, width)
        if width == 15:  # legacy: insert the century; the check character is computed
            codes = np.hstack([codes[:, :6], np.full((len(codes), 2), [49, 57], np.uint8),
                               codes[:, 6:], np.zeros((len(codes), 1), np.uint8)])
        ymd = np.ascontiguousarray(codes[:, 6:14]).view("S8").ravel().astype("U8")
        bad_date = pd.to_datetime(pd.Series(ymd, dtype="string"), format="%Y%m%d",
                                  errors="coerce").isna().to_numpy()
        total = (codes[:, :17].astype(np.int64) - 48) @ np.asarray(_WEIGHTS, dtype=np.int64)
        expected = np.frombuffer(_CHECK_CHARS.encode(), dtype=np.uint8)[total % 11]
        if width == 15:
            codes[:, 17] = expected
            wrong_check = np.zeros(len(codes), dtype=bool)
        else:
            codes[:, 17] = np.where(codes[:, 17] == ord("x"), ord("X"), codes[:, 17])
            wrong_check = codes[:, 17] != expected
        why = np.where(bad_date, "invalid_birth_date",
                       np.where(wrong_check, "invalid_id_check", None)).astype(object)
        reason[mask] = pd.array(why, dtype="string")
        text = codes.view("S18").ravel().astype("U18").astype(object)
        text[bad_date | wrong_check] = None
        normalized[mask] = pd.array(text, dtype="string")
    if rest.any():
        norm_r, reason_r, legacy_r = _normalize_general(s[rest])
        normalized[rest], reason[rest] = norm_r, reason_r
        legacy[rest] = legacy_r.to_numpy(dtype=bool)
    return normalized, reason, legacy & normalized.notna()


def _normalize_general(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    # NFKC: full-width digits and 'Ｘ' (common from Chinese input methods) become ASCII
    s = (raw.astype("string").str.normalize("NFKC")
         .str.replace(_SPACES.pattern, "", regex=True).str.upper())
    reason = pd.Series(pd.NA, index=s.index, dtype="string")
    reason[s.isna() | (s == "")] = "missing_id"

    legacy = s.str.fullmatch(r"[0-9]{15}").fillna(False).astype(bool)
    if legacy.any():  # 17 digits now; check char appended below
        old = s[legacy]
        s[legacy] = old.str[:6] + "19" + old.str[6:]
    shaped18 = s.str.fullmatch(r"[0-9]{17}[0-9X]").fillna(False)
    shaped = shaped18 | legacy
    reason[reason.isna() & ~shaped] = "malformed_id"

    born = pd.to_datetime(s.where(shaped).str[6:14], format="%Y%m%d", errors="coerce")
    bad_date = shaped & born.isna()
    reason[reason.isna() & bad_date] = "invalid_birth_date"

    ok = shaped & ~bad_date
    expected = pd.Series(pd.NA, index=s.index, dtype="string")
    if ok.any():
        expected[ok] = check_chars(s[ok].str[:17].astype(str))
    upgrade = legacy & ok
    if upgrade.any():
        s[upgrade] = s[upgrade] + expected[upgrade]
    reason[reason.isna() & ok & ~legacy & (s.str[17] != expected)] = "invalid_id_check"
    normalized = s.where(reason.isna())
    return normalized, reason, legacy & normalized.notna()
