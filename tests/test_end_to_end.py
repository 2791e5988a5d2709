"""Device to read API and back: every message type through every hop, on SQLite and PostgreSQL.

simulated device -> codec -> LoRaWAN frame -> network-side decrypt -> signed KPN delivery
(both SenML layouts) -> webhook -> storage -> read API, which must return the readings the
device meant, value for value and time for time.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

import pytest
from fastapi.testclient import TestClient
from helpers import DeviceToWebhook, all_readings, reader_headers, webhook_settings
from lora_emotion.webhook.main import create_app

from lora_emotion.aggregator import RelayConfig
from lora_emotion.fleet import Fleet, FleetConfig
from lora_emotion.labels import FER2013, PHYSIO3
from lora_emotion.messages import (
    Batch,
    BatchEntry,
    CommandStatus,
    Distribution,
    Face,
    Faces,
    Message,
    Mode,
    Reading,
    Status,
    Summary,
    Vitals,
    decode,
    encode,
    port_of,
)
from lora_emotion.simulator import StreamConfig
from lora_emotion.uplink import message_records

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
BASE_TIME = 1_700_000_000.0


def _happy(confidence: float) -> Reading:
    return Reading(label_set=FER2013, label="happy", confidence=confidence)


#: One of every message type (and the edge cases of each), as a device would send them.
MESSAGES: dict[str, Message] = {
    "reading": _happy(0.87),
    "reading-no-face": Reading(label_set=FER2013, label=None),
    "distribution": Distribution(
        label_set=FER2013, probabilities=(0.02, 0.01, 0.03, 0.87, 0.04, 0.02, 0.01)
    ),
    "faces": Faces(
        label_set=FER2013,
        faces=(Face(label="happy", confidence=0.9), Face(label="sad", confidence=0.41)),
    ),
    "faces-none": Faces(label_set=FER2013, faces=()),
    "summary": Summary(
        label_set=FER2013,
        window_s=60,
        counts=(1, 0, 0, 40, 5, 0, 10),
        no_face=4,
        mean_confidence=0.81,
    ),
    "summary-empty": Summary(label_set=FER2013, window_s=30, counts=(0,) * 7, no_face=30),
    "vitals": Vitals(
        label_set=PHYSIO3,
        heart_rate_bpm=72,
        skin_conductance_us=3.21,
        reading=Reading(label_set=PHYSIO3, label="happy", confidence=0.6),
    ),
    "vitals-heart-only": Vitals(label_set=PHYSIO3, heart_rate_bpm=118),
    "status": Status(
        firmware=(1, 2, 3),
        battery_percent=77,
        uptime_s=86_400,
        dropped=12,
        window_s=60,
        mode=Mode.SUMMARY,
        daily_budget_s=30,
        label_set_id=0,
        label_set_fingerprint=FER2013.fingerprint,
        command_seq=4,
        command_status=CommandStatus.APPLIED,
    ),
    "batch-readings": Batch(
        label_set=FER2013,
        entries=(
            BatchEntry(age_s=0, message=_happy(0.9)),
            BatchEntry(age_s=60, message=Reading(label_set=FER2013, label=None)),
            BatchEntry(age_s=120, message=_happy(0.55)),
        ),
    ),
    "batch-distributions": Batch(
        label_set=PHYSIO3,
        entries=(
            BatchEntry(
                age_s=5, message=Distribution(label_set=PHYSIO3, probabilities=(0.2, 0.7, 0.1))
            ),
            BatchEntry(
                age_s=65, message=Distribution(label_set=PHYSIO3, probabilities=(0.5, 0.5, 0.0))
            ),
        ),
    ),
    "batch-vitals": Batch(
        label_set=PHYSIO3,
        entries=(
            BatchEntry(age_s=0, message=Vitals(label_set=PHYSIO3, heart_rate_bpm=80)),
            BatchEntry(age_s=4095, message=Vitals(label_set=PHYSIO3, skin_conductance_us=9.99)),
        ),
    ),
}


def _unreachable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"no PostgreSQL server reachable at 127.0.0.1:5432 ({reason})")


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A database of its own for this module, dropped at the end."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.Error as exc:
        _unreachable(str(exc).strip().splitlines()[0])
    name = f"lora_emotion_e2e_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """The webhook, lifespan started, on a store of each backend (one per module)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'store.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    with TestClient(create_app(webhook_settings(url))) as test_client:
        yield test_client


_indices = itertools.count()


def _expected(message: Message, base_time: float) -> list[tuple[str, Any, str | None, float]]:
    """(name, value, unit, time) of each record the decoded uplink means."""
    received = decode(encode(message), fport=port_of(message))
    rows = []
    for record in message_records(received):
        value: Any = record.vs if record.vs is not None else record.v
        rows.append((record.n, value, record.u, base_time + (record.t or 0.0)))
    return rows


def _stored(readings: list[dict[str, Any]], delivery_id: int) -> list[tuple[str, Any, Any, float]]:
    rows = []
    for reading in sorted(readings, key=lambda r: r["seq"]):
        if reading["delivery_id"] != delivery_id or reading["origin"] != "payload":
            continue
        value = reading["string_value"]
        if value is None:
            value = reading["value"]
        when = datetime.fromisoformat(reading["time"]).timestamp()
        rows.append((reading["name"], value, reading["unit"], when))
    return rows


def _same(stored: list[tuple[str, Any, Any, float]], expected: list[Any]) -> None:
    assert [r[0] for r in stored] == [e[0] for e in expected]
    for (name, value, unit, when), (_, want, want_unit, want_when) in zip(
        stored, expected, strict=True
    ):
        assert unit == want_unit, name
        if isinstance(want, str):
            assert value == want, name
        else:
            assert value == pytest.approx(float(want), rel=1e-12, abs=1e-15), name
        assert when == pytest.approx(want_when, abs=1e-3), name


@pytest.mark.parametrize("layout", ["legacy", "merged"])
@pytest.mark.parametrize("name", list(MESSAGES))
def test_every_message_type_reads_back_as_sent(
    client: TestClient, name: str, layout: Literal["legacy", "merged"]
) -> None:
    device = DeviceToWebhook(client, index=next(_indices), seed=1)
    message = MESSAGES[name]
    answer = device.send(message, base_time=BASE_TIME, layout=layout)
    assert answer["status"] == "stored"
    assert answer["decode_status"] == "ok", answer["decode_error"]
    readings = device.readings()
    # Payload and port stay with the delivery, not among the readings.
    assert not [r for r in readings if r["origin"] == "kpn"]
    raw = device.delivery(answer["delivery_id"])
    assert raw["payload"] == encode(message).hex().upper()
    assert raw["fport"] == port_of(message)
    _same(_stored(readings, answer["delivery_id"]), _expected(message, BASE_TIME))
    # The frame really was encrypted on the way.
    assert device.frames[-1][9:-4] != encode(message) or len(encode(message)) == 0


def test_a_retried_delivery_is_stored_once(client: TestClient) -> None:
    device = DeviceToWebhook(client, index=next(_indices), seed=1)
    first = device.send(MESSAGES["reading"], base_time=BASE_TIME + 5)
    body, headers = device.destination.request(
        device.identity.dev_eui,
        encode(MESSAGES["reading"]),
        port_of(MESSAGES["reading"]),
        base_time=BASE_TIME + 5,
        layout="legacy",
    )
    again = client.post("/uplinks/kpn", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert len({r["delivery_id"] for r in device.readings()}) == 1
    assert first["delivery_id"] is not None


def test_a_simulated_fleet_reads_back_as_sent(client: TestClient) -> None:
    relay = RelayConfig(label_set=PHYSIO3, mode=Mode.VITALS, window_s=20, data_rate=3)
    config = FleetConfig(
        devices=3,
        seed=next(_indices) + 100,
        stream=StreamConfig(label_set=PHYSIO3),
        relay=relay,
        epoch_s=BASE_TIME,
    )
    deliveries = list(itertools.islice(Fleet(config).deliveries(), 30))
    kinds = {type(d.uplink.message) for d in deliveries}
    assert Status in kinds and Vitals in kinds
    answers = {}
    for delivery in deliveries:
        response = client.post("/uplinks/kpn", content=delivery.body, headers=delivery.headers)
        assert response.status_code == 200, response.text
        answers[id(delivery)] = response.json()["delivery_id"]
    by_device: dict[str, list[dict[str, Any]]] = {}

    def get(path: str, **params: Any) -> Any:
        return client.get(path, params=params, headers=reader_headers()).json()

    for delivery in deliveries:
        if delivery.dev_eui not in by_device:
            by_device[delivery.dev_eui] = all_readings(get, delivery.dev_eui)
        stored = _stored(by_device[delivery.dev_eui], answers[id(delivery)])
        _same(stored, _expected(delivery.uplink.message, delivery.base_time))


def test_the_thingsml_reading_of_the_2021_demo_reads_back(client: TestClient) -> None:
    device = DeviceToWebhook(client, index=next(_indices), seed=1)
    body, headers = device.destination.request(
        device.identity.dev_eui,
        bytes.fromhex("81A20067656D6F74696F6E03656861707079"),
        1,
        base_time=BASE_TIME,
        layout="merged",
    )
    answer = client.post("/uplinks/kpn", content=body, headers=headers).json()
    stored = _stored(device.readings(), answer["delivery_id"])
    assert stored == [("emotion", "happy", None, pytest.approx(BASE_TIME))]
