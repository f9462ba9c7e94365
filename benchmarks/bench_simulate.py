"""Benchmark `safetynet simulate`: wall time and peak memory in a subprocess.

    .venv/bin/python benchmarks/bench_simulate.py                      # demo + 1M parquet
    .venv/bin/python benchmarks/bench_simulate.py --sizes 20000 --formats csv

The 1,000,000-household run uses `--truth-every 6 --truth-replicates 4` (the truth probability
every sixth month with 4 replicates) to stay within the 10-minute budget; the demo size uses
the defaults. Figures go to benchmarks/results/bench_simulate.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
SAFETYNET = Path(sys.executable).with_name("safetynet")


def run(households: int, months: int, fmt: str, extra: list[str]) -> dict:
    out_root = Path(tempfile.mkdtemp(prefix="bench_sim_"))
    out = out_root / "city"
    cmd = [str(SAFETYNET), "simulate", "--households", str(households), "--months", str(months),
           "--format", fmt, "--out", str(out), "--no-progress", *extra]
    env = dict(os.environ, SAFETYNET_HOME=str(out_root / "home"))
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, cpu_s, load0 = 0, 0.0, os.getloadavg()[0]
    while proc.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss
                                               for c in proc.children(recursive=True))
            peak = max(peak, rss)
            t = proc.cpu_times()
            cpu_s = t.user + t.system  # last sample before exit (CPU is what load can't inflate)
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    _, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"simulate failed ({proc.returncode}): {err.decode()[-2000:]}")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    shutil.rmtree(out_root)
    return {"households": households, "months": months, "format": fmt, "wall_s": wall,
            "cpu_s": cpu_s, "load": (load0 + os.getloadavg()[0]) / 2,
            "peak_rss_gb": peak / 2**30, "output_gb": size / 2**30, "extra": " ".join(extra)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="20000,1000000")
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--formats", default="csv,parquet",
                    help="formats for the small size; the 1M run uses --big-format")
    ap.add_argument("--big-format", default="parquet")
    ap.add_argument("--result", default="bench_simulate.md", help="file in benchmarks/results")
    args = ap.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        big = n >= 500_000
        formats = [args.big_format] if big else args.formats.split(",")
        extra = ["--truth-every", "6", "--truth-replicates", "4"] if big else []
        for fmt in formats:
            r = run(n, args.months, fmt, extra)
            rows.append(r)
            print(f"{r['households']:>9,} x {r['months']} {r['format']:<8} "
                  f"{r['wall_s']:8.1f} s wall  {r['cpu_s']:7.1f} s CPU  load {r['load']:4.1f}  "
                  f"peak {r['peak_rss_gb']:5.2f} GB  "
                  f"output {r['output_gb']:5.2f} GB  {r['extra']}", flush=True)
    lines = [
        "# bench_simulate", "",
        f"Machine: {os.cpu_count()} cores, shared with other jobs (timings are noisy). "
        f"Load average at the end: {os.getloadavg()[0]:.1f}.", "",
        "Wall time depends on what else runs; CPU time (user + system of the simulate process) "
        "does not, and the process is essentially single-threaded, so on an idle machine wall "
        "is about CPU time.", "",
        "| households | months | format | wall (s) | CPU (s) | load avg | peak RSS (GB) | "
        "output (GB) | options |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['households']:,} | {r['months']} | {r['format']} | {r['wall_s']:.1f} | "
              f"{r['cpu_s']:.1f} | {r['load']:.1f} | {r['peak_rss_gb']:.2f} | "
              f"{r['output_gb']:.2f} | {r['extra'] or 'defaults'} |"
              for r in rows]
    out = ROOT / "benchmarks" / "results" / args.result
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
