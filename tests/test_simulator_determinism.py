"""Same seed, same bytes; different seed, different city; failed runs leave nothing."""

import json

import pytest

from safetynet.simulator import SimulationConfig, simulate
from safetynet.simulator import engine as engine_module

CFG = SimulationConfig(households=400, months=12, burn_in_months=6, truth_replicates=2)


def _checksums(manifest: dict) -> dict:
    return {f["path"]: f["sha256"] for f in manifest["files"] + manifest["truth"]}


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    a = simulate(CFG, tmp_path / "a", progress=False)
    b = simulate(CFG, tmp_path / "b", progress=False)
    assert _checksums(a) == _checksums(b)
    assert (tmp_path / "a/manifest.json").read_bytes() == (tmp_path / "b/manifest.json"
                                                           ).read_bytes()
    c = simulate(SimulationConfig(**{**CFG.to_dict(), "seed": 43,
                                     "districts": CFG.districts}),
                 tmp_path / "c", progress=False)
    differ = [p for p, s in _checksums(c).items() if _checksums(a)[p] != s]
    assert len(differ) >= len(_checksums(a)) - 1


def test_manifest_lists_checksums_and_config(tmp_path):
    m = simulate(CFG, tmp_path / "a", progress=False)
    on_disk = json.loads((tmp_path / "a/manifest.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(m, ensure_ascii=False))
    assert m["seed"] == CFG.seed and m["config"]["households"] == 400
    assert {t["path"] for t in m["truth"]} == {"truth/household_months.parquet",
                                               "truth/households.parquet"}


def test_failed_run_leaves_nothing_and_existing_output_is_kept(tmp_path, monkeypatch):
    out = tmp_path / "city"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine_module.Recorder, "finish", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        simulate(CFG, out, progress=False)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    simulate(CFG, out, progress=False)
    with pytest.raises(FileExistsError):
        simulate(CFG, out, progress=False)
    monkeypatch.setattr(engine_module.Recorder, "finish", boom)
    with pytest.raises(RuntimeError):
        simulate(CFG, out, overwrite=True, progress=False)
    assert (out / "manifest.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city"]


def test_config_validation_and_toml(tmp_path):
    with pytest.raises(ValueError):
        SimulationConfig(households=0)
    with pytest.raises(ValueError):
        SimulationConfig(start="2023-13")
    toml = tmp_path / "rates.toml"
    toml.write_text('duplicate_rate = 0.05\nlag_days = [["hrss", 1, 2.0]]\n')
    cfg = SimulationConfig.from_toml(toml, households=10)
    assert cfg.duplicate_rate == 0.05 and cfg.households == 10
    assert cfg.lag_days == (("hrss", 1, 2.0),)
    toml.write_text("no_such_rate = 1\n")
    with pytest.raises(ValueError, match="no_such_rate"):
        SimulationConfig.from_toml(toml)
