"""SafetyNet: early warning of household hardship from shared departmental data."""

__version__ = "0.1.0"
