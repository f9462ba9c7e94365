"""The FeatureStore facade: historical rows, cohorts, column selection, feature files, online
rows, materialization and the catalogue, over the hand-made store."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from features_fixture import write_store

from safetynet.config import get_settings
from safetynet.features.build import build_features
from safetynet.features.definitions import (
    FEATURES,
    FeatureText,
    feature_texts,
    fill_sentence,
    model_feature_names,
)
from safetynet.features.feature_store import FeatureStore
from safetynet.features.indicators import compute_indicators, indicators_by_row

T = date(2024, 6, 30)
EARLIER = date(2024, 3, 31)


@pytest.fixture
def store() -> FeatureStore:
    settings = get_settings()
    write_store(settings.store_dir)
    return FeatureStore(settings)


def test_historical_rows_are_the_point_in_time_build(store):
    rows = store.historical([EARLIER, T])
    pd.testing.assert_frame_equal(rows, build_features([EARLIER, T], store.settings.store_dir))
    assert sorted(set(rows["as_of_date"].dt.date)) == [EARLIER, T]


def test_historical_for_a_cohort_and_selected_features(store):
    cohort = pd.DataFrame({"household_key": ["H1", "H2"], "as_of_date": [T, EARLIER]})
    rows = store.historical(cohort=cohort, features=["household_size", "oop_3m"])
    assert list(rows.columns) == ["household_key", "as_of_date", "district",
                                  "household_size", "oop_3m"]
    assert set(zip(rows["household_key"], rows["as_of_date"].dt.date, strict=True)) == {
        ("H1", T), ("H2", EARLIER)}
    full = store.historical([T, EARLIER])
    h1 = full[(full.household_key == "H1") & (full.as_of_date == pd.Timestamp(T))]
    assert rows.loc[rows.household_key == "H1", "oop_3m"].item() == h1["oop_3m"].item()
    with pytest.raises(ValueError, match="unknown feature"):
        store.historical([T], features=["no_such_feature"])
    with pytest.raises(ValueError, match="cohort lacks"):
        store.historical(cohort=pd.DataFrame({"household_key": ["H1"]}))


def test_historical_from_a_feature_file(store, tmp_path):
    path = tmp_path / "f.parquet"
    store.historical([EARLIER, T]).to_parquet(path)
    assert len(store.historical(source=path)) == len(store.historical([EARLIER, T]))
    one = store.historical([T], source=path)
    assert set(one["as_of_date"].dt.date) == {T}
    with pytest.raises(ValueError, match="has no rows for as-of date 2020-01-31"):
        store.historical([date(2020, 1, 31)], source=path)
    with pytest.raises(ValueError, match="no as-of date"):
        store.historical()


def test_materialize_then_online_rows(store):
    assert store.materialize(T) == 3
    offline = store.historical([T]).set_index("household_key")
    h1, nobody = store.online(["H1", "nobody"])
    assert nobody is None
    assert h1["as_of_date"] == T.isoformat()
    assert h1["household_size"] == offline.loc["H1", "household_size"]
    assert store.get_many(["H1"]) == [h1]  # the serving `FeatureSource` protocol


def test_assistance_rolls_and_latest_known_date(store):
    rolls = store.assistance()
    assert list(rolls.columns) == ["household_key", "programme", "start_date", "end_date",
                                   "knowledge_date"]
    assert len(rolls) > 0
    assert isinstance(store.latest_known_date(), date)


def test_catalogue_and_sentences():
    store = FeatureStore()
    assert store.definitions == FEATURES
    assert store.model_feature_names() == model_feature_names()
    assert store.feature("oop_3m_to_income").sentence(2.4) == fill_sentence(
        feature_texts(["oop_3m_to_income"])["oop_3m_to_income"], 2.4)
    plain = feature_texts(["not_defined"])["not_defined"]
    assert fill_sentence(plain, 3.0) == "not_defined = 3"
    assert fill_sentence(plain, float("nan"), "zh") == "not_defined：无记录。"
    odd = FeatureText("x", "{other} happened", "{other}")
    assert fill_sentence(odd, 2.5) == "{other} happened (2.50)"


def test_online_rows_and_frames_raise_the_same_indicators(store):
    from safetynet.config import load_policy

    store.materialize(T)
    rows = [r for r in store.online(["H1", "H2", "H3"]) if r is not None]
    by_row = indicators_by_row(rows, [r["as_of_date"] for r in rows], load_policy().indicators)
    frame = compute_indicators(pd.DataFrame(rows), load_policy().indicators)
    assert sorted((r["household_key"], i["indicator_id"])
                  for r, found in zip(rows, by_row, strict=True) for i in found) == sorted(
        zip(frame["household_key"], frame["indicator_id"], strict=True))
