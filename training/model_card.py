"""The model card (markdown), rendered from the Jinja template `training/model_card_template.md`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

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
