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
Caseworkers' visit outcomes (the feedback store, `safetynet.db.feedback`) close part of that
gap: `outcome_labels` turns them into labels and `merge_labels` merges them in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

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


def outcome_labels(
    outcomes: pd.DataFrame, as_of_dates: list[date] | pd.Series, horizon_months: int
) -> pd.DataFrame:
    """Labels from visit outcomes for the as-of periods whose horizon contains the visit.

    A visit on day v labels as-of date t when t < v <= t + horizon (the label's window, as for
    programme entry). `hardship_confirmed` gives 1, `not_in_hardship` gives 0; if one period
    has both, the confirmation wins (hardship seen at any time in the window is an onset).
    `could_not_reach` and `moved` say nothing. Returns household_key, as_of_date, label,
    n_visits (for `merge_labels` to merge with programme-entry labels).
    """
    cols = ["household_key", "as_of_date", "label", "n_visits"]
    conclusive = outcomes[outcomes["outcome"].isin(["hardship_confirmed", "not_in_hardship"])]
    if conclusive.empty or len(as_of_dates) == 0:
        return pd.DataFrame(columns=cols)
    visits = conclusive[["household_key", "visit_date", "outcome"]].assign(
        visit_date=lambda d: pd.to_datetime(d["visit_date"])
    )
    periods = pd.DataFrame({"as_of_date": pd.to_datetime(pd.Series(list(as_of_dates))).unique()})
    periods["horizon_end"] = periods["as_of_date"] + pd.DateOffset(months=horizon_months)
    pairs = visits.merge(periods, how="cross")
    pairs = pairs[
        (pairs["visit_date"] > pairs["as_of_date"]) & (pairs["visit_date"] <= pairs["horizon_end"])
    ]
    pairs = pairs.assign(label=(pairs["outcome"] == "hardship_confirmed").astype(int))
    out = (
        pairs.groupby(["household_key", "as_of_date"], as_index=False)
        .agg(label=("label", "max"), n_visits=("label", "size"))
        .sort_values(["household_key", "as_of_date"], kind="stable")
    )
    return out[cols].reset_index(drop=True)


def merge_labels(observed: pd.DataFrame, feedback: pd.DataFrame) -> pd.DataFrame:
    """Programme-entry labels (household_key, as_of_date, label) with feedback labels merged in.

    Rows of `observed` only (the cohort decides who is labelled). A caseworker-confirmed
    hardship turns a 0 into 1; a caseworker's "not in hardship" never overrides an observed
    programme entry (an administrative fact), but marks the row `verified`. Adds columns
    `label_source` (programme / caseworker / none) and `verified` (a caseworker saw it).
    """
    fb = feedback[["household_key", "as_of_date", "label"]].rename(columns={"label": "_fb"})
    fb = fb.assign(as_of_date=pd.to_datetime(fb["as_of_date"]))
    out = observed.assign(as_of_date=pd.to_datetime(observed["as_of_date"])).merge(
        fb, on=["household_key", "as_of_date"], how="left"
    )
    base = out["label"]  # may be nullable (NA = not fully labelled yet)
    from_feedback = base.eq(0).fillna(False).astype(bool) & out["_fb"].eq(1)
    source = pd.Series("none", index=out.index, dtype=object)
    source[base.eq(1).fillna(False).astype(bool)] = "programme"
    source[from_feedback] = "caseworker"
    out["label"] = base.mask(from_feedback, 1)
    out["label_source"] = source
    out["verified"] = out["_fb"].notna()
    return out.drop(columns="_fb")
