"""Ingest benchmark: wall time and peak memory of `safetynet ingest` on a generated city.

    .venv/bin/python benchmarks/bench_ingest.py --households 100000 [--format parquet]
        [--generator synthetic|simulator] [--keep DIR]
    .venv/bin/python benchmarks/bench_ingest.py --city /work/bench/city1m --format parquet

`--city DIR` ingests an already generated city (generation is skipped and reported as
"reused"; households and rows per table come from its manifest.json), so a large figure can
be re-measured without regenerating the city. The city is only read.

The city comes from the simulator (`safetynet.simulator.simulate`) when it is available,
else from the synthetic generator below, which writes the largest tables at realistic sizes
(persons 2.6 per household, 36 months of contributions for working-age adults, attendance
for pupils, claims) and the other tables empty. Ingest runs in a subprocess; its peak
resident memory is read from getrusage. Results are appended to
benchmarks/results/bench_ingest.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from safetynet.contracts import TABLES
from safetynet.ids import check_chars

RESULTS = Path(__file__).parent / "results" / "bench_ingest.md"
MONTHS = 36


def synthetic_city(out: Path, households: int, fmt: str, seed: int = 0) -> dict[str, int]:
    """Write a city of valid rows; returns rows per table."""
    rng = np.random.default_rng(seed)
    size = rng.integers(1, 5, households)  # 1-4 persons, mean 2.5
    n = int(size.sum())
    hh_of = np.repeat(np.arange(households), size)
    born = pd.Timestamp("1940-01-01") + pd.to_timedelta(rng.integers(0, 80 * 365, n), "D")
    first17 = pd.Series(
        np.char.add(np.char.add("420106", born.strftime("%Y%m%d").to_numpy().astype(str)),
                    np.char.zfill((np.arange(n) % 1000).astype(str), 3)))
    rid = first17 + check_chars(first17)
    hid = pd.Series(np.char.add("H", np.char.zfill(np.arange(households).astype(str), 8)))
    con = duckdb.connect()
    con.register("hh", pd.DataFrame({"household_id": hid, "d": rng.integers(0, 8, households)}))
    con.register("pp", pd.DataFrame({
        "resident_id": rid, "household_id": hid.to_numpy()[hh_of], "birth_date": born.date,
        "age": (2024 - born.year).to_numpy()}))
    start = dt.date(2022, 1, 1)
    queries = {
        "households": "SELECT household_id, 'district_'||d AS district, 'street' AS street, "
                      "'community' AS community, CASE WHEN d % 2 = 0 THEN 'urban' ELSE 'rural' "
                      "END AS urban_rural, '中南路'||household_id||'号' AS address, "
                      "DATE '2010-01-01' AS registered_date, DATE '2010-01-15' AS knowledge_date "
                      "FROM hh",
        "persons": "SELECT resident_id, '张'||right(resident_id, 4) AS name, "
                   "CASE WHEN substr(resident_id, 17, 1)::INT % 2 = 1 THEN 'M' ELSE 'F' END "
                   "AS sex, birth_date, 'other' AS relation_to_head, household_id, "
                   "DATE '2010-01-01' AS registered_date, NULL::DATE AS death_date, "
                   "DATE '2010-01-15' AS knowledge_date FROM pp",
        "contributions": f"SELECT resident_id, DATE '{start}' + INTERVAL (m) MONTH AS month, "
                         "round(3000 + hash(resident_id) % 5000, 2) AS contribution_base, "
                         f"DATE '{start}' + INTERVAL (m + 1) MONTH + INTERVAL 14 DAY "
                         "AS knowledge_date FROM pp, range(36) r(m) WHERE age BETWEEN 18 AND 60",
        "attendance": f"SELECT resident_id, DATE '{start}' + INTERVAL (m) MONTH AS month, "
                      "21 AS school_days, hash(resident_id, m) % 3 AS absence_days, "
                      f"DATE '{start}' + INTERVAL (m + 1) MONTH + INTERVAL 5 DAY "
                      "AS knowledge_date FROM pp, range(36) r(m) WHERE age BETWEEN 6 AND 17",
        "claims": f"SELECT 'C'||row_number() OVER () AS claim_id, resident_id, DATE '{start}' "
                  "+ INTERVAL (m * 3) MONTH AS claim_date, 'outpatient' AS care_type, "
                  "300.0 AS total_cost, 200.0 AS reimbursed, 100.0 AS out_of_pocket, "
                  "'other' AS diagnosis_group, false AS serious_illness, "
                  f"DATE '{start}' + INTERVAL (m * 3 + 1) MONTH AS knowledge_date "
                  "FROM pp, range(12) r(m) WHERE hash(resident_id, m) % 4 = 0",
    }
    rows, manifest = {}, {}
    for t in TABLES:
        rel = f"{t.department}/{t.name}.{fmt}"
        (out / t.department).mkdir(parents=True, exist_ok=True)
        q = queries.get(t.name) or ("SELECT " + ", ".join(
            f"NULL::VARCHAR AS {c}" for c in t.column_names) + " WHERE false")
        opts = "FORMAT parquet" if fmt == "parquet" else "FORMAT csv, HEADER true"
        con.execute(f"COPY ({q}) TO '{out / rel}' ({opts})")
        rows[t.name] = con.execute(f"SELECT count(*) FROM ({q})").fetchall()[0][0]
        manifest[rel] = {"rows": rows[t.name]}
        if fmt == "csv":
            manifest[rel]["encoding"] = "utf-8"
    (out / "manifest.json").write_text(json.dumps(
        {"delivery_date": "2025-01-31", "files": manifest}, indent=1))
    return rows


def simulated_city(out: Path, households: int, fmt: str) -> dict[str, int]:
    """The simulator's city (the truth is computed sparsely: it is not what we measure)."""
    from safetynet.simulator import SimulationConfig, simulate

    cfg = SimulationConfig(households=households, truth_replicates=1, truth_every=12)
    manifest = simulate(cfg, out, fmt=fmt, overwrite=True, progress=False)
    return {f["table"]: f["rows"] for f in manifest["files"]}


def city_rows(city: Path) -> tuple[int | None, str, dict[str, int]]:
    """Households, generator and rows per table of an existing city, from its manifest."""
    doc = json.loads((city / "manifest.json").read_text(encoding="utf-8"))
    files = doc.get("files", {})
    if isinstance(files, dict):  # the synthetic generator's {path: {"rows": n}}
        rows = {Path(k).stem: int(v.get("rows", 0)) for k, v in files.items()}
    else:  # the simulator's list of entries
        rows = {f["table"]: int(f["rows"]) for f in files}
    gen = "simulator" if "simulator_version" in doc else "synthetic"
    return doc.get("households"), gen, rows


def run_ingest(city: Path, home: Path, fmt: str) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (GB) of `safetynet ingest` in a
    fresh process. CPU seconds are the figure to compare on a shared, loaded machine."""
    env = {**os.environ, "SAFETYNET_HOME": str(home), "SAFETYNET_MODE": "demo"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "safetynet.cli", "ingest", str(city),
                           "--format", fmt], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"ingest failed:\n{proc.stderr[-3000:]}")
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, use.ru_utime + use.ru_stime, use.ru_maxrss / 1024**2, proc.stdout + proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--generator", choices=("auto", "synthetic", "simulator"), default="auto")
    ap.add_argument("--keep", type=Path, help="Keep the city and home in this directory.")
    ap.add_argument("--city", type=Path,
                    help="Ingest this already generated city instead of generating one "
                         "(it is only read; the store goes to a temporary home).")
    args = ap.parse_args()
    gen = args.generator
    if gen == "auto":
        try:
            import safetynet.simulator  # noqa: F401
            gen = "simulator"
        except ImportError:
            gen = "synthetic"
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    city, home = base / "city", base / "home"
    shutil.rmtree(home, ignore_errors=True)
    if args.city:
        city = args.city
        if not (city / "manifest.json").exists():
            raise SystemExit(f"--city {city}: no manifest.json (not a generated city)")
        households, gen, rows = city_rows(city)
        args.households = households or args.households
        gen_text = "reused"
    else:
        t0 = time.perf_counter()
        make = simulated_city if gen == "simulator" else synthetic_city
        rows = make(city, args.households, args.format)
        gen_text = f"{time.perf_counter() - t0:.0f}"
    wall, cpu, peak, out = run_ingest(city, home, args.format)
    load = os.getloadavg()[0]
    total = sum(rows.values())
    size = sum(p.stat().st_size for p in city.rglob("*") if p.is_file()) / 1e9
    lines = [
        f"## {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC: {args.households:,} households, "
        f"{gen} city{' (reused)' if args.city else ''}, {args.format}",
        "",
        "| households | input rows | input GB | generate s | ingest wall s | ingest CPU s "
        "| rows/s (wall) | peak RSS GB | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {args.households:,} | {total:,} | {size:.2f} | {gen_text} | {wall:.1f} | "
        f"{cpu:.1f} | {total / wall:,.0f} | {peak:.2f} | {load:.1f} |",
        "",
        "Rows per table: " + ", ".join(f"{k} {v:,}" for k, v in rows.items() if v),
        "",
        "Command: `.venv/bin/python benchmarks/bench_ingest.py "
        + (f"--city {args.city} " if args.city
           else f"--households {args.households} --generator {gen} ")
        + f"--format {args.format}`",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    print("\n".join(line for line in out.splitlines() if not line.startswith("  ")))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with open(RESULTS, "a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
