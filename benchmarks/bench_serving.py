"""Serving benchmark: the BentoML service against a bare FastAPI app, with wrk on 127.0.0.1.

    .venv/bin/python benchmarks/bench_serving.py [--duration 10] [--workers 1,2] [--repeats 3]

Builds a throw-away SAFETYNET_HOME: a cheap model (7 leaves, depth 3, 300 trees over the
real model features) registered as champion in MLflow, 5,000 households in the SQLite
online store, a platform key. Then measures:
  * in-process `pred_contrib` rows/s (one row per call, and 1,000-row batches);
  * /score for one household with reasons at concurrency 1 (wrk, p50/p99);
  * concurrency 16 (wrk -c16 -t2): the service against ref_fastapi_app.py (same store, same
    model, probability + pred_contrib only), throughput ratio and p99s;
  * /score for 1,000 households in one request (median of 15);
  * all of it `--repeats` times per configuration, reporting medians (shared machine), and
    how the 16 connections were spread over the worker processes (`--greedy` adds a run
    with asyncio's greedy accept for comparison).
Figures are printed and written to benchmarks/results/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup(home: Path, n_households: int) -> tuple[str, list[str], Path, Path]:
    import lightgbm as lgb
    import serving_fixtures as sf

    from safetynet.config import get_settings
    from safetynet.db.engine import get_engine
    from safetynet.db.migrate import migrate
    from safetynet.features.definitions import model_feature_names
    from safetynet.serving.keys import create_key

    os.environ["SAFETYNET_HOME"] = str(home)
    get_settings.cache_clear()
    settings = get_settings()
    features = list(model_feature_names())
    X, y = sf.make_data(features, 20_000, seed=0)
    params = {"objective": "binary", "num_leaves": 7, "max_depth": 3, "learning_rate": 0.1,
              "min_data_in_leaf": 20, "verbose": -1, "num_threads": 2}
    booster = lgb.train(params, lgb.Dataset(X, y, feature_name=features), num_boost_round=300)
    sf._seed_mlflow_db(settings)
    sf.register(booster, settings)
    rows = sf.household_rows(features, n_households, seed=2)
    sf.write_online_store(settings, rows)
    migrate(settings)
    _, token = create_key(get_engine(settings), "platform", name="bench")
    model_file = home / "ref_model.txt"
    booster.save_model(str(model_file))
    feat_file = home / "ref_features.json"
    feat_file.write_text(json.dumps(features))
    return token, list(rows), model_file, feat_file


def in_process_rows_per_s(model_file: Path, feat_file: Path, ids: list[str]) -> dict[str, float]:
    import lightgbm as lgb

    from safetynet.config import get_settings
    from safetynet.features.online import open_online_store

    booster = lgb.Booster(model_file=str(model_file))
    features = json.loads(feat_file.read_text())
    store = open_online_store(get_settings())
    rows = store.get_many(ids[:1000])
    X = np.array([[r.get(f) for f in features] for r in rows], dtype=float)
    one = X[:1]
    for _ in range(50):
        booster.predict(one, pred_contrib=True, num_threads=1)
    n, t = 0, time.perf_counter()
    while time.perf_counter() - t < 3:
        booster.predict(X[n % 1000: n % 1000 + 1], pred_contrib=True, num_threads=1)
        n += 1
    single = n / (time.perf_counter() - t)
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < 3:
        booster.predict(X, pred_contrib=True)
        reps += 1
    batch = reps * 1000 / (time.perf_counter() - t)
    leaves = sum(t["num_leaves"] for t in booster.dump_model()["tree_info"])
    return {"single_row_per_s": single, "batch_rows_per_s": batch, "total_leaves": leaves,
            "trees": booster.num_trees(), "features": len(features)}


def start(cmd: list[str], env: dict[str, str], port: int, log: Path,
          ready: str) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT / "benchmarks")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready}", timeout=2).status_code < 500:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{cmd} not ready:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


LUA = """
local ids = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%s
request = function()
  i = i + 1
  return wrk.format(nil, nil, nil, '{"household_ids":["' .. ids[(i %% #ids) + 1] .. '"]}')
end
"""


def connection_split(port: int) -> str:
    """Established connections to `port` per server process, largest first (e.g. "9/7")."""
    import psutil

    per_pid: dict[int, int] = {}
    for c in psutil.net_connections(kind="tcp"):
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED and c.pid:
            per_pid[c.pid] = per_pid.get(c.pid, 0) + 1
    return "/".join(str(n) for n in sorted(per_pid.values(), reverse=True)) or "?"


def wrk(port: int, path: str, conns: int, threads: int, duration: int, ids: list[str],
        token: str | None, tmp: Path) -> dict[str, Any]:
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    script = tmp / f"wrk_{port}_{conns}.lua"
    script.write_text(LUA % (",".join(f'"{h}"' for h in ids), auth))
    proc = subprocess.Popen(
        ["wrk", f"-c{conns}", f"-t{threads}", f"-d{duration}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, text=True)
    time.sleep(min(1.0, duration / 2))  # connections are open: which worker holds them
    split = connection_split(port) if conns > 1 else ""
    out, _ = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"wrk failed with exit code {proc.returncode}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    pct = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M)}

    def ms(s: str) -> float:
        v, unit = re.match(r"([\d.]+)(\w+)", s).groups()
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]

    return {"rps": rps, "p50_ms": ms(pct["50"]), "p99_ms": ms(pct["99"]),
            "errors": int(non2xx.group(1)) if non2xx else 0, "split": split}


def big_batch(port: int, token: str, ids: list[str], reps: int = 15) -> dict[str, float]:
    body = {"household_ids": ids[:1000]}
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    with httpx.Client(timeout=60) as client:
        client.post(f"http://127.0.0.1:{port}/score", json=body, headers=headers)  # warm
        for _ in range(reps):
            t = time.perf_counter()
            r = client.post(f"http://127.0.0.1:{port}/score", json=body, headers=headers)
            times.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200, r.text[:300]
    return {"median_ms": statistics.median(times), "max_ms": max(times)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=10, help="Seconds per wrk run.")
    ap.add_argument("--workers", default="1,2", help="BentoML worker counts to try.")
    ap.add_argument("--repeats", type=int, default=3,
                    help="Rounds per configuration; the table shows medians.")
    ap.add_argument("--households", type=int, default=5000, help="Households in the store.")
    ap.add_argument("--greedy", action="store_true",
                    help="Also run each worker count > 1 with asyncio's greedy accept "
                    "(SAFETYNET_SERVE_ACCEPTS_PER_TURN=0), for comparison.")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench_serving needs the load generator wrk: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    home = tmp / "home"
    token, ids, model_file, feat_file = setup(home, args.households)
    inproc = in_process_rows_per_s(model_file, feat_file, ids)
    env = {**os.environ, "SAFETYNET_HOME": str(home), "SAFETYNET_SERVE_MODEL_POLL_SECONDS": "0",
           "BENTOML_HOME": str(tmp / "bentoml"), "REF_MODEL": str(model_file),
           "REF_FEATURES": str(feat_file), "SAFETYNET_LOG_LEVEL": "WARNING"}
    results: dict[str, dict] = {}
    ref_port = free_port()
    ref = start([str(BIN / "uvicorn"), "ref_fastapi_app:app", "--port", str(ref_port),
                 "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"],
                env, ref_port, tmp / "ref.log", "/docs")
    hot = ids[:1]
    rotating = ids[:2000]
    try:
        configs = []
        for workers in [int(w) for w in args.workers.split(",")]:
            configs.append((f"workers={workers}", workers, "1"))
            if args.greedy and workers > 1:
                configs.append((f"workers={workers}, greedy accept", workers, "0"))
        for name, workers, per_turn in configs:
            port = free_port()
            svc = start([str(BIN / "safetynet"), "serve", "--host", "127.0.0.1", "--port",
                         str(port)], {**env, "SAFETYNET_SERVE_WORKERS": str(workers),
                                      "SAFETYNET_SERVE_ACCEPTS_PER_TURN": per_turn}, port,
                        tmp / f"svc{workers}_{per_turn}.log", "/readyz")
            try:
                wrk(port, "/score", 4, 2, 3, rotating, token, tmp)  # warm-up
                wrk(ref_port, "/score", 4, 2, 3, rotating, None, tmp)
                rounds = []
                for _ in range(args.repeats):  # service and reference alternate in each round
                    rounds.append({
                        "c1_same": wrk(port, "/score", 1, 1, args.duration, hot, token, tmp),
                        "c1_rotating": wrk(port, "/score", 1, 1, args.duration, rotating,
                                           token, tmp),
                        "c16": wrk(port, "/score", 16, 2, args.duration, rotating, token, tmp),
                        "ref_c1": wrk(ref_port, "/score", 1, 1, args.duration, rotating, None,
                                      tmp),
                        "ref_c16": wrk(ref_port, "/score", 16, 2, args.duration, rotating,
                                       None, tmp),
                        "batch1000": big_batch(port, token, ids),
                    })
                r = _medians(rounds)
                r["ratios"] = [x["c16"]["rps"] / x["ref_c16"]["rps"] for x in rounds]
                r["splits"] = [x["c16"]["split"] for x in rounds]
                results[name] = r
            finally:
                stop(svc)
    finally:
        stop(ref)
    report(inproc, results, args)


NOTES_MARKER = "<!-- notes: kept when the benchmark rewrites the table -->"


def _medians(rounds: list[dict]) -> dict:
    """Per measurement and figure, the median over rounds."""
    return {k: {f: statistics.median(x[k][f] for x in rounds) for f in rounds[0][k]
                if f != "split"} for k in rounds[0]}


def report(inproc: dict, results: dict, args: argparse.Namespace) -> None:
    lines = [
        "# Serving benchmark", "",
        f"`{' '.join(['python', 'benchmarks/bench_serving.py', *sys.argv[1:]])}` on "
        f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average at the end {os.getloadavg()[0]:.1f} (shared machine: compare within "
        "a run).", "",
        f"Model: {inproc['trees']} trees, {inproc['total_leaves']} leaves in total, "
        f"{inproc['features']} features. In-process `pred_contrib`: "
        f"{inproc['single_row_per_s']:,.0f} rows/s one row per call (1 thread), "
        f"{inproc['batch_rows_per_s']:,.0f} rows/s in 1,000-row batches.", "",
        "| config | c1 same household p50 / p99 ms | c1 rotating p50 / p99 ms | c16 req/s "
        "| c16 p99 ms | ref c16 req/s | ref c16 p99 ms | ratio | ref c1 p99 ms "
        "| 1,000 households median ms | non-2xx | c16 connections per worker |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        errors = sum(r[k]["errors"] for k in ("c1_same", "c1_rotating", "c16"))
        lines.append(
            f"| {name} | {r['c1_same']['p50_ms']:.2f} / {r['c1_same']['p99_ms']:.2f} "
            f"| {r['c1_rotating']['p50_ms']:.2f} / {r['c1_rotating']['p99_ms']:.2f} "
            f"| {r['c16']['rps']:.0f} | {r['c16']['p99_ms']:.1f} | {r['ref_c16']['rps']:.0f} "
            f"| {r['ref_c16']['p99_ms']:.1f} | {statistics.median(r['ratios']):.2f} "
            f"({', '.join(f'{x:.2f}' for x in r['ratios'])}) "
            f"| {r['ref_c1']['p99_ms']:.2f} | {r['batch1000']['median_ms']:.0f} | {errors} "
            f"| {', '.join(r['splits'])} |")
    lines += ["", "c1 rotating cycles through 2,000 households (a different store row each "
              "request); ratio = service c16 req/s / reference c16 req/s within each round "
              f"(median, then each of the {args.repeats} rounds); other cells are medians over "
              "rounds. Connections per worker: how wrk's 16 keep-alive connections were spread "
              "over the worker processes in each round (`serving/accept.py`).", ""]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "benchmarks" / "results" / "serving.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    notes = ""  # hand-written notes below the marker survive a re-run
    if out.exists() and NOTES_MARKER in (old := out.read_text(encoding="utf-8")):
        notes = "\n" + old[old.index(NOTES_MARKER):]
    out.write_text(text + "\n" + notes, encoding="utf-8")
    (out.with_suffix(".json")).write_text(json.dumps({"in_process": inproc, **results},
                                                     indent=1))


if __name__ == "__main__":
    main()
