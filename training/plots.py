"""Figures logged with every run (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# District names are Chinese: use a CJK font where one is installed (Debian: fonts-noto-cjk or
# fonts-wqy-microhei); without one the glyphs show as boxes, which is not worth a warning each.
plt.rcParams["font.sans-serif"] = [
    "DejaVu Sans", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Source Han Sans SC",
]
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")

from safetynet.training.calibration import reliability_curve  # noqa: E402
from safetynet.training.metrics import precision_at_k_curve  # noqa: E402


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def calibration_plot(
    prob: np.ndarray, y: np.ndarray, path: Path, calibration_rate: float | None = None
) -> Path:
    """Reliability deciles of the test; the note compares the mean prediction with the test's
    observed rate and (given) the calibration slice's rate, whose gap is base-rate drift."""
    mean_p, rate, _ = reliability_curve(prob, y, n_bins=10)
    fig, ax = plt.subplots(figsize=(5, 5))
    top = max(float(np.max(mean_p, initial=0)), float(np.max(rate, initial=0)), 0.05)
    ax.plot([0, top], [0, top], "--", color="grey", label="perfect")
    ax.plot(mean_p, rate, "o-", label="model (deciles)")
    ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration (test)")
    note = f"mean predicted {np.mean(prob):.4f}\nobserved rate {np.mean(y):.4f}"
    if calibration_rate is not None:
        note += f"\ncalibration slice rate {calibration_rate:.4f}"
    ax.text(0.97, 0.03, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8)
    ax.legend()
    return _save(fig, path)


def pr_plot(y: np.ndarray, scores: dict[str, np.ndarray], path: Path) -> Path:
    from sklearn.metrics import precision_recall_curve

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, s in scores.items():
        p, r, _ = precision_recall_curve(y, s)
        ax.plot(r, p, label=name)
    ax.axhline(float(np.mean(y)), color="grey", ls=":", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def precision_at_k_plot(
    y: np.ndarray, scores: dict[str, np.ndarray], path: Path, capacity: float = 0.05
) -> Path:
    fractions = np.linspace(0.005, 0.3, 40)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, s in scores.items():
        ax.plot(fractions * 100, precision_at_k_curve(y, s, fractions), label=name)
    ax.axvline(capacity * 100, color="grey", ls="--", label="outreach capacity")
    ax.set(xlabel="top k (% of cohort)", ylabel="precision@k (expected, ties random)",
           title="Precision at k (test)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def shap_beeswarm(X: np.ndarray, contrib: np.ndarray, names: list[str], path: Path) -> Path:
    import shap

    expl = shap.Explanation(
        values=contrib[:, :-1], base_values=contrib[:, -1], data=X, feature_names=names
    )
    plt.figure(figsize=(7, 6))
    shap.plots.beeswarm(expl, max_display=15, show=False)
    fig = plt.gcf()
    fig.suptitle("SHAP (log-odds), test sample")
    return _save(fig, path)


def fairness_plot(table: pd.DataFrame, path: Path, low=0.8, high=1.25) -> Path:
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.28 * len(table) + 1)))
    if len(table):
        labels = table["attribute"] + "=" + table["group"].astype(str)
        vals = table["recall_disparity"].fillna(0).to_numpy()
        colors = ["tab:red" if (v < low or v > high) else "tab:blue" for v in vals]
        ax.barh(labels, vals, color=colors)
        ax.axvline(1.0, color="black", lw=0.8)
        for b in (low, high):
            ax.axvline(b, color="grey", ls="--")
        ax.invert_yaxis()
    ax.set(xlabel="recall disparity vs reference group", title="Fairness at outreach capacity")
    return _save(fig, path)
