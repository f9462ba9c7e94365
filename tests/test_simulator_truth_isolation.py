"""The truth is read only by the simulator and the evaluation code."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AREAS = ["safetynet", "features", "training", "serving", "monitoring"]
# What reading the truth looks like: its file names or the simulator's truth module. (A help
# text naming the directory, as `safetynet train --truth DIR` does to hand the path to the
# evaluation code, is not a read.)
PATTERN = re.compile(r"household_months|truth/households|simulator\.truth|simulator import truth"
                     r"|onset_prob_6m")


def _allowed(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return rel.startswith("safetynet/simulator/") or re.fullmatch(
        r"training/evaluation[^/]*\.py", rel) is not None or rel.startswith(
        "training/evaluation/")


def test_no_code_outside_simulator_and_evaluation_reads_the_truth():
    offenders = []
    for area in AREAS:
        for path in (ROOT / area).rglob("*.py"):
            if not _allowed(path) and PATTERN.search(path.read_text(encoding="utf-8")):
                offenders.append(path.relative_to(ROOT).as_posix())
    assert offenders == [], f"only the simulator and evaluation may read the truth: {offenders}"


def test_the_scan_would_catch_a_reference(tmp_path):
    assert PATTERN.search('pd.read_parquet(city / "truth/household_months.parquet")')
    assert PATTERN.search("from safetynet.simulator.truth import onset_probability")
    assert PATTERN.search('df["onset_prob_6m"]')
    assert _allowed(ROOT / "safetynet/simulator/truth.py")
    assert _allowed(ROOT / "training/evaluation.py")
    assert not _allowed(ROOT / "features/build.py")
