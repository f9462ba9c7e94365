"""The synthetic city: a known latent hardship process and six departments' messy view of it."""

from safetynet.simulator.config import District, SimulationConfig
from safetynet.simulator.engine import SIMULATOR_VERSION, simulate

__all__ = ["SIMULATOR_VERSION", "District", "SimulationConfig", "simulate"]
