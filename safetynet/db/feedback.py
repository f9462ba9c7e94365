"""The feedback store: visit outcomes recorded by caseworkers (validated, stored, read back).

The labels they become are training's (`safetynet.training.labels.outcome_labels`).

Guarantees:
- idempotent: every submission has a `submission_id` (client-provided, else derived from the
  natural key household + visit date + caseworker); a resubmission inserts nothing and returns
  the stored row;
- never lost: `record_outcome` returns only after the transaction has committed;
- a CSV import is validated as a whole first; one bad line rejects the file and writes nothing.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import Connection, Engine

from safetynet.contracts import PROGRAMMES
from safetynet.db.tables import visit_outcomes, worklist_items

OUTCOMES = ("hardship_confirmed", "not_in_hardship", "could_not_reach", "moved")
HARDSHIP_TYPES = (*PROGRAMMES, "other")
DISAGREEMENT_CODES = ("score_too_high", "score_too_low", "reasons_wrong", "data_outdated", "other")
PROGRAMME_CODE = r"^[a-z][a-z0-9_]{0,39}$"  # dibao, medical_assistance, … (serving's rules)


class VisitOutcome(BaseModel):
    """One visit outcome as submitted by a caseworker (web form, API or CSV)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    household_key: str = Field(min_length=1, max_length=64, description="Household pseudonym.")
    visit_date: date
    caseworker_key_id: str = Field(min_length=1, max_length=100, description="API key id.")
    outcome: Literal["hardship_confirmed", "not_in_hardship", "could_not_reach", "moved"]
    hardship_type: Literal[HARDSHIP_TYPES] | None = Field(  # type: ignore[valid-type]
        default=None, description="Required when hardship is confirmed."
    )
    programmes_referred: list[str] = Field(default_factory=list)
    programmes_enrolled: list[str] = Field(default_factory=list)
    disagrees_with_score: bool = False
    disagreement_code: Literal[DISAGREEMENT_CODES] | None = None  # type: ignore[valid-type]
    disagreement_text: str | None = Field(default=None, max_length=2000)
    worklist_item_id: str | None = Field(default=None, max_length=80)
    audit: bool = Field(default=False, description="Visit of the random audit slice.")
    submission_id: str | None = Field(default=None, min_length=1, max_length=100)

    @field_validator("programmes_referred", "programmes_enrolled", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if v is None:
            return []
        if isinstance(v, str):
            return [p.strip() for p in v.replace(",", ";").split(";") if p.strip()]
        return v

    @field_validator("programmes_referred", "programmes_enrolled")
    @classmethod
    def _codes(cls, v: list[str]) -> list[str]:
        import re

        bad = [p for p in v if not re.match(PROGRAMME_CODE, p)]
        if bad:
            raise ValueError(f"programme codes must be lower_snake_case identifiers, got {bad}")
        return sorted(set(v))

    @model_validator(mode="after")
    def _consistent(self) -> VisitOutcome:
        if self.outcome == "hardship_confirmed" and self.hardship_type is None:
            raise ValueError("hardship_type is required when outcome is hardship_confirmed")
        if self.outcome != "hardship_confirmed" and self.hardship_type is not None:
            raise ValueError("hardship_type is only allowed when outcome is hardship_confirmed")
        if self.disagrees_with_score and self.disagreement_code is None:
            raise ValueError("disagreement_code is required when disagrees_with_score is true")
        if self.visit_date > datetime.now(UTC).date():
            raise ValueError(f"visit_date {self.visit_date} is in the future")
        return self

    def key(self) -> str:
        """The submission id: the client's, else a hash of the natural key."""
        if self.submission_id:
            return self.submission_id
        nk = f"{self.household_key}|{self.visit_date.isoformat()}|{self.caseworker_key_id}"
        return "nk-" + hashlib.sha256(nk.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class StoredOutcome:
    """The stored row and whether this call created it (False: an earlier submission did)."""

    row: dict[str, Any]
    created: bool


class FeedbackError(ValueError):
    """A submission that cannot be stored as given (message is safe to show the caseworker)."""


def _row(o: VisitOutcome, now: datetime) -> dict[str, Any]:
    return {
        "submission_id": o.key(),
        "household_key": o.household_key,
        "visit_date": o.visit_date,
        "caseworker_key_id": o.caseworker_key_id,
        "outcome": o.outcome,
        "hardship_type": o.hardship_type,
        "programmes_referred": ";".join(o.programmes_referred),
        "programmes_enrolled": ";".join(o.programmes_enrolled),
        "disagrees_with_score": o.disagrees_with_score,
        "disagreement_code": o.disagreement_code,
        "disagreement_text": o.disagreement_text,
        "worklist_item_id": o.worklist_item_id,
        "audit": o.audit,
        "recorded_at": now,
    }


def _insert_ignore(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """INSERT … ON CONFLICT (submission_id) DO NOTHING on SQLite and PostgreSQL; rows inserted."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - only the two supported backends
        raise RuntimeError(f"unsupported database {conn.dialect.name}")
    stmt = insert(visit_outcomes).on_conflict_do_nothing(index_elements=["submission_id"])
    if len(rows) == 1:  # RETURNING tells reliably whether the row went in (rowcount does not)
        return len(conn.execute(stmt.returning(visit_outcomes.c.id), rows[0]).all())
    conn.execute(stmt, rows)
    return len(rows)


def _link_worklist(conn: Connection, o: VisitOutcome) -> VisitOutcome:
    """The worklist item, when given and known, decides `audit` and must be this household's."""
    if not o.worklist_item_id:
        return o
    item = conn.execute(
        sa.select(worklist_items.c.household_key, worklist_items.c.audit).where(
            worklist_items.c.item_id == o.worklist_item_id
        )
    ).first()
    if item is None:
        return o
    if item.household_key != o.household_key:
        raise FeedbackError(f"worklist item {o.worklist_item_id} is for another household")
    return o.model_copy(update={"audit": bool(item.audit)})


def record_outcome(engine: Engine, outcome: VisitOutcome | dict[str, Any]) -> StoredOutcome:
    """Store one visit outcome; committed before returning. Resubmissions return the stored row."""
    try:
        o = outcome if isinstance(outcome, VisitOutcome) else VisitOutcome.model_validate(outcome)
    except ValidationError as exc:
        raise FeedbackError(_messages(exc)) from None
    sid = o.key()
    with engine.begin() as conn:
        existing = _fetch(conn, sid)
        if existing is not None:
            return StoredOutcome(existing, created=False)
        o = _link_worklist(conn, o)
        inserted = _insert_ignore(conn, [_row(o, datetime.now(UTC))])
        stored = _fetch(conn, sid)  # ours, or a concurrent twin's that won the race
    if stored is None:  # pragma: no cover - the row was just inserted or already there
        raise FeedbackError("outcome could not be stored")
    return StoredOutcome(stored, created=inserted == 1)


def _fetch(conn: Connection, submission_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            sa.select(visit_outcomes).where(visit_outcomes.c.submission_id == submission_id)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def _messages(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors()
    )


@dataclass(frozen=True)
class ImportResult:
    inserted: int
    duplicates: int


def import_outcomes_csv(engine: Engine, path: Path) -> ImportResult:
    """Import a CSV of outcomes (columns = `VisitOutcome` fields; lists `;`-separated).

    The whole file is validated first; any bad line rejects the file with every error and its
    line number, and nothing is written. Rows already stored (same submission id) are skipped.
    """
    errors: list[str] = []
    parsed: list[VisitOutcome] = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        for line, rec in enumerate(reader, start=2):
            clean = {k: v for k, v in rec.items() if k is not None and v not in ("", None)}
            try:
                parsed.append(VisitOutcome.model_validate(clean))
            except ValidationError as exc:
                errors.append(f"line {line}: {_messages(exc)}")
    if errors:
        shown = "\n".join(errors[:20])
        more = f"\n… and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise FeedbackError(
            f"{path.name}: {len(errors)} invalid line(s), nothing imported\n{shown}{more}"
        )
    now = datetime.now(UTC)
    keys = [o.key() for o in parsed]
    with engine.begin() as conn:
        known: set[str] = set()
        for i in range(0, len(keys), 500):
            known |= set(
                conn.execute(
                    sa.select(visit_outcomes.c.submission_id).where(
                        visit_outcomes.c.submission_id.in_(keys[i : i + 500])
                    )
                ).scalars()
            )
        fresh: dict[str, dict[str, Any]] = {}
        for o in parsed:
            if o.key() not in known and o.key() not in fresh:
                fresh[o.key()] = _row(_link_worklist(conn, o), now)
        if fresh:
            _insert_ignore(conn, list(fresh.values()))
    return ImportResult(inserted=len(fresh), duplicates=len(parsed) - len(fresh))


def load_outcomes(engine: Engine, since: date | None = None) -> pd.DataFrame:
    """All stored outcomes (optionally visits on or after `since`) as a DataFrame."""
    q = sa.select(visit_outcomes)
    if since is not None:
        q = q.where(visit_outcomes.c.visit_date >= since)
    with engine.connect() as conn:
        df = pd.DataFrame(conn.execute(q.order_by(visit_outcomes.c.id)).mappings().all())
    if df.empty:
        df = pd.DataFrame(columns=[c.name for c in visit_outcomes.columns])
    df["visit_date"] = pd.to_datetime(df["visit_date"])
    return df


def outcomes_of(engine: Engine, key: str, limit: int = 20) -> list[dict[str, Any]]:
    """The household's recorded visits, newest first, at most `limit`; without the free text
    (it may name people): submission_id, visit_date, outcome, hardship_type,
    caseworker_key_id, recorded_at, disagrees_with_score."""
    cols = [visit_outcomes.c[c] for c in (
        "submission_id", "visit_date", "outcome", "hardship_type", "caseworker_key_id",
        "recorded_at", "disagrees_with_score")]
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*cols).where(visit_outcomes.c.household_key == key)
            .order_by(visit_outcomes.c.visit_date.desc(), visit_outcomes.c.id.desc())
            .limit(limit)
        ).mappings().all()
    return [dict(r) for r in rows]


def recent_visits(engine: Engine, as_of: date, months: int) -> pd.DataFrame:
    """Visits after the month `months` + 1 before `as_of` (a margin for the cooldown rule):
    household_key, visit_date, outcome. Cheap: only the cooldown window is read."""
    since = (pd.Timestamp(as_of) - pd.DateOffset(months=months + 1)).date()
    with engine.connect() as conn:
        return pd.read_sql(
            sa.select(
                visit_outcomes.c.household_key,
                visit_outcomes.c.visit_date,
                visit_outcomes.c.outcome,
            ).where(visit_outcomes.c.visit_date > since),
            conn,
        )


def load_visited_items(engine: Engine) -> pd.DataFrame:
    """Every worklist item of the monitoring runs with at least one linked visit outcome, with
    its latest outcome (None when the item got no outcome: nonresponse within its cell).

    Columns: item_id, run_id, as_of_date (datetime), district, household_key, audit (bool),
    selection_prob, groups_json, outcome, visit_date. The design-based readers (training's
    need model and gate, monitoring's estimates) take it from here; outcomes without a
    worklist item have no selection probability and are not returned."""
    items_q = sa.select(
        worklist_items.c.item_id, worklist_items.c.run_id, worklist_items.c.as_of_date,
        worklist_items.c.district, worklist_items.c.household_key, worklist_items.c.audit,
        worklist_items.c.selection_prob, worklist_items.c.groups_json)
    out_q = sa.select(visit_outcomes.c.id, visit_outcomes.c.worklist_item_id,
                      visit_outcomes.c.outcome, visit_outcomes.c.visit_date).where(
        visit_outcomes.c.worklist_item_id.is_not(None))
    with engine.connect() as conn:
        outcomes = pd.DataFrame(conn.execute(out_q).mappings().all(),
                                columns=["id", "worklist_item_id", "outcome", "visit_date"])
        items = pd.DataFrame(conn.execute(items_q).mappings().all(),
                             columns=[c.name for c in items_q.selected_columns])
    last = (outcomes.sort_values(["visit_date", "id"])
            .drop_duplicates("worklist_item_id", keep="last").set_index("worklist_item_id"))
    visited_runs = items.loc[items["item_id"].isin(last.index), "run_id"].unique()
    out = items[items["run_id"].isin(visited_runs)].reset_index(drop=True)
    out["as_of_date"] = pd.to_datetime(out["as_of_date"])
    out["audit"] = out["audit"].astype(bool)
    out["outcome"] = out["item_id"].map(last["outcome"])
    out["visit_date"] = pd.to_datetime(out["item_id"].map(last["visit_date"]))
    return out
