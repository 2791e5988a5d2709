"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

Open the dashboard, log in, watch a simulated delivery appear live within a second, open a
device, change the range, decode a raw delivery, open the offline API docs; no console errors
and no request leaves loopback. The screenshots in docs/images/ are taken here
(docs/dashboard.md shows them).

Playwright's own browser download cannot work on this machine: the test points it at the
system ``chromium`` (``apt-get install chromium``; .ci/run installs it).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from webhook_support import (
    PLUG,
    READ_TOKEN,
    SECRET,
    ServerProcess,
    payload_body,
    signed_headers,
)

from lora_emotion.aggregator import RelayConfig
from lora_emotion.fleet import Fleet, FleetConfig
from lora_emotion.labels import FER2013
from lora_emotion.messages import Mode
from lora_emotion.simulator import StreamConfig

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"
# Simulating relays costs about 1 s of CPU per device-hour: two hours make a readable page.
HISTORY_S = 2 * 3600
DEVICES = 6
# Listed read-only on the fleet page (the alerts module evaluates them; here they only show).
ALERT_RULES = """
[[alerts.rules]]
name = "angry-often"
kind = "sustained"
label = "angry"
k = 3
n = 5
severity = "warning"
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI=true (apt-get install chromium)")
        pytest.skip("no system chromium (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server on a fresh SQLite file with 2 h of history from six simulated relays."""
    workdir = tmp_path_factory.mktemp("browser")
    database = workdir / "dashboard.sqlite3"
    config = workdir / "webhook.toml"
    config.write_text(ALERT_RULES, encoding="utf-8")
    running = ServerProcess(f"sqlite:///{database}", env={"LORA_EMOTION_CONFIG": str(config)})
    running.start()
    fleet = Fleet(
        FleetConfig(
            devices=DEVICES,
            seed=7,
            stream=StreamConfig(label_set=FER2013),
            relay=RelayConfig(label_set=FER2013, mode=Mode.SUMMARY, window_s=60),
            plug_uuid=PLUG,
            secret=SECRET,
            epoch_s=time.time() - HISTORY_S,
        )
    )
    try:
        with httpx.Client(base_url=running.url, timeout=10) as client:
            for delivery in fleet.deliveries(until_ms=HISTORY_S * 1000 - 60_000):
                response = client.post(
                    "/uplinks/kpn", content=delivery.body, headers=delivery.headers
                )
                assert response.status_code == 200, response.text
        yield running
    finally:
        running.kill()


def test_dashboard_in_a_real_browser(server: ServerProcess) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = _chromium()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    outside: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def offline(route: object) -> None:
            url = route.request.url  # type: ignore[attr-defined]
            host = urlsplit(url).hostname
            if url.startswith(("data:", "blob:")) or host == "127.0.0.1":
                route.continue_()  # type: ignore[attr-defined]
            else:
                outside.append(url)
                route.abort()  # type: ignore[attr-defined]

        page.route("**/*", offline)
        page.on(
            "console",
            lambda m: (
                problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        # Log in.
        page.goto(server.url + "/")
        assert "/login" in page.url
        page.screenshot(path=str(SCREENSHOTS / "dashboard-login.png"))
        page.fill("#token", READ_TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-ready=true]", timeout=15_000)
        page.wait_for_selector("#live.on", timeout=5_000)
        rows = page.locator("#fleet tbody tr")
        assert rows.count() == DEVICES
        assert page.locator("#mix-chart canvas").count() >= 1
        page.wait_for_selector("#alerts-box:not([hidden])")
        rules = page.locator("#alert-rules").inner_text()
        assert "angry-often" in rules and "sustained" in rules and "label angry" in rules

        # A simulated delivery appears live within a second.
        dev_eui = page.locator("#fleet tbody tr a.device").first.inner_text()
        body = payload_body("0186", 16, base_time=time.time(), dev_eui=dev_eui)
        before = page.locator("#live-list li").count()
        sent = time.monotonic()
        response = httpx.post(
            server.url + "/uplinks/kpn", content=body, headers=signed_headers(body)
        )
        assert response.status_code == 200
        page.wait_for_function(
            "n => document.querySelectorAll('#live-list li').length > n", arg=before, timeout=1_000
        )
        elapsed = time.monotonic() - sent
        assert elapsed < 1.0
        newest = page.locator("#live-list li").first.inner_text()
        assert dev_eui in newest and "happy" in newest and "87 %" in newest
        first_row = page.locator(f"#fleet tbody tr[data-urn$='{dev_eui}']")
        assert "happy" in first_row.inner_text()
        page.wait_for_timeout(1_600)  # let the highlight fade for the picture
        page.screenshot(path=str(SCREENSHOTS / "dashboard-fleet.png"), full_page=True)

        # Open a device and change the range.
        page.click(f"#fleet tbody tr[data-urn$='{dev_eui}'] a.device")
        page.wait_for_selector("#device-view:not([hidden]) #timeline-chart canvas")
        page.wait_for_selector("#raw tbody tr")
        page.select_option("#device-range", "6h")
        page.wait_for_selector("body[data-ready=true]")
        assert page.locator("#summary-chart canvas").count() >= 1
        page.locator("#raw tbody tr").nth(1).click()
        page.wait_for_function(
            "() => document.querySelector('#decoded').textContent.includes('stored readings')"
        )
        decoded = page.locator("#decoded").inner_text()
        assert "emotion =" in decoded
        page.screenshot(path=str(SCREENSHOTS / "dashboard-device.png"))
        page.select_option("#device-range", "30d")
        page.wait_for_selector("body[data-ready=true]")

        # The demo's link logs a fresh browser in with one click, and the token leaves the
        # address bar.
        other = browser.new_context().new_page()
        other.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        other.goto(f"{server.url}/login#token={READ_TOKEN}")
        other.wait_for_selector("body[data-ready=true]", timeout=15_000)
        assert READ_TOKEN not in other.url and urlsplit(other.url).path == "/"
        other.context.close()

        # The API docs render from packaged assets with nothing but loopback reachable.
        page.goto(server.url + "/docs")
        page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
        page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
        browser.close()
    assert outside == []
    assert problems == []
