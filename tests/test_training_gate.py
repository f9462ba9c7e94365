"""The promotion gate on need (issue 12, item 5): visit outcomes decide it where they exist."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from training_support import POLICY, config, spec, xor_table

from safetynet.config import Settings
from safetynet.model import configure
from safetynet.training import promote as P
from safetynet.training.train import train_and_log
from safetynet.training.visits import design_weights

NAME = "gate-model"
FEATURES = ["x1", "x2", "x3", "x4", "x5", "x6"]


def _need_x4(part: pd.DataFrame) -> np.ndarray:
    return (part["x4"] > 1.0).to_numpy(dtype=float)  # a need the entry label never sees


def _need_entry(part: pd.DataFrame) -> np.ndarray:
    return (part["p_true"] > 0.5).to_numpy(dtype=float)  # the need the entry model ranks


def _visits(frame: pd.DataFrame, months, answer) -> pd.DataFrame:
    """Per month the top 30 by x3 listed (p = 1) and 60 audited of the rest; `answer` says
    who is found in need."""
    rows = []
    for m in months:
        month = frame[frame["month"] == m]
        listed = month.nlargest(30, "x3")
        pool = month.drop(listed.index)
        audit = pool.sample(60, random_state=int(m))
        for part, is_audit, p in ((listed, False, 1.0), (audit, True, 60 / len(pool))):
            v = part[["entity", "month", "region", *FEATURES]].copy()
            v["y"], v["audit"], v["selection_prob"] = answer(part), is_audit, p
            rows.append(v)
    v = pd.concat(rows, ignore_index=True).rename(columns={"region": "district"})
    v["region"] = v["district"]
    v["as_of_date"] = v["month"]
    v["weight"] = design_weights(v)
    return v


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("gatehome"))
    frame = xor_table(n_entities=500, n_periods=16, seed=11)
    cfg = config(test_periods=1)
    cfg.fairness = cfg.fairness.model_copy(update={
        "need_audit_attributes": ("region",), "min_group_positives": 3, "disparity_low": 0.8})
    sp = spec(features=FEATURES)
    champ = train_and_log(frame, sp, cfg, settings=settings, promotion=POLICY.promotion,
                          model_name=NAME, feature_set_version="t")
    configure(settings)
    assert P.promote(MlflowClient(), NAME, POLICY.promotion, override="the first champion",
                     fairness=cfg.fairness).promoted
    test_start = int(champ.result.folds[-1]["test_start"])
    before = _visits(frame, range(4, test_start), _need_x4)

    def challenger(answer):
        visits = pd.concat([before, _visits(frame, range(test_start, 16), answer)],
                           ignore_index=True)
        out = train_and_log(frame, sp, cfg, settings=settings, promotion=POLICY.promotion,
                            model_name=NAME, feature_set_version="t", visits=visits,
                            gate_min_audit_visits=30)
        configure(settings)
        return out, P.decide(MlflowClient(), NAME, POLICY.promotion, cfg.fairness)

    return settings, cfg, champ, challenger


def test_feedback_decides_the_gate_for_the_same_challenger(gate):
    settings, _, _, challenger = gate
    found_x4, passed = challenger(_need_x4)
    found_entry, failed = challenger(_need_entry)
    # the evaluated challenger (fit on the same visits before its test) is the same model
    assert (found_x4.result.eval_booster.model_to_string()
            == found_entry.result.eval_booster.model_to_string())
    assert passed.evidence == failed.evidence == "visits"
    assert passed.promoted, passed.summary()
    assert not failed.promoted, failed.summary()
    configure(settings)
    run = MlflowClient().get_run(found_x4.run_id)
    assert run.data.tags["safetynet.gate_evidence"] == "visits"
    assert (run.data.metrics["visit_need_precision_at_5pct"]
            > run.data.metrics["champion_visit_need_precision_at_5pct"])
    assert run.data.metrics["visit_gate_audit_visits"] >= 30


def test_the_gate_records_its_decision_on_the_model_version(gate):
    settings, cfg, _, challenger = gate
    out, _ = challenger(_need_entry)
    configure(settings)
    client = MlflowClient()
    d = P.promote(client, NAME, POLICY.promotion, fairness=cfg.fairness)
    assert not d.promoted
    tags = client.get_model_version(NAME, out.version).tags
    assert tags["gate_decision"] == "failed" and tags["gate_evidence"] == "visits"
    assert "visit_need_precision_at_5pct" in tags["gate_reasons"]
    d = P.promote(client, NAME, POLICY.promotion, override="pilot: reviewed by the board",
                  fairness=cfg.fairness)
    assert d.promoted
    tags = client.get_model_version(NAME, out.version).tags
    assert tags["gate_decision"] == "overridden" and "promotion_override" in tags


def test_without_need_evidence_the_entry_label_gate_stands(gate):
    settings = gate[0]
    configure(settings)
    # the module fixture's champion run was gated on the entry label (no visits)
    client = MlflowClient()
    versions = client.search_model_versions(f"name='{NAME}'")
    first = min(versions, key=lambda v: int(v.version))
    assert client.get_run(first.run_id).data.tags["safetynet.gate_evidence"] == "none"
    assert first.tags.get("gate_evidence") == "entry label"
    assert first.tags.get("gate_decision") == "overridden"
