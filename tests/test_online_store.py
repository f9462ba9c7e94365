"""Online store: values read back equal the offline build, on SQLite and on real Redis."""

from __future__ import annotations

import math
import uuid
from datetime import date

import pandas as pd
import pytest
from features_fixture import write_store

from safetynet.features.build import build_features
from safetynet.features.online import RedisOnlineStore, SQLiteOnlineStore

T = date(2024, 6, 30)


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> pd.DataFrame:
    return build_features([date(2024, 3, 31), T], write_store(tmp_path_factory.mktemp("s")))


def offline_row(frame: pd.DataFrame, key: str) -> dict:
    """The offline row at its latest date, as plain values (dates ISO, missing None)."""
    row = frame[frame.household_key == key].sort_values("as_of_date").iloc[-1]
    out = {}
    for col, value in row.items():
        if isinstance(value, pd.Timestamp):
            value = value.strftime("%Y-%m-%d")
        elif value is pd.NaT or value is None or (isinstance(value, float) and math.isnan(value)):
            value = None
        elif hasattr(value, "item"):
            value = value.item()
        out[col] = value
    return out


def check_identical(store, frame: pd.DataFrame) -> None:
    assert store.write(frame) == frame.household_key.nunique()
    for key in frame.household_key.unique():
        online, offline = store.get(key), offline_row(frame, key)
        assert online.keys() == offline.keys()
        for col, value in offline.items():
            got = online[col]
            assert (got == value and type(got) is type(value)) or (
                isinstance(value, float) and got == value), (key, col, got, value)
    assert online["as_of_date"] == T.isoformat() and "district" in online
    assert store.get("no-such-household") is None
    many = store.get_many(["H2", "nope", "H1"])
    assert [m and m["household_key"] for m in many] == ["H2", None, "H1"]
    # Re-materializing with fewer households removes the others.
    assert store.write(frame[frame.household_key == "H1"]) == 1
    assert store.get("H2") is None and store.get("H1")["household_key"] == "H1"


def test_sqlite_online_equals_offline(frame, tmp_path):
    store = SQLiteOnlineStore(tmp_path / "online.sqlite")
    check_identical(store, frame)
    store.close()


def test_sqlite_write_from_parquet(frame, tmp_path):
    path = tmp_path / "f.parquet"
    frame.to_parquet(path)
    store = SQLiteOnlineStore(tmp_path / "online.sqlite")
    assert store.write(path) == 3
    assert store.get("H1") == offline_row(frame, "H1")


@pytest.fixture
def redis_store():
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        print(f"Redis unreachable at 127.0.0.1:6379: {exc}")
        pytest.skip(f"Redis unreachable at 127.0.0.1:6379: {exc}")
    store = RedisOnlineStore("redis://127.0.0.1:6379/0", prefix=f"test:{uuid.uuid4().hex}")
    yield store
    store.clear()
    assert store.count() == 0
    store.close()


@pytest.mark.redis
def test_redis_online_equals_offline(frame, redis_store):
    check_identical(redis_store, frame)


def test_materialize_command_sqlite(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from safetynet.cli import app
    from safetynet.config import get_settings

    settings = get_settings()
    write_store(settings.store_dir)
    result = CliRunner().invoke(app, ["features", "materialize", "--as-of", T.isoformat()])
    assert result.exit_code == 0, result.output
    assert "materialized 3 households" in result.output
    store = SQLiteOnlineStore(settings.online_sqlite_path)
    offline = build_features([T], settings.store_dir)
    assert store.get("H1") == offline_row(offline, "H1")
