"""Household glue: label and cohort from the assistance rolls (policy.toml [label]).

- Onset label: the household starts a spell of one of `onset_programmes` in the window
  (as_of_date, as_of_date + H months]. Labels may use the future - that is what a label is - but
  only spells known by the data snapshot (`knowledge_date <= snapshot`) count.
- Fully labelled: as_of_date + H months <= snapshot, the latest knowledge date in the rolls.
  Later rows get `label = NA`; they are scored, never trained or tested on.
- Cohort: households NOT on a `long_term_programmes` spell at the as-of date, as known at that
  date (`knowledge_date <= as_of_date`, the same view the service has when it scores). They are
  monitored separately.

Observed labels are partial: a household in hardship that never applies is labelled 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from safetynet.policy import LabelPolicy

ASSISTANCE_COLUMNS = ("household_key", "programme", "start_date", "end_date", "knowledge_date")


def build_labels(
    rows: pd.DataFrame,
    assistance: pd.DataFrame,
    cfg: LabelPolicy,
    snapshot: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """One row per distinct (household_key, as_of_date) of `rows`:
    in_cohort (bool), label (Int8, NA when not fully labelled), fully_labelled (bool)."""
    missing = [c for c in ASSISTANCE_COLUMNS if c not in assistance.columns]
    if missing:
        raise ValueError(f"assistance table lacks columns {missing}")
    if snapshot is None:
        snapshot = pd.Timestamp(pd.to_datetime(assistance["knowledge_date"]).max())
    keys = rows[["household_key", "as_of_date"]].drop_duplicates()  # noqa: F841 (used in SQL)
    spells = assistance[list(ASSISTANCE_COLUMNS)]  # noqa: F841
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 2")
        out = con.execute(
            """
            WITH r AS (SELECT household_key, CAST(as_of_date AS DATE) AS as_of FROM keys),
            a AS (
                SELECT household_key, programme, CAST(start_date AS DATE) AS s,
                       CAST(end_date AS DATE) AS e, CAST(knowledge_date AS DATE) AS k
                FROM spells WHERE CAST(knowledge_date AS DATE) <= CAST($snap AS DATE)
            )
            SELECT r.household_key, r.as_of AS as_of_date,
              NOT coalesce(bool_or(list_contains($long, a.programme) AND a.s <= r.as_of
                     AND (a.e IS NULL OR a.e > r.as_of) AND a.k <= r.as_of), false) AS in_cohort,
              coalesce(bool_or(list_contains($onset, a.programme) AND a.s > r.as_of
                     AND a.s <= r.as_of + to_months($h)), false) AS onset,
              r.as_of + to_months($h) <= CAST($snap AS DATE) AS fully_labelled
            FROM r LEFT JOIN a ON a.household_key = r.household_key
            GROUP BY r.household_key, r.as_of
            """,
            {
                "snap": snapshot.date(),
                "long": list(cfg.long_term_programmes),
                "onset": list(cfg.onset_programmes),
                "h": cfg.horizon_months,
            },
        ).df()
    finally:
        con.close()
    out["as_of_date"] = pd.to_datetime(out["as_of_date"])
    out["label"] = out["onset"].astype("Int8").where(out["fully_labelled"], pd.NA)
    return out.drop(columns="onset")


def household_training_frame(
    features: pd.DataFrame,
    assistance: pd.DataFrame,
    cfg: LabelPolicy,
    snapshot: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Feature rows of the onset cohort that are fully labelled, with an int `label` column."""
    clash = [c for c in ("label", "in_cohort", "fully_labelled") if c in features.columns]
    if clash:
        raise ValueError(f"the feature table already has column(s) {clash}: labels come from "
                         "the assistance rolls")
    feats = features.copy()
    feats["as_of_date"] = pd.to_datetime(feats["as_of_date"])
    labels = build_labels(feats, assistance, cfg, snapshot)
    frame = feats.merge(labels, on=["household_key", "as_of_date"], how="inner")
    frame = frame[frame["in_cohort"] & frame["fully_labelled"]].drop(
        columns=["in_cohort", "fully_labelled"]
    )
    frame["label"] = frame["label"].astype("int8")
    return frame.sort_values(["as_of_date", "household_key"]).reset_index(drop=True)


def indicator_columns(frame: pd.DataFrame, extra: Sequence[str] = ()) -> list[str]:
    """Indicator flag columns present in the table (prefix `ind_`/`indicator_`, or named)."""
    return [c for c in frame.columns
            if c.startswith(("ind_", "indicator_")) or c in set(extra)]
