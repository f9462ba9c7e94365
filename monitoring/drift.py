"""Population stability index (PSI) of the score and of every feature against a training reference.

The reference is a set of quantile bins per column computed once from the training data (the
features the champion was trained on, and its scores on them) and kept as JSON beside the
reports, keyed by model name and version. PSI per column:

    PSI = sum_b (p_b - q_b) * ln(p_b / q_b)

with q the reference share and p the current share of bin b; missing values are their own bin,
and empty bins get a share of 1e-4 so the logarithm stays finite. Rule of thumb (policy [drift]):
< psi_warn stable, psi_warn..psi_retrain moderate, > psi_retrain a real shift.

Hand-written in NumPy on purpose: Evidently 0.7.23 does resolve beside our pins (dry run:
no pinned package changes) but brings 30 more packages (a web framework, plotly, statsmodels,
nltk, a telemetry client) for what is a dozen lines here (see docs/operations.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safetynet.policy import DriftPolicy

EPS = 1e-4
SCORE = "__score__"


@dataclass
class DriftReference:
    """Bin edges (interior cut points) and reference shares per column; last share = missing."""

    model_name: str
    model_version: str
    edges: dict[str, list[float]]
    shares: dict[str, list[float]]
    n_rows: int
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        feature_names: list[str],
        scores: np.ndarray | None,
        model_name: str,
        model_version: str,
        n_bins: int = 10,
        source: str = "",
        max_rows: int = 200_000,
    ) -> DriftReference:
        """Quantile bins from the reference data (ties collapse: a binary feature gets 2 bins).

        Bins and shares come from a fixed random sample of at most `max_rows` rows: deciles
        of 200k rows are exact to well under a percentage point, at a fraction of the cost.
        """
        n_all = len(X)
        if n_all > max_rows:
            rows = np.sort(np.random.default_rng(0).choice(n_all, max_rows, replace=False))
            X = X[rows]
            scores = None if scores is None else np.asarray(scores)[rows]
        columns = {name: X[:, j] for j, name in enumerate(feature_names)}
        if scores is not None:
            columns[SCORE] = scores
        edges, shares = {}, {}
        qs = np.linspace(0, 1, n_bins + 1)[1:-1]
        for name, col in columns.items():
            col = np.asarray(col, dtype=float)
            finite = col[~np.isnan(col)]
            cuts = np.unique(np.quantile(finite, qs)) if len(finite) else np.empty(0)
            edges[name] = cuts.tolist()
            shares[name] = _shares(col, cuts).tolist()
        return cls(model_name, model_version, edges, shares, n_all, source)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.__dict__, indent=1))
        tmp.replace(path)  # atomic: a reader never sees half a reference

    @classmethod
    def load(cls, path: Path) -> DriftReference:
        return cls(**json.loads(path.read_text()))


def reference_path(reports_dir: Path, model_name: str, version: str) -> Path:
    """Where the reference of a model version is kept."""
    return reports_dir / "monitoring" / "reference" / f"{model_name}-v{version}.json"


def _shares(col: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Share of rows per bin (right-closed bins as np.searchsorted 'left'), missing last."""
    missing = np.isnan(col)
    counts = np.bincount(np.searchsorted(cuts, col[~missing]), minlength=len(cuts) + 1)
    counts = np.append(counts, missing.sum()).astype(float)
    return counts / max(len(col), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI between two share vectors over the same bins."""
    q = np.maximum(np.asarray(expected, dtype=float), EPS)
    p = np.maximum(np.asarray(actual, dtype=float), EPS)
    return float(np.sum((p - q) * np.log(p / q)))


def drift_table(
    reference: DriftReference,
    X: np.ndarray,
    feature_names: list[str],
    scores: np.ndarray,
) -> dict[str, float]:
    """PSI per feature and for the score (key `__score__`), for columns present in the reference."""
    out: dict[str, float] = {}
    columns = {name: X[:, j] for j, name in enumerate(feature_names)}
    columns[SCORE] = scores
    for name, col in columns.items():
        if name not in reference.edges:
            continue
        cuts = np.asarray(reference.edges[name], dtype=float)
        out[name] = psi(np.asarray(reference.shares[name]), _shares(np.asarray(col, float), cuts))
    return out


def assess(
    psis: dict[str, float],
    policy_drift: DriftPolicy,
    precision_drop: float | None = None,
    many_features_share: float = 0.2,
) -> dict[str, Any]:
    """Summary and retraining recommendation.

    Retrain when the score's PSI passes `psi_retrain`, when more than `many_features_share` of
    the features do, or when realized precision fell by more than `precision_drop_retrain`
    (relative drop, from `safetynet report`).
    """
    retrain_at = policy_drift.psi_retrain
    warn_at = policy_drift.psi_warn
    feats = {k: v for k, v in psis.items() if k != SCORE}
    drifted = sorted((k for k, v in feats.items() if v > retrain_at), key=lambda k: -feats[k])
    warned = sorted(k for k, v in feats.items() if warn_at < v <= retrain_at)
    score_psi = psis.get(SCORE)
    reasons = []
    if score_psi is not None and score_psi > retrain_at:
        reasons.append(f"score PSI {score_psi:.3f} > {retrain_at}")
    if feats and len(drifted) > many_features_share * len(feats):
        reasons.append(f"{len(drifted)} of {len(feats)} features have PSI > {retrain_at}")
    drop_at = policy_drift.precision_drop_retrain
    if precision_drop is not None and precision_drop > drop_at:
        reasons.append(f"realized precision fell by {precision_drop:.0%} (> {drop_at:.0%})")
    return {
        "psi_score": score_psi,
        "n_features": len(feats),
        "features_drifted": drifted,
        "features_warn": warned,
        "recommend_retrain": bool(reasons),
        "reasons": reasons,
    }


def plot_drift(
    psis: dict[str, float], policy_drift: DriftPolicy, path: Path, top: int = 30
) -> Path:
    """Bar chart of the largest PSIs with the warn/retrain lines (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = sorted(psis.items(), key=lambda kv: kv[1], reverse=True)[:top]
    names = ["score" if k == SCORE else k for k, _ in items]
    fig, ax = plt.subplots(figsize=(8, 0.25 * len(items) + 1.5))
    ax.barh(names[::-1], [v for _, v in items][::-1], color="#4a7ab5")
    ax.axvline(policy_drift.psi_warn, color="orange", ls="--", label="warn")
    ax.axvline(policy_drift.psi_retrain, color="red", ls="--", label="retrain")
    ax.set_xlabel("population stability index vs training reference")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
