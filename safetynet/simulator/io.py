"""Reading a simulated city back: the manifest and contract-typed frames (tests, demo)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from safetynet.contracts import table


def load_manifest(out: Path) -> dict:
    return json.loads((Path(out) / "manifest.json").read_text(encoding="utf-8"))


def read_table(out: Path, name: str, manifest: dict | None = None) -> pd.DataFrame:
    """One delivered table, typed as the contract says (pandera dtypes); no rows dropped."""
    manifest = manifest or load_manifest(out)
    entry = next(f for f in manifest["files"] if f["table"] == name)
    path = Path(out) / entry["path"]
    t = table(name)
    if entry["path"].endswith(".csv"):
        raw = pd.read_csv(path, encoding=entry["encoding"], dtype=str, keep_default_na=False)
        raw = raw.replace("", None)
    else:
        raw = pd.read_parquet(path)
    df = pd.DataFrame(index=raw.index)
    for c in t.columns:
        v = raw[c.name]
        if c.kind == "date":
            df[c.name] = pd.to_datetime(v, errors="coerce").astype("datetime64[ns]")
        elif c.kind == "int":
            df[c.name] = pd.to_numeric(v).astype("Int64")
        elif c.kind == "float":
            df[c.name] = pd.to_numeric(v).astype("Float64")
        elif c.kind == "bool":
            df[c.name] = v.map(lambda x: None if x is None else str(x).lower() == "true"
                               ).astype("boolean")
        else:
            df[c.name] = v.astype("string")
    return df
