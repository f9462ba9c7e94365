"""Caseworker page access rules and forms, in-process with Starlette's TestClient.

The backend is made of the real parts the service uses (key cache, audit log, scorer,
SQLite online store, model loaded from the MLflow registry) over a real home with two
monitoring runs; nothing is stubbed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from caseworker_support import build_caseworker_world
from starlette.testclient import TestClient

from safetynet.config import Settings, get_settings, load_policy


@dataclass
class LocalBackend:
    settings: Settings
    keys: Any
    audit: Any
    scorer: Any
    source: Any
    models: Any


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("cw_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETYNET_HOME", str(home))
        mp.setenv("SAFETYNET_SERVE_MODEL_POLL_SECONDS", "0")
        w = build_caseworker_world(home, registry=False)
    get_settings.cache_clear()
    return w


@pytest.fixture(scope="module")
def backend(world):
    from safetynet.db.engine import get_engine
    from safetynet.features.online import open_online_store
    from safetynet.serving.audit import AuditLog
    from safetynet.serving.keys import KeyCache
    from safetynet.serving.scoring import Scorer

    s = world.settings
    engine = get_engine(s)
    b = LocalBackend(s, KeyCache(engine, ttl=0), AuditLog(engine), Scorer(load_policy()),
                     open_online_store(s), SimpleNamespace(current=world.bundle))
    yield b
    b.audit.close()


@pytest.fixture()
def client(backend):
    from safetynet.serving.caseworker import create_app

    with TestClient(create_app(lambda: backend), base_url="https://testserver") as c:
        yield c


@pytest.fixture()
def engine(world):
    from safetynet.db.engine import get_engine

    return get_engine(world.settings)


def login(client: TestClient, world, who: str = "wuchang"):  # type: ignore[no-untyped-def]
    r = client.post("/login", data={"api_key": world.keys[who][1]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r


def worklist_keys(engine, district: str) -> list[str]:
    from safetynet.monitoring.worklists import load_worklist

    return load_worklist(engine, district=district)["household_key"].tolist()


def district_households(world, district: str) -> list[str]:
    return [k for k, r in world.serving.rows.items() if r["district"] == district]


def form_fields(html: str) -> dict[str, str]:
    return {name: value for name, value in re.findall(
        r'<input type="hidden" name="(csrf|submission_id)" value="([^"]*)"', html)}


def audit_rows(engine, endpoint: str) -> list[dict]:
    from safetynet.serving.audit import read_audit

    return [r for r in read_audit(engine) if r["endpoint"] == endpoint]


def outcome_rows(engine, key: str) -> list[dict]:
    from safetynet.db.tables import visit_outcomes

    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(visit_outcomes).where(
            visit_outcomes.c.household_key == key)).mappings()]


def test_not_logged_in_redirects_to_login(client, world):
    for path in ("/", f"/household/{district_households(world, 'wuchang')[0]}"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("/login")
    r = client.post(f"/household/{district_households(world, 'wuchang')[0]}/outcome",
                    data={"outcome": "moved"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("/login")
    assert client.get("/login").status_code == 200


def test_login_rejects_unknown_and_platform_keys(client, world):
    r = client.post("/login", data={"api_key": "sn_" + "x" * 43}, follow_redirects=False)
    assert r.status_code == 401 and "Unknown or revoked API key" in r.text
    r = client.post("/login", data={"api_key": world.keys["platform"][1]},
                    follow_redirects=False)
    assert r.status_code == 403 and "caseworker keys only" in r.text
    assert "sn_cw_session" not in r.headers.get("set-cookie", "")


def test_session_cookie_is_signed_strict_and_never_holds_the_key(client, world):
    r = login(client, world)
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=strict" in cookie.replace(
        "SameSite=Strict", "SameSite=strict")
    value = client.cookies.get("sn_cw_session")
    assert value and world.keys["wuchang"][1] not in value
    assert client.get("/", follow_redirects=False).status_code == 200
    # a cookie whose payload was changed (another key id) fails the signature check
    _, rest = value.split(".", 1)
    client.cookies.clear()
    client.cookies.set("sn_cw_session", "eyJraWQiOjQsInNpZCI6IngifQ." + rest)
    assert client.get("/", follow_redirects=False).status_code == 303


def test_worklist_shows_only_own_districts_in_plain_language(client, world, engine):
    login(client, world)
    r = client.get("/")
    assert r.status_code == 200
    own, other = worklist_keys(engine, "wuchang"), worklist_keys(engine, "hongshan")
    assert own and other
    for key in own:
        assert f'data-household="{key}"' in r.text
        assert world.names[key] in r.text
    for key in other:
        assert f'data-household="{key}"' not in r.text
        assert world.names[key] not in r.text
    assert "(+0." not in r.text  # reasons as sentences, not "feature (+0.42)"
    assert "tier-" in r.text and "badge audit" in r.text  # tiers and the audit slice marker
    assert r.headers["cache-control"] == "no-store"
    logged = audit_rows(engine, "/caseworker/worklist")[0]
    assert logged["key_id"] == world.keys["wuchang"][0] and set(logged["households"]) == set(own)


def test_other_districts_household_is_403_and_audited(client, world, engine):
    login(client, world)
    key = district_households(world, "hongshan")[0]
    r = client.get(f"/household/{key}")
    assert r.status_code == 403
    assert "outside your districts" in r.text and "Traceback" not in r.text
    assert world.names[key] not in r.text
    row = audit_rows(engine, "/caseworker/household")[0]
    assert row["status"] == 403 and row["households"] == [key]
    assert client.get("/household/no-such-household").status_code == 404


def test_household_page_explains_and_is_audited(client, world, engine):
    login(client, world)
    key = worklist_keys(engine, "wuchang")[0]
    r = client.get(f"/household/{key}")
    assert r.status_code == 200
    assert 'class="waterfall"' in r.text and 'class="history"' in r.text
    assert "Base value (log-odds)" in r.text and "This household (log-odds)" in r.text
    assert world.names[key] in r.text
    assert r.text.count("<circle") == 2  # two monitoring runs in the score history
    row = audit_rows(engine, "/caseworker/household")[0]
    assert row["status"] == 200 and row["households"] == [key]
    assert row["key_id"] == world.keys["wuchang"][0]


def test_outcome_needs_the_sessions_csrf_token(client, world, engine):
    login(client, world)
    key = district_households(world, "wuchang")[1]
    fields = form_fields(client.get(f"/household/{key}").text)
    data = {"outcome": "moved", "visit_date": "2026-11-02",
            "submission_id": fields["submission_id"]}
    assert client.post(f"/household/{key}/outcome", data=data).status_code == 403
    r = client.post(f"/household/{key}/outcome", data={**data, "csrf": "0" * 64})
    assert r.status_code == 403 and "form expired" in r.text
    assert outcome_rows(engine, key) == []


def test_outcome_submit_is_idempotent_and_linked(client, world, engine):
    login(client, world)
    key = worklist_keys(engine, "wuchang")[1]
    fields = form_fields(client.get(f"/household/{key}").text)
    data = {**fields, "outcome": "hardship_confirmed", "hardship_type": "dibao",
            "visit_date": "2026-11-03", "programmes_referred": ["dibao", "medical_assistance"],
            "disagrees": "1", "disagreement_code": "score_too_low", "disagreement_text": "x"}
    first = client.post(f"/household/{key}/outcome", data=data, follow_redirects=False)
    second = client.post(f"/household/{key}/outcome", data=data, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert "saved=new" in first.headers["location"] and "saved=dup" in second.headers["location"]
    rows = outcome_rows(engine, key)
    assert len(rows) == 1
    row = rows[0]
    assert row["caseworker_key_id"] == str(world.keys["wuchang"][0])
    assert row["programmes_referred"] == "dibao;medical_assistance"
    assert row["disagrees_with_score"] and row["disagreement_code"] == "score_too_low"
    assert row["worklist_item_id"] == f"2026-10-31/{key}"
    page = client.get(first.headers["location"])
    assert "Outcome saved." in page.text and 'id="recorded"' in page.text
    # a fresh render gives a fresh submission id: a second real visit is a new row
    assert form_fields(page.text)["submission_id"] != fields["submission_id"]


def test_invalid_outcome_shows_the_error_and_stores_nothing(client, world, engine):
    login(client, world)
    key = district_households(world, "wuchang")[2]
    fields = form_fields(client.get(f"/household/{key}").text)
    r = client.post(f"/household/{key}/outcome",
                    data={**fields, "outcome": "hardship_confirmed", "visit_date": "2026-11-03"})
    assert r.status_code == 400 and "hardship_type is required" in r.text
    assert form_fields(r.text)["submission_id"] == fields["submission_id"]  # retry = same id
    assert outcome_rows(engine, key) == []


def test_caseworker_cannot_record_for_another_district(client, world, engine):
    login(client, world)
    own = district_households(world, "wuchang")[3]
    fields = form_fields(client.get(f"/household/{own}").text)
    key = district_households(world, "hongshan")[3]
    r = client.post(f"/household/{key}/outcome",
                    data={**fields, "outcome": "moved", "visit_date": "2026-11-03"})
    assert r.status_code == 403 and outcome_rows(engine, key) == []


def test_language_from_query_cookie_and_header(client, world):
    login(client, world)
    r = client.get("/?lang=zh")
    assert "走访清单" in r.text and 'lang="zh-CN"' in r.text
    assert "走访清单" in client.get("/").text  # remembered in a cookie
    assert "Worklist" in client.get("/?lang=en").text
    client.cookies.delete("sn_cw_lang")
    assert "走访清单" in client.get("/", headers={"accept-language": "zh-CN,zh;q=0.9"}).text


def test_logout_needs_csrf_and_revocation_ends_the_session(client, world, engine):
    from safetynet.serving.keys import create_key, revoke_key

    login(client, world)
    html = client.get("/").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    assert client.post("/logout", data={"csrf": "bad"}).status_code == 403
    r = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and client.get("/", follow_redirects=False).status_code == 303
    key_id, token = create_key(engine, "caseworker", ["wuchang"])
    client.post("/login", data={"api_key": token})
    assert client.get("/", follow_redirects=False).status_code == 200
    revoke_key(engine, key_id)
    assert client.get("/", follow_redirects=False).status_code == 303
