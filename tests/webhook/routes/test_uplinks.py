"""POST /uplinks/kpn: what KPN sends, what gets stored, and every refusal."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lora_emotion.webhook import metrics, schema
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import IngestFirst, create_app
from lora_emotion.webhook.storage import Store
from sqlalchemy import func, select
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from webhook_support import (
    DEV_EUI,
    DEVICE,
    NEXT_SECRET,
    PLUG,
    READ_TOKEN,
    SECRET,
    THINGSML_HAPPY,
    payload_body,
    signed_headers,
)

BT = 1_615_572_314.0


def count(store: Store, table: Any) -> int:
    with store.read_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def readings_of(store: Store) -> list[tuple[str, Any]]:
    with store.read_engine.connect() as conn:
        rows = conn.execute(
            select(schema.readings).order_by(schema.readings.c.delivery_id, schema.readings.c.seq)
        )
        return [(r.name, r.value if r.value is not None else r.string_value) for r in rows]


def counter(outcome: str) -> float:
    return metrics.DELIVERIES.labels("kpn", outcome)._value.get()  # type: ignore[attr-defined,no-any-return]


@pytest.mark.parametrize("layout", ["legacy", "merged"])
def test_raw_thingsml_delivery_is_stored_and_decoded(
    deliver: Any, store: Store, layout: Literal["legacy", "merged"]
) -> None:
    response = deliver(payload_body(layout=layout))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "stored"
    assert (answer["device"], answer["decode_status"], answer["readings"]) == (DEVICE, "ok", 1)
    # Payload and port are kept in the delivery row, not as readings.
    assert readings_of(store) == [("emotion", "happy")]


def test_every_golden_vector_arrives_as_readings(
    deliver: Any, store: Store, vectors: list[dict[str, Any]]
) -> None:
    for position, vector in enumerate(vectors):
        body = payload_body(vector["hex"], vector["fport"], base_time=BT + position)
        response = deliver(body)
        assert response.status_code == 200, (vector["name"], response.text)
        assert response.json()["decode_status"] == "ok", vector["name"]
        assert response.json()["readings"] == len(vector["senml"])
    assert count(store, schema.deliveries) == len(vectors)
    assert count(store, schema.readings) == sum(len(v["senml"]) for v in vectors)


def test_a_rotated_secret_is_accepted(deliver: Any) -> None:
    assert deliver(payload_body(), secret=NEXT_SECRET).status_code == 200


def test_kpn_decoded_thingsml_geolocation_and_unknown_records(deliver: Any, store: Store) -> None:
    decoded = f'[{{"bn":"{DEVICE}:","bt":1.615572314E9,"n":"emotion","vs":"happy"}}]'.encode()
    geo = (
        f'[{{"bn":"{DEVICE}:","bt":1.615572400E9,"n":"locOrigin","vs":"LORA"}},'
        '{"n":"latitude","u":"lat","v":52.09},{"n":"longitude","u":"lon","v":5.12},'
        '{"n":"radius","u":"m","v":150}]'
    ).encode()
    odd = f'[{{"bn":"{DEVICE}:","bt":1.6155725E9}},{{"n":"timeOrigin","vs":"NETWORK"}}]'.encode()
    answers = [deliver(body).json() for body in (decoded, geo, odd)]
    assert [a["status"] for a in answers] == ["stored"] * 3
    with store.read_engine.connect() as conn:
        kinds = [k for (k,) in conn.execute(select(schema.deliveries.c.kind).order_by("id"))]
    assert kinds == ["decoded", "geolocation", "decoded"]
    assert ("emotion", "happy") in readings_of(store)
    assert ("latitude", 52.09) in readings_of(store)
    assert ("timeOrigin", "NETWORK") in readings_of(store)


def test_an_undecodable_payload_is_stored_raw_with_the_error(deliver: Any, store: Store) -> None:
    before = metrics.DECODE_ERRORS["kpn"]._value.get()
    body = payload_body("02C4", 16)  # confidence state out of range
    response = deliver(body)
    assert response.status_code == 200
    assert response.json()["decode_status"] == "error"
    assert response.json()["decode_error"]
    with store.read_engine.connect() as conn:
        row = conn.execute(select(schema.deliveries)).one()
    assert bytes(row.body) == body
    assert row.payload == bytes.fromhex("02C4")
    assert row.decode_status == "error"
    assert metrics.DECODE_ERRORS["kpn"]._value.get() == before + 1


def test_a_retry_is_acknowledged_and_stored_once(deliver: Any, store: Store) -> None:
    body = payload_body()
    stored = counter("duplicate")
    answers = [deliver(body) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["status"] for a in answers] == ["stored", "duplicate", "duplicate"]
    assert count(store, schema.deliveries) == 1
    assert count(store, schema.readings) == 1
    assert counter("duplicate") == stored + 2


def test_kept_headers_never_include_the_token(deliver: Any, store: Store) -> None:
    deliver(payload_body(), headers={"Things-Device-Barcode": "NULL", "Authorization": "x"})
    with store.read_engine.connect() as conn:
        headers = json.loads(conn.execute(select(schema.deliveries.c.headers)).scalar_one())
    assert headers["things-device-barcode"] == "NULL"
    assert headers["things-plug-uuid"] == PLUG
    assert "things-message-token" not in headers
    assert "authorization" not in headers


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"Things-Message-Token": "0" * 64}, 401, "does not match"),
        ({"Things-Message-Token": ""}, 401, "missing Things-Message-Token"),
        ({"Things-Plug-UUID": ""}, 401, "missing Things-Plug-UUID"),
        ({"Things-Plug-UUID": "11111111-2222-3333-4444-555555555555"}, 403, "no configured"),
        ({"Content-Type": "text/plain"}, 415, "text/plain"),
        ({"Content-Type": ""}, 415, "none"),
    ],
)
def test_refusals(
    client: TestClient, store: Store, change: dict[str, str], status: int, fragment: str
) -> None:
    body = payload_body()
    headers = {**signed_headers(body), **change}
    response = client.post("/uplinks/kpn", content=body, headers=headers)
    assert response.status_code == status
    assert fragment in response.json()["detail"]
    assert count(store, schema.deliveries) == 0


def test_a_wrong_secret_is_unauthorized(deliver: Any) -> None:
    response = deliver(payload_body(), secret="Another-Secret-0123456789-abcdef!")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"]


def test_body_size_limit(client: TestClient, settings: Any) -> None:
    big = b"[" + b" " * settings.max_body_bytes + b"]"
    response = client.post("/uplinks/kpn", content=big, headers=signed_headers(big))
    assert response.status_code == 413

    def chunks() -> Any:  # no Content-Length: the limit applies while streaming
        yield b"["
        for _ in range(settings.max_body_bytes // 1024 + 1):
            yield b" " * 1024
        yield b"]"

    streamed = client.post("/uplinks/kpn", content=chunks(), headers=signed_headers(big))
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "invalid JSON"),
        (b'{"bn":"x"}', "array"),
        (b'[{"n":"emotion","vs":"happy"}]', "no device"),
        (f'[{{"bn":"{DEVICE}:","n":"a","v":"1"}}]'.encode(), "expected a number"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_malformed_senml_is_422_saying_what(deliver: Any, body: bytes, fragment: str) -> None:
    response = deliver(body)
    assert response.status_code == 422
    assert fragment in response.json()["detail"]


def test_logs_never_contain_secrets_or_tokens(
    client: TestClient, deliver: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = payload_body()
    deliver(body)
    deliver(body, secret="Wrong-Secret-0123456789-abcdefgh!")
    deliver(b"[oops", headers={"Things-Plug-UUID": "unknown"})
    deliver(payload_body("02C4", 16))
    client.get("/devices", headers={"Authorization": "Bearer not-the-token"})
    client.get("/devices", headers={"Authorization": f"Bearer {READ_TOKEN}"})
    text = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    assert "delivery refused" in text  # something was logged
    for value in (SECRET, NEXT_SECRET, READ_TOKEN, signed_headers(body)["Things-Message-Token"]):
        assert value not in text


_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["payload", "port", "emotion", "0186", "02C4", THINGSML_HAPPY, "zz"]),
)
_record = st.dictionaries(
    st.sampled_from(["bn", "bt", "bu", "bv", "n", "u", "v", "vs", "vb", "vd", "t", "s", "ut", "x"]),
    _value,
    max_size=5,
)
_random_pack = st.tuples(
    st.sampled_from(["legacy", "merged", "none"]),
    st.floats(-1e12, 1e12, allow_nan=False),
    st.lists(_record, max_size=4),
).map(
    lambda t: (
        t[2]
        if t[0] == "none"
        else [{"bn": f"{DEVICE}:", "bt": t[1]}, *t[2]]
        if t[0] == "legacy"
        else [{"bn": f"{DEVICE}:", "bt": t[1], **(t[2][0] if t[2] else {})}, *t[2][1:]]
    )
)


_name = st.sampled_from(["emotion", "confidence", "rssi", "latitude", "timeOrigin", "x:y", "-bad"])
_plausible_record = st.one_of(
    st.builds(
        lambda h: {"n": "payload", "vs": h},
        st.sampled_from(["0186", "02C4", "", "0B86E88E", THINGSML_HAPPY]),
    ),
    st.builds(lambda p: {"n": "port", "v": p}, st.sampled_from([1, 2, 16, 17, 19, 0, 300, 1.5])),
    st.builds(
        lambda n, v: {"n": n, "v": v}, _name, st.floats(allow_nan=False, allow_infinity=False)
    ),
    st.builds(lambda n, v: {"n": n, "vs": v}, _name, st.text(max_size=8)),
    st.builds(lambda n, v, t: {"n": n, "vb": v, "t": t}, _name, st.booleans(), st.floats(-1e9, 0)),
)
_plausible_pack = st.tuples(
    st.floats(1e9, 2e9), st.lists(_plausible_record, min_size=1, max_size=4)
).map(lambda t: [{"bn": f"{DEVICE}:", "bt": t[0]}, *t[1]])
_raw_pack = st.tuples(
    st.floats(1e9, 2e9),
    st.sampled_from(["0186", "02C4", "0B86E88E", "0000756B6EC91CFD48", THINGSML_HAPPY]),
    st.sampled_from([1, 16, 17, 21]),
    st.lists(_plausible_record, max_size=2),
).map(
    lambda t: [
        {"bn": f"{DEVICE}:", "bt": t[0], "n": "payload", "vs": t[1]},
        {"n": "port", "v": t[2]},
        *t[3],
    ]
)
_pack = st.one_of(_random_pack, _plausible_pack, _raw_pack)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pack=_pack)
def test_generated_senml_never_gets_a_500(deliver: Any, store: Store, pack: list[Any]) -> None:
    try:
        body = json.dumps(pack, allow_nan=True).encode()
    except ValueError:
        return
    response = deliver(body)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["status"] in ("stored", "duplicate")
        with store.read_engine.connect() as conn:
            stored = conn.execute(
                select(func.count())
                .select_from(schema.deliveries)
                .where(schema.deliveries.c.body == body)
            ).scalar_one()
        assert stored == 1 or response.json()["status"] == "duplicate"


def test_device_eui_is_recorded(deliver: Any, store: Store) -> None:
    deliver(payload_body())
    with store.read_engine.connect() as conn:
        assert conn.execute(select(schema.devices.c.dev_eui)).scalar_one() == DEV_EUI


def with_device(device: str, base_time: float = BT) -> bytes:
    """A raw-payload delivery whose base name is ``device`` exactly as given."""
    body = payload_body(base_time=base_time)
    return body.replace(f"{DEVICE}:".encode(), f"{device}:".encode())


@pytest.mark.parametrize(
    ("device", "fragment"),
    [
        # The case: a valid-looking URN with a ~4,000-character EUI.
        ("urn:dev:DEVEUI:" + "0123456789ABCDEF" * 250, "DevEUI"),
        ("urn:dev:DEVEUI:0004A30B001F12", "DevEUI"),
        ("urn:dev:DEVEUI:0004A30B001F12345", "DevEUI"),
        ("urn:dev:mac:" + "a" * 300, "device URN"),
    ],
)
def test_a_device_the_store_cannot_hold_is_422_naming_it(
    deliver: Any, store: Store, device: str, fragment: str
) -> None:
    good = deliver(payload_body())
    response = deliver(with_device(device))
    assert response.status_code == 422, response.text
    assert fragment in response.json()["detail"]
    assert good.status_code == 200 and count(store, schema.deliveries) == 1


def test_a_header_too_long_to_keep_is_422_naming_it(deliver: Any, store: Store) -> None:
    response = deliver(payload_body(), headers={"X-Request-Id": "r" * 9_000})
    assert response.status_code == 422
    assert "x-request-id" in response.json()["detail"]
    assert count(store, schema.deliveries) == 0


def test_a_lower_case_deveui_is_stored_upper_case_and_readable(
    deliver: Any, client: TestClient, store: Store, reader_headers: dict[str, str]
) -> None:
    lower = DEV_EUI.lower()
    answer = deliver(with_device(f"urn:dev:DEVEUI:{lower}"))
    assert answer.status_code == 200 and answer.json()["device"] == DEVICE
    assert deliver(with_device(f"urn:dev:deveui:{lower}", BT + 1)).status_code == 200
    devices = client.get("/devices", headers=reader_headers).json()["devices"]
    assert [(d["urn"], d["dev_eui"]) for d in devices] == [(DEVICE, DEV_EUI)]
    for spelling in (lower, DEV_EUI, f"urn:dev:DEVEUI:{lower}", f"urn:dev:deveui:{lower}"):
        one = client.get(f"/devices/{spelling}", headers=reader_headers)
        assert one.status_code == 200 and one.json()["urn"] == DEVICE
        readings = client.get(f"/devices/{spelling}/readings", headers=reader_headers)
        assert len(readings.json()["readings"]) == 2
        audit = client.get("/deliveries", params={"device": spelling}, headers=reader_headers)
        assert len(audit.json()["deliveries"]) == 2
    with store.read_engine.connect() as conn:
        assert set(conn.execute(select(schema.readings.c.device)).scalars()) == {DEVICE}


def test_a_duplicate_answers_the_original_delivery_id(deliver: Any) -> None:
    first, again = deliver(payload_body()), deliver(payload_body(layout="merged"))
    assert again.json()["status"] == "duplicate"
    assert again.json()["delivery_id"] == first.json()["delivery_id"] is not None


class RecordingMiddleware:
    """A user's pure ASGI middleware: records each request and its answer, tags the answer."""

    def __init__(self, app: ASGIApp, seen: list[tuple[str, str, int]]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["method"], scope["path"], message["status"]))
                message["headers"] = [*message.get("headers", []), (b"x-seen-by", b"recorder")]
            await send(message)

        await self.app(scope, receive, tagged)


def test_user_middleware_wraps_deliveries_and_their_answers(tmp_path: Path) -> None:
    """Ingest is an ordinary route: CORS or telemetry added by a user sees every delivery."""
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
            destinations={PLUG: [SECRET]},
            read_tokens=[READ_TOKEN],
        )
    )
    seen: list[tuple[str, str, int]] = []
    app.add_middleware(RecordingMiddleware, seen=seen)
    app.add_middleware(
        CORSMiddleware, allow_origins=["https://portal.example"], allow_methods=["POST"]
    )
    body = payload_body()
    with TestClient(app) as client:
        stored = client.post(
            "/uplinks/kpn",
            content=body,
            headers={**signed_headers(body), "Origin": "https://portal.example"},
        )
        refused = client.post(
            "/uplinks/kpn", content=body, headers=signed_headers(body, secret="x")
        )
        preflight = client.options(
            "/uplinks/kpn",
            headers={
                "Origin": "https://portal.example",
                "Access-Control-Request-Method": "POST",
            },
        )
    assert stored.status_code == 200 and stored.json()["status"] == "stored"
    assert stored.headers["x-seen-by"] == "recorder"
    assert stored.headers["access-control-allow-origin"] == "https://portal.example"
    assert refused.status_code == 401 and refused.headers["x-seen-by"] == "recorder"
    assert refused.headers["www-authenticate"] == "Things-Message-Token"
    assert (
        preflight.status_code == 200 and "POST" in preflight.headers["access-control-allow-methods"]
    )
    assert seen == [("POST", "/uplinks/kpn", 200), ("POST", "/uplinks/kpn", 401)]


def test_delivery_route_is_in_the_openapi_document_once(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    operation = document["paths"]["/uplinks/kpn"]
    assert list(operation) == ["post"]
    assert {p["name"] for p in operation["post"]["parameters"]} == {
        "Things-Plug-UUID",
        "Things-Message-Token",
    }
    assert client.get("/uplinks/kpn").status_code == 405


def test_no_private_module_of_a_dependency_is_imported() -> None:
    """The service uses its dependencies' public interfaces only (uvicorn has no upper bound)."""
    root = Path(__file__).resolve().parents[3]
    sources = [*(root / "webhook").rglob("*.py"), *(root / "src" / "lora_emotion").rglob("*.py")]
    private = re.compile(
        r"^\s*(?:from|import)\s+(?:uvicorn\.protocols|uvicorn\.supervisors|uvicorn\._"
        r"|starlette\._|fastapi\._|pydantic\._|sqlalchemy\._|psycopg\._)",
        re.MULTILINE,
    )
    found = [
        f"{path}: {m.group(0).strip()}"
        for path in sources
        for m in private.finditer(path.read_text())
    ]
    assert found == []


def test_a_delivery_while_the_service_is_not_started_is_503(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}"))
    body = payload_body()
    # No lifespan: the pipeline is not set up, as before start-up or after shutdown.
    response = TestClient(app).post("/uplinks/kpn", content=body, headers=signed_headers(body))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert "starting or stopping" in response.json()["detail"]


def test_ingest_first_answers_deliveries_alike_but_ahead_of_the_middleware(
    tmp_path: Path,
) -> None:
    """The opt-in shortcut: same answers and refusals; user middleware sees only the rest."""
    app = create_app(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}",
            destinations={PLUG: [SECRET]},
            read_tokens=[READ_TOKEN],
        )
    )
    seen: list[tuple[str, str, int]] = []
    app.add_middleware(RecordingMiddleware, seen=seen)
    body = payload_body()
    with TestClient(IngestFirst(app)) as client:
        stored = client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
        again = client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
        refused = client.post(
            "/uplinks/kpn", content=body, headers=signed_headers(body, secret="x")
        )
        health = client.get("/healthz")
    assert stored.status_code == 200 and stored.json()["status"] == "stored"
    assert again.json()["status"] == "duplicate"
    assert again.json()["delivery_id"] == stored.json()["delivery_id"]
    assert (
        refused.status_code == 401 and refused.headers["www-authenticate"] == "Things-Message-Token"
    )
    assert health.status_code == 200
    assert seen == [("GET", "/healthz", 200)]
