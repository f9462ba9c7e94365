"""End to end in a real browser: the real service (`safetynet serve`) on a loopback port over a
prepared home, driven by Debian's Chromium through Playwright.

Log in, open the worklist, open a household, submit an outcome and find it in the database,
switch to Chinese, and fail to open another district's household (403).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from caseworker_support import build_caseworker_world

from safetynet.config import get_settings

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path("/tmp/caseworker_household.png")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service was not ready in {timeout:.0f} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        print(f"SKIP: {CHROMIUM} is missing (Debian package `chromium`)")
        pytest.skip(f"{CHROMIUM} is missing")
    home = tmp_path_factory.mktemp("cw_browser_home")
    env = {**os.environ, "SAFETYNET_HOME": str(home), "SAFETYNET_SERVE_MODEL_POLL_SECONDS": "0"}
    for var in ("SAFETYNET_DATABASE_URL", "SAFETYNET_MLFLOW_TRACKING_URI",
                "SAFETYNET_ONLINE_STORE", "SAFETYNET_CONFIG"):
        env.pop(var, None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETYNET_HOME", str(home))
        world = build_caseworker_world(home, registry=True)
    get_settings.cache_clear()
    port = _free_port()
    log = home / "serve.log"
    exe = shutil.which("safetynet", path=str(Path(sys.executable).parent)) or "safetynet"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz", proc, log)
        yield world, f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the service's own process group only
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_caseworker_flow_in_chromium(served, browser):
    from safetynet.db.engine import make_engine
    from safetynet.db.tables import visit_outcomes
    from safetynet.monitoring.worklists import load_worklist

    world, url = served
    engine = make_engine(world.settings.db_url)
    own = load_worklist(engine, district="wuchang")["household_key"].tolist()
    other = next(k for k, r in world.serving.rows.items() if r["district"] == "hongshan")
    page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US")

    # not logged in: the worklist sends us to the login form
    page.goto(f"{url}/caseworker/")
    assert page.url.endswith("/caseworker/login")
    page.fill("#api_key", world.keys["wuchang"][1])
    page.click("button[type=submit]")
    page.wait_for_selector("table.worklist")
    assert page.url.rstrip("/").endswith("/caseworker")
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() == len(own)
    shown = [rows.nth(i).get_attribute("data-household") for i in range(rows.count())]
    assert shown == own  # the caseworker's district only, in priority order
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["sn_cw_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert world.keys["wuchang"][1] not in session["value"]

    # open the first household of the list
    key = own[0]
    rows.nth(0).locator("a.button").click()
    page.wait_for_selector("svg.waterfall")
    assert page.url.endswith(f"/caseworker/household/{key}")
    assert world.names[key] in page.inner_text("body")
    assert page.locator("svg.history circle").count() == 2
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # record a visit outcome; the hardship type appears once the outcome is chosen (JS)
    assert not page.is_visible("select[name=hardship_type]")
    page.select_option("#outcome-select", "hardship_confirmed")
    page.select_option("select[name=hardship_type]", "dibao")
    page.check("input[name=programmes_referred][value=dibao]")
    page.fill("input[name=visit_date]", "2026-11-05")
    page.click("#submit-outcome")
    page.wait_for_selector("#saved")
    assert "Outcome saved." in page.inner_text("#saved")
    with engine.connect() as conn:
        stored = conn.execute(sa.select(visit_outcomes).where(
            visit_outcomes.c.household_key == key)).mappings().all()
    assert len(stored) == 1
    assert stored[0]["outcome"] == "hardship_confirmed" and stored[0]["hardship_type"] == "dibao"
    assert stored[0]["caseworker_key_id"] == str(world.keys["wuchang"][0])
    assert stored[0]["programmes_referred"] == "dibao"
    assert str(stored[0]["visit_date"]) == "2026-11-05"

    # switch to Chinese
    page.click("#lang-switch")
    page.wait_for_load_state()
    assert "登记走访结果" in page.inner_text("body")
    page.goto(f"{url}/caseworker/")
    assert "走访清单" in page.inner_text("h1")

    # another district's household: a 403 page, not a stack trace
    response = page.goto(f"{url}/caseworker/household/{other}")
    assert response is not None and response.status == 403
    text = page.inner_text("body")
    assert "不在您的辖区" in text and "Traceback" not in text
    assert world.names[other] not in text
    page.close()
