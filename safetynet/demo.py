"""`make demo`: the whole monthly loop on a small simulated city, end to end.

simulate → ingest → features → train → promote → monitor → worklists → simulated visits
→ retrain with feedback → report → start the service and call it over HTTP.

Every step goes through the same commands a user runs (`safetynet ...`), so the demo is
also a walkthrough: each step prints the command it runs.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from safetynet.config import get_settings

HOUSEHOLDS = int(os.environ.get("SAFETYNET_DEMO_HOUSEHOLDS", "20000"))
MONTHS = 36
START = "2023-01"
SEED = 42


def month_starts(first: date, last: date) -> list[date]:
    """First days of the months from `first` to `last` inclusive."""
    out, y, m = [], first.year, first.month
    while (y, m) <= (last.year, last.month):
        out.append(date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


class Demo:
    """Runs the steps and keeps a short log of what happened for the closing summary."""

    def __init__(self) -> None:
        self.settings = get_settings()
        self.home = self.settings.home.resolve()
        self.started = time.perf_counter()
        self.step_no = 0
        self.summary: list[str] = []

    def run(self, title: str, *args: str, capture: bool = False) -> str:
        self.step_no += 1
        cmd = ["safetynet", *args]
        print(f"\n\033[1m[{self.step_no}] {title}\033[0m\n    $ {shlex.join(cmd)}", flush=True)
        t0 = time.perf_counter()
        exe = [sys.executable, "-m", "safetynet.cli", *args]
        proc = subprocess.run(exe, text=True, capture_output=capture)
        if proc.returncode != 0:
            if capture:
                print(proc.stdout, proc.stderr, sep="\n")
            raise SystemExit(f"demo step failed: {shlex.join(cmd)} (exit {proc.returncode})")
        print(f"    done in {time.perf_counter() - t0:.1f} s", flush=True)
        return proc.stdout if capture else ""
