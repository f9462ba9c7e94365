"""The model card (markdown), rendered from the Jinja template `training/model_card_template.md`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

TEMPLATE = Path(__file__).with_name("model_card_template.md")


def render(context: dict[str, Any], template: Path | None = None) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str((template or TEMPLATE).parent)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["f3"] = lambda v: "n/a" if v is None or v != v else f"{v:.3f}"
    return env.get_template((template or TEMPLATE).name).render(**context)


def need_group_rows(by_group: pd.DataFrame | None) -> list[dict[str, Any]]:
    """The card's need-recall-by-group table from `Result.need_by_group`: one row per
    (attribute, group) with n and needy (means per as-of month), the model's and the best
    baseline's need recall and the model's ratio to the best group (means over months)."""
    if by_group is None or by_group.empty:
        return []
    keys = ["attribute", "group"]
    mean = by_group.groupby(["ranking", *keys], sort=False)[
        ["n", "needy", "recall", "ratio_to_best"]].mean()
    counted = by_group.groupby(["ranking", *keys], sort=False)["counted"].all()
    model = mean.loc["model"].join(counted.loc["model"])
    rows = []
    for (attr, group), r in model.iterrows():
        base = (mean.loc[("baseline_best", attr, group), "recall"]
                if ("baseline_best", attr, group) in mean.index else None)
        rows.append({"attribute": attr, "group": group, "n": float(r["n"]),
                     "needy": float(r["needy"]), "recall": float(r["recall"]),
                     "baseline_recall": base, "ratio": float(r["ratio_to_best"]),
                     "counted": bool(r["counted"])})
    return rows
