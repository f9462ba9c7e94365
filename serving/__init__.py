"""Serving: the BentoML scoring API, API keys, audit log (and later the caseworker pages)."""
