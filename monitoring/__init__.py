"""Monitoring and the closed loop: periodic rescoring, alerts, worklists, visit outcomes, drift."""
