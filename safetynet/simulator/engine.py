"""`simulate`: run the synthetic city and write its departmental extracts, truth and manifest.

The run writes into a temporary directory beside `out` and renames it into place at the end,
so a failed or interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from safetynet.contracts import SCHEMA_VERSION, TABLES
from safetynet.simulator import truth
from safetynet.simulator.config import SimulationConfig
from safetynet.simulator.dynamics import Clock, initial_assistance, initial_state, step
from safetynet.simulator.observe import Recorder
from safetynet.simulator.output import Messer, TableSink, sha256
from safetynet.simulator.population import (
    build_population,
    person_names,
    place_names,
    resident_ids,
)

SIMULATOR_VERSION = "1.0.0"


def simulate(config: SimulationConfig, out: Path, fmt: str = "csv", overwrite: bool = False,
             progress: bool = True) -> dict[str, Any]:
    """Simulate the city described by `config` into directory `out`; returns the manifest."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be 'csv' or 'parquet', got {fmt!r}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another directory or pass overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        manifest = _run(config, tmp, fmt, progress)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False)
                                           + "\n", encoding="utf-8")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _run(cfg: SimulationConfig, root: Path, fmt: str, progress: bool) -> dict[str, Any]:
    seeds = np.random.SeedSequence(cfg.seed).spawn(4)
    rng_pop, rng_dyn, rng_obs, rng_names = (np.random.default_rng(s) for s in seeds)
    clock = Clock(cfg)
    pop = build_population(cfg, rng_pop, clock.origin)
    ids = resident_ids(pop, cfg)
    names = person_names(pop, rng_names)
    streets, communities = place_names(cfg)
    region = np.array([d.region_code for d in cfg.districts])[pop.district]
    H = len(pop.buffer)
    hh_ids = np.char.add(np.char.add("H", region), np.char.zfill(np.arange(H).astype(str), 8))
    st = initial_state(pop, cfg, rng_dyn)
    a_idx, a_start, a_prog, a_amt = initial_assistance(st, cfg, rng_dyn)

    B, M = cfg.burn_in_months, cfg.months
    extract_day = int(clock.first_day(B + M)) - 1 + cfg.extract_lag_days
    depts = sorted({t.department for t in TABLES})
    gap = rng_obs.random((len(depts), len(cfg.districts), M)) < cfg.coverage_gap_rate
    old = pop.birth_day < np.datetime64("1980-01-01").astype("datetime64[D]").astype(np.int64)
    sinks = {t.name: TableSink(t, root, fmt, "gbk" if t.department in cfg.gbk_departments
                               else "utf-8") for t in TABLES}
    messer = Messer(cfg, rng_obs, ids, old, gap, {d: i for i, d in enumerate(depts)},
                    int(clock.window_start.astype(np.int64)))
    rec = Recorder(cfg, pop, clock, ids, hh_ids, sinks, messer, rng_obs, extract_day)
    for hh_, g, prog, amt in zip(a_idx, a_start, a_prog, a_amt, strict=True):
        rec.asst.append((int(hh_), int(g), int(prog), float(amt)))
        rec.asst_open[hh_] = len(rec.asst) - 1

    (root / "truth").mkdir()
    truth_writer = pq.ParquetWriter(str(root / truth.HOUSEHOLD_MONTHS), truth.MONTH_SCHEMA,
                                    compression="snappy")
    hh_arrow = pa.array(hh_ids)
    onset_months = np.zeros(H, np.int32)
    bar = tqdm(range(B + M), desc="simulate", unit="month", file=sys.stderr,
               disable=not progress)
    for g in bar:
        _, ev = step(st, g, cfg, clock, rng_dyn, record=True)
        rec.month(g, ev, st)
        m = g - B
        if m >= 0:
            prob = None
            if m % cfg.truth_every == 0:
                prob = truth.onset_probability(st, g, cfg, clock, pop.hh_start)
            truth_writer.write_table(truth.month_rows(hh_arrow, int(clock.first_day(g)), st,
                                                      ev, prob))
            onset_months += ev["onset"]
    truth_writer.close()
    rec.finish(st, names, streets, communities)
    files = [sinks[t.name].close() for t in TABLES]

    types = np.array([n for n, _ in cfg.composition])
    pq.write_table(pa.table({
        "household_id": hh_arrow,
        "district": pa.array(np.array([d.name for d in cfg.districts])[pop.district]),
        "urban_rural": pa.array(np.where(pop.urban, "urban", "rural")),
        "household_type": pa.array(types[pop.hh_type]),
        "members_at_start": pa.array(np.diff(pop.hh_start).astype(np.int16)),
        "applies_if_in_need": pa.array(pop.apply_prop),
        "other_income": pa.array(pop.other_income),
        "initial_buffer": pa.array(pop.buffer),
        "informal_workers": pa.array(np.bincount(pop.hh, weights=pop.employed & ~pop.formal,
                                                 minlength=H).astype(np.int16)),
        "onsets_in_window": pa.array(onset_months.astype(np.int16)),
    }), str(root / truth.HOUSEHOLDS), compression="snappy")
    truth_files = [{"path": p, "rows": pq.ParquetFile(root / p).metadata.num_rows,
                    "sha256": sha256(root / p)}
                   for p in (truth.HOUSEHOLD_MONTHS, truth.HOUSEHOLDS)]
    return {
        "schema_version": SCHEMA_VERSION, "simulator_version": SIMULATOR_VERSION,
        "seed": cfg.seed, "format": fmt, "start": cfg.start, "months": cfg.months,
        "households": cfg.households, "persons": len(pop.hh),
        "extract_date": str(np.datetime64(extract_day, "D")),
        "config": cfg.to_dict(), "files": files, "truth": truth_files,
        "truth_note": "Evaluation only: features and training must never read truth/.",
    }
