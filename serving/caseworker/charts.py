"""Small server-side SVG charts: the SHAP waterfall and the score history.

Generated as SVG text (no plotting library, no JavaScript): a few dozen elements, crisp at
any zoom, and printable. Every text is escaped; colours come from presentation attributes
so the page's Content-Security-Policy can forbid inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

RAISE, LOWER, NEUTRAL = "#c0392b", "#2e6da4", "#555555"
TIER_COLOURS = {"red": "#c0392b", "orange": "#e67e22", "yellow": "#d4ac0d", "green": "#27ae60"}


def _nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def waterfall_svg(
    base: float,
    contributions: Sequence[dict[str, Any]],
    label: Callable[[dict[str, Any]], str],
    words: dict[str, str],
    top: int = 12,
) -> str:
    """A SHAP waterfall: base value → one bar per contribution (largest |value| first, the
    rest summed into one bar) → the final log-odds.

    `contributions`: dicts with `contribution` (log-odds); `label(c)` gives each bar's text.
    `words`: 'base', 'final' and 'other' (with `{n}`) in the page's language.
    """
    items = sorted(contributions, key=lambda c: -abs(c["contribution"]))
    shown = items[:top]
    rest = items[top:]
    bars = [(_clip(label(c), 60), label(c), float(c["contribution"])) for c in shown]
    if rest:
        text = words["other"].format(n=len(rest))
        bars.append((text, text, float(sum(c["contribution"] for c in rest))))
    final = base + sum(b[2] for b in bars)

    row_h, top_pad, left, width, right_pad = 26, 30, 420, 860, 70
    n_rows = len(bars) + 2
    height = top_pad + n_rows * row_h + 34
    points = [base, final, 0.0]
    cum = base
    for *_, v in bars:
        cum += v
        points.append(cum)
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.05 or 0.5
    lo, hi = lo - pad, hi + pad
    plot_w = width - left - right_pad

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot_w

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" class="waterfall" '
           f'aria-label="{escape(words["title"])}">',
           f'<title>{escape(words["title"])}</title>']
    axis_y = top_pad + n_rows * row_h
    for tick in _nice_ticks(lo, hi):
        tx = x(tick)
        out.append(f'<line x1="{tx:.1f}" y1="{top_pad - 6}" x2="{tx:.1f}" y2="{axis_y}" '
                   f'stroke="#e3e3e3"/>')
        out.append(f'<text x="{tx:.1f}" y="{axis_y + 16}" font-size="11" fill="#555" '
                   f'text-anchor="middle">{tick:g}</text>')

    def row_label(i: int, text: str, full: str, bold: bool = False) -> None:
        y = top_pad + i * row_h + row_h / 2 + 4
        weight = ' font-weight="bold"' if bold else ""
        out.append(f'<text x="{left - 10}" y="{y:.1f}" font-size="12" text-anchor="end" '
                   f'fill="#222"{weight}><title>{escape(full)}</title>{escape(text)}</text>')

    def marker(i: int, v: float, text: str) -> None:
        y0 = top_pad + i * row_h + 3
        out.append(f'<line x1="{x(v):.1f}" y1="{y0}" x2="{x(v):.1f}" y2="{y0 + row_h - 6}" '
                   f'stroke="{NEUTRAL}" stroke-width="3"/>')
        out.append(f'<text x="{x(v) + 6:.1f}" y="{y0 + row_h / 2 + 2:.1f}" font-size="12" '
                   f'fill="{NEUTRAL}" font-weight="bold">{escape(text)}</text>')

    row_label(0, words["base"], words["base"], bold=True)
    marker(0, base, f"{base:.2f}")
    cum = base
    for i, (text, full, v) in enumerate(bars, start=1):
        row_label(i, text, full)
        a, b = cum, cum + v
        x0, x1 = sorted((x(a), x(b)))
        y0 = top_pad + i * row_h + 4
        colour = RAISE if v > 0 else LOWER
        out.append(f'<rect x="{x0:.1f}" y="{y0}" width="{max(x1 - x0, 1.5):.1f}" '
                   f'height="{row_h - 8}" fill="{colour}"/>')
        out.append(f'<line x1="{x(b):.1f}" y1="{y0 + row_h - 8}" x2="{x(b):.1f}" '
                   f'y2="{y0 + row_h + 4}" stroke="#999" stroke-dasharray="2,2"/>')
        tx, anchor = (x1 + 4, "start") if v > 0 else (x0 - 4, "end")
        out.append(f'<text x="{tx:.1f}" y="{y0 + row_h / 2 + 1:.1f}" font-size="11" '
                   f'fill="{colour}" text-anchor="{anchor}">{v:+.2f}</text>')
        cum = b
    row_label(n_rows - 1, words["final"], words["final"], bold=True)
    marker(n_rows - 1, final, f"{final:.2f}")
    out.append(f'<line x1="{left}" y1="{axis_y}" x2="{width - right_pad}" y2="{axis_y}" '
               f'stroke="#888"/>')
    out.append("</svg>")
    return "\n".join(out)


def history_svg(history: Sequence[dict[str, Any]], thresholds: dict[str, float],
                title: str) -> str:
    """Score per monitoring run as a line with tier-coloured points and dashed tier lines."""
    width, height, left, right, top, bottom = 540, 180, 48, 40, 14, 34
    scores = [float(h["score"]) for h in history]
    hi = min(1.0, max([*scores, *thresholds.values(), 0.05]) * 1.15)
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (plot_w / 2 if len(scores) == 1 else i * plot_w / (len(scores) - 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - v / hi)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="{width}" height="{height}" role="img" class="history" '
           f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for tick in _nice_ticks(0.0, hi, 4):
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="11" fill="#555" '
                   f'text-anchor="end">{tick:.0%}</text>')
        out.append(f'<line x1="{left}" y1="{y(tick):.1f}" x2="{width - right}" '
                   f'y2="{y(tick):.1f}" stroke="#eee"/>')
    for tier, v in thresholds.items():
        if v <= hi:
            out.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" '
                       f'stroke="{TIER_COLOURS.get(tier, "#999")}" stroke-dasharray="4,3"/>')
    if len(scores) > 1:
        path = " ".join(f"{x(i):.1f},{y(s):.1f}" for i, s in enumerate(scores))
        out.append(f'<polyline points="{path}" fill="none" stroke="#333" stroke-width="2"/>')
    for i, h in enumerate(history):
        colour = TIER_COLOURS.get(str(h["tier"]), "#999")
        out.append(f'<circle cx="{x(i):.1f}" cy="{y(scores[i]):.1f}" r="5" fill="{colour}">'
                   f'<title>{escape(str(h["as_of_date"]))}: {scores[i]:.1%}</title></circle>')
        out.append(f'<text x="{x(i):.1f}" y="{height - 12}" font-size="11" fill="#555" '
                   f'text-anchor="middle">{escape(str(h["as_of_date"])[:7])}</text>')
    out.append("</svg>")
    return "\n".join(out)
