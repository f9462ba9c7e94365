"""End to end: a small simulated city ingests, counts add up, and the reject ledger finds
exactly the faults the simulator injected (its manifest counts them)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_ingest_pipeline import settings  # noqa: F401  (fixture)

from safetynet.features.ingest import ingest
from safetynet.features.store import OfflineStore

simulator = pytest.importorskip("safetynet.simulator")


def test_simulated_city_ingests_and_ledger_matches_injected_faults(settings, tmp_path):  # noqa: F811
    cfg = simulator.SimulationConfig(households=300, truth_replicates=1, truth_every=12)
    city = tmp_path / "city"
    simulator.simulate(cfg, city, fmt="csv", progress=False)
    res = ingest(city, settings)
    manifest = json.loads((city / "manifest.json").read_text(encoding="utf-8"))
    rej = pd.read_parquet(res.path / "rejects.parquet")
    tables = {t["table"]: t for t in res.report["tables"]}
    for f in manifest["files"]:
        rep = tables[f["table"]]
        assert rep["rows_read"] == f["rows"]
        assert rep["accepted"] + rep["rejected"] == rep["rows_read"], f["table"]
        stored = pd.read_parquet(res.path / "tables" / f"{f['table']}.parquet")
        mine = rej[rej["file"] == f["path"]]
        assert len(stored) == rep["accepted"] and len(mine) == rep["rejected"]
        assert stored["_source_line"].is_unique and not set(stored["_source_line"]) & set(
            mine["line"])
        inj, by = f["injected"], rep["rejected_by_reason"]
        assert by.get("invalid_id_check", 0) == inj.get("bad_check", 0), f["table"]
        assert by.get("duplicate", 0) == inj.get("duplicates", 0), f["table"]
        assert by.get("negative_amount", 0) + by.get("out_of_range", 0) == inj.get(
            "out_of_range", 0), f["table"]
        # a legacy ID may also sit on a row rejected for another reason
        assert 0 <= inj.get("legacy_id", 0) - rep["legacy_ids_converted"] <= rep["rejected"]
    assert all(d["match_rate"] in (None, 1.0) for d in res.report["departments"])
    con = OfflineStore(settings).connect()
    n = con.execute("SELECT count(*) FROM contributions").fetchall()[0][0]
    assert n == tables["contributions"]["accepted"]
