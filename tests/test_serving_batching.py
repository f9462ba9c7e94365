"""Coalescing of concurrent small /score requests, the one-transaction audit commit and the
fast response path: same answers as the one-at-a-time path."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from serving_fixtures import household_rows, model_features, train_booster

from safetynet.config import Settings, load_policy
from safetynet.db.engine import make_engine
from safetynet.db.migrate import migrate
from safetynet.model import Bundle, Calibrator
from safetynet.serving.audit import AuditLog, audit_entry, read_audit
from safetynet.serving.batching import LoopGroupCommit, ScoreBatcher, merge
from safetynet.serving.features import rows_to_matrix
from safetynet.serving.schemas import ScoreResponse
from safetynet.serving.scoring import Batch, Scorer
from safetynet.serving.service import _dump


@pytest.fixture(scope="module")
def world():
    features = model_features()
    booster = train_booster(features, rounds=20)
    bundle = Bundle(booster, features, Calibrator(), "m", "1", "champion")
    rows = household_rows(features, 12, seed=3)
    return bundle, Scorer(load_policy()), rows


def _batch(rows: dict, keys: list[str], features: list[str]) -> Batch:
    found = [rows[k] for k in keys]
    return Batch(keys, rows_to_matrix(found, features),
                 [str(r.get("as_of_date"))[:10] for r in found], {}, found)


def test_coalesced_requests_get_their_own_answers(world):
    bundle, scorer, rows = world
    keys = list(rows)
    requests = [keys[0:1], keys[1:4], keys[4:5], keys[5:9]]
    alone = [scorer.score(bundle, _batch(rows, ks, bundle.features), "en") for ks in requests]
    zh = scorer.score(bundle, _batch(rows, keys[9:10], bundle.features), "zh")
    batcher = ScoreBatcher(scorer)

    async def all_at_once():
        jobs = [batcher.score(bundle, _batch(rows, ks, bundle.features), "en") for ks in requests]
        jobs.append(batcher.score(bundle, _batch(rows, keys[9:10], bundle.features), "zh"))
        return await asyncio.gather(*jobs)

    got = asyncio.run(all_at_once())
    assert got[:4] == alone and got[4] == zh
    assert batcher.requests == 5 and batcher.calls == 2  # one call per language


def test_merge_mixes_records_and_households(world):
    bundle, _, rows = world
    keys = list(rows)
    a = _batch(rows, keys[:2], bundle.features)
    a.extra = {"district_code": np.array([1.0, 2.0])}
    b = Batch(["record:0"], a.X[:1].copy(), [None], {}, None)
    m = merge([a, b], bundle.features)
    assert m.ids == [*keys[:2], "record:0"] and m.X.shape == (3, len(bundle.features))
    assert np.isnan(m.extra["district_code"][2]) and len(m.rows) == 3


def test_group_commit_on_the_loop_writes_every_row_and_reports_failure(tmp_path):
    url = f"sqlite:///{tmp_path / 'svc.db'}"
    migrate(Settings(home=tmp_path, database_url=url))
    engine = make_engine(url)
    log = AuditLog(engine)
    commit = LoopGroupCommit(log.write_many_inline)

    async def many():
        await asyncio.gather(*(commit.write(audit_entry("/score", [f"hh{i}"], 1, "platform",
                                                        "m", "2")) for i in range(20)))

    asyncio.run(many())
    rows = read_audit(engine)
    assert sorted(r["households"][0] for r in rows) == sorted(f"hh{i}" for i in range(20))
    log.write(audit_entry("/explain", ["core"], 1, "admin", "m", "2"))  # SQLAlchemy Core path
    fast, core = read_audit(engine, limit=30)[1], read_audit(engine, limit=1)[0]
    assert type(fast["at"]) is type(core["at"]) and fast["at"] <= core["at"]
    log.close()

    broken = LoopGroupCommit(lambda entries: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        asyncio.run(broken.write(audit_entry("/score", ["x"], 1, "platform", "m", "2")))


def test_fast_body_is_what_the_validated_path_gives(world):
    bundle, scorer, rows = world
    results = scorer.score(bundle, _batch(rows, list(rows), bundle.features), "zh")
    fast = _dump(ScoreResponse, {"results": results}, validate=False)
    assert ScoreResponse.model_validate_json(fast).model_dump(mode="json") == \
        ScoreResponse.model_validate({"results": results}).model_dump(mode="json")
