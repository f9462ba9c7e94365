"""Alembic migrations of the service database (run through `safetynet.db.migrate.migrate`)."""
