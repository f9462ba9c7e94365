"""Bias audit at the outreach threshold, in Aequitas's conventions.

For each audited attribute and group: recall (1 - exclusion error), false-positive rate,
precision and share flagged, each divided by the reference group's value (the largest group,
or a configured one). A disparity outside [disparity_low, disparity_high] (policy [fairness]) is
flagged. Groups with fewer than `min_group_positives` positives are reported but do not fail the
gate: their rates are too noisy to act on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from safetynet.policy import AUDIT_METRICS, FairnessPolicy

__all__ = ["AUDIT_METRICS", "FairnessPolicy", "audit", "flagged_at_capacity", "gate_failures"]


def audit(
    y: np.ndarray,
    flagged: np.ndarray,
    attributes: pd.DataFrame,
    policy: FairnessPolicy,
) -> pd.DataFrame:
    """One row per (attribute, group) with rates, disparities and flags (policy [fairness])."""
    y = np.asarray(y, dtype=np.float64)
    flagged = np.asarray(flagged, dtype=np.float64)
    frames = []
    for attr in attributes.columns:
        g = attributes[attr].astype("string").fillna("(missing)").to_numpy()
        df = pd.DataFrame({"group": g, "y": y, "f": flagged, "tp": y * flagged})
        agg = df.groupby("group", sort=True).agg(
            n=("y", "size"), positives=("y", "sum"), flagged=("f", "sum"), tp=("tp", "sum")
        )
        agg["fp"] = agg["flagged"] - agg["tp"]
        with np.errstate(invalid="ignore", divide="ignore"):
            agg["recall"] = agg["tp"] / agg["positives"]
            agg["fpr"] = agg["fp"] / (agg["n"] - agg["positives"])
            agg["precision"] = agg["tp"] / agg["flagged"]
            agg["share_flagged"] = agg["flagged"] / agg["n"]
        ref = (policy.reference_groups or {}).get(attr)
        if ref is None or ref not in agg.index:
            ref = agg["n"].idxmax()
        agg["reference_group"] = ref
        for m in AUDIT_METRICS:
            ref_val = agg.at[ref, m]
            with np.errstate(invalid="ignore", divide="ignore"):
                agg[f"{m}_disparity"] = agg[m] / ref_val if ref_val else np.nan
        agg.insert(0, "attribute", attr)
        frames.append(agg.reset_index())
    if not frames:
        return pd.DataFrame(columns=["attribute", "group"])
    out = pd.concat(frames, ignore_index=True)
    outside = {
        m: (out[f"{m}_disparity"] < policy.disparity_low)
        | (out[f"{m}_disparity"] > policy.disparity_high)
        for m in AUDIT_METRICS
    }
    out["flags"] = [
        ",".join(m for m in AUDIT_METRICS if outside[m].iat[i]) for i in range(len(out))
    ]
    out["gated"] = out["positives"] >= policy.min_group_positives
    gate_bad = np.zeros(len(out), dtype=bool)
    for m in policy.gate_metrics:
        gate_bad |= outside[m].to_numpy()
    out["fails_gate"] = gate_bad & out["gated"].to_numpy()
    return out


def gate_failures(table: pd.DataFrame) -> list[str]:
    """Human-readable reasons the audit fails the promotion gate (empty list = passes)."""
    if table.empty or "fails_gate" not in table:
        return []
    bad = table[table["fails_gate"]]
    return [
        f"{r.attribute}={r.group}: recall {r.recall:.3f} vs reference {r.reference_group} "
        f"(disparity {r.recall_disparity:.2f}; flags: {r.flags})"
        for r in bad.itertuples()
    ]


def flagged_at_capacity(score: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of the top `fraction` by score; ties at the cut broken at random (seeded)."""
    from safetynet.training.metrics import k_for_fraction

    score = np.asarray(score, dtype=np.float64)
    k = k_for_fraction(len(score), fraction)
    jitter = np.random.default_rng(seed).random(len(score))
    order = np.lexsort((jitter, -score))
    mask = np.zeros(len(score), dtype=bool)
    mask[order[:k]] = True
    return mask


def audit_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The audited attributes that are present in `frame`."""
    return frame[[c for c in names if c in frame.columns]]
