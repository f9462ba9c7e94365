"""The feature store: the one way training, monitoring and serving reach household features.

    store = FeatureStore(settings)
    store.historical([date(2024, 6, 30)])          # point-in-time rows (training, monitoring)
    store.historical(cohort=frame)                 # rows of given (household_key, as_of_date)
    store.online(["H1", "H2"])                     # latest row per household (serving)
    store.materialize(date(2024, 6, 30))           # build that date into the online store
    store.definitions                              # the feature catalogue

Historical rows come from the offline store (`OfflineStore`, committed deliveries) through the
compiled feature query (`build`), each at the record versions known at its as-of date; online
rows from the online store (`online`: SQLite, or Redis when `online_store == "redis"`). Column
names and dtypes: `definitions.output_columns()` and `build.normalize_dtypes`. The design
follows Feast's `FeatureStore` (docs/features.md, "Why not Feast").
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from safetynet.config import Settings, get_settings
from safetynet.contracts import TABLES

from .build import build_features, write_features
from .definitions import (
    FEATURES,
    KEY_COLUMNS,
    Feature,
    audit_attribute_names,
    feature,
    model_feature_names,
)
from .online import RedisOnlineStore, SQLiteOnlineStore, open_online_store
from .store import OfflineStore

COHORT_COLUMNS = ("household_key", "as_of_date")


class FeatureStore:
    """Offline (historical) and online feature rows of one `$SAFETYNET_HOME`'s store."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.offline = OfflineStore(self.settings)
        self._online: SQLiteOnlineStore | RedisOnlineStore | None = None

    # --- catalogue -------------------------------------------------------------------------
    @property
    def definitions(self) -> tuple[Feature, ...]:
        """Every feature definition (model features, evidence dates, audit attributes)."""
        return FEATURES

    def feature(self, name: str) -> Feature:
        """The definition of feature `name` (KeyError if none)."""
        return feature(name)

    def model_feature_names(self) -> list[str]:
        return model_feature_names()

    def audit_attribute_names(self) -> list[str]:
        return audit_attribute_names()

    # --- offline ---------------------------------------------------------------------------
    def connect(self, *, threads: int | None = None,
                memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection for point-in-time builds (`OfflineStore.connect_versions`)."""
        return self.offline.connect_versions(threads=threads, memory_limit=memory_limit)

    def historical(
        self,
        as_of_dates: Sequence[dt.date] | None = None,
        *,
        cohort: pd.DataFrame | None = None,
        features: Sequence[str] | None = None,
        source: Path | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
    ) -> pd.DataFrame:
        """Point-in-time feature rows, one per household and as-of date, sorted by as_of_date
        and household_key as a build returns them.

        `as_of_dates`: every household at each date. `cohort`: a frame with household_key and
        as_of_date; only its (household, date) pairs are returned (pairs without a household
        in the store are dropped). `features`: only these columns beside household_key,
        as_of_date and district (default: every output column). `source`: read a feature
        Parquet file instead of building (its rows at `as_of_dates` when given, else all).
        Raises ValueError when no date or cohort is given for a build, when `source` has no
        rows at the dates, or for an unknown feature name.
        """
        if cohort is not None:
            missing = [c for c in COHORT_COLUMNS if c not in cohort.columns]
            if missing:
                raise ValueError(f"cohort lacks column(s) {', '.join(missing)}")
            as_of_dates = sorted(set(pd.to_datetime(cohort["as_of_date"]).dt.date))
        if source is not None:
            frame = _read_source(Path(source), as_of_dates)
        elif not as_of_dates:
            raise ValueError("no as-of date given")
        else:
            frame = build_features(as_of_dates, self.offline.root, con=con)
        if cohort is not None:
            frame = _restrict(frame, cohort)
        return _select(frame, features)

    def write_historical(self, as_of_dates: Sequence[dt.date], out: Path, *,
                         con: duckdb.DuckDBPyConnection | None = None) -> int:
        """Stream the rows of `historical(as_of_dates)` to a Parquet file (atomically, in hash
        buckets of households: memory follows the bucket). Returns the rows written."""
        return write_features(as_of_dates, out, self.offline.root,
                              con=con or self.connect())

    def assistance(self) -> pd.DataFrame:
        """The assistance rolls of every committed delivery: household_key, programme,
        start_date, end_date, knowledge_date (the latest version of each record)."""
        with self.offline.connect() as con:
            return con.execute(
                "SELECT household_key, programme, start_date, end_date, knowledge_date "
                "FROM assistance"
            ).df()

    def latest_known_date(self, con: duckdb.DuckDBPyConnection | None = None) -> dt.date:
        """The latest delivery date in the store (else the latest knowledge date of any table
        in `con`'s views, else today)."""
        days = [d["delivery_date"] for d in self.offline.deliveries() if d.get("delivery_date")]
        if days:
            return max(dt.date.fromisoformat(str(d)[:10]) for d in days)
        con = con or self.connect()
        union = " UNION ALL ".join(f"SELECT MAX(knowledge_date) AS d FROM {t.name}"
                                   for t in TABLES)
        day = con.execute(f"SELECT MAX(d) FROM ({union})").fetchall()[0][0]
        return day or dt.date.today()

    # --- online ----------------------------------------------------------------------------
    def online_store(self) -> SQLiteOnlineStore | RedisOnlineStore:
        """The configured online store backend, opened on first use."""
        if self._online is None:
            self._online = open_online_store(self.settings)
        return self._online

    def online(self, household_keys: Sequence[str]) -> list[dict[str, Any] | None]:
        """Latest row per household key, in order; None for a key not in the store. A row is
        {"household_key", "as_of_date" (ISO), "district", audit attributes, features,
        evidence dates (ISO)}, missing values None."""
        return self.online_store().get_many(household_keys)

    get_many = online  # the `FeatureSource` protocol serving reads rows through

    def materialize(self, as_of: dt.date | None = None, *, source: Path | None = None) -> int:
        """Replace the online store's rows with the latest row per household of `source` (a
        feature Parquet file) or of a build at `as_of` (default: `latest_known_date()`).
        Returns the number of households written."""
        store = self.online_store()
        if source is not None:
            return store.write(Path(source))
        con = self.connect()
        day = as_of or self.latest_known_date(con)
        with tempfile.TemporaryDirectory(dir=self.settings.home) as tmp:
            path = Path(tmp) / "features.parquet"
            self.write_historical([day], path, con=con)
            return store.write(path)


def _read_source(path: Path, as_of_dates: Sequence[dt.date] | None) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    if not as_of_dates:
        return frame
    if "as_of_date" in frame:
        frame = frame[pd.to_datetime(frame["as_of_date"]).dt.date.isin(set(as_of_dates))]
    if frame.empty:
        days = ", ".join(str(d) for d in as_of_dates)
        raise ValueError(f"{path.name} has no rows for as-of date {days}")
    return frame.reset_index(drop=True)


def _restrict(frame: pd.DataFrame, cohort: pd.DataFrame) -> pd.DataFrame:
    pairs = (cohort[list(COHORT_COLUMNS)]
             .assign(as_of_date=pd.to_datetime(cohort["as_of_date"]))
             .drop_duplicates())
    keyed = frame.assign(as_of_date=pd.to_datetime(frame["as_of_date"]))
    return keyed.merge(pairs, on=list(COHORT_COLUMNS), how="inner").reset_index(drop=True)


def _select(frame: pd.DataFrame, features: Sequence[str] | None) -> pd.DataFrame:
    if features is None:
        return frame
    unknown = [f for f in features if f not in frame.columns]
    if unknown:
        raise ValueError(f"unknown feature(s): {', '.join(unknown)}")
    keys = [c for c in KEY_COLUMNS if c in frame.columns]
    return frame[[*keys, *(f for f in features if f not in keys)]]


__all__ = ["COHORT_COLUMNS", "FeatureStore"]
