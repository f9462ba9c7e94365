"""One monitoring run: rescore the cohort, raise alerts, build worklists, store reasons, measure
list stability and drift — and commit all of it in one transaction.

Everything is computed in memory first; the database is touched only at the end, inside one
transaction that deletes any earlier run of the same as-of date and inserts the new one. A
failure anywhere (model, data, database) therefore leaves the previous state intact, and
rerunning a month replaces it instead of duplicating it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from safetynet.db.feedback import recent_visits
from safetynet.db.score_history import previous_run, replace_run_rows
from safetynet.db.tables import (
    alerts,
    score_history,
    score_reasons,
    score_runs,
    worklist_items,
    worklist_pools,
)
from safetynet.model import Bundle, tiers_of
from safetynet.monitoring import drift as drift_mod
from safetynet.monitoring.alerts import compute_alerts, suppressed_households
from safetynet.monitoring.scoring import top_reasons
from safetynet.monitoring.worklists import build_worklists, district_pools
from safetynet.policy import DriftPolicy, Policy

log = logging.getLogger(__name__)
REASONS_CHUNK = 50_000  # rows per pred_contrib call (bounded memory: 50k x 81 x 8 B = 32 MB)


@dataclass
class RunSummary:
    """What a run did (also stored as `score_runs.summary_json`)."""

    run_id: str
    as_of_date: str
    model_name: str
    model_version: str
    n_scored: int
    n_flagged: int
    n_suppressed: int
    n_alerts: int
    alerts_by_kind: dict[str, int]
    n_worklist: int
    n_audit: int
    prev_run_id: str | None
    jaccard_prev: float | None
    replaced: bool
    drift: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)


def jaccard(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> float | None:
    """|A ∩ B| / |A ∪ B| of two key sets; None when both are empty."""
    a, b = pd.Index(pd.unique(np.asarray(a))), pd.Index(pd.unique(np.asarray(b)))
    union = len(a.union(b))
    return None if union == 0 else len(a.intersection(b)) / union


def _validate(features: pd.DataFrame, model_features: list[str]) -> None:
    missing = [c for c in ("household_key", "district", *model_features) if c not in features]
    if missing:
        raise ValueError(
            f"feature table lacks columns: {missing[:10]}{' …' if len(missing) > 10 else ''}"
        )
    dup = features["household_key"].duplicated()
    if dup.any():
        raise ValueError(f"feature table has {int(dup.sum())} duplicate household_key rows")
    if features["district"].isna().any():
        raise ValueError("feature table has households without a district")


@dataclass
class _Scored:
    """Step results: the cohort scored at `as_of` (arrays of one row per household)."""

    keys: np.ndarray  # household_key [n] str
    X: np.ndarray  # model features [n, f] float64
    names: list[str]
    scores: np.ndarray  # calibrated probability [n]
    tier: np.ndarray  # tier name [n]
    flagged: np.ndarray  # tier above green [n] bool


def monitor_run(
    engine: Engine,
    bundle: Bundle,
    features: pd.DataFrame,
    as_of: date,
    policy: Policy,
    indicators: pd.DataFrame | None = None,
    assistance: pd.DataFrame | None = None,
    reference: drift_mod.DriftReference | None = None,
    reports_dir: Path | None = None,
    reasons_k: int = 5,
    seed: int = 0,
    precision_drop: float | None = None,
) -> RunSummary:
    """Rescore every household of `features` (one row per household at `as_of`) and store the run.

    `bundle`: the champion (`safetynet.model.Bundle`). `indicators`: output of
    `compute_indicators`; `assistance`: the offline store's assistance table. Flagged = any tier
    above green. Steps: score -> alerts -> worklists -> reasons (flagged households and every
    worklist item) -> drift -> write (one transaction). Drift is measured against `reference`;
    when None, against the reference kept for this model version under `reports_dir`, and
    failing that this run's own data becomes (and is saved as) the version's reference, PSI 0.
    Writes drift JSON/PNG under `reports_dir`. Raises ValueError on a bad feature table or
    non-finite scores (nothing stored).
    """
    t = {"start": time.perf_counter()}
    started = datetime.now(UTC)
    _validate(features, list(bundle.features))
    t["prepare"] = time.perf_counter()
    s = _score(bundle, features, policy)
    t["score"] = time.perf_counter()
    prev_id, prev = previous_run(engine, as_of)
    current, run_alerts = _alerts(engine, s, prev, prev_id, as_of, policy, indicators, assistance)
    t["alerts"] = time.perf_counter()
    worklist, pools = _worklists(current, features, as_of, policy, seed)
    stability = _stability(s, prev) if prev_id else None
    t["worklists"] = time.perf_counter()
    reasons = _reasons(bundle, s, s.flagged | np.isin(s.keys, worklist["household_key"]), reasons_k)
    t["reasons"] = time.perf_counter()
    if reference is None:
        reference = _kept_reference(bundle, reports_dir)
    fitted_here = reference is None
    reference, psis, drift_summary = _drift(bundle, s, reference, as_of, policy, precision_drop)
    t["drift"] = time.perf_counter()

    run_id = as_of.isoformat()
    summary = RunSummary(
        run_id=run_id,
        as_of_date=run_id,
        model_name=bundle.name,
        model_version=str(bundle.version),
        n_scored=len(s.keys),
        n_flagged=int(s.flagged.sum()),
        n_suppressed=int(current["suppressed"].notna().sum()),
        n_alerts=len(run_alerts),
        alerts_by_kind={str(k): int(v) for k, v in run_alerts["kind"].value_counts().items()},
        n_worklist=int((~worklist["audit"]).sum()),
        n_audit=int(worklist["audit"].sum()),
        prev_run_id=prev_id,
        jaccard_prev=stability,
        replaced=False,
        drift=drift_summary,
    )
    history = current[["household_key", "score", "tier", "flagged", "suppressed"]].assign(
        run_id=run_id, as_of_date=as_of, model_version=str(bundle.version)
    )
    rows = {
        score_history: history,
        score_reasons: reasons.assign(run_id=run_id),
        alerts: run_alerts.assign(run_id=run_id, as_of_date=as_of),
        worklist_items: worklist,
        worklist_pools: pools,
    }
    _write(engine, summary, rows, started, t)
    if reports_dir is not None:
        ref_file = drift_mod.reference_path(reports_dir, bundle.name, str(bundle.version))
        if fitted_here and not ref_file.exists():
            reference.save(ref_file)
        _write_drift_report(reports_dir, run_id, psis, drift_summary, policy.drift, reference)
    summary.timings_s = _timings({**t, "end": time.perf_counter()})
    log.info(
        "monitor run %s: %d scored, %d flagged, %d alerts",
        run_id,
        summary.n_scored,
        summary.n_flagged,
        summary.n_alerts,
    )
    return summary


def _score(bundle: Bundle, features: pd.DataFrame, policy: Policy) -> _Scored:
    """Calibrated scores and tiers of every row; ValueError on missing or non-finite scores."""
    names = list(bundle.features)
    X = features[names].to_numpy(dtype=np.float64, na_value=np.nan)
    scores = bundle.predict_proba(X)
    if len(scores) != len(X) or not np.isfinite(scores).all():
        raise ValueError("the model returned missing or non-finite scores; nothing stored")
    tier = tiers_of(scores, policy.tiers.thresholds())
    keys = features["household_key"].astype(str).to_numpy()
    return _Scored(keys, X, names, scores, tier, tier != "green")


def _alerts(
    engine: Engine,
    s: _Scored,
    prev: pd.DataFrame,
    prev_id: str | None,
    as_of: date,
    policy: Policy,
    indicators: pd.DataFrame | None,
    assistance: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(current, alerts): the cohort with `suppressed` and `n_alerts`, and this run's alerts."""
    outreach = policy.outreach
    current = pd.DataFrame(
        {"household_key": s.keys, "score": s.scores, "tier": s.tier, "flagged": s.flagged}
    )
    suppressed = suppressed_households(
        current["household_key"],
        as_of,
        assistance,
        recent_visits(engine, as_of, outreach.cooldown_months),
        outreach.cooldown_months,
    )
    current["suppressed"] = suppressed.to_numpy()
    run_alerts = compute_alerts(
        current,
        prev,
        indicators,
        suppressed,
        as_of,
        date.fromisoformat(prev_id) if prev_id else None,
        outreach.score_rise_alert,
    )
    n_alerts = run_alerts.groupby("household_key").size()
    current["n_alerts"] = current["household_key"].map(n_alerts).fillna(0).astype(int).to_numpy()
    return current, run_alerts


def _worklists(
    current: pd.DataFrame, features: pd.DataFrame, as_of: date, policy: Policy, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, pools) of `build_worklists` / `district_pools`, with the features' district,
    street and group attributes."""
    attributes = [a for a in policy.fairness.need_audit_attributes if a != "district"]
    extra = [c for c in ("street", *attributes) if c in features]
    scored = current.assign(
        district=features["district"].to_numpy(),
        **{c: features[c].to_numpy() for c in extra},
    )
    items = build_worklists(scored, as_of, policy.outreach, seed=seed, attributes=attributes)
    return items, district_pools(scored, items, as_of)


def _stability(s: _Scored, prev: pd.DataFrame) -> float | None:
    """Jaccard overlap of this run's flagged households with the previous run's."""
    return jaccard(s.keys[s.flagged], prev.loc[prev["flagged"].astype(bool), "household_key"])


def _reasons(bundle: Bundle, s: _Scored, which: np.ndarray, k: int) -> pd.DataFrame:
    """Top-k SHAP reasons of the rows `which` [n] bool, in chunks of REASONS_CHUNK rows."""
    idx = np.flatnonzero(which)
    parts = []
    for i in range(0, len(idx), REASONS_CHUNK):
        rows = idx[i : i + REASONS_CHUNK]
        _, contrib = bundle.predict(s.X[rows])
        parts.append(top_reasons(s.keys[rows], s.X[rows], np.asarray(contrib), s.names, k=k))
    if parts:
        return pd.concat(parts, ignore_index=True)
    return top_reasons(s.keys[:0], s.X[:0], np.empty((0, len(s.names) + 1)), s.names, k=k)


def _kept_reference(bundle: Bundle, reports_dir: Path | None) -> drift_mod.DriftReference | None:
    """The drift reference kept for this model version under `reports_dir`, if any."""
    if reports_dir is None:
        return None
    ref_file = drift_mod.reference_path(reports_dir, bundle.name, str(bundle.version))
    return drift_mod.DriftReference.load(ref_file) if ref_file.exists() else None


def _drift(
    bundle: Bundle,
    s: _Scored,
    reference: drift_mod.DriftReference | None,
    as_of: date,
    policy: Policy,
    precision_drop: float | None,
) -> tuple[drift_mod.DriftReference, dict[str, float], dict[str, Any]]:
    """(reference, PSI per column, assessment); with no reference, this run's data becomes it."""
    if reference is None:  # first run of this model version: its own data is the reference
        reference = drift_mod.DriftReference.fit(
            s.X,
            s.names,
            s.scores,
            bundle.name,
            str(bundle.version),
            source=f"first monitoring run {as_of.isoformat()}",
        )
    psis = drift_mod.drift_table(reference, s.X, s.names, s.scores)
    summary = drift_mod.assess(psis, policy.drift, precision_drop=precision_drop)
    summary["reference_source"] = reference.source
    return reference, psis, summary


def _write(
    engine: Engine,
    summary: RunSummary,
    rows: dict[sa.Table, pd.DataFrame],
    started: datetime,
    t: dict[str, float],
) -> None:
    """Replace the run's rows and insert its `score_runs` row, in one transaction: the old run
    is replaced or nothing changes. Sets `summary.replaced` and `summary.timings_s`."""
    d = summary.drift
    with engine.begin() as conn:
        summary.replaced = replace_run_rows(conn, summary.run_id, rows)
        t["write"] = time.perf_counter()
        summary.timings_s = _timings(t)
        conn.execute(
            score_runs.insert().values(
                run_id=summary.run_id,
                as_of_date=date.fromisoformat(summary.as_of_date),
                model_name=summary.model_name,
                model_version=summary.model_version,
                started_at=started,
                finished_at=datetime.now(UTC),
                n_scored=summary.n_scored,
                n_flagged=summary.n_flagged,
                n_alerts=summary.n_alerts,
                n_suppressed=summary.n_suppressed,
                prev_run_id=summary.prev_run_id,
                jaccard_prev=summary.jaccard_prev,
                psi_score=d["psi_score"],
                n_features_drifted=len(d["features_drifted"]),
                recommend_retrain=d["recommend_retrain"],
                summary_json=json.dumps(asdict(summary)),
            )
        )


def _timings(t: dict[str, float]) -> dict[str, float]:
    keys = list(t)
    out = {keys[i]: round(t[keys[i]] - t[keys[i - 1]], 3) for i in range(1, len(keys))}
    out["total"] = round(t[keys[-1]] - t[keys[0]], 3)
    return out


def _write_drift_report(
    reports_dir: Path,
    run_id: str,
    psis: dict[str, float],
    summary: dict[str, Any],
    policy_drift: DriftPolicy,
    reference: drift_mod.DriftReference,
) -> None:
    """drift.json (PSI per column + recommendation) and drift.png under reports/monitoring/<run>."""
    out = reports_dir / "monitoring" / run_id
    out.mkdir(parents=True, exist_ok=True)
    doc = {**summary, "psi": psis, "reference_model_version": reference.model_version}
    (out / "drift.json").write_text(json.dumps(doc, indent=1))
    drift_mod.plot_drift(psis, policy_drift, out / "drift.png")
