"""Household glue: feature table + assistance rolls (+ truth on simulated data) -> a training
table and its `TableSpec`. Column names follow the feature store's output (features/
definitions.py): household_key, as_of_date, district, audit attributes, model features."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from safetynet.config import Settings
from safetynet.features.definitions import audit_attribute_names, model_feature_names
from safetynet.features.feature_store import FeatureStore
from safetynet.features.indicators import compute_indicators
from safetynet.policy import IndicatorsPolicy, LabelPolicy, Policy
from safetynet.training.evaluation import attach_truth, attach_truth_need, attach_truth_outcomes
from safetynet.training.labels import household_training_frame, indicator_columns
from safetynet.training.pipeline import TableSpec
from safetynet.training.visits import load_visits


@dataclass
class HouseholdData:
    frame: pd.DataFrame
    spec: TableSpec
    label: LabelPolicy
    snapshot_id: str
    feature_set_version: str
    not_allowed: list[str]
    description: str
    # the feedback store's visits with their features (`training/visits.py`); empty: none
    visits: pd.DataFrame | None = None


def read_features(
    store: FeatureStore, features_path: Path | None, as_of: Sequence[date] | None
) -> pd.DataFrame:
    """The feature table to train on: the whole of `features_path`, else a build at `as_of`."""
    if features_path is None and not as_of:
        raise ValueError("give --features FILE.parquet or --as-of DATE[,DATE...] to build them")
    return store.historical(None if features_path is not None else as_of, source=features_path)


def with_indicator_flags(features: pd.DataFrame, indicators: IndicatorsPolicy) -> pd.DataFrame:
    """Add one 0/1 column `ind_<indicator>` per early-warning indicator (the feature store's
    rules), for the indicator-count baseline. They are never model features."""
    raised = compute_indicators(features, indicators)
    keys = ["household_key", "as_of_date"]
    if raised.empty:
        return features
    flags = (raised.assign(as_of_date=pd.to_datetime(raised["as_of_date"]), _on=1)
             .pivot_table(index=keys, columns="indicator_id", values="_on", aggfunc="max",
                          fill_value=0)
             .add_prefix("ind_").reset_index())
    out = features.assign(_date=pd.to_datetime(features["as_of_date"])).merge(
        flags.rename(columns={"as_of_date": "_date"}), on=["household_key", "_date"], how="left")
    names = [c for c in flags.columns if c.startswith("ind_")]
    out[names] = out[names].fillna(0).astype("int8")
    return out.drop(columns="_date")


def with_feedback_labels(frame: pd.DataFrame, settings: Settings, horizon: int) -> pd.DataFrame:
    """Merge caseworkers' visit outcomes into the programme-entry labels (the closed loop).

    A confirmed hardship turns an unobserved onset (0) into 1 for the periods whose horizon
    contains the visit; see `safetynet.training.labels.merge_labels`.
    """
    from safetynet.db.engine import make_engine
    from safetynet.db.feedback import load_outcomes
    from safetynet.db.migrate import migrate_engine
    from safetynet.training.labels import merge_labels, outcome_labels

    engine = make_engine(settings.db_url)
    migrate_engine(engine)
    outcomes = load_outcomes(engine)
    if outcomes.empty:
        return frame
    feedback = outcome_labels(outcomes, frame["as_of_date"].unique(), horizon)
    merged = merge_labels(frame, feedback)
    merged["label"] = merged["label"].astype(int)
    return merged


def load(
    settings: Settings,
    policy: Policy,
    features_path: Path | None = None,
    as_of: Sequence[date] | None = None,
    truth_dir: Path | None = None,
    assistance: pd.DataFrame | None = None,
) -> HouseholdData:
    """Build the onset-cohort training table with labels. With `truth_dir` (simulated data
    only) it also carries the truth's evaluation columns (`pipeline.TRUTH_COLUMNS`: onset
    probability, realised onset, hardship, unmet need, household type), never features.
    `visits`: the feedback store's visited worklist items with their features at the item's
    as-of date (`training/visits.py`), which the need model learns from."""
    store = FeatureStore(settings)
    features = with_indicator_flags(read_features(store, features_path, as_of), policy.indicators)
    assistance = store.assistance() if assistance is None else assistance
    label_cfg = policy.label
    snapshot = pd.Timestamp(pd.to_datetime(assistance["knowledge_date"]).max())
    frame = household_training_frame(features, assistance, label_cfg, snapshot)
    visits = load_visits(settings, features)
    frame = with_feedback_labels(frame, settings, label_cfg.horizon_months)
    if truth_dir is not None:
        frame = attach_truth(frame, truth_dir, settings.secret())
        frame = attach_truth_outcomes(frame, truth_dir, settings.secret(),
                                      label_cfg.horizon_months)
        frame = attach_truth_need(frame, truth_dir, settings.secret(), label_cfg.horizon_months)
    not_allowed = list(policy.training.not_allowed_features)
    audit = [c for c in audit_attribute_names() if c in frame.columns]
    names = [c for c in model_feature_names() if c in frame.columns and c not in not_allowed]
    spec = TableSpec(
        label="label",
        entity="household_key",
        time="as_of_date",
        audit=audit,
        group="district" if "district" in frame.columns else None,
        features=names,
        exclude=not_allowed,
        indicators=indicator_columns(frame),
        pmt_features=list(policy.training.pmt_features) or None,
    )
    version = hashlib.sha256(",".join(model_feature_names()).encode()).hexdigest()[:12]
    snap = hashlib.sha256(
        f"{len(features)}|{features['as_of_date'].max()}|{snapshot}".encode()
    ).hexdigest()[:16]
    return HouseholdData(
        frame=frame,
        spec=spec,
        label=label_cfg,
        snapshot_id=f"{snapshot.date()}:{snap}",
        feature_set_version=f"definitions-{version}",
        not_allowed=not_allowed,
        description=str(features_path) if features_path else "feature store build",
        visits=visits,
    )
