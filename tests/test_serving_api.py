"""The scoring API in-process (real BentoML app, real MLflow registry, real online store)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from serving_fixtures import (  # noqa: F401 - fixtures
    in_world,
    register,
    serving_world,
    train_booster,
)
from starlette.testclient import TestClient

from safetynet.config import get_settings
from safetynet.db.engine import get_engine
from safetynet.serving.audit import read_audit
from safetynet.serving.keys import create_key, revoke_key


@pytest.fixture(scope="module")
def api(serving_world):  # noqa: F811
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETYNET_HOME", str(serving_world.home))
        mp.setenv("SAFETYNET_SERVE_MODEL_POLL_SECONDS", "0")
        mp.setenv("SAFETYNET_SERVE_BATCH_LIMIT", "300")
        mp.setenv("SAFETYNET_SERVE_KEY_CACHE_SECONDS", "0")
        get_settings.cache_clear()
        engine = get_engine()
        keys = {
            "platform": create_key(engine, "platform", name="platform test"),
            "admin": create_key(engine, "admin"),
            "wuchang": create_key(engine, "caseworker", ["wuchang"]),
        }
        from safetynet.serving.service import SafetyNet

        with TestClient(SafetyNet.to_asgi(), raise_server_exceptions=False) as client:
            yield client, keys, engine
    get_settings.cache_clear()


def auth(keys, who: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[who][1]}", **extra}


def test_score_households_returns_every_field(api, serving_world):  # noqa: F811
    client, keys, _ = api
    ids = list(serving_world.rows)[:3]
    r = client.post("/score", json={"household_ids": ids}, headers=auth(keys, "platform"))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["household_id"] for x in results] == ids
    for x in results:
        assert 0.0 <= x["risk_score"] <= 1.0
        assert x["risk_tier"] in {"red", "orange", "yellow", "green"}
        assert x["model"] == {"name": "safetynet-hardship", "version": serving_world.version,
                              "alias": "champion"}
        assert x["features_as_of"] == "2026-10-31"
        assert len(x["reasons"]) <= 5
        contribs = [c["contribution"] for c in x["reasons"]]
        assert contribs == sorted(contribs, reverse=True) and all(c > 0 for c in contribs)
        assert all(r["direction"] == "raises" and r["text"] for r in x["reasons"])


def test_scores_match_the_booster_and_tiers_follow_policy(api, serving_world):  # noqa: F811
    client, keys, _ = api
    ids = list(serving_world.rows)[:50]
    res = client.post("/score", json={"household_ids": ids},
                      headers=auth(keys, "platform")).json()["results"]
    X = np.array([[serving_world.rows[h][f] if serving_world.rows[h][f] is not None else np.nan
                   for f in serving_world.features] for h in ids])
    raw = serving_world.booster.predict(X, raw_score=True)
    expected = 1 / (1 + np.exp(-(1.1 * raw - 0.2)))  # the fixture's Platt calibrator
    got = np.array([x["risk_score"] for x in res])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    for x in res:
        p = x["risk_score"]
        tier = "red" if p >= .30 else "orange" if p >= .15 else "yellow" if p >= .07 else "green"
        assert x["risk_tier"] == tier


def test_reasons_in_chinese_and_english(api, serving_world):  # noqa: F811
    client, keys, _ = api
    body = {"household_ids": list(serving_world.rows)[:20]}
    en = client.post("/score", json=body, headers=auth(keys, "platform")).json()["results"]
    zh = client.post("/score", json=body, headers=auth(
        keys, "platform", **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})).json()["results"]
    en_text = [r["text"] for x in en for r in x["reasons"]]
    zh_text = [r["text"] for x in zh for r in x["reasons"]]
    assert en_text and len(en_text) == len(zh_text)
    assert all(t.isascii() for t in en_text)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in zh_text)


def test_records_score_like_households(api, serving_world):  # noqa: F811
    client, keys, _ = api
    hid = next(iter(serving_world.rows))
    record = {f: serving_world.rows[hid][f] for f in serving_world.features}
    by_id = client.post("/score", json={"household_ids": [hid]},
                        headers=auth(keys, "platform")).json()["results"][0]
    by_rec = client.post("/score", json={"records": [record]},
                         headers=auth(keys, "platform")).json()["results"][0]
    assert by_rec["household_id"] == "record:0"
    assert by_rec["risk_score"] == pytest.approx(by_id["risk_score"], abs=1e-12)
    assert by_rec["reasons"] == by_id["reasons"]


def test_programmes_carry_rule_and_matched_facts(api, serving_world):  # noqa: F811
    client, keys, _ = api
    res = client.post("/score", json={"household_ids": list(serving_world.rows)[:100]},
                      headers=auth(keys, "platform")).json()["results"]
    progs = [p for x in res for p in x["programs"]]
    assert progs, "random rows should match some programme"
    for p in progs:
        assert p["rule"] and p["facts"]
        for f in p["facts"]:
            op = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
                  "==": float.__eq__, "!=": float.__ne__}[f["op"]]
            assert op(float(f["value"]), float(f["threshold"]))


def test_explain_contributions_reproduce_raw_score(api, serving_world):  # noqa: F811
    client, keys, _ = api
    hid = list(serving_world.rows)[7]
    r = client.post("/explain", json={"household_id": hid}, headers=auth(keys, "platform"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["contributions"]) == len(serving_world.features)
    total = body["base_value"] + sum(c["contribution"] for c in body["contributions"])
    assert total == pytest.approx(body["raw_score"], abs=1e-9)
    X = np.array([[serving_world.rows[hid][f] if serving_world.rows[hid][f] is not None
                   else np.nan for f in serving_world.features]])
    assert body["raw_score"] == pytest.approx(
        float(serving_world.booster.predict(X, raw_score=True)[0]), abs=1e-9)
    mags = [abs(c["contribution"]) for c in body["contributions"]]
    assert mags == sorted(mags, reverse=True)


# --- access ---------------------------------------------------------------------------------
def _district_ids(world, district: str) -> list[str]:
    return [h for h, r in world.rows.items() if r["district"] == district]


def test_no_key_or_bad_key_is_401(api, serving_world):  # noqa: F811
    client = api[0]
    body = {"household_ids": list(serving_world.rows)[:1]}
    for headers in ({}, {"Authorization": "Bearer sn_wrong"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer"}):
        r = client.post("/score", json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert "error" in r.json() and "Traceback" not in r.text
    r = client.post("/explain", json={"household_id": "x"})
    assert r.status_code == 401


def test_caseworker_sees_only_their_districts(api, serving_world):  # noqa: F811
    client, keys, _ = api
    own = _district_ids(serving_world, "wuchang")[:2]
    other = _district_ids(serving_world, "hongshan")[:1]
    ok = client.post("/score", json={"household_ids": own}, headers=auth(keys, "wuchang"))
    assert ok.status_code == 200
    for body in ({"household_ids": other}, {"household_ids": own + other}):
        r = client.post("/score", json=body, headers=auth(keys, "wuchang"))
        assert r.status_code == 403 and other[0] in r.json()["error"]
    r = client.post("/explain", json={"household_id": other[0]}, headers=auth(keys, "wuchang"))
    assert r.status_code == 403
    rec = {f: 1.0 for f in serving_world.features}
    r = client.post("/score", json={"records": [rec]}, headers=auth(keys, "wuchang"))
    assert r.status_code == 403


def test_revoked_key_is_refused(api, serving_world):  # noqa: F811
    client, _, engine = api
    key_id, token = create_key(engine, "platform")
    body = {"household_ids": list(serving_world.rows)[:1]}
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/score", json=body, headers=headers).status_code == 200
    assert revoke_key(engine, key_id)
    assert client.post("/score", json=body, headers=headers).status_code == 401


def test_reload_needs_admin_and_swaps_on_alias_change(api, serving_world):  # noqa: F811
    client, keys, _ = api
    assert client.post("/reload", json={}, headers=auth(keys, "platform")).status_code == 403
    r = client.post("/reload", json={}, headers=auth(keys, "admin"))
    assert r.status_code == 200 and r.json()["changed"] is False
    hid = list(serving_world.rows)[:1]
    before = client.post("/score", json={"household_ids": hid}, headers=auth(keys, "platform"))
    new_version = register(train_booster(serving_world.features, seed=5, rounds=25),
                           serving_world.settings)
    try:
        r = client.post("/reload", json={}, headers=auth(keys, "admin"))
        assert r.json() == {"old_version": serving_world.version, "new_version": new_version,
                            "changed": True}
        after = client.post("/score", json={"household_ids": hid}, headers=auth(keys, "platform"))
        assert after.json()["results"][0]["model"]["version"] == new_version
        assert after.json()["results"][0]["risk_score"] != before.json()["results"][0]["risk_score"]
    finally:  # put the original champion back for the other tests
        from mlflow import MlflowClient

        MlflowClient(serving_world.settings.tracking_uri).set_registered_model_alias(
            serving_world.settings.model_name, "champion", serving_world.version)
        client.post("/reload", json={}, headers=auth(keys, "admin"))


# --- bad input ------------------------------------------------------------------------------
BAD = [
    ("malformed json", b'{"household_ids": [', 400),
    ("not an object", b"[1, 2]", 400),
    ("empty object", b"{}", 400),
    ("both modes", b'{"household_ids": ["a"], "records": [{}]}', 400),
    ("extra field", b'{"household_ids": ["a"], "limit": 3}', 400),
    ("empty list", b'{"household_ids": []}', 400),
    ("empty records", b'{"records": []}', 400),
    ("wrong type", b'{"household_ids": "hh00001"}', 400),
    ("wrong item type", b'{"household_ids": [1]}', 400),
    ("NaN", b'{"records": [{"x": NaN}]}', 400),
    ("infinity", b'{"records": [{"x": Infinity}]}', 400),
    ("huge number", b'{"records": [{"x": 1e999}]}', 400),
    ("string value", b'{"records": [{"x": "high"}]}', 400),
    ("unknown household", b'{"household_ids": ["no_such_household"]}', 404),
    ("odd id", b'{"household_ids": ["../etc/passwd"]}', 400),
]


@pytest.mark.parametrize(("case", "payload", "status"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_a_clear_4xx(api, case, payload, status):
    client, keys, _ = api
    r = client.post("/score", content=payload,
                    headers=auth(keys, "platform", **{"Content-Type": "application/json"}))
    assert r.status_code == status, (case, r.text)
    body = r.json()
    assert "error" in body and "Traceback" not in r.text


def test_missing_and_extra_features_are_named(api, serving_world):  # noqa: F811
    client, keys, _ = api
    rec = {f: 1.0 for f in serving_world.features[1:]} | {"shoe_size": 42.0}
    r = client.post("/score", json={"records": [rec]}, headers=auth(keys, "platform"))
    assert r.status_code == 400
    msg = r.json()["error"]
    assert serving_world.features[0] in msg and "shoe_size" in msg


def test_null_feature_means_missing(api, serving_world):  # noqa: F811
    client, keys, _ = api
    rec = {f: None for f in serving_world.features}
    r = client.post("/score", json={"records": [rec]}, headers=auth(keys, "platform"))
    assert r.status_code == 200 and math.isfinite(r.json()["results"][0]["risk_score"])


def test_oversized_batch_is_413(api):
    client, keys, _ = api
    r = client.post("/score", json={"household_ids": ["hh00001"] * 301},
                    headers=auth(keys, "platform"))
    assert r.status_code == 413 and "300" in r.json()["error"]


# --- audit ----------------------------------------------------------------------------------
def test_every_score_and_explain_is_audited(api, serving_world):  # noqa: F811
    client, _, engine = api
    key_id, token = create_key(engine, "caseworker", ["wuchang"], name="audit test")
    headers = {"Authorization": f"Bearer {token}"}
    own = _district_ids(serving_world, "wuchang")[:3]
    other = _district_ids(serving_world, "hongshan")[:1]
    client.post("/score", json={"household_ids": own}, headers=headers)
    client.post("/explain", json={"household_id": own[0]}, headers=headers)
    client.post("/score", json={"household_ids": other}, headers=headers)
    rows = [r for r in read_audit(engine) if r["key_id"] == key_id][::-1]
    assert [(r["endpoint"], r["status"]) for r in rows] == [
        ("/score", 200), ("/explain", 200), ("/score", 403)]
    assert rows[0]["households"] == own and rows[0]["n_households"] == 3
    assert rows[1]["households"] == own[:1]
    assert all(r["role"] == "caseworker" and r["model_version"] == serving_world.version
               and r["model_name"] == "safetynet-hardship" for r in rows)


def test_alias_watcher_swaps_model_without_a_request(in_world):  # noqa: F811
    import time

    from mlflow import MlflowClient

    from safetynet.serving.model import ModelHolder

    holder = ModelHolder(get_settings())
    old = holder.current
    new_version = register(train_booster(in_world.features, seed=9, rounds=10),
                           in_world.settings)
    try:
        holder.watch(0.2)
        deadline = time.monotonic() + 30
        while holder.current.version != new_version and time.monotonic() < deadline:
            time.sleep(0.1)
        assert holder.current.version == new_version
        assert old.version == in_world.version  # a request holding `old` keeps a whole model
        assert old.booster.num_trees() == 40
    finally:
        holder.stop()
        MlflowClient(in_world.settings.tracking_uri).set_registered_model_alias(
            in_world.settings.model_name, "champion", in_world.version)
