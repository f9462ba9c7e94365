"""Benchmark: household features at 12 monthly as-of dates over 36 months of data.

Either times the build on an existing offline store (`--store DIR` holding committed
deliveries, e.g. a simulated city ingested with `safetynet ingest`: nothing is synthesized and
the store is only read; the as-of dates default to the 12 month ends up to its latest delivery
date), or synthesizes a store directly as store Parquet at realistic sizes (default 1,000,000
households, ~2.6M persons, ~31M contribution rows, ~8M claims, ~14M attendance rows, plus a
second delivery re-stating 2% of claims and closing unemployment spells, so the
knowledge-date versioning does real work). Then times `write_features` (the feature-build part
of ingest + features) in a fresh child process and reports its wall time, CPU time and peak
RSS.

    .venv/bin/python benchmarks/bench_features.py --store /work/bench/home1m/store
    .venv/bin/python benchmarks/bench_features.py [--households 1000000] [--store DIR]

Appends a section per run to benchmarks/results/bench_features.md (newest last).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
AS_OF = [date(2024, m, 1) for m in range(2, 13)] + [date(2025, 1, 1)]
AS_OF = [date.fromordinal(d.toordinal() - 1) for d in AS_OF]  # month ends of 2024

MACROS = """
CREATE OR REPLACE MACRO u(a, b) AS (hash(a, b) % 1000000) / 1000000.0;
CREATE OR REPLACE MACRO k(prefix, a) AS substr(md5(prefix || CAST(a AS VARCHAR)), 1, 20);
CREATE OR REPLACE MACRO lag_days(d, a, b) AS
  CAST(d + CAST(floor(u(a, b) * 45) AS INTEGER) AS DATE);
CREATE OR REPLACE MACRO day_in_36m(a, b) AS
  CAST(DATE '2022-01-01' + CAST(floor(u(a, b) * 1095) AS INTEGER) AS DATE);
"""

TABLES = {
    "households": """
        SELECT k('h', i) AS household_key, 'D' || CAST(i % 13 AS VARCHAR) AS district,
          'S' || CAST(i % 97 AS VARCHAR) AS street, 'C' || CAST(i % 997 AS VARCHAR) AS community,
          CASE WHEN u(i, 1) < 0.6 THEN 'urban' ELSE 'rural' END AS urban_rural,
          CAST(DATE '1990-01-01' + CAST(floor(u(i, 2) * 12000) AS INTEGER) AS DATE)
            AS registered_date,
          CAST(DATE '1990-01-01' + CAST(floor(u(i, 2) * 12000) AS INTEGER) + 3 AS DATE)
            AS knowledge_date
        FROM range({n}) t(i)""",
    "persons": """
        SELECT k('p', p) AS person_key, k('h', i) AS household_key,
          CASE WHEN u(p, 3) < 0.5 THEN 'M' ELSE 'F' END AS sex,
          CAST(DATE '2024-12-31' - CAST(365.25 * age + u(p, 5) * 364 AS INTEGER) AS DATE)
            AS birth_date,
          CASE j WHEN 0 THEN 'head' WHEN 1 THEN 'spouse' ELSE 'child' END AS relation_to_head,
          CAST(DATE '1990-01-01' + CAST(floor(u(i, 2) * 12000) AS INTEGER) AS DATE)
            AS registered_date,
          CASE WHEN u(p, 6) < 0.01 THEN day_in_36m(p, 7) END AS death_date,
          CAST(DATE '1990-01-01' + CAST(floor(u(i, 2) * 12000) AS INTEGER) + 3 AS DATE)
            AS knowledge_date
        FROM (SELECT i, j, i * 5 + j AS p,
                CASE WHEN j = 0 THEN 25 + floor(u(i, 4) * 60)
                     WHEN j = 1 THEN 25 + floor(u(i, 8) * 55)
                     ELSE floor(u(i * 5 + j, 4) * 22) END AS age,
                CASE WHEN u(i, 9) < 0.2 THEN 1 WHEN u(i, 9) < 0.5 THEN 2 WHEN u(i, 9) < 0.75 THEN 3
                     WHEN u(i, 9) < 0.9 THEN 4 ELSE 5 END AS size
              FROM range({n}) t(i), range(5) s(j)) WHERE j < size""",
    "contributions": """
        SELECT person_key, household_key, m AS month,
          round(2000 + u(person_key, 11) * 10000 * CASE WHEN u(person_key, 12) < 0.1
                AND m >= DATE '2024-03-01' THEN 0.5 ELSE 1 END, 0) AS contribution_base,
          CAST(m + INTERVAL 1 MONTH + INTERVAL 9 DAY AS DATE) AS knowledge_date
        FROM persons_tmp, (SELECT CAST(DATE '2022-01-01' + INTERVAL (g) MONTH AS DATE) AS m
                           FROM range(36) r(g))
        WHERE age BETWEEN 20 AND 59 AND u(person_key, 10) < 0.75
          AND NOT (u(person_key, 13) < 0.05 AND m >= DATE '2024-06-01')""",
    "claims": """
        SELECT k('c', person_key || c) AS claim_id, person_key, household_key,
          day_in_36m(person_key, c + 20) AS claim_date,
          CASE WHEN u(person_key, c + 30) < 0.15 THEN 'inpatient' ELSE 'outpatient' END
            AS care_type,
          round(100 + u(person_key, c + 40) * 5000, 2) AS total_cost,
          round((100 + u(person_key, c + 40) * 5000) * 0.7, 2) AS reimbursed,
          round((100 + u(person_key, c + 40) * 5000) * 0.3, 2) AS out_of_pocket,
          CASE WHEN u(person_key, c + 50) < 0.03 THEN 'cancer' ELSE 'respiratory' END
            AS diagnosis_group,
          u(person_key, c + 50) < 0.03 AS serious_illness,
          lag_days(day_in_36m(person_key, c + 20), person_key, c + 60) AS knowledge_date
        FROM persons_tmp, range(8) r(c) WHERE u(person_key, c + 70) < 0.38""",
    "attendance": """
        SELECT person_key, household_key, m AS month, 20 AS school_days,
          CAST(floor(pow(u(person_key, g + 80), 6) * 15) AS INTEGER) AS absence_days,
          CAST(m + INTERVAL 1 MONTH + INTERVAL 4 DAY AS DATE) AS knowledge_date
        FROM persons_tmp, (SELECT g, CAST(DATE '2022-01-01' + INTERVAL (g) MONTH AS DATE) AS m
                           FROM range(36) r(g))
        WHERE age BETWEEN 6 AND 17 AND month(m) NOT IN (7, 8)""",
    "enrolment": """
        SELECT k('e', person_key) AS enrolment_id, person_key, household_key,
          CASE WHEN age < 12 THEN 'primary' WHEN age < 15 THEN 'junior_secondary'
               ELSE 'senior_secondary' END AS school_level,
          DATE '2021-09-01' AS enrol_date,
          CASE WHEN u(person_key, 90) < 0.01 THEN day_in_36m(person_key, 91) END AS dropout_date,
          u(person_key, 92) < 0.1 AS education_assistance, DATE '2021-09-05' AS knowledge_date
        FROM persons_tmp WHERE age BETWEEN 6 AND 17""",
    "disability_certificates": """
        SELECT k('d', person_key || v) AS certificate_id, person_key, household_key,
          'physical' AS category, CAST(4 - v - floor(u(person_key, 100) * 2) AS INTEGER) AS grade,
          CASE WHEN v = 0 THEN DATE '2015-01-01' ELSE day_in_36m(person_key, 101) END AS issue_date,
          NULL::DATE AS revoked_date,
          CASE WHEN v = 0 THEN DATE '2015-01-05'
               ELSE lag_days(day_in_36m(person_key, 101), person_key, 102) END AS knowledge_date
        FROM persons_tmp, range(2) r(v)
        WHERE u(person_key, 103) < 0.06 AND (v = 0 OR u(person_key, 104) < 0.1)""",
    "unemployment": """
        SELECT k('u', person_key) AS registration_id, person_key, household_key,
          day_in_36m(person_key, 110) AS start_date, NULL::DATE AS end_date,
          lag_days(day_in_36m(person_key, 110), person_key, 111) AS knowledge_date
        FROM persons_tmp WHERE age BETWEEN 20 AND 59 AND u(person_key, 112) < 0.1""",
    "unemployment_benefits": """
        SELECT person_key, household_key,
          CAST(date_trunc('month', start_date) + INTERVAL (g + 1) MONTH AS DATE) AS month,
          1500.0 AS amount,
          CAST(date_trunc('month', start_date) + INTERVAL (g + 2) MONTH AS DATE) AS knowledge_date
        FROM unemployment_tmp, range(6) r(g) WHERE u(person_key, 113) < 0.6""",
    "pensions": """
        SELECT k('pe', person_key) AS pension_id, person_key, household_key,
          CASE WHEN u(person_key, 120) < 0.4 THEN 'employee' ELSE 'resident' END AS pension_type,
          DATE '2010-01-01' AS start_date,
          round(200 + u(person_key, 121) * 4000, 0) AS monthly_amount,
          DATE '2010-01-05' AS knowledge_date
        FROM persons_tmp WHERE age >= 60""",
    "vehicles": """
        SELECT k('v', person_key) AS vehicle_id, person_key, household_key,
          DATE '2018-01-01' AS registered_date,
          CASE WHEN u(person_key, 130) < 0.1 THEN day_in_36m(person_key, 131) END
            AS deregistered_date, round(u(person_key, 132) * 200000, 0) AS estimated_value,
          DATE '2018-01-05' AS knowledge_date
        FROM persons_tmp WHERE relation_to_head = 'head' AND u(person_key, 133) < 0.15""",
    "real_estate": """
        SELECT k('r', person_key) AS property_id, person_key, household_key,
          DATE '2012-01-01' AS acquired_date,
          CASE WHEN u(person_key, 140) < 0.03 THEN day_in_36m(person_key, 141) END
            AS disposed_date, round(40 + u(person_key, 142) * 100, 1) AS floor_area,
          DATE '2012-01-05' AS knowledge_date
        FROM persons_tmp WHERE relation_to_head = 'head' AND u(person_key, 143) < 0.6""",
    "businesses": """
        SELECT k('b', person_key) AS business_id, person_key, household_key,
          DATE '2016-01-01' AS registered_date,
          CASE WHEN u(person_key, 150) < 0.2 THEN day_in_36m(person_key, 151) END
            AS deregistered_date, round(u(person_key, 152) * 500000, 0) AS registered_capital,
          DATE '2016-01-05' AS knowledge_date
        FROM persons_tmp WHERE relation_to_head = 'head' AND u(person_key, 153) < 0.05""",
    "assistance": """
        SELECT k('a', i) AS record_id, k('h', i) AS household_key,
          CASE WHEN u(i, 160) < 0.6 THEN 'dibao' WHEN u(i, 160) < 0.8 THEN 'marginal_dibao'
               ELSE 'temporary' END AS programme,
          day_in_36m(i, 161) AS start_date, NULL::DATE AS end_date,
          round(300 + u(i, 162) * 900, 0) AS monthly_amount,
          lag_days(day_in_36m(i, 161), i, 163) AS knowledge_date
        FROM range({n}) t(i) WHERE u(i, 164) < 0.08""",
}

# Second delivery: re-stated claims and end dates recorded later (new versions of old keys).
SECOND = {
    "claims": """SELECT * REPLACE (round(out_of_pocket * 1.5, 2) AS out_of_pocket,
                   CAST(knowledge_date + INTERVAL 60 DAY AS DATE) AS knowledge_date)
                 FROM read_parquet('{d1}/claims.parquet') WHERE u(claim_id, 1) < 0.02""",
    "unemployment": """SELECT * REPLACE (CAST(start_date + INTERVAL 150 DAY AS DATE) AS end_date,
                   CAST(start_date + INTERVAL 160 DAY AS DATE) AS knowledge_date)
                 FROM read_parquet('{d1}/unemployment.parquet')
                 WHERE u(registration_id, 2) < 0.7""",
    "assistance": """SELECT * REPLACE (CAST(start_date + INTERVAL 200 DAY AS DATE) AS end_date,
                   CAST(start_date + INTERVAL 210 DAY AS DATE) AS knowledge_date)
                 FROM read_parquet('{d1}/assistance.parquet') WHERE u(record_id, 3) < 0.4""",
}


def synthesize(store: Path, n: int) -> dict[str, int]:
    """Write two committed deliveries of store Parquet; returns rows per table."""
    from safetynet.contracts import table
    from safetynet.features.store import stored_columns

    d1 = store / "deliveries" / "bench1" / "tables"
    d2 = store / "deliveries" / "bench2" / "tables"
    d1.mkdir(parents=True, exist_ok=True)
    d2.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    con.execute(MACROS)
    counts = {}

    def write(name: str, sql: str, out: Path, delivery: str) -> None:
        cols = stored_columns(table(name))
        select = ", ".join(
            f"CAST({c} AS {ty}) AS {c}" if c not in ("_delivery_id", "_source_line") else
            (f"'{delivery}' AS _delivery_id" if c == "_delivery_id"
             else "CAST(row_number() OVER () + 1 AS BIGINT) AS _source_line") for c, ty in cols)
        con.execute(f"COPY (SELECT {select} FROM ({sql})) TO '{out / (name + '.parquet')}' "
                    "(FORMAT parquet, COMPRESSION zstd)")
        counts[f"{delivery}.{name}"] = con.execute(
            f"SELECT COUNT(*) FROM read_parquet('{out / (name + '.parquet')}')").fetchone()[0]

    for name, sql in TABLES.items():
        t0 = time.perf_counter()
        write(name, sql.format(n=n), d1, "bench1")
        if name == "persons":
            con.execute(f"CREATE TEMP TABLE persons_tmp AS SELECT person_key, household_key, "
                        f"relation_to_head, CAST(date_diff('year', birth_date, DATE '2024-06-30') "
                        f"AS INTEGER) AS age FROM read_parquet('{d1 / 'persons.parquet'}')")
        if name == "unemployment":
            con.execute(f"CREATE TEMP TABLE unemployment_tmp AS SELECT * FROM "
                        f"read_parquet('{d1 / 'unemployment.parquet'}')")
        print(f"  {name:24} {counts['bench1.' + name]:>12,} rows "
              f"{time.perf_counter() - t0:6.1f} s", flush=True)
    for name, sql in SECOND.items():
        write(name, sql.format(d1=d1), d2, "bench2")
    for i, d in enumerate(("bench1", "bench2")):
        (store / "deliveries" / d / "report.json").write_text(
            json.dumps({"ingested_at": f"2025-01-0{i + 1}T00:00:00"}))
    return counts


def build_child(store: Path, out: Path, as_of: list[date], threads: int, memory_limit: str,
                buckets: int) -> None:
    """Runs in a fresh process so peak RSS is the build's own."""
    from safetynet.features.build import bucket_count, write_features
    from safetynet.features.store import OfflineStore

    con = OfflineStore(root=store).connect_versions(threads=threads,
                                                    memory_limit=memory_limit or None)
    buckets = buckets or bucket_count(con)
    t0 = time.perf_counter()
    rows = write_features(as_of, out, con=con, buckets=buckets)
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"rows": rows, "seconds": seconds, "cpu_seconds": usage.ru_utime
                      + usage.ru_stime, "peak_rss_gb": usage.ru_maxrss / 1024 ** 2,
                      "buckets": buckets}))


def existing_store(store: Path) -> bool:
    """A store with committed deliveries that this script did not synthesize."""
    from safetynet.features.store import OfflineStore

    return bool(OfflineStore(root=store).deliveries()) and not any(store.glob(".complete-*"))


def store_counts(store: Path) -> dict[str, int]:
    """Rows per table (all deliveries), from the Parquet footers."""
    from safetynet.contracts import TABLES
    from safetynet.features.store import OfflineStore

    con = duckdb.connect()
    counts = {}
    for t in TABLES:
        files = OfflineStore(root=store).files(t.name)
        if files:
            paths = ", ".join("'" + str(p).replace("'", "''") + "'" for p in files)
            counts[t.name] = con.execute(
                f"SELECT SUM(num_rows) FROM parquet_file_metadata([{paths}])").fetchall()[0][0]
    return counts


def month_ends_before(day: date, n: int = 12) -> list[date]:
    """The `n` month ends on or before `day`, oldest first."""
    last_of_month = (day + dt.timedelta(days=1)).day == 1
    out = [day if last_of_month else day.replace(day=1) - dt.timedelta(days=1)]
    while len(out) < n:
        out.append(out[-1].replace(day=1) - dt.timedelta(days=1))
    return out[::-1]


def latest_delivery_date(store: Path) -> date:
    from safetynet.features.store import OfflineStore

    days = [d["delivery_date"] for d in OfflineStore(root=store).deliveries()
            if d.get("delivery_date")]
    if not days:
        raise SystemExit(f"{store}: no delivery date in its reports; pass --as-of")
    return max(date.fromisoformat(str(d)[:10]) for d in days)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=1_000_000,
                    help="Households to synthesize (ignored for an existing store).")
    ap.add_argument("--store", type=Path, default=Path("/tmp/safetynet-bench/store"),
                    help="Store to time; synthesized here unless it holds committed deliveries.")
    ap.add_argument("--out", type=Path, default=Path("/tmp/safetynet-bench/features.parquet"))
    ap.add_argument("--as-of", default="", help="Comma-separated as-of dates (default: 12 "
                    "month ends: of 2024 for a synthesized store, else up to the latest "
                    "delivery date).")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-limit", default="", help="DuckDB memory limit (default: the "
                    "features_memory_limit setting).")
    ap.add_argument("--buckets", type=int, default=0,
                    help="Household hash buckets (default: from features_bucket_households).")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    as_of = [date.fromisoformat(d.strip()) for d in args.as_of.split(",") if d.strip()]
    if args.child:
        build_child(args.store, args.out, as_of, args.threads, args.memory_limit, args.buckets)
        return
    if existing_store(args.store):
        kind = f"existing store `{args.store}` (not synthesized)"
        counts = store_counts(args.store)
        as_of = as_of or month_ends_before(latest_delivery_date(args.store))
    else:
        marker = args.store / f".complete-{args.households}"
        if not marker.exists():
            print(f"synthesizing {args.households:,} households into {args.store} ...",
                  flush=True)
            t0 = time.perf_counter()
            counts = synthesize(args.store, args.households)
            marker.write_text(json.dumps(counts))
            print(f"synthesized in {time.perf_counter() - t0:.0f} s", flush=True)
        kind = f"synthesized store, {args.households:,} households"
        counts = json.loads(marker.read_text())
        as_of = as_of or AS_OF
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    cmd = [sys.executable, __file__, "--child", "--store", str(args.store), "--out",
           str(args.out), "--threads", str(args.threads), "--memory-limit", args.memory_limit,
           "--buckets", str(args.buckets), "--as-of", ",".join(map(str, as_of))]
    # the child's stderr is not captured, so a failure shows its error
    child = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    result = json.loads(child.stdout.strip().splitlines()[-1])
    load_end = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    argv = " ".join(["", *sys.argv[1:]])
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## {when}: {kind}",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_features.py{argv}`",
        "",
        "| input table | rows |", "|---|---|",
        *(f"| {k} | {v:,} |" for k, v in counts.items()),
        "",
        "| measure | value |", "|---|---|",
        f"| as-of dates | {len(as_of)} ({as_of[0]} .. {as_of[-1]}) |",
        f"| feature rows written | {result['rows']:,} |",
        f"| household hash buckets | {result['buckets']} |",
        f"| feature build wall time | {result['seconds']:.1f} s |",
        f"| feature build CPU time (user+sys, both cores) | {result['cpu_seconds']:.0f} s |",
        f"| feature build peak RSS | {result['peak_rss_gb']:.2f} GB |",
        f"| machine load average (1 / 5 / 15 min) | start {load}; end {load_end} |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    results = ROOT / "benchmarks" / "results" / "bench_features.md"
    previous = results.read_text() if results.exists() else HEADER
    results.write_text(previous.rstrip("\n") + "\n\n" + text)


HEADER = """# bench_features: household features at 12 monthly as-of dates

Runs are appended below, newest last (`benchmarks/bench_features.py`). The build runs in a
child process; CPU time (user + system) compares across runs better than wall time on the
shared 2-core machine.
"""


if __name__ == "__main__":
    main()
