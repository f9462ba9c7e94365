"""Training: labels, temporal validation, LightGBM with baselines, calibration, metrics at
outreach capacity, fairness audit, MLflow tracking and the gated champion/challenger registry."""
