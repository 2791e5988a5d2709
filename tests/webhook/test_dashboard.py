"""The dashboard's server side on both stores: login, what its JSON says, the rollup job.

The live stream and the pages in a real browser are tested in test_dashboard_live.py and
test_dashboard_browser.py.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Deliver
from fastapi.testclient import TestClient
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.dashboard import queries
from lora_emotion.webhook.dashboard.rollup import fold
from lora_emotion.webhook.session import new_session, session_valid
from lora_emotion.webhook.storage import Store
from webhook_support import DEVICE, READ_TOKEN, payload_body

NOW = time.time()
# FER-2013 readings on port 16: index*101 + confidence (happy 0.87 = 0186, sad 0.50 = 01CB).
HAPPY_87 = "0186"
SAD_50 = f"{4 * 101 + 50:04X}"


def _csrf(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def _login(client: TestClient, token: str = READ_TOKEN) -> None:
    response = client.post(
        "/login",
        data={"csrf": _csrf(client), "token": token, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_nothing_is_readable_without_logging_in(client: TestClient) -> None:
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    for path in ("/dashboard/api/fleet", "/dashboard/api/mix", "/events", "/devices"):
        assert client.get(path).status_code == 401, path


def test_login_gives_a_session_that_opens_pages_and_the_read_api(client: TestClient) -> None:
    _login(client)
    page = client.get("/")
    assert page.status_code == 200 and "dashboard.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/dashboard/api/fleet").status_code == 200
    assert client.get("/devices").status_code == 200  # the read API accepts the cookie too


def test_a_wrong_token_or_a_forged_form_is_refused(client: TestClient) -> None:
    csrf = _csrf(client)
    wrong = client.post("/login", data={"csrf": csrf, "token": "nope"}, follow_redirects=False)
    assert wrong.status_code == 401 and "not a read token" in wrong.text
    forged = client.post(
        "/login", data={"csrf": "x" * 32, "token": READ_TOKEN}, follow_redirects=False
    )
    assert forged.status_code == 403
    elsewhere = client.post(
        "/login",
        data={"csrf": csrf, "token": READ_TOKEN},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 403 and "another site" in elsewhere.text
    assert "le_session" not in client.cookies


def test_logout_needs_the_form_token_and_ends_the_session(client: TestClient) -> None:
    _login(client)
    assert client.post("/logout", data={"csrf": "forged" * 5}).status_code == 403
    assert client.get("/dashboard/api/fleet").status_code == 200
    csrf = client.get("/dashboard/api/session").json()["csrf"]
    out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.delete("le_session")  # what the browser does with the expired cookie
    assert client.get("/dashboard/api/fleet").status_code == 401


def test_sessions_expire_and_die_with_their_token(settings: Settings) -> None:
    value = new_session(READ_TOKEN, now=NOW)
    assert session_valid(settings, value, now=NOW + 60)
    assert not session_valid(settings, value, now=NOW + 8 * 86400)
    assert not session_valid(settings, value[:-2] + "xx", now=NOW)
    rotated = settings.model_copy(update={"read_tokens": []})
    assert not session_valid(rotated, value, now=NOW)


def test_login_redirects_only_within_the_site(client: TestClient) -> None:
    response = client.post(
        "/login",
        data={"csrf": _csrf(client), "token": READ_TOKEN, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_docs_are_served_from_packaged_assets(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower()
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text):
        assert client.get(asset).status_code == 200, asset
    assert client.get("/static/vendor/uPlot.iife.min.js").status_code == 200
    assert client.get("/static/vendor/LICENSE-uPlot.txt").status_code == 200


def _deliver_readings(deliver: Deliver) -> None:
    # Three readings of one device: happy 0.87 two hours ago and 30 minutes ago, sad 0.50 now.
    # Relative to this moment, not to NOW: the pages count hours back from the clock, and a
    # long test session would otherwise move the readings out of the hours they are meant for.
    now = time.time()
    for payload, at in ((HAPPY_87, now - 7200), (HAPPY_87, now - 1800), (SAD_50, now - 5)):
        assert deliver(payload_body(payload, 16, base_time=at)).status_code == 200


def test_fleet_shows_latest_emotion_hours_and_silence(client: TestClient, deliver: Deliver) -> None:
    _deliver_readings(deliver)
    _login(client)
    data = client.get("/dashboard/api/fleet").json()
    assert data["newest_id"] >= 3
    (device,) = data["devices"]
    assert device["urn"] == DEVICE
    assert device["emotion"] == "sad" and device["confidence"] == pytest.approx(0.5)
    assert sum(device["hourly_readings"]) == 3
    assert device["hourly_readings"][-1] == 2 or device["hourly_readings"][-1] == 1
    assert device["silent"] is False


def test_a_device_quiet_for_three_intervals_is_silent(store: Store, deliver: Deliver) -> None:
    _deliver_readings(deliver)
    later = datetime.now(UTC) + timedelta(days=2)
    with store.read_engine.connect() as conn:
        (device,) = queries.fleet(conn, now=later)
    assert device.silent


def test_hourly_mix_and_timeline_count_each_reading_once(
    client: TestClient, deliver: Deliver
) -> None:
    _deliver_readings(deliver)
    _login(client)
    mix = client.get("/dashboard/api/mix", params={"range": "24h"}).json()
    assert sum(mix["labels"]["happy"]) == 2 and sum(mix["labels"]["sad"]) == 1
    assert len(mix["hours"]) in (24, 25)
    timeline = client.get(
        f"/dashboard/api/devices/{DEVICE}/timeline", params={"range": "6h"}
    ).json()
    assert sum(timeline["labels"]["happy"]) == 2 and sum(timeline["labels"]["sad"]) == 1
    assert timeline["bucket_s"] * len(timeline["times"]) >= 6 * 3600
    assert "sad" in timeline["dominant"] and "happy" in timeline["dominant"]
    confident = [c for c in timeline["confidence"] if c is not None]
    assert sorted(round(c, 2) for c in confident) == [0.5, 0.87, 0.87]
    short = client.get(f"/dashboard/api/devices/{DEVICE}/timeline", params={"range": "1h"})
    # The last hour holds the happy reading of 30 minutes ago and the sad one, not the oldest.
    assert {k: sum(v) for k, v in short.json()["labels"].items()} == {"happy": 1, "sad": 1}
    assert client.get("/dashboard/api/devices/0004A30B00000000/timeline").status_code == 404


def test_a_delivery_decodes_on_request(client: TestClient, deliver: Deliver) -> None:
    _deliver_readings(deliver)
    _login(client)
    newest = client.get("/deliveries", params={"limit": 1}).json()["deliveries"][0]
    detail = client.get(f"/dashboard/api/deliveries/{newest['id']}").json()
    assert detail["decoded"]["label"] == "sad"
    assert {r["name"] for r in detail["readings"]} >= {"emotion", "confidence"}


# The rollup job runs on PostgreSQL only; on SQLite the same queries read readings alone.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_rollups_count_settled_deliveries_once(
    client: TestClient, deliver: Deliver, store: Store
) -> None:
    _deliver_readings(deliver)
    _login(client)
    before = client.get("/dashboard/api/mix").json()
    with store.write_engine.begin() as conn:
        assert fold(conn, settle_s=0) is not None  # notes the newest id
    with store.write_engine.begin() as conn:
        assert fold(conn, settle_s=0) == 3  # folds it
    with store.read_engine.connect() as conn:
        assert queries.watermark(conn) == 3
    # One more reading after the watermark: rollup and readings add up, nothing twice.
    assert deliver(payload_body(HAPPY_87, 16, base_time=time.time() - 1)).status_code == 200
    after = client.get("/dashboard/api/mix").json()
    assert sum(after["labels"]["happy"]) == sum(before["labels"]["happy"]) + 1
    assert sum(after["labels"]["sad"]) == sum(before["labels"]["sad"])
    # The fleet page's hourly bars come from the rollup alone (the page adds live events).
    fleet = client.get("/dashboard/api/fleet").json()["devices"][0]
    assert sum(fleet["hourly_readings"]) == 3 and fleet["emotion"] == "happy"
    for _ in range(2):  # the first visit notes the newest id, the next folds it
        with store.write_engine.begin() as conn:
            fold(conn, settle_s=0)
    with store.read_engine.connect() as conn:
        assert queries.watermark(conn) == 4
    again = client.get("/dashboard/api/mix").json()
    assert again["labels"] == after["labels"]
    fleet = client.get("/dashboard/api/fleet").json()["devices"][0]
    assert sum(fleet["hourly_readings"]) == 4
