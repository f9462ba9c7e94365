"""Feature store: ingest, offline and online stores, feature and indicator definitions."""
