"""The response language: 'en' or 'zh', from an Accept-Language header."""

from __future__ import annotations

LANGS = ("en", "zh")


def language(header: str | None) -> str:
    """'zh' or 'en' from an Accept-Language header (highest q wins; default en)."""
    best, best_q = "en", -1.0
    for part in (header or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if q > best_q:
            best, best_q = primary, q
    return best
