"""The real server: `safetynet serve` in a subprocess on a free loopback port.

Checks readiness, a real HTTP client round trip in both languages, the Prometheus metrics
and, with schemathesis, that nothing the OpenAPI schema allows (or nearly allows) makes
the server answer 5xx.
"""

from __future__ import annotations

import httpx
import pytest
from serving_fixtures import running_server, serving_world  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(serving_world, tmp_path_factory):  # noqa: F811
    with running_server(serving_world.home, tmp_path_factory.mktemp("server")) as running:
        yield running


def test_http_client_gets_scores_with_reasons(server, serving_world):  # noqa: F811
    base, token, _ = server
    hid = list(serving_world.rows)[:2]
    headers = {"Authorization": f"Bearer {token}"}
    for lang in ("en", "zh"):
        r = httpx.post(f"{base}/score", json={"household_ids": hid},
                       headers={**headers, "Accept-Language": lang}, timeout=30)
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        assert [x["household_id"] for x in res] == hid
        assert any(x["reasons"] for x in res)
    for path in ("/healthz", "/livez", "/readyz"):
        assert httpx.get(f"{base}{path}", timeout=5).status_code == 200


def test_metrics_count_requests_and_latency(server):
    base, token, _ = server
    for _ in range(3):
        httpx.post(f"{base}/score", json={"household_ids": ["hh00000"]},
                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
    text = httpx.get(f"{base}/metrics", timeout=10).text
    counts = [line for line in text.splitlines()
              if line.startswith("bentoml_service_request_total") and 'endpoint="/score"' in line]
    assert counts and sum(float(line.rsplit(" ", 1)[1]) for line in counts) >= 3
    assert any(line.startswith("bentoml_service_request_duration_seconds_bucket")
               and 'endpoint="/score"' in line for line in text.splitlines())


def test_openapi_schema_documents_the_endpoints(server):
    base, _, _ = server
    spec = httpx.get(f"{base}/docs.json", timeout=10).json()
    for path in ("/score", "/explain", "/reload"):
        assert "post" in spec["paths"][path]
    schemas = spec["components"]["schemas"]
    assert any("household_ids" in s.get("properties", {}) for s in schemas.values())
    assert any("reasons" in s.get("properties", {}) for s in schemas.values())


def test_schemathesis_finds_no_server_errors(server):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    base, token, _ = server
    schema = schemathesis.openapi.from_url(f"{base}/docs.json")
    headers = {"Authorization": f"Bearer {token}"}
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if op.path in ("/score", "/explain", "/reload")]
    assert len(ops) == 3
    statuses: list[int] = []
    for op in ops:
        @settings(max_examples=50, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            response = case.call(base_url=base, headers=headers, timeout=30)
            statuses.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

        run()
    assert statuses and max(statuses) < 500, sorted(set(statuses))
