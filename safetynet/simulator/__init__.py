"""The synthetic city: a known latent hardship process and six departments' messy view of it.

`simulate` and `SIMULATOR_VERSION` load the engine (numpy, pyarrow, pandera through the
contracts) on first use, so that `safetynet --help`, which imports the simulator's commands,
does not pay for it (docs/architecture.md, "Start-up time").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safetynet.simulator.config import District, SimulationConfig

if TYPE_CHECKING:
    from safetynet.simulator.engine import SIMULATOR_VERSION, simulate

__all__ = ["SIMULATOR_VERSION", "District", "SimulationConfig", "simulate"]


def __getattr__(name: str) -> Any:
    if name in ("SIMULATOR_VERSION", "simulate"):
        from safetynet.simulator import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
