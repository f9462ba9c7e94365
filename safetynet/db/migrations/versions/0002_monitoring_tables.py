"""Monitoring tables: score runs, score history, reasons, alerts, worklists, visit outcomes.

Revision ID: 0002_monitoring
Revises: 0001
Create Date: 2026-11-22

Mirrors `safetynet.db.tables` (tests/test_db.py compares the migrated schema with it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_monitoring"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_runs",
        sa.Column("run_id", sa.String(10), primary_key=True),
        sa.Column("as_of_date", sa.Date, nullable=False, unique=True),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_scored", sa.Integer, nullable=False),
        sa.Column("n_flagged", sa.Integer, nullable=False),
        sa.Column("n_alerts", sa.Integer, nullable=False),
        sa.Column("n_suppressed", sa.Integer, nullable=False),
        sa.Column("prev_run_id", sa.String(10), nullable=True),
        sa.Column("jaccard_prev", sa.Float, nullable=True),
        sa.Column("psi_score", sa.Float, nullable=True),
        sa.Column("n_features_drifted", sa.Integer, nullable=True),
        sa.Column("recommend_retrain", sa.Boolean, nullable=False),
        sa.Column("summary_json", sa.Text, nullable=False),
    )
    op.create_table(
        "score_history",
        sa.Column("run_id", sa.String(10), primary_key=True),
        sa.Column("household_key", sa.String(64), primary_key=True),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("suppressed", sa.String(16), nullable=True),
    )
    op.create_index("ix_score_history_household", "score_history", ["household_key", "as_of_date"])
    op.create_table(
        "score_reasons",
        sa.Column("run_id", sa.String(10), primary_key=True),
        sa.Column("household_key", sa.String(64), primary_key=True),
        sa.Column("rank", sa.SmallInteger, primary_key=True),
        sa.Column("feature", sa.String(100), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("contribution", sa.Float, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("run_id", sa.String(10), primary_key=True),
        sa.Column("household_key", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("detail_json", sa.Text, nullable=False),
    )
    op.create_index("ix_alerts_household", "alerts", ["household_key"])
    op.create_table(
        "worklist_items",
        sa.Column("item_id", sa.String(80), primary_key=True),
        sa.Column("run_id", sa.String(10), nullable=False),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("district", sa.String(100), nullable=False),
        sa.Column("street", sa.String(100), nullable=True),
        sa.Column("household_key", sa.String(64), nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("n_alerts", sa.Integer, nullable=False),
        sa.Column("audit", sa.Boolean, nullable=False),
        sa.Column("sampling_weight", sa.Float, nullable=True),
    )
    op.create_index("ix_worklist_items_run_id", "worklist_items", ["run_id"])
    op.create_index("ix_worklist_district", "worklist_items", ["run_id", "district"])
    op.create_table(
        "visit_outcomes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("submission_id", sa.String(100), nullable=False, unique=True),
        sa.Column("household_key", sa.String(64), nullable=False),
        sa.Column("visit_date", sa.Date, nullable=False),
        sa.Column("caseworker_key_id", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("hardship_type", sa.String(32), nullable=True),
        sa.Column("programmes_referred", sa.Text, nullable=False),
        sa.Column("programmes_enrolled", sa.Text, nullable=False),
        sa.Column("disagrees_with_score", sa.Boolean, nullable=False),
        sa.Column("disagreement_code", sa.String(32), nullable=True),
        sa.Column("disagreement_text", sa.Text, nullable=True),
        sa.Column("worklist_item_id", sa.String(80), nullable=True),
        sa.Column("audit", sa.Boolean, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_visit_outcomes_household_key", "visit_outcomes", ["household_key"])


def downgrade() -> None:
    op.drop_table("visit_outcomes")
    op.drop_table("worklist_items")
    op.drop_table("alerts")
    op.drop_table("score_reasons")
    op.drop_table("score_history")
    op.drop_table("score_runs")
