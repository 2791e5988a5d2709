"""The read API: bearer auth, devices, readings with cursors, exports, raw deliveries."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app
from webhook_support import DEVICE, payload_body

from lora_emotion.senml import decode_json, resolve

BT = 1_615_572_314.0


@pytest.fixture
def history(deliver: Any) -> list[bytes]:
    """Ten readings of the test device, 60 s apart (happy 87 %, then sad 33 %), and two others."""
    bodies = [
        payload_body("0186" if i % 2 else "01B5", 16, base_time=BT + 60 * i) for i in range(10)
    ]
    bodies.append(payload_body("0186", 16, base_time=BT, dev_eui="0004A30B00000001"))
    bodies.append(payload_body("0186", 16, base_time=BT, dev_eui="0004A30B00000002"))
    for body in bodies:
        assert deliver(body).status_code == 200
    return bodies


def test_the_read_api_wants_a_configured_bearer_token(client: TestClient) -> None:
    missing = client.get("/devices")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = client.get("/devices", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.json()["detail"]


def test_without_tokens_the_read_api_is_closed(database_url: str) -> None:
    closed = Settings(database_url=database_url)
    with TestClient(create_app(closed)) as client:
        response = client.get("/devices", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 401
    assert "LORA_EMOTION_READ_TOKENS" in response.json()["detail"]


def test_devices_with_latest_emotion_and_pages(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes]
) -> None:
    first = client.get("/devices", params={"limit": 2}, headers=reader_headers).json()
    assert len(first["devices"]) == 2
    second = client.get(
        "/devices", params={"limit": 2, "cursor": first["next_cursor"]}, headers=reader_headers
    ).json()
    urns = [d["urn"] for d in first["devices"] + second["devices"]]
    assert urns == sorted(urns)
    assert len(set(urns)) == 3
    ours = next(d for d in first["devices"] + second["devices"] if d["urn"] == DEVICE)
    assert ours["latest_emotion"] == "happy"  # the reading at BT + 540 s
    assert ours["latest_confidence"] == 0.87
    assert ours["last_seen"] == "2021-03-12T18:14:14Z"
    assert ours["latest_time"] == "2021-03-12T18:14:14Z"


def test_one_device_by_eui_or_urn(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes]
) -> None:
    by_eui = client.get("/devices/0004a30b001f1234", headers=reader_headers)
    by_urn = client.get(f"/devices/{DEVICE}", headers=reader_headers)
    assert by_eui.status_code == by_urn.status_code == 200
    assert by_eui.json() == by_urn.json()
    assert client.get("/devices/FFFFFFFFFFFFFFFF", headers=reader_headers).status_code == 404


def test_readings_in_a_range_with_cursor_pagination(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes]
) -> None:
    params: dict[str, Any] = {
        "start": "2021-03-12T18:06:14Z",  # BT + 60
        "end": "2021-03-12T18:11:14Z",  # BT + 360, exclusive
        "name": "emotion",
        "limit": 2,
    }
    seen: list[dict[str, Any]] = []
    while True:
        page = client.get(f"/devices/{DEVICE}/readings", params=params, headers=reader_headers)
        assert page.status_code == 200
        seen += page.json()["readings"]
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert [r["string_value"] for r in seen] == ["happy", "sad", "happy", "sad", "happy"]
    assert [r["time"][11:19] for r in seen] == [
        "18:06:14",
        "18:07:14",
        "18:08:14",
        "18:09:14",
        "18:10:14",
    ]
    newest = client.get(
        f"/devices/{DEVICE}/readings",
        params={"order": "desc", "limit": 1, "name": "confidence"},
        headers=reader_headers,
    ).json()["readings"]
    assert newest[0]["value"] == 0.87
    assert newest[0]["origin"] == "payload"


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyIyMDIxIiwgMSwgMl0"])
def test_a_bad_cursor_is_400(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes], cursor: str
) -> None:
    response = client.get(
        f"/devices/{DEVICE}/readings", params={"cursor": cursor}, headers=reader_headers
    )
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]


def test_csv_export(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes]
) -> None:
    response = client.get(f"/devices/{DEVICE}/export", headers=reader_headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "0004A30B001F1234-readings.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 10 * 2
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    assert {r["name"] for r in rows} == {"emotion", "confidence"}


def test_json_export_is_a_senml_pack(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes]
) -> None:
    response = client.get(
        f"/devices/{DEVICE}/export",
        params={"format": "json", "name": "emotion"},
        headers=reader_headers,
    )
    assert response.status_code == 200
    resolved = resolve(decode_json(response.content), now=0)
    assert [r.name for r in resolved] == [f"{DEVICE}:emotion"] * 10
    assert resolved[0].time == BT
    assert resolved[-1].value == "happy"


def test_raw_deliveries_for_audit(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes], deliver: Any
) -> None:
    broken = payload_body("02C4", 16, base_time=BT + 9999)
    deliver(broken)
    page = client.get("/deliveries", params={"limit": 5}, headers=reader_headers).json()
    ids = [d["id"] for d in page["deliveries"]]
    assert ids == sorted(ids, reverse=True)
    older = client.get(
        "/deliveries", params={"limit": 50, "cursor": page["next_cursor"]}, headers=reader_headers
    ).json()
    assert len(page["deliveries"]) + len(older["deliveries"]) == len(history) + 1
    errors = client.get(
        "/deliveries", params={"decode_status": "error"}, headers=reader_headers
    ).json()["deliveries"]
    assert len(errors) == 1
    one = client.get(f"/deliveries/{errors[0]['id']}", headers=reader_headers).json()
    assert one["body"].encode() == broken
    assert one["payload"] == "02C4"
    assert one["decode_error"]
    assert "things-message-token" not in one["headers"]
    assert client.get("/deliveries/999999", headers=reader_headers).status_code == 404
    by_device = client.get(
        "/deliveries", params={"device": "0004A30B00000001"}, headers=reader_headers
    ).json()["deliveries"]
    assert [d["device"] for d in by_device] == ["urn:dev:DEVEUI:0004A30B00000001"]


def test_openapi_documents_the_api(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert {"/uplinks/kpn", "/devices", "/devices/{device}/readings", "/deliveries"} <= set(
        document["paths"]
    )
    assert "HTTPBearer" in document["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "cursor",
    ["eyJhIjoxfQ", "garbage", "dXJuOmRldjpERVZFVUk6", "MTIz", "dXJuOmRldjo6eA"],
)
def test_devices_refuse_a_cursor_they_did_not_give_out(
    client: TestClient, reader_headers: dict[str, str], history: list[bytes], cursor: str
) -> None:
    response = client.get("/devices", params={"cursor": cursor}, headers=reader_headers)
    assert response.status_code == 400
    assert "cursor" in response.json()["detail"]
