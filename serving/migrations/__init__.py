"""Alembic migrations of the service database (run through `safetynet.serving.db.migrate`)."""
