"""Worklist selection probabilities, group attributes per item, and the pools per district.

Revision ID: 0003_selection_prob
Revises: 0002_monitoring
Create Date: 2027-01-10

- `worklist_items.selection_prob` replaces `sampling_weight` (its inverse, audit items only):
  1 for listed items, n_audit / unlisted pool size for audit items; existing rows are
  converted (an audit item without a weight gets 1, as if its pool had been audited whole);
- `worklist_items.groups_json`: the household's audit attributes at the as-of date;
- `worklist_pools`: per run and district, the households scored, suppressed, listed, in the
  unlisted pool and audited.

Mirrors `safetynet.db.tables` (tests/test_db.py compares the migrated schema with it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_selection_prob"
down_revision = "0002_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worklist_items") as batch:
        batch.add_column(sa.Column("selection_prob", sa.Float, nullable=True))
        batch.add_column(
            sa.Column("groups_json", sa.Text, nullable=False, server_default="{}")
        )
    op.execute(
        "UPDATE worklist_items SET selection_prob = CASE "
        "WHEN NOT audit THEN 1.0 "
        "WHEN sampling_weight IS NULL OR sampling_weight < 1 THEN 1.0 "
        "ELSE 1.0 / sampling_weight END"
    )
    with op.batch_alter_table("worklist_items") as batch:
        batch.alter_column("selection_prob", existing_type=sa.Float, nullable=False)
        batch.alter_column("groups_json", existing_type=sa.Text, server_default=None)
        batch.drop_column("sampling_weight")
    op.create_table(
        "worklist_pools",
        sa.Column("run_id", sa.String(10), primary_key=True),
        sa.Column("district", sa.String(100), primary_key=True),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("n_households", sa.Integer, nullable=False),
        sa.Column("n_suppressed", sa.Integer, nullable=False),
        sa.Column("n_listed", sa.Integer, nullable=False),
        sa.Column("n_unlisted", sa.Integer, nullable=False),
        sa.Column("n_audit", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("worklist_pools")
    with op.batch_alter_table("worklist_items") as batch:
        batch.add_column(sa.Column("sampling_weight", sa.Float, nullable=True))
    op.execute(
        "UPDATE worklist_items SET sampling_weight = 1.0 / selection_prob WHERE audit"
    )
    with op.batch_alter_table("worklist_items") as batch:
        batch.drop_column("groups_json")
        batch.drop_column("selection_prob")
