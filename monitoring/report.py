"""`safetynet report`: how the closed loop is doing, measured from visit outcomes.

- realized precision: among visits of listed (non-audit) households that reached a conclusion
  (hardship confirmed / not in hardship), the share confirmed; Wilson 95% interval;
- exclusion error: the audit slice is a uniform sample of the households below the list's cut,
  so its (sampling-weighted) hardship rate times the unlisted pool estimates the households in
  need the list missed; recall = listed positives ÷ (listed positives + missed). The interval
  comes from the Wilson interval of the audit rate (Kish effective sample size for the weights)
  with the precision held at its point estimate — an approximation stated in the report;
- time from alert to visit (median, 90th percentile, in days) and from listing to visit;
- caseworker disagreement rate (share of reached visits where the caseworker disagreed), by code.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from safetynet.db.tables import alerts, score_runs, visit_outcomes, worklist_items

CONCLUSIVE = ("hardship_confirmed", "not_in_hardship")
REACHED = ("hardship_confirmed", "not_in_hardship", "moved")


def wilson(successes: float, n: float, z: float = 1.959964) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (None when n = 0)."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _load(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    with engine.connect() as conn:
        items = pd.read_sql(sa.select(worklist_items), conn)
        outcomes = pd.read_sql(sa.select(visit_outcomes), conn)
        first_alert = pd.read_sql(
            sa.select(alerts.c.run_id, alerts.c.household_key, alerts.c.as_of_date).distinct(), conn
        )
        runs = pd.read_sql(
            sa.select(score_runs.c.run_id, score_runs.c.as_of_date, score_runs.c.model_version),
            conn,
        )
    return items, outcomes, first_alert, runs


def _visits(items: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Outcomes joined to their worklist item (latest outcome per item wins)."""
    linked = outcomes[outcomes["worklist_item_id"].notna()].sort_values(["visit_date", "id"])
    linked = linked.drop_duplicates("worklist_item_id", keep="last")
    v = linked.merge(
        items[["item_id", "run_id", "as_of_date", "district", "audit", "sampling_weight"]].rename(
            columns={"audit": "item_audit"}
        ),
        left_on="worklist_item_id",
        right_on="item_id",
        how="inner",
    )
    v["y"] = (v["outcome"] == "hardship_confirmed").astype(int)
    return v


def precision_block(v: pd.DataFrame) -> dict[str, Any]:
    listed = v[~v["item_audit"].astype(bool) & v["outcome"].isin(CONCLUSIVE)]
    n, k = len(listed), int(listed["y"].sum())
    return {
        "visits_conclusive": n,
        "confirmed": k,
        "precision": k / n if n else None,
        "precision_ci95": wilson(k, n),
    }


def exclusion_block(
    v: pd.DataFrame, items: pd.DataFrame, precision: float | None
) -> dict[str, Any]:
    """Sampling-weighted hardship rate of the audit slice, and the recall it implies."""
    aud = v[v["item_audit"].astype(bool) & v["outcome"].isin(CONCLUSIVE)]
    audit_items = items[items["audit"].astype(bool)]
    pool = float(audit_items["sampling_weight"].fillna(1.0).sum())  # unlisted households
    n_listed = int((~items["audit"].astype(bool)).sum())
    out: dict[str, Any] = {
        "audit_items": len(audit_items),
        "audit_visits_conclusive": len(aud),
        "unlisted_pool": pool,
        "listed": n_listed,
        "audit_hardship_rate": None,
        "audit_hardship_rate_ci95": None,
        "estimated_missed": None,
        "recall": None,
        "recall_ci95": None,
        "exclusion_error": None,
    }
    if aud.empty:
        return out
    w = aud["sampling_weight"].fillna(1.0).to_numpy(float)
    y = aud["y"].to_numpy(float)
    rate = float((w * y).sum() / w.sum())
    n_eff = w.sum() ** 2 / (w**2).sum()
    ci = wilson(rate * n_eff, n_eff)
    out.update(
        audit_hardship_rate=rate,
        audit_hardship_rate_ci95=ci,
        estimated_missed=rate * pool,
    )
    if precision is not None:
        tp = precision * n_listed

        def recall_at(r: float) -> float | None:
            total = tp + r * pool
            return tp / total if total > 0 else None

        rec = recall_at(rate)
        out["recall"] = rec
        out["exclusion_error"] = None if rec is None else 1 - rec
        if ci is not None:
            lo, hi = recall_at(ci[1]), recall_at(ci[0])  # more missed → lower recall
            out["recall_ci95"] = None if lo is None or hi is None else (lo, hi)
    return out


def timing_block(v: pd.DataFrame, first_alert: pd.DataFrame) -> dict[str, Any]:
    days_listed = (pd.to_datetime(v["visit_date"]) - pd.to_datetime(v["as_of_date"])).dt.days
    alerted = v.merge(first_alert[["run_id", "household_key"]].drop_duplicates(), how="inner")
    days_alert = (
        pd.to_datetime(alerted["visit_date"]) - pd.to_datetime(alerted["as_of_date"])
    ).dt.days

    def stats(d: pd.Series) -> dict[str, Any]:
        d = d[d >= 0]
        if d.empty:
            return {"n": 0, "median_days": None, "p90_days": None}
        return {
            "n": len(d),
            "median_days": float(d.median()),
            "p90_days": float(np.percentile(d, 90)),
        }

    return {"alert_to_visit": stats(days_alert), "list_to_visit": stats(days_listed)}


def disagreement_block(outcomes: pd.DataFrame) -> dict[str, Any]:
    reached = outcomes[outcomes["outcome"].isin(REACHED)]
    n = len(reached)
    dis = reached[reached["disagrees_with_score"].astype(bool)]
    return {
        "visits_reached": n,
        "disagreements": len(dis),
        "disagreement_rate": len(dis) / n if n else None,
        "disagreement_rate_ci95": wilson(len(dis), n),
        "by_code": {str(k): int(c) for k, c in dis["disagreement_code"].value_counts().items()},
    }


def build_report(engine: Engine) -> dict[str, Any]:
    """The whole report as a JSON-ready dict: overall and per run."""
    items, outcomes, first_alert, runs = _load(engine)
    v = _visits(items, outcomes)
    overall_p = precision_block(v)
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "outcomes": len(outcomes),
        "outcomes_by_kind": {str(k): int(c) for k, c in outcomes["outcome"].value_counts().items()},
        "precision": overall_p,
        "exclusion": exclusion_block(v, items, overall_p["precision"]),
        "timing": timing_block(v, first_alert),
        "disagreement": disagreement_block(outcomes),
        "runs": [],
    }
    for run in runs.sort_values("as_of_date").itertuples():  # one row per month: few
        rv, ri = v[v["run_id"] == run.run_id], items[items["run_id"] == run.run_id]
        p = precision_block(rv)
        e = exclusion_block(rv, ri, p["precision"])
        report["runs"].append(
            {
                "run_id": run.run_id,
                "model_version": run.model_version,
                "listed": e["listed"],
                "visits_conclusive": p["visits_conclusive"],
                "precision": p["precision"],
                "audit_visits_conclusive": e["audit_visits_conclusive"],
                "recall": e["recall"],
            }
        )
    report["precision_drop"] = precision_drop(report["runs"])
    return report


def precision_drop(runs: list[dict[str, Any]], min_visits: int = 20) -> float | None:
    """Relative fall of the latest run's realized precision against earlier runs pooled.

    Runs with fewer than `min_visits` conclusive listed visits are ignored (too noisy).
    """
    usable = [
        r for r in runs if r["visits_conclusive"] >= min_visits and r["precision"] is not None
    ]
    if len(usable) < 2:
        return None
    latest, earlier = usable[-1], usable[:-1]
    n = sum(r["visits_conclusive"] for r in earlier)
    ref = sum(r["precision"] * r["visits_conclusive"] for r in earlier) / n
    return None if ref <= 0 else max(0.0, 1 - latest["precision"] / ref)


def _fmt(x: Any, pct: bool = True) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, tuple | list) and len(x) == 2:
        return f"[{_fmt(x[0], pct)}, {_fmt(x[1], pct)}]"
    return f"{x:.1%}" if pct else f"{x:,.1f}" if isinstance(x, float) else f"{x:,}"


def render_markdown(r: dict[str, Any]) -> str:
    p, e, t, d = r["precision"], r["exclusion"], r["timing"], r["disagreement"]
    lines = [
        f"# SafetyNet closed-loop report ({r['generated_at']})",
        "",
        f"{r['outcomes']} visit outcomes recorded: "
        + ", ".join(f"{k} {v}" for k, v in r["outcomes_by_kind"].items()),
        "",
        "| measure | value | 95% interval | from |",
        "|---|---|---|---|",
        f"| realized precision of flagged lists | {_fmt(p['precision'])} | "
        f"{_fmt(p['precision_ci95'])} | {p['visits_conclusive']} conclusive listed visits |",
        f"| hardship rate below the cut (audit slice) | {_fmt(e['audit_hardship_rate'])} | "
        f"{_fmt(e['audit_hardship_rate_ci95'])} | {e['audit_visits_conclusive']} audit visits |",
        f"| estimated households in need missed | {_fmt(e['estimated_missed'], False)} | | "
        f"unlisted pool {_fmt(e['unlisted_pool'], False)} |",
        f"| estimated recall (1 − exclusion error) | {_fmt(e['recall'])} | "
        f"{_fmt(e['recall_ci95'])} | listed positives ÷ (listed + missed) |",
        f"| time from alert to visit, median (p90) | "
        f"{_fmt(t['alert_to_visit']['median_days'], False)} d "
        f"({_fmt(t['alert_to_visit']['p90_days'], False)} d) | | "
        f"{t['alert_to_visit']['n']} alerted visits |",
        f"| time from listing to visit, median | {_fmt(t['list_to_visit']['median_days'], False)} d"
        f" | | {t['list_to_visit']['n']} listed visits |",
        f"| caseworker disagreement rate | {_fmt(d['disagreement_rate'])} | "
        f"{_fmt(d['disagreement_rate_ci95'])} | {d['visits_reached']} reached visits |",
        "",
        "Disagreement reasons: "
        + (", ".join(f"{k} {v}" for k, v in d["by_code"].items()) or "none"),
        "",
        "## Per run",
        "",
        "| run | model | listed | conclusive visits | precision | audit visits | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        lines.append(
            f"| {run['run_id']} | {run['model_version']} | {run['listed']} | "
            f"{run['visits_conclusive']} | {_fmt(run['precision'])} | "
            f"{run['audit_visits_conclusive']} | {_fmt(run['recall'])} |"
        )
    drop = r["precision_drop"]
    lines += [
        "",
        f"Realized precision change of the latest run against earlier runs: "
        f"{'n/a (too few visits)' if drop is None else f'-{drop:.1%}'}.",
        "",
        "Recall's interval varies the audit hardship rate over its Wilson interval (Kish "
        "effective sample size) with precision at its point estimate.",
    ]
    return "\n".join(lines) + "\n"


def write_report(r: dict[str, Any], reports_dir: Path) -> tuple[Path, Path]:
    """report-<date>.md and .json under reports_dir (same-day reruns overwrite)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stem = f"report-{r['generated_at'][:10]}"
    md, js = reports_dir / f"{stem}.md", reports_dir / f"{stem}.json"
    md.write_text(render_markdown(r), encoding="utf-8")
    js.write_text(json.dumps(r, indent=1, default=str), encoding="utf-8")
    return md, js
