"""Every network's uplink stores the same readings as the equivalent KPN delivery."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_emotion.networks import NetworkUplink, RadioMetadata, delivery_of, dev_eui_urn
from lora_emotion.networks.chirpstack import event_body, parse_event
from lora_emotion.networks.kpn import (
    Delivery,
    delivery_body,
    parse_delivery,
    raw_payload_records,
)
from lora_emotion.networks.ttn import message_body, parse_message

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "vectors" / "messages.json").read_text("utf-8")
)
NOW = 1_800_000_000.0
_payloads = st.sampled_from(
    [(v["fport"], bytes.fromhex(v["hex"])) for v in VECTORS["vectors"] + VECTORS["invalid"]]
)
_dev_euis = st.binary(min_size=8, max_size=8).map(lambda b: b.hex())
# Network times: from 1978-07-04 (below, SenML reads a base time as relative) to year 9999.
_times = st.floats(min_value=2.0**28, max_value=253_402_300_799.0)
_fcnts = st.integers(0, 2**32 - 1)


def _kpn(dev_eui: str, fport: int, payload: bytes, time: float, layout: str) -> Delivery:
    body = delivery_body(
        dev_eui,
        raw_payload_records(payload, fport),
        base_time=time,
        layout=layout,  # type: ignore[arg-type]
    )
    return parse_delivery(body, now=NOW)


def _same_readings(network: Delivery, kpn: Delivery) -> None:
    assert network.device == kpn.device == dev_eui_urn(network.dev_eui or "")
    assert network.dev_eui == kpn.dev_eui
    assert network.event_time == kpn.event_time
    assert (network.kind, network.fport, network.payload) == (kpn.kind, kpn.fport, kpn.payload)
    assert (network.decode_status, network.decode_error) == (kpn.decode_status, kpn.decode_error)
    # KPN's transport records (payload hex, port) are not readings: the store drops them.
    assert network.measurements == tuple(m for m in kpn.measurements if m.origin == "payload")


@settings(max_examples=300, deadline=None)
@given(
    _dev_euis,
    _payloads,
    _times,
    _fcnts,
    st.booleans(),
    st.sampled_from(["legacy", "merged"]),
)
def test_a_ttn_uplink_stores_what_the_kpn_delivery_stores(
    dev_eui: str,
    port_payload: tuple[int, bytes],
    time: float,
    fcnt: int,
    simulated: bool,
    layout: str,
) -> None:
    fport, payload = port_payload
    body = message_body(
        dev_eui=dev_eui, fport=fport, payload=payload, fcnt=fcnt, time=time, simulated=simulated
    )
    uplink = parse_message(body, now=NOW)
    assert isinstance(uplink, NetworkUplink)
    assert (uplink.fcnt, uplink.simulated, uplink.dev_eui) == (fcnt, simulated, dev_eui.upper())
    _same_readings(delivery_of(uplink, now=NOW), _kpn(dev_eui, fport, payload, time, layout))


@settings(max_examples=300, deadline=None)
@given(_dev_euis, _payloads, _times, _fcnts, st.uuids(), st.sampled_from(["legacy", "merged"]))
def test_a_chirpstack_uplink_stores_what_the_kpn_delivery_stores(
    dev_eui: str,
    port_payload: tuple[int, bytes],
    time: float,
    fcnt: int,
    dedup: uuid.UUID,
    layout: str,
) -> None:
    fport, payload = port_payload
    body = event_body(
        dev_eui=dev_eui,
        fport=fport,
        payload=payload,
        fcnt=fcnt,
        time=time,
        deduplication_id=str(dedup),
    )
    uplink = parse_event(body, event="up", now=NOW)
    assert isinstance(uplink, NetworkUplink)
    assert uplink.idempotency_key == str(dedup)
    assert uplink.fcnt == fcnt
    _same_readings(delivery_of(uplink, now=NOW), _kpn(dev_eui, fport, payload, time, layout))


def test_every_golden_vector_reads_the_same_on_every_network() -> None:
    for vector in VECTORS["vectors"]:
        payload, fport = bytes.fromhex(vector["hex"]), vector["fport"]
        common: dict[str, Any] = {
            "dev_eui": "02EE0000000000AB",
            "fport": fport,
            "payload": payload,
            "fcnt": 7,
            "time": 1_700_000_000.25,
        }
        ttn = delivery_of(parse_message(message_body(**common), now=NOW), now=NOW)  # type: ignore[arg-type]
        chirpstack = delivery_of(
            parse_event(event_body(**common, deduplication_id="d"), event="up", now=NOW),  # type: ignore[arg-type]
            now=NOW,
        )
        kpn = _kpn("02EE0000000000AB", fport, payload, 1_700_000_000.25, "merged")
        assert ttn.decode_status == "ok", vector["name"]
        _same_readings(ttn, kpn)
        _same_readings(chirpstack, kpn)
        assert [(m.name, m.string_value, m.value) for m in ttn.measurements] == [
            (r["n"], r.get("vs"), r.get("v")) for r in vector["senml"]
        ], vector["name"]


def _uplink(**changes: Any) -> NetworkUplink:
    fields: dict[str, Any] = {
        "network": "ttn",
        "dev_eui": "02EE0000000000AB",
        "time": 1_700_000_000.0,
        "fport": 16,
        "payload": bytes.fromhex("0186"),
        "idempotency_key": "k",
    }
    fields.update(changes)
    return NetworkUplink(**fields)


def test_the_dedup_key_is_the_networks_key_and_nothing_else() -> None:
    first = _uplink()
    assert first.dedup_key == _uplink(time=1_800_000_000.0, payload=b"\x00").dedup_key
    assert first.dedup_key != _uplink(idempotency_key="other").dedup_key
    assert first.dedup_key != _uplink(network="chirpstack").dedup_key
    assert len(first.dedup_key) == 64


def test_fport_0_is_kept_without_readings() -> None:
    delivery = delivery_of(_uplink(fport=0, payload=b"\x03\x00"), now=NOW)
    assert (delivery.kind, delivery.decode_status, delivery.measurements) == ("other", "none", ())
    assert delivery.payload == b"\x03\x00"


def test_a_payload_that_does_not_decode_is_kept_with_the_error() -> None:
    delivery = delivery_of(_uplink(payload=b""), now=NOW)
    assert delivery.decode_status == "error"
    assert delivery.decode_error
    assert delivery.measurements == ()


def test_metadata_names_only_what_is_known() -> None:
    uplink = _uplink(
        fcnt=3, application="app", radio=RadioMetadata(rssi=-100.0, gateways=2), simulated=True
    )
    assert uplink.metadata() == {
        "fcnt": 3,
        "application": "app",
        "rssi": -100.0,
        "gateways": 2,
        "simulated": True,
    }
    assert _uplink().metadata() == {}


@pytest.mark.parametrize("eui", ["02ee0000000000ab", "02EE0000000000AB", "02Ee0000000000aB"])
def test_a_dev_eui_is_filed_upper_case_on_every_network(eui: str) -> None:
    ttn = parse_message(
        message_body(dev_eui=eui, fport=16, payload=b"\x01\x86", fcnt=1, time=1e9), now=NOW
    )
    chirpstack = parse_event(
        event_body(
            dev_eui=eui, fport=16, payload=b"\x01\x86", fcnt=1, time=1e9, deduplication_id="x"
        ),
        event="up",
        now=NOW,
    )
    assert isinstance(ttn, NetworkUplink) and isinstance(chirpstack, NetworkUplink)
    assert ttn.device == chirpstack.device == "urn:dev:DEVEUI:02EE0000000000AB"
