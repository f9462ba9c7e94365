"""`safetynet report`: how the closed loop is doing, measured from visit outcomes (no truth).

- need estimates (monitoring/estimates.py, method in docs/monitoring-estimates.md): from the
  listed visits and the random audit slice, each weighted by its stored selection probability,
  the need precision of the list, the households in need the list left out (exclusion), and
  need recall, overall and per group (district and the audit attributes stored on each item),
  with 95% intervals, months pooled where one is too few; an estimate without enough visits,
  or with an interval wider than [outreach] max_interval_width, shows its status instead
  ("not enough audit visits"), never a number;
- raw realized precision per run (share confirmed among conclusive listed visits; the drift
  check compares the latest run with earlier ones);
- time from alert to visit (median, 90th percentile, in days) and from listing to visit;
- caseworker disagreement rate (share of reached visits where the caseworker disagreed), by code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from statsmodels.stats.proportion import proportion_confint

from safetynet.db.tables import alerts, score_runs, visit_outcomes, worklist_items, worklist_pools
from safetynet.monitoring.estimates import (
    NOT_ENOUGH_AUDIT,
    NOT_ENOUGH_LISTED,
    OK,
    NeedEstimate,
    estimate_need,
)
from safetynet.policy import OutreachPolicy

CONCLUSIVE = ("hardship_confirmed", "not_in_hardship")
REACHED = ("hardship_confirmed", "not_in_hardship", "moved")
STATUS_TEXT = {
    NOT_ENOUGH_AUDIT: "not enough audit visits",
    NOT_ENOUGH_LISTED: "not enough listed visits",
}


def wilson(successes: float, n: float) -> tuple[float, float] | None:
    """Wilson score 95% interval of a proportion (statsmodels); None when n = 0."""
    if n <= 0:
        return None
    lo, hi = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return max(0.0, float(lo)), min(1.0, float(hi))


def _load(engine: Engine) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        return {
            "items": pd.read_sql(sa.select(worklist_items), conn),
            "pools": pd.read_sql(sa.select(worklist_pools), conn),
            "outcomes": pd.read_sql(sa.select(visit_outcomes), conn),
            "first_alert": pd.read_sql(
                sa.select(alerts.c.run_id, alerts.c.household_key, alerts.c.as_of_date).distinct(),
                conn,
            ),
            "runs": pd.read_sql(
                sa.select(score_runs.c.run_id, score_runs.c.as_of_date, score_runs.c.model_version),
                conn,
            ),
        }


def _visits(items: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Outcomes joined to their worklist item (latest outcome per item wins)."""
    linked = outcomes[outcomes["worklist_item_id"].notna()].sort_values(["visit_date", "id"])
    linked = linked.drop_duplicates("worklist_item_id", keep="last")
    v = linked.merge(
        items[["item_id", "run_id", "as_of_date", "district", "audit"]].rename(
            columns={"audit": "item_audit"}
        ),
        left_on="worklist_item_id",
        right_on="item_id",
        how="inner",
    )
    v["y"] = (v["outcome"] == "hardship_confirmed").astype(int)
    return v


def precision_block(v: pd.DataFrame) -> dict[str, Any]:
    """Raw realized precision: share confirmed among conclusive listed visits (Wilson 95%)."""
    listed = v[~v["item_audit"].astype(bool) & v["outcome"].isin(CONCLUSIVE)]
    n, k = len(listed), int(listed["y"].sum())
    return {
        "visits_conclusive": n,
        "confirmed": k,
        "precision": k / n if n else None,
        "precision_ci95": wilson(k, n),
    }


VISIT_COLUMNS = ("as_of", "run_id", "district", "listed", "audit", "selection_prob", "need")


def need_visits(items: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Every worklist item of the months with at least one recorded visit, in the shape
    `estimate_need` takes: as_of, district, listed, audit, selection_prob, need (1 hardship
    confirmed, 0 not in hardship, NaN when nobody was reached, the household had moved, or the
    item was not visited: nonresponse within its cell), one column per group attribute of
    `groups_json` (text, NaN where the item lacks it). The latest outcome per item counts."""
    linked = outcomes[outcomes["worklist_item_id"].notna()].sort_values(["visit_date", "id"])
    last = linked.drop_duplicates("worklist_item_id", keep="last").set_index("worklist_item_id")
    visited_runs = items.loc[items["item_id"].isin(last.index), "run_id"].unique()
    it = items[items["run_id"].isin(visited_runs)].reset_index(drop=True)
    outcome = it["item_id"].map(last["outcome"])
    need = np.where(outcome == "hardship_confirmed", 1.0,
                    np.where(outcome == "not_in_hardship", 0.0, np.nan))  # fmt: skip
    groups = pd.DataFrame(
        [json.loads(g or "{}") for g in it["groups_json"]], index=it.index, dtype=object
    )
    audit = it["audit"].astype(bool)
    frame = pd.DataFrame({
        "as_of": pd.to_datetime(it["as_of_date"]),
        "run_id": it["run_id"],
        "district": it["district"].astype(str),
        "listed": ~audit,
        "audit": audit,
        "selection_prob": it["selection_prob"].astype(float),
        "need": need,
    })  # fmt: skip
    return pd.concat([frame, groups.drop(columns=["district"], errors="ignore")], axis=1)


def need_block(
    items: pd.DataFrame, pools: pd.DataFrame, outcomes: pd.DataFrame, outreach: OutreachPolicy
) -> dict[str, Any]:
    """Design-based need estimates (monitoring/estimates.py) overall, per group, and per run
    (months pooled back from each run), as JSON-ready dicts."""
    visits = need_visits(items, outcomes)
    attributes = ["district", *[c for c in visits.columns if c not in VISIT_COLUMNS]]
    out: dict[str, Any] = {
        "visited_months": sorted({str(d.date()) for d in visits["as_of"]}),
        "min_visits": outreach.min_estimate_visits,
        "max_interval_width": outreach.max_interval_width,
        "overall": {},
        "groups": [],
        "per_run": {},
    }
    if visits.empty:
        return out
    pool = pools.assign(as_of=pd.to_datetime(pools["as_of_date"]))[
        ["as_of", "district", "n_unlisted"]
    ]
    limits = dict(
        min_audit_visits=outreach.min_estimate_visits,
        min_listed_visits=outreach.min_estimate_visits,
        max_width=outreach.max_interval_width,
    )
    for e in estimate_need(visits, pool, attributes, **limits):
        if e.attribute is None:
            out["overall"][e.quantity] = _as_json(e)
        else:
            out["groups"].append(_as_json(e))
    for run in sorted(visits["run_id"].unique()):
        as_of = visits.loc[visits["run_id"] == run, "as_of"].iloc[0]
        out["per_run"][run] = {
            e.quantity: _as_json(e) for e in estimate_need(visits, pool, (), as_of, **limits)
        }
    return out


def _as_json(e: NeedEstimate) -> dict[str, Any]:
    return {**e.as_dict(), "months": list(e.months)}


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


def build_report(engine: Engine, outreach: OutreachPolicy) -> dict[str, Any]:
    """The whole report as a JSON-ready dict: need estimates overall, per group and per run;
    raw realized precision, time to visit and disagreement. `outreach`: when an estimate is
    shown ([outreach] min_estimate_visits, max_interval_width)."""
    data = _load(engine)
    items, outcomes = data["items"], data["outcomes"]
    v = _visits(items, outcomes)
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "outcomes": len(outcomes),
        "outcomes_by_kind": {str(k): int(c) for k, c in outcomes["outcome"].value_counts().items()},
        "need": need_block(items, data["pools"], outcomes, outreach),
        "precision": precision_block(v),
        "timing": timing_block(v, data["first_alert"]),
        "disagreement": disagreement_block(outcomes),
        "runs": [],
    }
    per_run = report["need"]["per_run"]
    for run in data["runs"].sort_values("as_of_date").itertuples():  # one row per month: few
        rv, ri = v[v["run_id"] == run.run_id], items[items["run_id"] == run.run_id]
        p = precision_block(rv)
        est = per_run.get(run.run_id, {})
        report["runs"].append(
            {
                "run_id": run.run_id,
                "model_version": run.model_version,
                "listed": int((~ri["audit"].astype(bool)).sum()),
                "audit_items": int(ri["audit"].astype(bool).sum()),
                "visits_conclusive": p["visits_conclusive"],
                "precision": p["precision"],
                "audit_visits_conclusive": int(
                    (rv["item_audit"].astype(bool) & rv["outcome"].isin(CONCLUSIVE)).sum()
                ),
                "need_precision": est.get("need_precision"),
                "need_recall": est.get("need_recall"),
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


def _estimate(e: dict[str, Any] | None, pct: bool = True) -> tuple[str, str]:
    """(value, interval) of a NeedEstimate dict; the status in words when it has no value."""
    if e is None:
        return "no visits yet", ""
    if e["status"] != OK:
        need = "audit" if e["status"] == NOT_ENOUGH_AUDIT else "listed"
        n = e[f"{need}_visits"]
        return f"{STATUS_TEXT.get(e['status'], e['status'])} ({n})", ""
    if pct:
        return f"{e['value']:.1%}", f"[{e['low']:.1%}, {e['high']:.1%}]"
    return f"{e['value']:,.0f}", f"[{e['low']:,.0f}, {e['high']:,.0f}]"


def _months(e: dict[str, Any] | None) -> str:
    if not e or not e["months"]:
        return ""
    m = sorted(e["months"])
    return m[0][:7] if len(m) == 1 else f"{m[0][:7]} to {m[-1][:7]} ({len(m)})"


def _need_lines(need: dict[str, Any]) -> list[str]:
    o = need["overall"]
    lines = [
        "## Need: who of the households in need the lists reach",
        "",
        "Design-based estimates from listed visits and the random audit slice, each visit "
        "weighted by its selection probability (docs/monitoring-estimates.md). Months are "
        f"pooled until {need['min_visits']} visits; an estimate with fewer visits or a 95% "
        f"interval wider than {need['max_interval_width']:.0%} shows the status instead "
        "(the figure in brackets: visits available).",
        "",
        "| measure | estimate | 95% interval | months | visits |",
        "|---|---|---|---|---|",
    ]
    rows = (
        ("need precision of the lists", "need_precision", True, "listed"),
        ("households in need not listed (exclusion)", "unlisted_needy", False, "audit"),
        ("need recall: listed ÷ all in need", "need_recall", True, "audit"),
    )
    for label, q, pct, kind in rows:
        e = o.get(q)
        value, ci = _estimate(e, pct)
        visits = f"{e[f'{kind}_visits']} {kind}" if e else ""
        lines.append(f"| {label} | {value} | {ci} | {_months(e)} | {visits} |")
    if not need["groups"]:
        return [*lines, ""]
    lines += [
        "",
        "### By group",
        "",
        "| attribute | group | need recall | 95% interval | need precision | 95% interval "
        "| listed / audit visits | months |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by = {(g["attribute"], g["group"], g["quantity"]): g for g in need["groups"]}
    for attr, group in dict.fromkeys((g["attribute"], g["group"]) for g in need["groups"]):
        r, p = by.get((attr, group, "need_recall")), by.get((attr, group, "need_precision"))
        rv, rci = _estimate(r)
        pv, pci = _estimate(p)
        lines.append(
            f"| {attr} | {group} | {rv} | {rci} | {pv} | {pci} | "
            f"{r['listed_visits'] if r else 0} / {r['audit_visits'] if r else 0} | {_months(r)} |"
        )
    return [*lines, ""]


def render_markdown(r: dict[str, Any]) -> str:
    p, t, d = r["precision"], r["timing"], r["disagreement"]
    lines = [
        f"# SafetyNet closed-loop report ({r['generated_at']})",
        "",
        f"{r['outcomes']} visit outcomes recorded: "
        + ", ".join(f"{k} {v}" for k, v in r["outcomes_by_kind"].items()),
        "",
        *_need_lines(r["need"]),
        "## Visits",
        "",
        "| measure | value | 95% interval | from |",
        "|---|---|---|---|",
        f"| realized precision of listed visits (raw share) | {_fmt(p['precision'])} | "
        f"{_fmt(p['precision_ci95'])} | {p['visits_conclusive']} conclusive listed visits |",
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
        "Need estimates pool months back from each run.",
        "",
        "| run | model | listed | audit | conclusive listed visits | raw precision "
        "| need precision | need recall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        np_v, np_ci = _estimate(run["need_precision"])
        nr_v, nr_ci = _estimate(run["need_recall"])
        lines.append(
            f"| {run['run_id']} | {run['model_version']} | {run['listed']} | "
            f"{run['audit_items']} | {run['visits_conclusive']} | {_fmt(run['precision'])} | "
            f"{np_v} {np_ci} | {nr_v} {nr_ci} |"
        )
    drop = r["precision_drop"]
    lines += [
        "",
        f"Realized precision change of the latest run against earlier runs: "
        f"{'n/a (too few visits)' if drop is None else f'-{drop:.1%}'}.",
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
