"""Matching assistance programmes by declarative rules from policy.toml [programmes].

A rule is a list of conditions `[feature, op, threshold]` under `all` (every one must
hold) and/or `any` (at least one must hold). A condition on a feature the row does not
have, or whose value is missing, does not hold. Evaluation is vectorised over the batch.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from safetynet.policy import ProgrammePolicy

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class Condition:
    feature: str
    op: str
    threshold: float

    def text(self) -> str:
        return f"{self.feature} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class ProgrammeRule:
    programme_id: str
    name_en: str
    name_zh: str
    all: tuple[Condition, ...]
    any: tuple[Condition, ...]

    def text(self) -> str:
        parts = [" and ".join(c.text() for c in self.all)] if self.all else []
        if self.any:
            parts.append("(" + " or ".join(c.text() for c in self.any) + ")")
        return " and ".join(parts)

    def features(self) -> set[str]:
        return {c.feature for c in (*self.all, *self.any)}


def load_rules(programmes: Mapping[str, ProgrammePolicy]) -> list[ProgrammeRule]:
    """The policy's [programmes.*] rules (validated by `safetynet.policy`) as matchers."""
    def conditions(raw: tuple[tuple[str, str, float], ...]) -> tuple[Condition, ...]:
        return tuple(Condition(feature, op, float(threshold)) for feature, op, threshold in raw)

    return [ProgrammeRule(pid, spec.name_en, spec.name_zh, conditions(spec.all),
                          conditions(spec.any)) for pid, spec in programmes.items()]


def _match_few(
    rules: list[ProgrammeRule], columns: dict[str, np.ndarray], n: int, lang: str
) -> list[list[dict[str, Any]]]:
    """Plain-Python evaluation: for a handful of rows it beats NumPy's per-call overhead."""
    out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    values = {f: col.tolist() for f, col in columns.items()}
    for i in range(n):
        for rule in rules:
            facts = []
            ok_all = True
            for c in rule.all:
                v = values.get(c.feature, (None,) * n)[i]
                if v is None or v != v or not OPS[c.op](v, c.threshold):
                    ok_all = False
                    break
                facts.append({"feature": c.feature, "op": c.op, "threshold": c.threshold,
                              "value": v})
            if not ok_all:
                continue
            any_facts = []
            for c in rule.any:
                v = values.get(c.feature, (None,) * n)[i]
                if v is not None and v == v and OPS[c.op](v, c.threshold):
                    any_facts.append({"feature": c.feature, "op": c.op,
                                      "threshold": c.threshold, "value": v})
            if rule.any and not any_facts:
                continue
            out[i].append({"programme_id": rule.programme_id,
                           "name": rule.name_zh if lang == "zh" else rule.name_en,
                           "rule": rule.text(), "facts": facts + any_facts})
    return out


def match_programmes(
    rules: list[ProgrammeRule], columns: dict[str, np.ndarray], n: int, lang: str = "en"
) -> list[list[dict[str, Any]]]:
    """Per row, the programmes whose rule holds, with the facts that made it hold."""
    if n <= 8:
        return _match_few(rules, columns, n, lang)
    out: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    nan = np.full(n, np.nan)
    with np.errstate(invalid="ignore"):
        for rule in rules:
            held = {c: OPS[c.op](columns.get(c.feature, nan), c.threshold) for c in
                    (*rule.all, *rule.any)}
            ok = np.ones(n, dtype=bool)
            for c in rule.all:
                ok &= held[c]
            if rule.any:
                ok &= np.logical_or.reduce([held[c] for c in rule.any])
            name = rule.name_zh if lang == "zh" else rule.name_en
            text = rule.text()
            conds = (*rule.all, *rule.any)
            rows = np.flatnonzero(ok)
            if not len(rows):
                continue
            held_rows = {c: held[c][rows].tolist() for c in conds}
            vals = {c: columns.get(c.feature, nan)[rows].tolist() for c in conds}
            for r, i in enumerate(rows.tolist()):
                facts = [
                    {"feature": c.feature, "op": c.op, "threshold": c.threshold,
                     "value": vals[c][r]}
                    for c in conds if held_rows[c][r]
                ]
                out[i].append({"programme_id": rule.programme_id, "name": name,
                               "rule": text, "facts": facts})
    return out
