import datetime as dt

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from safetynet import ids

# A published GB 11643-1999 example whose check character is 'X'.
KNOWN_X = "11010519491231002X"


def test_known_number_with_x_check_character():
    assert ids.is_valid(KNOWN_X)
    assert ids.check_char(KNOWN_X[:17]) == "X"
    assert ids.birth_date(KNOWN_X) == dt.date(1949, 12, 31)
    assert ids.sex(KNOWN_X) == "F"  # sequence 002 is even


def test_normalize_lowercase_x_spaces_and_dashes():
    assert ids.normalize("11010519491231002x") == KNOWN_X
    assert ids.normalize(" 110105 19491231 002x ") == KNOWN_X
    assert ids.normalize("110105-19491231-002X") == KNOWN_X


@pytest.mark.parametrize(
    "bad",
    ["110105194912310021", "11010519491231002", "1101051949123100XX", "abcdefghijklmnopqr",
     "110105194913310024", ""],
)
def test_invalid_numbers_are_rejected(bad):
    assert not ids.is_valid(bad)
    with pytest.raises(ids.InvalidResidentId):
        ids.normalize(bad)


def test_legacy_15_digit_number_is_upgraded():
    upgraded = ids.normalize("420106800517123")
    assert upgraded == "420106198005171238"
    assert ids.birth_date("420106800517123") == dt.date(1980, 5, 17)
    assert ids.sex("420106800517123") == "M"


@given(
    born=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2025, 12, 31)),
    seq=st.integers(0, 999),
)
def test_make_roundtrip_and_single_digit_typos_are_caught(born, seq):
    rid = ids.make("420106", born, seq)
    assert ids.birth_date(rid) == born
    assert ids.sex(rid) == ("M" if seq % 2 else "F")
    # MOD 11-2 detects every single-digit substitution.
    pos = seq % 17
    typo = rid[:pos] + str((int(rid[pos]) + 1) % 10) + rid[pos + 1:]
    assert not ids.is_valid(typo)


def test_vectorised_normalize_agrees_with_scalar():
    raw = pd.Series([KNOWN_X.lower(), "420106800517123", " 1101 0519 4912 3100 2X",
                     "110105194912310021", "abc", None, "110105194913310024", "420106198005171238"])
    norm, reason = ids.normalize_series(raw)
    assert list(reason.fillna("ok")) == ["ok", "ok", "ok", "invalid_id_check", "malformed_id",
                                         "missing_id", "invalid_birth_date", "ok"]
    for r, n in zip(raw, norm, strict=True):
        if pd.notna(n):
            assert ids.normalize(r) == n


def test_full_width_digits_are_normalised_and_other_scripts_rejected():
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in KNOWN_X)  # '１１０…Ｘ' from a Chinese IME
    arabic_indic = "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in KNOWN_X)
    assert ids.normalize(full_width) == KNOWN_X
    assert not ids.is_valid(arabic_indic)
    norm, reason = ids.normalize_series(pd.Series([full_width, arabic_indic, KNOWN_X]))
    assert list(norm.fillna("-")) == [KNOWN_X, "-", KNOWN_X]
    assert list(reason.fillna("ok")) == ["ok", "malformed_id", "ok"]
