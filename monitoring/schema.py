"""Tables of the monitoring loop (score runs, score history, reasons, alerts, worklists, outcomes).

The Alembic revision `serving/migrations/versions/*_monitoring_tables.py` creates exactly these
tables; a test compares the migrated database with this metadata so the two never drift apart.

Keys are chosen so that reruns and resubmissions are idempotent:
- a run is identified by its as-of date (`run_id` = ISO date); rerunning replaces it;
- a worklist item id is `<run_id>/<household_key>`: stable across reruns of the same month, so
  outcomes that reference it keep pointing at the same visit;
- a visit outcome has a unique `submission_id` (client-provided, else derived from its natural key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

metadata = sa.MetaData()

score_runs = sa.Table(
    "score_runs",
    metadata,
    sa.Column("run_id", sa.String(10), primary_key=True),  # ISO as-of date
    sa.Column("as_of_date", sa.Date, nullable=False, unique=True),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(50), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("n_scored", sa.Integer, nullable=False),
    sa.Column("n_flagged", sa.Integer, nullable=False),
    sa.Column("n_alerts", sa.Integer, nullable=False),
    sa.Column("n_suppressed", sa.Integer, nullable=False),
    sa.Column("prev_run_id", sa.String(10)),
    sa.Column("jaccard_prev", sa.Float),  # overlap of flagged lists with the previous run
    sa.Column("psi_score", sa.Float),
    sa.Column("n_features_drifted", sa.Integer),
    sa.Column("recommend_retrain", sa.Boolean, nullable=False, default=False),
    sa.Column("summary_json", sa.Text, nullable=False),  # timings, drift detail, counts
)

score_history = sa.Table(
    "score_history",
    metadata,
    sa.Column("run_id", sa.String(10), primary_key=True),
    sa.Column("household_key", sa.String(64), primary_key=True),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("model_version", sa.String(50), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
    # why no alert was raised although one would have been: on_assistance / cooldown
    sa.Column("suppressed", sa.String(16)),
    sa.Index("ix_score_history_household", "household_key", "as_of_date"),
)

# Top SHAP reasons of flagged households, one row per reason (long format: built without a
# Python loop per household, and readable by the service for the same features and model).
score_reasons = sa.Table(
    "score_reasons",
    metadata,
    sa.Column("run_id", sa.String(10), primary_key=True),
    sa.Column("household_key", sa.String(64), primary_key=True),
    sa.Column("rank", sa.SmallInteger, primary_key=True),  # 1 = strongest
    sa.Column("feature", sa.String(100), nullable=False),
    sa.Column("value", sa.Float),  # NaN/missing stored as NULL
    sa.Column("contribution", sa.Float, nullable=False),  # log-odds SHAP value
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("run_id", sa.String(10), primary_key=True),
    sa.Column("household_key", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),  # tier_up / score_rise / indicator:<id>
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("detail_json", sa.Text, nullable=False),
    sa.Index("ix_alerts_household", "household_key"),
)

worklist_items = sa.Table(
    "worklist_items",
    metadata,
    sa.Column("item_id", sa.String(80), primary_key=True),  # <run_id>/<household_key>
    sa.Column("run_id", sa.String(10), nullable=False, index=True),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("district", sa.String(100), nullable=False),
    sa.Column("street", sa.String(100)),
    sa.Column("household_key", sa.String(64), nullable=False),
    sa.Column("rank", sa.Integer, nullable=False),  # 1-based within district
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("n_alerts", sa.Integer, nullable=False),
    sa.Column("audit", sa.Boolean, nullable=False),
    # audit items: households of the district's unlisted pool each audit visit stands for
    sa.Column("sampling_weight", sa.Float),
    sa.Index("ix_worklist_district", "run_id", "district"),
)

visit_outcomes = sa.Table(
    "visit_outcomes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("submission_id", sa.String(100), nullable=False, unique=True),
    sa.Column("household_key", sa.String(64), nullable=False, index=True),
    sa.Column("visit_date", sa.Date, nullable=False),
    sa.Column("caseworker_key_id", sa.String(100), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("hardship_type", sa.String(32)),
    sa.Column("programmes_referred", sa.Text, nullable=False, default=""),  # comma-separated
    sa.Column("programmes_enrolled", sa.Text, nullable=False, default=""),
    sa.Column("disagrees_with_score", sa.Boolean, nullable=False, default=False),
    sa.Column("disagreement_code", sa.String(32)),
    sa.Column("disagreement_text", sa.Text),
    sa.Column("worklist_item_id", sa.String(80)),
    sa.Column("audit", sa.Boolean, nullable=False, default=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

MONITORING_TABLES = (
    "score_runs",
    "score_history",
    "score_reasons",
    "alerts",
    "worklist_items",
    "visit_outcomes",
)


def get_engine(url: str | None = None) -> Engine:
    """The shared database engine (`safetynet.serving.db`: WAL SQLite or PostgreSQL)."""
    from safetynet.serving.db import get_engine as shared_engine
    from safetynet.serving.db import make_engine

    return shared_engine() if url is None else make_engine(url)


def ensure_schema(engine: Engine) -> None:
    """Bring the database to the latest schema with the Alembic migrations (idempotent)."""
    from alembic import command

    from safetynet.serving.db import alembic_config

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
