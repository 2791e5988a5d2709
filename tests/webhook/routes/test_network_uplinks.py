"""``POST /uplinks/ttn`` and ``POST /uplinks/chirpstack``: the same pipeline as KPN's.

Each network's uplink stores the readings the equivalent KPN delivery stores (compared through
the read API); refusals are 401 for credentials, 403 for an application that is not configured
or not the token's, 415 for a body that is not JSON, 422 naming the field, never 500; a retry
is stored once; messages that are no uplink are answered 200 and counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from lora_emotion.webhook import metrics
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app
from webhook_support import NEXT_SECRET, PLUG, READ_TOKEN, SECRET, payload_body, signed_headers

from lora_emotion.networks.chirpstack import event_body
from lora_emotion.networks.ttn import message_body

TTN_APP, OTHER_TTN_APP = "emotion-app", "other-app"
CS_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
TTN_TOKEN = "ttn_" + "a1b2c3d4" * 5
TTN_NEXT = "ttn_" + "e5f6a7b8" * 5
OTHER_TOKEN = "ttn_" + "99999999" * 5
CS_TOKEN = "cs_" + "0f1e2d3c" * 5
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "messages.json").read_text("utf-8")
)
TIME = 1_700_000_000.5
PUSH_URL = (
    "https://eu1.cloud.thethings.network/api/v3/as/applications/emotion-app/webhooks/wh1"
    "/devices/relay-7/down/push"
)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        destinations={PLUG: [SECRET, NEXT_SECRET]},
        ttn_applications={TTN_APP: [TTN_TOKEN, TTN_NEXT], OTHER_TTN_APP: [OTHER_TOKEN]},
        chirpstack_applications={CS_APP: [CS_TOKEN]},
        read_tokens=[READ_TOKEN],
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def ttn_body(dev_eui: str = "02EE0000000000AB", **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "dev_eui": dev_eui,
        "fport": 16,
        "payload": bytes.fromhex("0186"),
        "fcnt": 42,
        "time": TIME,
        "application_id": TTN_APP,
    }
    fields.update(changes)
    return message_body(**fields)


def cs_body(dev_eui: str = "02ee0000000000cd", **changes: Any) -> bytes:
    fields: dict[str, Any] = {
        "dev_eui": dev_eui,
        "fport": 16,
        "payload": bytes.fromhex("0186"),
        "fcnt": 42,
        "time": TIME,
        "deduplication_id": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "application_id": CS_APP,
    }
    fields.update(changes)
    return event_body(**fields)


def post_ttn(client: TestClient, body: bytes, token: str = TTN_TOKEN, **headers: str) -> Response:
    return client.post("/uplinks/ttn", content=body, headers={**bearer(token), **headers})


def post_cs(
    client: TestClient, body: bytes, event: str = "up", token: str = CS_TOKEN, **headers: str
) -> Response:
    return client.post(
        f"/uplinks/chirpstack?event={event}", content=body, headers={**bearer(token), **headers}
    )


def readings(client: TestClient, urn: str) -> list[dict[str, Any]]:
    answer = client.get(f"/devices/{urn}/readings", headers=READ, params={"limit": 500})
    assert answer.status_code == 200, answer.text
    return [
        {k: v for k, v in r.items() if k not in ("delivery_id",)} for r in answer.json()["readings"]
    ]


@pytest.mark.parametrize("vector", VECTORS["vectors"][::5], ids=lambda v: v["name"])
def test_each_network_stores_what_kpn_stores(client: TestClient, vector: dict[str, Any]) -> None:
    payload, fport = bytes.fromhex(vector["hex"]), vector["fport"]
    kpn = payload_body(vector["hex"], fport, base_time=TIME, dev_eui="02EE00000000000A")
    assert client.post("/uplinks/kpn", content=kpn, headers=signed_headers(kpn)).status_code == 200
    ttn = post_ttn(client, ttn_body("02EE00000000000B", fport=fport, payload=payload))
    cs = post_cs(client, cs_body("02ee00000000000c", fport=fport, payload=payload))
    for answer in (ttn, cs):
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "stored"
        assert answer.json()["decode_status"] == "ok"
    expected = readings(client, "urn:dev:DEVEUI:02EE00000000000A")
    assert expected
    assert readings(client, "urn:dev:DEVEUI:02EE00000000000B") == expected
    assert readings(client, "urn:dev:DEVEUI:02EE00000000000C") == expected


def test_a_retry_is_stored_once_and_answers_the_same_delivery(client: TestClient) -> None:
    first = post_ttn(client, ttn_body()).json()
    # The retry arrives later, through another gateway; the uplink is the same.
    again = post_ttn(client, ttn_body(gateways=(("gw-2", -110.0, -3.0),))).json()
    assert (first["status"], again["status"]) == ("stored", "duplicate")
    next_uplink = post_ttn(client, ttn_body(fcnt=43)).json()
    assert next_uplink["status"] == "stored"
    cs_first = post_cs(client, cs_body()).json()
    cs_again = post_cs(client, cs_body(time=TIME + 1)).json()
    assert (cs_first["status"], cs_again["status"]) == ("stored", "duplicate")


def test_the_deliveries_api_names_the_network_and_its_metadata(client: TestClient) -> None:
    sent = post_ttn(
        client,
        ttn_body(simulated=True, airtime_s=0.061696),
        **{
            "X-Tts-Domain": "eu1.cloud.thethings.network",
            "X-Downlink-Push": PUSH_URL,
            "X-Downlink-Apikey": "NNSXS.NOT-A-REAL-KEY",
        },
    )
    delivery_id = sent.json()["delivery_id"]
    shown = client.get(f"/deliveries/{delivery_id}", headers=READ).json()
    assert shown["network"] == "ttn"
    assert shown["plug_uuid"] == TTN_APP
    metadata = shown["network_metadata"]
    assert metadata["simulated"] is True
    assert metadata["fcnt"] == 42 and metadata["rssi"] == -97.0
    assert metadata["airtime_s"] == 0.061696 and metadata["gateways"] == 1
    assert "authorization" not in shown["headers"]
    assert shown["headers"]["x-tts-domain"] == "eu1.cloud.thethings.network"
    assert shown["headers"]["x-downlink-push"] == PUSH_URL
    assert "x-downlink-apikey" not in shown["headers"]
    assert "NOT-A-REAL-KEY" not in json.dumps(shown)
    kpn = payload_body(base_time=TIME)
    kpn_id = client.post("/uplinks/kpn", content=kpn, headers=signed_headers(kpn)).json()
    shown = client.get(f"/deliveries/{kpn_id['delivery_id']}", headers=READ).json()
    assert (shown["network"], shown["network_metadata"]) == ("kpn", None)


def test_every_current_token_of_the_application_is_accepted(client: TestClient) -> None:
    assert post_ttn(client, ttn_body(), token=TTN_NEXT).status_code == 200
    sent = client.post(
        "/uplinks/ttn",
        content=ttn_body(fcnt=1),
        headers={"X-API-Key": TTN_TOKEN, "Content-Type": "application/json"},
    )
    assert sent.status_code == 200


@pytest.mark.parametrize(
    ("path", "headers", "status", "fragment"),
    [
        ("/uplinks/ttn", {"Content-Type": "application/json"}, 401, "missing credentials"),
        ("/uplinks/ttn", bearer("ttn_wrong_" + "0" * 30), 401, "not one of any"),
        ("/uplinks/ttn", {**bearer(TTN_TOKEN), "Authorization": "Basic eDp5"}, 401, "missing"),
        ("/uplinks/ttn", bearer(OTHER_TOKEN), 403, "not one of application 'emotion-app'"),
        ("/uplinks/chirpstack?event=up", {"Content-Type": "application/json"}, 401, "missing"),
        ("/uplinks/chirpstack?event=up", bearer(TTN_TOKEN), 401, "not one of any"),
    ],
)
def test_bad_credentials(
    client: TestClient, path: str, headers: dict[str, str], status: int, fragment: str
) -> None:
    body = ttn_body() if "ttn" in path else cs_body()
    before = metrics.DELIVERIES.labels(path.split("/")[2].split("?")[0], "stored")._value.get()  # type: ignore[attr-defined]
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code == status
    assert fragment in answer.json()["detail"]
    if status == 401:
        assert answer.headers["WWW-Authenticate"] == "Bearer"
    after = metrics.DELIVERIES.labels(path.split("/")[2].split("?")[0], "stored")._value.get()  # type: ignore[attr-defined]
    assert after == before


def test_an_application_that_is_not_configured_is_403(client: TestClient) -> None:
    answer = post_ttn(client, ttn_body(application_id="stranger"))
    assert answer.status_code == 403
    assert "'stranger' is not a configured The Things Stack application" in answer.text
    answer = post_cs(client, cs_body(application_id="00000000-0000-0000-0000-000000000000"))
    assert answer.status_code == 403


def test_a_network_without_applications_refuses_with_403(database_url: str) -> None:
    bare = Settings(database_url=database_url, read_tokens=[READ_TOKEN])
    with TestClient(create_app(bare)) as client:
        answer = post_ttn(client, ttn_body())
        assert answer.status_code == 403
        assert "no The Things Stack application is configured" in answer.text
        assert post_cs(client, cs_body()).status_code == 403


@pytest.mark.parametrize(
    ("network", "body", "fragment"),
    [
        ("ttn", b"{", "body"),
        ("ttn", b"[]", "body"),
        ("ttn", json.dumps({"end_device_ids": {}}).encode(), "end_device_ids.application_ids"),
        (
            "ttn",
            json.dumps(
                {
                    "end_device_ids": {"application_ids": {"application_id": TTN_APP}},
                    "uplink_message": {"f_port": 16},
                }
            ).encode(),
            "end_device_ids.dev_eui",
        ),
        ("ttn", ttn_body().replace(b'"f_port":16', b'"f_port":"x"'), "uplink_message.f_port"),
        ("ttn", ttn_body().replace(b'"AYY="', b'"AY!="'), "uplink_message.frm_payload"),
        ("chirpstack", b"\xff\xfe", "body"),
        ("chirpstack", cs_body().replace(b'"fCnt":42', b'"fCnt":-1'), "fCnt"),
        ("chirpstack", cs_body().replace(b"deduplicationId", b"dedupId"), "deduplicationId"),
    ],
)
def test_malformed_bodies_are_422_naming_the_field(
    client: TestClient, network: str, body: bytes, fragment: str
) -> None:
    answer = post_ttn(client, body) if network == "ttn" else post_cs(client, body)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.json()["detail"]


def test_chirpstack_needs_the_event_parameter(client: TestClient) -> None:
    answer = client.post("/uplinks/chirpstack", content=cs_body(), headers=bearer(CS_TOKEN))
    assert answer.status_code == 422
    assert "event" in answer.json()["detail"]


def test_bodies_that_are_not_json_are_415(client: TestClient) -> None:
    answer = post_cs(client, b"\x0a\x01x", **{"Content-Type": "application/octet-stream"})
    assert answer.status_code == 415
    assert "JSON marshaler" in answer.json()["detail"]
    assert post_ttn(client, ttn_body(), **{"Content-Type": "text/plain"}).status_code == 415


@pytest.mark.parametrize("event", ["join", "ack", "txack", "log", "status", "location"])
def test_other_chirpstack_events_are_200_and_counted(client: TestClient, event: str) -> None:
    counter = metrics.DELIVERIES.labels("chirpstack", "ignored")
    before = counter._value.get()  # type: ignore[attr-defined]
    body = json.dumps({"deviceInfo": {"applicationId": CS_APP, "devEui": "02ee0000000000cd"}})
    answer = post_cs(client, body.encode(), event=event)
    assert answer.status_code == 200
    assert answer.json() == {"status": "ignored", "event": event}
    assert counter._value.get() == before + 1  # type: ignore[attr-defined]
    assert client.get("/deliveries", headers=READ).json()["deliveries"] == []


def test_other_ttn_messages_are_200_and_not_stored(client: TestClient) -> None:
    body = {
        "end_device_ids": {
            "application_ids": {"application_id": TTN_APP},
            "dev_eui": "02EE0000000000AB",
        },
        "join_accept": {"session_key_id": "AXZ="},
    }
    answer = post_ttn(client, json.dumps(body).encode())
    assert answer.json() == {"status": "ignored", "event": "join_accept"}
    assert client.get("/deliveries", headers=READ).json()["deliveries"] == []


def test_a_payload_that_does_not_decode_is_stored_raw(client: TestClient) -> None:
    answer = post_ttn(client, ttn_body(payload=b"\xff"))
    assert answer.status_code == 200
    assert answer.json()["decode_status"] == "error"
    (shown,) = client.get("/deliveries", headers=READ).json()["deliveries"]
    assert shown["payload"] == "FF" and shown["decode_error"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@examples(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from(["ttn", "chirpstack"]),
    st.sampled_from(
        ["uplink_message", "end_device_ids", "deviceInfo", "fPort", "rxInfo", "time", "data"]
    ),
    _json,
)
def test_never_500(client: TestClient, network: str, field: str, value: Any) -> None:
    document = json.loads(ttn_body() if network == "ttn" else cs_body())
    document[field] = value
    body = json.dumps(document).encode()
    answer = post_ttn(client, body) if network == "ttn" else post_cs(client, body)
    assert answer.status_code in (200, 403, 422), answer.text
