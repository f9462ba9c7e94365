"""One training run end to end: experiment -> champion comparison -> artifacts -> MLflow ->
registry (`challenger`) -> optionally the promotion gate."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from safetynet.config import Settings
from safetynet.model import CHAMPION, Bundle, Calibrator, load_bundle
from safetynet.policy import PromotionPolicy
from safetynet.training import metrics as M
from safetynet.training import plots
from safetynet.training.fairness import audit, flagged_at_capacity, gate_failures
from safetynet.training.model_card import need_group_rows, render
from safetynet.training.pipeline import Result, RunConfig, TableSpec, run
from safetynet.training.promote import COMPARED_TAG, Decision

log = logging.getLogger(__name__)

NEED_BY_GROUP_FILE = "need_recall_by_group.csv"  # simulated data only (`--truth`)


@dataclass
class TrainOutcome:
    run_id: str
    version: str
    model_name: str
    result: Result
    decision: Decision | None = None


def feature_set_hash(frame: pd.DataFrame, features: Sequence[str]) -> str:
    """Hash of the ordered feature names and dtypes: a model only fits tables that match it."""
    desc = json.dumps([[c, str(frame[c].dtype)] for c in features])
    return hashlib.sha256(desc.encode()).hexdigest()[:16]


def file_checksum(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _champion_on_test(
    frame: pd.DataFrame, result: Result, spec: TableSpec, cfg: RunConfig, settings: Settings,
    model_name: str, visits: pd.DataFrame | None = None,
) -> tuple[dict[str, float], str | None, np.ndarray | None, np.ndarray | None]:
    """Score the current champion on this run's final test rows (same data, same cut).

    The champion's *evaluated* model is scored when its run kept one (runs that register a
    refit do): the refit saw labels up to its own latest labelled date, possibly this test's,
    and is fresher than this run's evaluated model, so comparing it would favour the champion.
    Evaluated model against evaluated model keeps the comparison at the same data lag.
    Also returns the champion's probabilities on the test rows and on `visits`' rows (None
    where not scored), for the need gate (`need_gate_evidence`).
    """
    try:
        champ = load_bundle(CHAMPION, settings, name=model_name)
    except LookupError:
        return {}, None, None, None
    missing = [c for c in champ.features if c not in frame.columns]
    if missing:
        log.warning("champion v%s needs features this table lacks (%s): not compared",
                    champ.version, missing[:5])
        return {"champion_features_missing": float(len(missing))}, champ.version, None, None
    evaluated = _evaluated_model(champ)
    scored = evaluated or champ
    test = frame.iloc[result.test_index]
    X = test[champ.features].to_numpy(dtype=np.float64, na_value=np.nan)
    prob = scored.predict_proba(X)
    y = test[spec.label].to_numpy(dtype=np.float64)
    groups = test[spec.group].astype(str).to_numpy() if spec.group else None
    m = M.prefixed(M.evaluate(y, prob, cfg.fractions, groups, cfg.k_per_group), "champion_test_")
    flagged = flagged_at_capacity(prob, cfg.capacity_fraction, cfg.search.seed)
    cols = [c for c in dict.fromkeys([*spec.audit, spec.group]) if c]
    fair = audit(y, flagged, test[cols], cfg.fairness)
    m["champion_fairness_groups_failing"] = float(fair["fails_gate"].sum()) if len(fair) else 0.0
    m["champion_compared_evaluated_model"] = float(evaluated is not None)
    visit_prob = None
    if visits is not None and len(visits) and not [c for c in champ.features
                                                    if c not in visits.columns]:
        visit_prob = scored.predict_proba(
            visits[champ.features].to_numpy(dtype=np.float64, na_value=np.nan))
    return m, champ.version, prob, visit_prob


NEED_GATE_PREFIX = "need_gate_recall_ratio_min_"  # challenger / reference, lowest group


def _group_ratio_metrics(chal: pd.DataFrame, ref: pd.DataFrame,
                         attributes: Sequence[str]) -> tuple[dict[str, float], list[str]]:
    """Per audited attribute the lowest challenger/reference need-recall ratio over its groups
    (`need_gate_recall_ratio_min_<attribute>`), and "attribute=group ratio" lines."""
    from safetynet.training.visits import recall_ratios

    ratios = recall_ratios(chal, ref).dropna(subset=["ratio"])
    metrics: dict[str, float] = {}
    lines = []
    for attr in attributes:
        part = ratios[ratios["attribute"] == attr]
        if part.empty:
            continue
        worst = part.loc[part["ratio"].idxmin()]
        metrics[NEED_GATE_PREFIX + attr] = float(worst["ratio"])
        lines.append(f"{attr}={worst['group']} {worst['ratio']:.2f} "
                     f"({worst['recall_challenger']:.3f} vs {worst['recall_champion']:.3f})")
    return metrics, lines


def _mean_group_recall(by_group: pd.DataFrame, ranking: str, counted_only: bool = True
                       ) -> pd.DataFrame:
    """Need recall per (attribute, group) averaged over the test months, from a
    `need_recall_by_group` table (with `ranking`); groups too small to count are NaN."""
    part = by_group[by_group["ranking"] == ranking]
    if counted_only:
        part = part.assign(recall=part["recall"].where(part["counted"].astype(bool)))
    return part.groupby(["attribute", "group"], as_index=False)["recall"].mean()


def _truth_need_of(frame: pd.DataFrame, result: Result, spec: TableSpec, cfg: RunConfig,
                   prob: np.ndarray) -> tuple[dict[str, float], pd.DataFrame] | None:
    """Simulated data only: need metrics (`champion_test_need_*`) and need recall by group
    of a ranking `prob` of this run's final test rows, one ranking per as-of month as the
    run's own need figures (`pipeline.need_evaluation`). None without the truth."""
    from safetynet.training.need import need_audit_groups, need_metrics, need_recall_by_group
    from safetynet.training.pipeline import TRUTH_NEED_COLUMN

    if TRUTH_NEED_COLUMN not in frame:
        return None
    test = frame.iloc[result.test_index].reset_index(drop=True)
    attributes = list(cfg.fairness.need_audit_attributes)
    groups = need_audit_groups(test, attributes)
    need = test[TRUTH_NEED_COLUMN]
    months = test[spec.time].astype(str) if spec.time else pd.Series("all", index=test.index)
    per_month, tables = [], []
    for month, idx in months.groupby(months, sort=True).groups.items():
        rows = np.asarray(idx)
        if need.iloc[rows].notna().sum() == 0:
            continue
        per_month.append(need_metrics(prob[rows], need.iloc[rows], groups.iloc[rows],
                                      cfg.fractions, attributes, cfg.capacity_fraction,
                                      cfg.fairness.min_group_positives, "champion_test_"))
        tables.append(need_recall_by_group(
            prob[rows], need.iloc[rows], groups.iloc[rows], cfg.capacity_fraction,
            cfg.fairness.min_group_positives).assign(as_of=month, ranking="champion"))
    if not per_month:
        return None
    keys = dict.fromkeys(k for m in per_month for k in m)
    metrics = {k: float(np.nanmean([m.get(k, np.nan) for m in per_month])) for k in keys}
    return metrics, pd.concat(tables, ignore_index=True)


def need_gate_evidence(
    frame: pd.DataFrame, result: Result, spec: TableSpec, cfg: RunConfig,
    champion_prob: np.ndarray | None, champion_visit_score: np.ndarray | None,
    visits: pd.DataFrame | None, min_audit_visits: int,
) -> tuple[dict[str, float], dict[str, str]]:
    """The promotion gate's need evidence, logged on the challenger run (docs/training.md,
    "The promotion gate").

    - truth (simulated data, `--truth`): the reference is the champion's evaluated model on
      the same test (`champion_test_need_precision_at_<cap>`) or, with no champion, the best
      baseline; per audited attribute the lowest challenger/reference need-recall ratio.
    - visits (no truth): both evaluated models rank the reached visits whose as-of month is
      in or after the challenger's test period (held out from both fits); design-weighted
      need precision at capacity (`visit_need_precision_at_<cap>`, `champion_visit_...`) and
      group need-recall ratios, when at least `min_audit_visits` of them are audit visits.
    Returns (metrics, tags): tag `safetynet.gate_evidence` = truth / visits / none."""
    from safetynet.training.visits import visit_need_figures

    cap = M.pct_label(cfg.capacity_fraction)
    attributes = list(cfg.fairness.need_audit_attributes)
    metrics: dict[str, float] = {}
    tags = {"safetynet.gate_evidence": "none"}
    by_group = result.need_by_group
    if f"test_need_precision_at_{cap}" in result.metrics and by_group is not None:
        chal = _mean_group_recall(by_group, "model")
        if champion_prob is not None:
            truth = _truth_need_of(frame, result, spec, cfg, champion_prob)
            if truth is not None:
                metrics.update(truth[0])
                ref = _mean_group_recall(truth[1], "champion")
            else:
                ref = None
        else:
            ref = _mean_group_recall(by_group, "baseline_best")
        if ref is not None:
            ratios, lines = _group_ratio_metrics(chal, ref, attributes)
            metrics.update(ratios)
            tags.update({"safetynet.gate_evidence": "truth",
                         "safetynet.gate_need_recall_worst": "; ".join(lines)[:4000]})
        return metrics, tags
    if visits is None or champion_visit_score is None or "test_start" not in result.folds[-1]:
        return metrics, tags
    from safetynet.training.splits import to_periods

    start = to_periods(pd.Series([result.folds[-1]["test_start"]]))[0]
    held = visits[to_periods(visits[spec.time]) >= start].reset_index(drop=True)
    reached = held["y"].notna() & held["weight"].notna()
    audits = int((reached & held["audit"].astype(bool)).sum())
    metrics["visit_gate_audit_visits"] = float(audits)
    if audits < min_audit_visits:
        return metrics, tags
    X = held[result.features].to_numpy(dtype=np.float32, na_value=np.nan)
    chal_score = result.eval_booster.predict(X)
    champ_score = champion_visit_score[np.asarray(held.pop("_row"))] if "_row" in held else None
    if champ_score is None:
        return metrics, tags
    mins = cfg.fairness.min_group_positives
    chal_fig, chal_groups = visit_need_figures(held, chal_score, cfg.capacity_fraction,
                                               attributes, mins)
    ref_fig, ref_groups = visit_need_figures(held, champ_score, cfg.capacity_fraction,
                                             attributes, mins)
    metrics.update({f"visit_need_precision_at_{cap}": chal_fig["precision"],
                    f"champion_visit_need_precision_at_{cap}": ref_fig["precision"],
                    "visit_need_recall": chal_fig["recall"],
                    "champion_visit_need_recall": ref_fig["recall"],
                    "visit_gate_visits": chal_fig["visits"],
                    "visit_gate_months": chal_fig["months"]})
    ratios, lines = _group_ratio_metrics(chal_groups, ref_groups, attributes)
    metrics.update(ratios)
    tags.update({"safetynet.gate_evidence": "visits",
                 "safetynet.gate_need_recall_worst": "; ".join(lines)[:4000]})
    return metrics, tags


def _evaluated_model(champ: Bundle) -> Bundle | None:
    """`champ` with its run's evaluated booster and calibrator, or None if the run registered
    the evaluated model itself."""
    import lightgbm as lgb
    import mlflow
    from mlflow.exceptions import MlflowException

    from safetynet.training.tracking import CALIBRATOR_FILE, EVALUATED_DIR, EVALUATED_MODEL_FILE

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(
                run_id=champ.run_id, artifact_path=EVALUATED_DIR, dst_path=tmp))
        except (MlflowException, OSError):
            return None
        if not (local / EVALUATED_MODEL_FILE).exists():
            return None
        return replace(champ, booster=lgb.Booster(model_file=str(local / EVALUATED_MODEL_FILE)),
                       calibrator=Calibrator.from_json(local / CALIBRATOR_FILE))


def need_model_tags(info: Mapping[str, Any]) -> dict[str, str]:
    """Run tags naming what the registered model is: `safetynet.need_model` = "entry+visits"
    or "entry" (with `safetynet.need_model_cold_start` saying why), and the evaluated fit's
    state; {} when the table had no visits to consider (bring-your-own tables)."""
    if not info:
        return {}
    refit_cold = info.get("need_model_refit_cold_start", True)
    tags = {"safetynet.need_model": "entry" if refit_cold else "entry+visits",
            "safetynet.need_model_evaluated": ("entry" if info.get("need_model_cold_start", True)
                                               else "entry+visits")}
    if refit_cold:
        tags["safetynet.need_model_cold_start"] = str(
            info.get("need_model_refit_cold_start_reason", "no visits"))
    return tags


def write_artifacts(
    result: Result, out: Path, cfg: RunConfig, context: dict[str, Any]
) -> None:
    """Plots, tables and the model card into `out` (logged as run artifacts)."""
    (out / "plots").mkdir(parents=True, exist_ok=True)
    tf = result.test_frame
    y = tf[context["label_column"]].to_numpy(dtype=float)
    scores = {"model": tf["score"].to_numpy()}
    plots.calibration_plot(tf["score"].to_numpy(), y, out / "plots" / "calibration.png",
                           result.metrics.get("test_calibration_base_rate"))
    plots.pr_plot(y, scores, out / "plots" / "precision_recall.png")
    plots.precision_at_k_plot(y, scores, out / "plots" / "precision_at_k.png",
                              cfg.capacity_fraction)
    Xs, contrib = result.shap_sample
    plots.shap_beeswarm(Xs, contrib, result.features, out / "plots" / "shap_beeswarm.png")
    plots.fairness_plot(result.fairness, out / "plots" / "fairness_disparities.png",
                        cfg.fairness.disparity_low, cfg.fairness.disparity_high)
    result.fairness.to_csv(out / "fairness.csv", index=False)
    if result.need_by_group is not None:
        result.need_by_group.to_csv(out / NEED_BY_GROUP_FILE, index=False)
    (out / "folds.json").write_text(json.dumps(result.folds, indent=2, default=str))
    pd.DataFrame(result.trials).to_csv(out / "trials.csv", index=False)
    (out / "baselines.json").write_text(json.dumps(result.baselines, indent=2))
    (out / "metrics.json").write_text(json.dumps(result.metrics, indent=2, default=float))
    (out / "model_card.md").write_text(render(context), encoding="utf-8")


def train_and_log(
    frame: pd.DataFrame,
    spec: TableSpec,
    cfg: RunConfig,
    *,
    settings: Settings,
    promotion: PromotionPolicy,
    model_name: str | None = None,
    label_config: Mapping[str, Any] | None = None,
    feature_set_version: str = "table",
    snapshot_id: str = "unknown",
    description: str = "table",
    not_allowed: Sequence[str] = (),
    promote_after: bool = False,
    run_name: str | None = None,
    visits: pd.DataFrame | None = None,
    gate_min_audit_visits: int = 30,
) -> TrainOutcome:
    """Train, evaluate, log and register one candidate; set alias `challenger`. `visits`:
    the visit table (`training/visits.py`) the need model learns from and the gate's
    evidence; None or empty: the entry model alone. `gate_min_audit_visits`: held-out audit
    visits the gate needs before it trusts a visit estimate (policy [outreach]
    min_estimate_visits)."""
    from mlflow import MlflowClient

    from safetynet.model import configure
    from safetynet.training import promote as P
    from safetynet.training.tracking import log_training_run

    model_name = model_name or settings.model_name
    result = run(frame, spec, cfg, visits)
    configure(settings)
    champ_metrics, champ_version, champ_prob, champ_visit = _champion_on_test(
        frame, result, spec, cfg, settings, model_name, visits)
    if visits is not None and champ_visit is not None:
        visits = visits.assign(_row=np.arange(len(visits)))
    gate_metrics, gate_tags = need_gate_evidence(
        frame, result, spec, cfg, champ_prob, champ_visit, visits, gate_min_audit_visits)
    champ_metrics = {**champ_metrics, **gate_metrics}
    fhash = feature_set_hash(frame, result.features)
    label_cfg = dict(label_config or {"column": spec.label})
    feature_spec = {
        "features": result.features,
        "feature_set_version": feature_set_version,
        "feature_set_hash": fhash,
        "label": label_cfg,
        "entity": spec.entity,
        "time": spec.time,
    }
    cap_metric = f"precision_at_{M.pct_label(cfg.capacity_fraction)}"
    context = {
        "model_name": model_name,
        "label": label_cfg,
        "label_column": spec.label,
        "horizon": cfg.horizon,
        "split": result.split,
        "capacity": cfg.capacity_fraction,
        "data": {
            "description": description,
            "rows": len(frame),
            "entities": int(frame[spec.entity].nunique()),
            "positive_rate": result.label_positive_rate,
        },
        "features": result.features,
        "feature_set_version": feature_set_version,
        "feature_set_hash": fhash,
        "snapshot_id": snapshot_id,
        "n_trees": result.booster.num_trees(),
        "refit": result.refit,
        "valid_periods": cfg.valid_periods,
        "params": result.params,
        "search_trials": cfg.search.n_trials,
        "seed": cfg.search.seed,
        "calibration": result.calibrator.method,
        "budget_ms": cfg.search.explain_budget_ms,
        "metrics": {**result.metrics, **champ_metrics},
        "cap_metric": cap_metric,
        "cap_label": M.pct_label(cfg.capacity_fraction),
        "cap_unconstrained": f"test_unconstrained_{cap_metric}",
        "has_oracle": any(k.startswith("test_oracle_") for k in result.metrics),
        "has_need": "test_need_months" in result.metrics,
        "need_model": dict(result.need_model),
        "need_attributes": [a for a in cfg.fairness.need_audit_attributes
                            if f"test_need_recall_ratio_min_{a}" in result.metrics],
        "need_groups": need_group_rows(result.need_by_group),
        "best_baseline": result.params.get("best_baseline", ""),
        "fraction_labels": [M.pct_label(f) for f in cfg.fractions],
        "baselines": result.baselines,
        "folds": result.folds,
        "fairness": result.fairness.to_dict("records"),
        "fair_low": cfg.fairness.disparity_low,
        "fair_high": cfg.fairness.disparity_high,
        "fair_min_pos": cfg.fairness.min_group_positives,
        "not_allowed": list(not_allowed) or ["(none configured)"],
    }
    failures = gate_failures(result.fairness)
    tags = {
        "safetynet.split": result.split,
        "safetynet.feature_set_version": feature_set_version,
        "safetynet.feature_set_hash": fhash,
        "safetynet.data_snapshot_id": snapshot_id,
        "safetynet.table": description,
        "safetynet.fairness_failures": "; ".join(failures)[:4000],
        COMPARED_TAG: champ_version or "none",
    }
    tags.update(need_model_tags(result.need_model))
    tags.update(gate_tags)
    final = result.folds[-1]
    if "test_start" in final:
        tags["safetynet.test_period"] = f"{final['test_start']}..{final['test_end']}"
    tags["safetynet.registered_model"] = "refit" if result.refit.get("refit") else "evaluated"
    if "refit_max_as_of" in result.refit:
        tags["safetynet.refit_max_as_of"] = result.refit["refit_max_as_of"]
        tags["safetynet.refit_calibration"] = result.refit["refit_calibration"]
    params = {
        **result.params,
        "label_column": spec.label,
        "entity_column": spec.entity,
        "time_column": spec.time or "",
        "group_column": spec.group or "",
        "label_config": label_cfg,
        "feature_set_version": feature_set_version,
        "feature_set_hash": fhash,
        "data_snapshot_id": snapshot_id,
        "n_folds": cfg.n_folds,
        "fractions": list(cfg.fractions),
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        write_artifacts(result, out, cfg, context)
        (out / "label_config.json").write_text(json.dumps(label_cfg, indent=2, default=str))
        run_id, version = log_training_run(
            result,
            settings=settings,
            model_name=model_name,
            feature_spec=feature_spec,
            params=params,
            tags=tags,
            extra_metrics=champ_metrics,
            artifacts_dir=out,
            run_name=run_name,
        )
    client = MlflowClient()
    client.set_registered_model_alias(model_name, "challenger", version)
    client.set_model_version_tag(model_name, version, "feature_set_hash", fhash)
    cap_value = result.metrics.get(f"test_{cap_metric}")
    if cap_value is not None:
        client.set_model_version_tag(model_name, version, f"test_{cap_metric}", f"{cap_value:.4f}")
    decision = (P.promote(client, model_name, promotion, fairness=cfg.fairness)
                if promote_after else None)
    return TrainOutcome(run_id, version, model_name, result, decision)
