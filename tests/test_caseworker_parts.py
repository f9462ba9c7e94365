"""Pure parts of the caseworker page: the message catalogue, language choice, session
signing and the SHAP waterfall chart."""

from __future__ import annotations

import re

from safetynet.serving.caseworker.charts import waterfall_svg
from safetynet.serving.caseworker.i18n import MESSAGES, pick_language
from safetynet.serving.caseworker.session import SessionCodec


def test_every_ui_string_exists_in_both_languages():
    assert set(MESSAGES["en"]) == set(MESSAGES["zh"])
    assert all(v.strip() for lang in MESSAGES.values() for v in lang.values())


def test_language_choice_order():
    assert pick_language("zh", "en", "en") == "zh"
    assert pick_language(None, "zh", "en-US") == "zh"
    assert pick_language("fr", None, "en;q=0.5, zh-CN;q=0.9") == "zh"
    assert pick_language(None, None, None) == "en"


def test_session_cookie_is_signed_and_expires():
    codec = SessionCodec(b"k" * 32, max_age_seconds=3600)
    session, cookie = codec.new(7)
    assert codec.read(cookie) == session
    assert codec.read(cookie[:-2] + "xx") is None
    assert SessionCodec(b"other" * 8, 3600).read(cookie) is None
    assert SessionCodec(b"k" * 32, max_age_seconds=-1).read(cookie) is None  # expired
    token = codec.csrf_token(session)
    assert codec.csrf_ok(session, token) and not codec.csrf_ok(session, token[:-1] + "0")
    other, _ = codec.new(7)
    assert not codec.csrf_ok(other, token)  # bound to the session, not to the key


def test_waterfall_runs_from_base_to_final_log_odds():
    contribs = [{"feature": f"f{i}", "contribution": c}
                for i, c in enumerate([1.2, -0.4, 0.05, 0.03, -0.02])]
    svg = waterfall_svg(-1.0, contribs, lambda c: f"<{c['feature']}>",
                        {"base": "Base", "final": "Final", "other": "{n} other facts",
                         "title": "Why"}, top=2)
    final = -1.0 + sum(c["contribution"] for c in contribs)
    assert f">{final:.2f}<" in svg and ">-1.00<" in svg
    assert "3 other facts" in svg and ">+0.06<" in svg  # the rest summed into one bar
    assert "&lt;f0&gt;" in svg and "<f0>" not in svg  # labels are escaped
    assert len(re.findall(r"<rect ", svg)) == 3
