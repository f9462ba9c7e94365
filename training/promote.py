"""The registry gate: `challenger` becomes `champion` only when it is better and fair.

Aliases, not the deprecated stages. The gate reads metrics the training run logged:

- with a champion: the challenger run scored the then-champion on its own (latest) temporal
  test (`champion_test_<metric>`, tag `safetynet.compared_champion_version`); the challenger
  must beat it by `[promotion] margin`. If the champion changed since, the comparison is stale
  and the gate refuses (retrain).
- without a champion: the challenger must beat the best baseline (`test_baseline_best_<metric>`)
  by the margin — the same gate, the baseline standing in for the champion.
- fairness: `fairness_groups_failing` must be 0 (`[promotion] fairness = "absolute"`) or not
  more than the champion's on the same test (`"no_worse"`; with no champion yet, not more than
  the best baseline's, i.e. the rule-based status quo).

Need evidence (issue 12, item 5) comes first where it exists, logged by the training run
(`training/train.py:need_gate_evidence`, tag `safetynet.gate_evidence`):

- "truth" (simulated data): `test_need_precision_at_<cap>` against the champion's
  (`champion_test_need_...`) or, with no champion, the best baseline's, by the margin;
- "visits": the design-weighted need precision at capacity of both evaluated models on the
  held-out latest visits (`visit_need_precision_at_<cap>` vs `champion_visit_...`);
- and in both, no audited group's need recall may fall below `[fairness] disparity_low` times
  the reference's (`need_gate_recall_ratio_min_<attribute>`, for the attributes of
  `[fairness] need_audit_attributes`). The entry-label fairness audit is then reported, not
  gating: on the entry label it points the wrong way (docs/training.md).

Without need evidence the gate is the entry-label one above. `promote` records the decision
and its figures on the challenger's model version (tags `gate_decision`, `gate_evidence`,
`gate_reasons`).

Champion history is the registered-model tag `champion_history` (JSON list of versions, oldest
first); `rollback` pops the current champion and restores the previous one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from safetynet.model import CHAMPION
from safetynet.policy import FairnessPolicy, PromotionPolicy

HISTORY_TAG = "champion_history"
COMPARED_TAG = "safetynet.compared_champion_version"


@dataclass
class Decision:
    promoted: bool
    reasons: list[str] = field(default_factory=list)
    challenger: str | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    evidence: str = "entry label"  # truth / visits / entry label

    def summary(self) -> str:
        head = (
            f"promoted version {self.challenger} to champion (was {self.champion_before})"
            if self.promoted
            else "not promoted; nothing changed"
        )
        return "\n".join([head, *[f"  - {r}" for r in self.reasons]])


@dataclass(frozen=True)
class _Version:
    version: str  # always a string: MLflow returns ints from some stores and strings from others
    run_id: str


def _version_by_alias(client: Any, name: str, alias: str) -> _Version | None:
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return _Version(str(mv.version), mv.run_id)


def _history(client: Any, name: str) -> list[str]:
    tags = client.get_registered_model(name).tags
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def _need_reference(m: dict[str, float], evidence: str, cap: str, champion: bool
                    ) -> tuple[str, str, float | None, float | None]:
    """(metric name, reference name, challenger value, reference value) of the need gate."""
    if evidence == "truth":
        key = f"test_need_precision_at_{cap}"
        ref_key = f"champion_test_need_precision_at_{cap}" if champion else \
            f"test_baseline_best_need_precision_at_{cap}"
    else:
        key = f"visit_need_precision_at_{cap}"
        ref_key = f"champion_visit_need_precision_at_{cap}"
    return key, ref_key, m.get(key), m.get(ref_key)


def decide(client: Any, name: str, promotion: PromotionPolicy,
           fairness: FairnessPolicy | None = None) -> Decision:
    """Evaluate the gate (policy [promotion], and [fairness] for the need-recall band; without
    `fairness` the need gate is off) without changing anything."""
    metric, margin, fairness_mode = promotion.metric, promotion.margin, promotion.fairness
    chal = _version_by_alias(client, name, "challenger")
    champ = _version_by_alias(client, name, CHAMPION)
    d = Decision(
        False,
        challenger=chal.version if chal else None,
        champion_before=champ.version if champ else None,
    )
    if chal is None:
        d.reasons.append(f"no version of {name!r} has the alias 'challenger' (run train first)")
        return d
    if champ is not None and champ.version == chal.version:
        d.reasons.append(f"version {chal.version} is already the champion")
        return d
    m = client.get_run(chal.run_id).data.metrics
    run_tags = client.get_run(chal.run_id).data.tags
    ok = True
    value = m.get(f"test_{metric}")
    if value is None:
        d.reasons.append(f"challenger run has no metric test_{metric}")
        return d
    if champ is None:
        ref_name, ref = "best baseline", m.get(f"test_baseline_best_{metric}")
    elif run_tags.get(COMPARED_TAG) != champ.version:
        d.reasons.append(
            f"challenger v{chal.version} was evaluated against champion "
            f"v{run_tags.get(COMPARED_TAG, 'none')}, but the champion is now v{champ.version}: "
            "retrain to compare on the same latest test"
        )
        return d
    else:
        ref_name, ref = f"champion v{champ.version}", m.get(f"champion_test_{metric}")
    if ref is None:
        d.reasons.append(f"no {ref_name} {metric} recorded in the challenger run")
        return d
    evidence = run_tags.get("safetynet.gate_evidence", "none")
    if fairness is not None and evidence in ("truth", "visits"):
        cap = metric.rsplit("_at_", 1)[-1] if "_at_" in metric else "5pct"
        key, _, value_n, ref_n = _need_reference(m, evidence, cap, champ is not None)
        if value_n is not None and ref_n is not None:
            return _need_gate(d, m, run_tags, fairness, margin, evidence, key, value_n,
                              ref_name, ref_n)
    if value >= ref + margin:
        d.reasons.append(
            f"{metric}: challenger {value:.4f} >= {ref_name} {ref:.4f} + margin {margin:.4f}"
        )
    else:
        ok = False
        d.reasons.append(
            f"{metric}: challenger {value:.4f} does not beat {ref_name} {ref:.4f} by the margin "
            f"{margin:.4f} (needs >= {ref + margin:.4f})"
        )
    failing = m.get("fairness_groups_failing", 0.0)
    if fairness_mode == "no_worse":
        # no worse than what it replaces: the champion, or the best rule-based baseline
        key = "champion_" if champ is not None else "baseline_"
        limit = m.get(f"{key}fairness_groups_failing", 0.0)
    else:
        limit = 0.0
    if failing > limit:
        ok = False
        detail = run_tags.get("safetynet.fairness_failures", "")
        d.reasons.append(
            f"fairness: {int(failing)} audited group(s) outside the disparity bounds "
            f"(allowed {int(limit)}){': ' + detail if detail else ''}"
        )
    else:
        d.reasons.append(f"fairness: {int(failing)} failing group(s), allowed {int(limit)}")
    d.promoted = ok
    return d


def _need_gate(d: Decision, m: dict[str, float], run_tags: dict[str, str],
               fairness: FairnessPolicy, margin: float, evidence: str, key: str, value: float,
               ref_name: str, ref: float) -> Decision:
    """The need gate: precision at capacity by the margin, and every audited attribute's
    lowest group need-recall ratio (challenger / reference) at least `disparity_low`."""
    d.evidence = evidence
    source = "simulated truth" if evidence == "truth" else (
        f"{int(m.get('visit_gate_visits', 0))} held-out visits, "
        f"{int(m.get('visit_gate_audit_visits', 0))} of them audits")
    ok = value >= ref + margin
    verb = ">=" if ok else "does not beat"
    d.reasons.append(f"{key} ({source}): challenger {value:.4f} {verb} {ref_name} {ref:.4f}"
                     f" + margin {margin:.4f}")
    low = fairness.disparity_low
    worse = []
    for attr in fairness.need_audit_attributes:
        ratio = m.get(f"need_gate_recall_ratio_min_{attr}")
        if ratio is not None and ratio == ratio and ratio < low:
            worse.append(f"{attr} {ratio:.2f}")
    worst = run_tags.get("safetynet.gate_need_recall_worst", "")
    if worse:
        ok = False
        d.reasons.append(f"need recall by group: worse than {ref_name} beyond the band "
                         f"(ratio < {low:g}): {', '.join(worse)}"
                         f"{'; lowest groups: ' + worst if worst else ''}")
    else:
        d.reasons.append(f"need recall by group: no audited group below {low:g} x "
                         f"{ref_name}'s{'; lowest groups: ' + worst if worst else ''}")
    failing = m.get("fairness_groups_failing", 0.0)
    d.reasons.append(f"entry-label fairness audit (reported, not gating with need evidence): "
                     f"{int(failing)} group(s) outside the bounds")
    d.promoted = ok
    return d


def _record(client: Any, name: str, d: Decision, overridden: bool = False) -> None:
    """The gate's decision and its figures on the challenger's model version."""
    if d.challenger is None:
        return
    decision = "overridden" if overridden else ("passed" if d.promoted else "failed")
    client.set_model_version_tag(name, d.challenger, "gate_decision", decision)
    client.set_model_version_tag(name, d.challenger, "gate_evidence", d.evidence)
    client.set_model_version_tag(name, d.challenger, "gate_reasons", "; ".join(d.reasons)[:5000])


def promote(
    client: Any, name: str, promotion: PromotionPolicy, override: str | None = None,
    fairness: FairnessPolicy | None = None,
) -> Decision:
    """Move `champion` to the challenger if the gate passes; otherwise change nothing.

    `override` (a person's written reason) promotes a challenger that failed the gate; the
    reason and the failed checks are kept on the model version (`promotion_override`), so the
    decision stays accountable and shows in the model's history.
    """
    d = decide(client, name, promotion, fairness)
    if d.champion_before is not None and d.champion_before == d.challenger:
        return d
    if not d.promoted:
        if not override or d.challenger is None:
            _record(client, name, d)
            return d
        d.reasons.insert(0, f"OVERRIDDEN by a person: {override}")
        _record(client, name, d, overridden=True)
        d.promoted = True
        client.set_model_version_tag(name, d.challenger, "promotion_override",
                                     "; ".join(d.reasons))
    history = _history(client, name)
    if d.champion_before and (not history or history[-1] != d.champion_before):
        history.append(d.champion_before)
    history.append(d.challenger)
    client.set_registered_model_alias(name, CHAMPION, d.challenger)
    client.delete_registered_model_alias(name, "challenger")
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(
        name, d.challenger, "promoted_at", datetime.now(UTC).isoformat(timespec="seconds")
    )
    client.set_model_version_tag(name, d.challenger, "promotion_reason", "; ".join(d.reasons))
    if not override:
        _record(client, name, d)
    d.champion_after = d.challenger
    return d


def rollback(client: Any, name: str) -> Decision:
    """Restore the previous champion from the history tag."""
    champ = _version_by_alias(client, name, CHAMPION)
    d = Decision(False, champion_before=champ.version if champ else None)
    history = _history(client, name)
    if champ is None:
        d.reasons.append(f"{name!r} has no champion to roll back")
        return d
    if history and history[-1] == champ.version:
        history = history[:-1]
    if not history:
        d.reasons.append(f"champion v{champ.version} has no previous champion to restore")
        return d
    previous = history[-1]
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    client.set_model_version_tag(
        name, champ.version, "rolled_back_at", datetime.now(UTC).isoformat(timespec="seconds")
    )
    d.promoted = True
    d.champion_after = previous
    d.reasons.append(f"champion v{champ.version} replaced by previous champion v{previous}")
    return d
