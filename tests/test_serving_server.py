"""The real server: `safetynet serve` in a subprocess on a free loopback port.

Checks readiness, a real HTTP client round trip in both languages, the Prometheus metrics
and, with schemathesis, that nothing the OpenAPI schema allows (or nearly allows) makes
the server answer 5xx.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_fixtures import serving_world  # noqa: F401 - fixture

from safetynet.config import get_settings
from safetynet.db.engine import get_engine
from safetynet.serving.keys import create_key

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(serving_world, tmp_path_factory):  # noqa: F811
    port = free_port()
    env = {**os.environ, "SAFETYNET_HOME": str(serving_world.home),
           "SAFETYNET_SERVE_MODEL_POLL_SECONDS": "0", "BENTOML_HOME": str(
               tmp_path_factory.mktemp("bentoml"))}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETYNET_HOME", str(serving_world.home))
        get_settings.cache_clear()
        _, token = create_key(get_engine(), "platform")
    get_settings.cache_clear()
    log = Path(tmp_path_factory.mktemp("serverlog")) / "server.log"
    exe = Path(sys.executable).with_name("safetynet")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready in time: {log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, token, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


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
