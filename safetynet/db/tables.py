"""Every table of the service database, in one SQLAlchemy metadata (Core, no ORM).

The schema is created and changed by the Alembic revisions in `safetynet/db/migrations/`; a
test (tests/test_db.py) compares the migrated database with this metadata so they never drift.

- `api_keys`, `audit_log`: who may call the service, and every call it answered;
- `score_runs`, `score_history`, `score_reasons`, `alerts`, `worklist_items`, `worklist_pools`:
  one monitoring run per as-of date (`run_id` = ISO date; rerunning a month replaces it);
- `visit_outcomes`: caseworkers' feedback (unique `submission_id`, so resubmissions are no-ops).

A worklist item id is `<run_id>/<household_key>`: stable across reruns of the same month, so
outcomes that reference it keep pointing at the same visit.
"""

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
    # sha256 hex of the 256-bit random token; the token itself is never stored.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("role in ('platform', 'caseworker', 'admin')", name="ck_api_keys_role"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("key_id", sa.Integer, index=True),
    sa.Column("role", sa.String(20)),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    # household pseudonyms (household_key) only; callers' own records get "record:<n>".
    sa.Column("households", sa.JSON, nullable=False),
    sa.Column("n_households", sa.Integer, nullable=False),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(50)),
)

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
    # probability the item was selected: 1 for listed items, n_audit / unlisted pool size of
    # its district for audit items (its design weight is the inverse)
    sa.Column("selection_prob", sa.Float, nullable=False),
    # the household's audit attributes at the as-of date, {"urban_rural": "rural", ...}
    sa.Column("groups_json", sa.Text, nullable=False, default="{}"),
    sa.Index("ix_worklist_district", "run_id", "district"),
)

# One row per run and district: the population the list and the audit slice were drawn from.
worklist_pools = sa.Table(
    "worklist_pools",
    metadata,
    sa.Column("run_id", sa.String(10), primary_key=True),
    sa.Column("district", sa.String(100), primary_key=True),
    sa.Column("as_of_date", sa.Date, nullable=False),
    sa.Column("n_households", sa.Integer, nullable=False),  # scored
    sa.Column("n_suppressed", sa.Integer, nullable=False),  # on assistance / visited recently
    sa.Column("n_listed", sa.Integer, nullable=False),
    sa.Column("n_unlisted", sa.Integer, nullable=False),  # the audit slice's pool
    sa.Column("n_audit", sa.Integer, nullable=False),
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

# the tables of the monitoring loop (all but the service's keys and audit log)
MONITORING_TABLES = (
    "score_runs",
    "score_history",
    "score_reasons",
    "alerts",
    "worklist_items",
    "worklist_pools",
    "visit_outcomes",
)
