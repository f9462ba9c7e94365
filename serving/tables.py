"""SQLAlchemy Core views of the service tables (the schema itself is owned by migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200)),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("districts", sa.JSON, nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key_id", sa.Integer),
    sa.Column("role", sa.String(20)),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("households", sa.JSON, nullable=False),
    sa.Column("n_households", sa.Integer, nullable=False),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(50)),
)
