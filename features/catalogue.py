"""The feature and indicator catalogue (docs/features.md is generated from this)."""

from __future__ import annotations

from safetynet.features.definitions import DIMENSIONS, FEATURES, Agg, Derived, Feature
from safetynet.features.indicators import catalogue

FEAST_NOTE = """\
## Why not Feast

The issue asks to prefer Feast over a hand-written store if it fits the stack without forcing
downgrades. Checked with a dry-run resolve (`uv pip compile` of our pins plus `feast`, nothing
installed): see `FEAST_RESULT` below. Independently of the resolve, Feast's point-in-time join
enforces only the event timestamp; a record corrected or delivered later (a later
`knowledge_date`) would leak into features at earlier as-of dates unless filtered on the
creation time as well, which is exactly the knowledge-date rule this store must guarantee.
Our store keeps the rule in one place (`safetynet.features.compile`) for every feature, builds
many as-of dates in one set-based query, and compiles to Spark SQL for national deployments,
so Feast would add a registry and a second definition language without removing any of that.
"""


SCALE_NOTE = """\
## Building at scale

`safetynet features build` runs the compiled query once per hash bucket of households
(`hash(household_key) % n`, with n = registered households / `features_bucket_households`,
default 200,000) and streams each bucket's rows into the one Parquet file. A bucket holds its
households, every person who ever belonged to one of them (in any version) and every version
of every record linked to those persons, so each bucket's query sees exactly the rows the
whole-city query sees for those households: the output is the same, and memory follows the
bucket size (about 2.5 GB per 100,000 households), not the city's. DuckDB's memory limit is
`features_memory_limit` (8GB); beyond it DuckDB spills under `$SAFETYNET_HOME/tmp/duckdb`. On
Spark the same query runs unbucketed (Spark partitions by the join keys itself). Inside the
query, how much each join reads is derived from the definitions, never changing a value:

- aggregates windowed on the event date join only the span of their windows (contribution
  windows end 3 months before T, so the latest 3 months of contributions are never joined);
- aggregates that read all history, or that alone need the per-member step, get a join of
  their own when each filters on source columns (the latest serious-illness claim), so the
  other claims join only 12 months;
- the smaller side of every join is written on the right, where DuckDB builds its hash table,
  and DuckDB's `build_side_probe_side` optimizer is switched off for the build: it trusts a far
  too low estimate for `members` (persons x as-of dates) and would otherwise build a hash table
  of every member at every date once per person-level source.

Measured with `benchmarks/bench_features.py` (12 monthly as-of dates, simulated city, 2 shared
cores): 100,000 households 40 s CPU and 6.1 GB peak before these changes, 24 s and 2.8 GB
after (one bucket); 1,000,000 households (11.7M rows) 200 s wall, 241 s CPU, 4.9 GB peak in
5 buckets, where the single query had failed after 13 minutes at 10.4 GB
(`benchmarks/results/bench_features.md`).
"""


FEAST_RESULT = (
    "Feast 0.67 resolves beside bentoml 1.4.39, mlflow 3.17.2 and pandas 2.3.3, but only by "
    "downgrading two of our locked packages (`feast[redis]` caps the redis client below 8: "
    "8.1.0 -> 7.4.1; Feast >= 0.64 caps prometheus-client below 0.25: 0.26.0 -> 0.24.1) and "
    "adds ibis-framework, dask and a feature registry; against the full lock unchanged the "
    "resolver falls back to feast 0.1.2 (`uv pip compile pyproject.toml feast.in --extra dev`, "
    "2026-11-22)"
)


def _spec(f: Feature) -> str:
    s = f.spec
    if isinstance(s, Derived):
        return f"derived: `{s.expr}`"
    assert isinstance(s, Agg)
    parts = [f"`{s.agg}({s.expr})` over `{s.table}`"]
    if s.active:
        parts.append("spells active at the as-of date")
    if s.window is not None:
        w = s.window
        parts.append(f"last {w} months" if isinstance(w, int)
                     else f"months {w[1] + 1}-{w[0]} before the as-of date")
    if s.on:
        parts.append(f"dated by `{s.on}`")
    if s.where:
        parts.append(f"where `{s.where}`")
    return "; ".join(parts)


def render_markdown(feast_result: str) -> str:
    """The catalogue as Markdown; `feast_result` is the recorded outcome of the Feast check."""
    lines = [
        "# Household features and early-warning indicators",
        "",
        "Generated from `features/definitions.py` and `features/indicators.py` by "
        "`safetynet features catalogue`; do not edit by hand.",
        "",
        "A feature at as-of date T uses only records whose event date and knowledge date are "
        "both on or before T, in the version of each record known at T (a correction or an end "
        "date recorded after T is invisible at T). Person-level records roll up to the "
        "household the person belongs to at T in the person registry (registered on or before "
        "T, not dead by T). Windows are calendar months back from T: *last 3 months* means "
        "event date in (T − 3 months, T].",
        "",
        "`safetynet features build` writes `household_key`, `as_of_date`, `district`, the "
        "audit attributes (`urban_rural`, `head_sex`, `head_age_band`, `has_disabled_member`, "
        "`has_children`: for fairness audits only, never model inputs), the model features "
        "(`model_feature_names()`), and evidence dates used by the indicators.",
        "",
    ]
    for dim in DIMENSIONS:
        feats = [f for f in FEATURES if f.dimension == dim]
        lines += [f"## {dim.replace('_', ' ').capitalize()}", "",
                  "| feature | role | type | description (en / zh) | missing | computed as | "
                  "sentence (en / zh) |", "|---|---|---|---|---|---|---|"]
        for f in feats:
            lines.append(
                f"| `{f.name}` | {f.role} | {f.dtype} | {f.description_en}<br>"
                f"{f.description_zh} | {f.missing.describe()} | "
                f"{_spec(f).replace('|', '/')} | {f.template_en}<br>{f.template_zh} |")
        lines.append("")
    lines += ["## Early-warning indicators", "",
              "Thresholds live in `safetynet/policy.toml` `[indicators]`.", "",
              "| id | description (en / zh) | policy keys | triggered on |", "|---|---|---|---|"]
    for i in catalogue():
        keys = ", ".join(f"`{k}`" for k in i["thresholds"]) or "—"
        lines.append(f"| `{i['id']}` | {i['description_en']}<br>{i['description_zh']} | {keys} "
                     f"| `{i['triggered_on']}` |")
    lines += ["", SCALE_NOTE, FEAST_NOTE.replace("see `FEAST_RESULT` below", feast_result)]
    return "\n".join(lines)
