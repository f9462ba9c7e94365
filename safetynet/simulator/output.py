"""Writing department tables: the messiness layer and streaming CSV/Parquet sinks.

Every table goes through `TableSink.write`, which applies the observation model's defects
(coverage gaps, legacy 15-digit IDs, check-character typos, lower-case x, out-of-range values,
duplicate rows) at the configured rates and counts what it injected, for the manifest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from safetynet.contracts import Table
from safetynet.simulator.config import SimulationConfig

# which column gets an out-of-range value, and how (None = table has no such defect)
OUT_OF_RANGE = {
    "claims": ("out_of_pocket", "negate"),
    "disability_certificates": ("grade", "grade5"),
    "attendance": ("absence_days", "plus32"),
    "contributions": ("contribution_base", "negate"),
    "unemployment_benefits": ("amount", "negate"),
    "pensions": ("monthly_amount", "negate"),
    "vehicles": ("estimated_value", "negate"),
    "assistance": ("monthly_amount", "negate"),
}
REGISTRY = ("households", "persons")
_ARROW = {"str": pa.string(), "id": pa.string(), "category": pa.string(), "date": pa.date32(),
          "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}


def arrow_schema(t: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW[c.kind]) for c in t.columns])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


class Messer:
    """Applies the observation defects; one per run, owns the observation RNG."""

    def __init__(self, cfg: SimulationConfig, rng: np.random.Generator, ids: np.ndarray,
                 old: np.ndarray, gap: np.ndarray, dept_index: dict[str, int],
                 window_origin_abs: int):
        self.cfg, self.rng, self.ids, self.old = cfg, rng, ids, old
        self.gap, self.dept_index, self.origin = gap, dept_index, window_origin_abs
        self._legacy: dict[str, np.ndarray] = {}

    def legacy_persons(self, table: str) -> np.ndarray:
        """Persons this table records with their old 15-digit number (fixed per table)."""
        if table not in self._legacy:
            u = self.rng.random(len(self.ids))
            self._legacy[table] = self.old & (u < self.cfg.legacy_id_rate)
        return self._legacy[table]

    def apply(self, t: Table, cols: dict[str, np.ndarray], person: np.ndarray | None,
              district: np.ndarray, counts: dict[str, int]) -> dict[str, np.ndarray]:
        cfg, rng = self.cfg, self.rng
        n = len(district)
        keep = np.ones(n, bool)
        if t.name not in REGISTRY:
            ev = cols[t.event_date]
            month = ev.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) \
                - self.origin
            inside = (month >= 0) & (month < self.gap.shape[2])
            d = self.dept_index[t.department]
            keep[inside] = ~self.gap[d, district[inside], month[inside]]
            counts["gap_dropped"] = counts.get("gap_dropped", 0) + int((~keep).sum())
        if not keep.all():
            cols = {k: v[keep] for k, v in cols.items()}
            person = person[keep] if person is not None else None
            n = int(keep.sum())
        if person is not None and t.person_column:
            ids = self.ids[person].copy()
            if t.name != "persons":
                raw = ids.view(np.uint8).reshape(-1, 18)
                leg = self.legacy_persons(t.name)[person]
                if leg.any():
                    raw[leg] = np.concatenate([raw[leg, :6], raw[leg, 8:17],
                                               np.zeros((int(leg.sum()), 3), np.uint8)], axis=1)
                typo = ~leg & (rng.random(n) < cfg.bad_check_rate)
                delta = rng.integers(1, 10, n).astype(np.uint8)
                raw[typo, 14] = (raw[typo, 14] - 48 + delta[typo]) % 10 + 48
                low = ~leg & (raw[:, 17] == ord("X")) & (rng.random(n) < cfg.lowercase_x_rate)
                raw[low, 17] = ord("x")
                counts["legacy_id"] = counts.get("legacy_id", 0) + int(leg.sum())
                counts["bad_check"] = counts.get("bad_check", 0) + int(typo.sum())
                counts["lowercase_x"] = counts.get("lowercase_x", 0) + int(low.sum())
            cols[t.person_column] = ids
        if t.name in OUT_OF_RANGE and n:
            col, how = OUT_OF_RANGE[t.name]
            bad = rng.random(n) < cfg.out_of_range_rate
            v = cols[col]
            if how == "negate":
                v[bad] = -np.maximum(np.abs(v[bad]), 1)
            elif how == "grade5":
                v[bad] = 5
            else:
                v[bad] = v[bad] + 32
            counts["out_of_range"] = counts.get("out_of_range", 0) + int(bad.sum())
        if n and t.name != "households":
            dup = np.flatnonzero(rng.random(n) < cfg.duplicate_rate)
            if len(dup):
                order = np.sort(np.concatenate([np.arange(n), dup]), kind="stable")
                cols = {k: v[order] for k, v in cols.items()}
            counts["duplicates"] = counts.get("duplicates", 0) + len(dup)
        return cols


def to_arrow(t: Table, cols: dict[str, np.ndarray]) -> pa.Table:
    """Numpy columns (dates as int days, NaT/-1 as null) to an Arrow table in contract order."""
    arrays = []
    for c in t.columns:
        v = cols[c.name]
        if c.kind == "date":
            v = np.asarray(v)
            if v.dtype.kind != "M":
                mask = v < -10**8
                arr = pa.array(v.astype("int32"), type=pa.int32(), mask=mask).cast(pa.date32())
            else:
                arr = pa.array(v.astype("datetime64[D]"), type=pa.date32())
        elif c.kind in ("id",) or v.dtype.kind == "S":
            arr = pa.array(v, type=pa.binary()).cast(pa.string())
        elif c.kind == "float":
            arr = pa.array(np.round(v.astype(np.float64), 2), type=pa.float64())
        elif c.kind == "int":
            arr = pa.array(v.astype(np.int64), type=pa.int64())
        elif c.kind == "bool":
            arr = pa.array(v.astype(bool), type=pa.bool_())
        else:
            arr = pa.array(v, type=pa.string())
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=arrow_schema(t))


class TableSink:
    """Streams one contract table to CSV (UTF-8 or GBK) or Parquet."""

    def __init__(self, t: Table, root: Path, fmt: str, encoding: str):
        self.t, self.fmt = t, fmt
        self.encoding = encoding if fmt == "csv" else "binary"
        rel = t.file if fmt == "csv" else t.file[: -len(".csv")] + ".parquet"
        self.rel = rel
        self.path = root / rel
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self.counts: dict[str, int] = {}
        schema = arrow_schema(t)
        self._raw = self.path.with_suffix(".utf8.tmp") if encoding == "gbk" else self.path
        if fmt == "csv":
            self._writer = pacsv.CSVWriter(str(self._raw), schema)
        else:
            self._writer = pq.ParquetWriter(str(self.path), schema, compression="snappy")

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table)
            self.rows += table.num_rows

    def close(self) -> dict:
        self._writer.close()
        if self.fmt == "csv" and self.encoding == "gbk":
            with open(self._raw, encoding="utf-8", newline="") as src, \
                    open(self.path, "w", encoding="gbk", newline="") as dst:
                for chunk in iter(lambda: src.read(1 << 24), ""):
                    dst.write(chunk)
            self._raw.unlink()
        return {"table": self.t.name, "department": self.t.department, "path": self.rel,
                "rows": self.rows, "sha256": sha256(self.path), "encoding": self.encoding,
                "injected": dict(sorted(self.counts.items()))}
