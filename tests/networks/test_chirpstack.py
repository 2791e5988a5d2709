"""ChirpStack v4 HTTP-integration events: uplinks, other events, and refusals naming the field."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.networks import NetworkUplink, OtherEvent
from lora_emotion.networks.chirpstack import EVENTS, event_body, parse_event

NOW = 1_800_000_000.0
# integration.UplinkEvent in ChirpStack's JSON marshaler (protobuf JSON mapping, camelCase).
DOCUMENTED: dict[str, Any] = {
    "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
    "time": "2026-03-12T18:05:14.123456+00:00",
    "deviceInfo": {
        "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
        "tenantName": "ChirpStack",
        "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
        "applicationName": "emotion",
        "deviceProfileId": "14855bf7-d10d-4aee-b618-ebfcb64dc7ad",
        "deviceProfileName": "relay",
        "deviceName": "relay-7",
        "devEui": "0004a30b001c2abc",
        "tags": {},
    },
    "devAddr": "00189440",
    "adr": True,
    "dr": 0,
    "fCnt": 42,
    "fPort": 16,
    "confirmed": False,
    "data": "AYY=",
    "object": {"ignored": True},
    "rxInfo": [
        {"gatewayId": "0016c001ff10a235", "rssi": -97, "snr": 7.2, "crcStatus": "CRC_OK"},
        {"gatewayId": "0016c001ff10a236", "rssi": -115, "snr": -9, "crcStatus": "CRC_OK"},
    ],
    "txInfo": {
        "frequency": 868100000,
        "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 12, "codeRate": "CR_4_5"}},
    },
}
_DELETE = object()


def _changed(path: str, value: Any) -> bytes:
    document = json.loads(json.dumps(DOCUMENTED))
    *parents, last = path.split(".")
    target = document
    for name in parents:
        target = target[name]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return json.dumps(document).encode()


def test_the_documented_uplink() -> None:
    uplink = parse_event(json.dumps(DOCUMENTED).encode(), event="up", now=NOW)
    assert isinstance(uplink, NetworkUplink)
    assert uplink.dev_eui == "0004A30B001C2ABC"
    assert (uplink.fport, uplink.payload, uplink.fcnt) == (16, b"\x01\x86", 42)
    assert uplink.application == "17c82e96-be03-4f38-aef3-f83d48582d97"
    assert uplink.idempotency_key == "3ac7e3c4-4401-4b8d-9386-a5c902f9202d"
    assert uplink.time == 1_773_338_714.123456
    assert uplink.radio.rssi == -97 and uplink.radio.snr == 7.2
    assert uplink.radio.gateways == 2 and uplink.radio.gateway_id == "0016c001ff10a235"
    assert (uplink.radio.spreading_factor, uplink.radio.frequency_hz) == (12, 868_100_000)


def test_the_key_is_the_deduplication_id() -> None:
    first = parse_event(json.dumps(DOCUMENTED).encode(), event="up", now=NOW)
    again = parse_event(_changed("rxInfo", []), event="up", now=NOW + 5)
    other = parse_event(_changed("deduplicationId", "other"), event="up", now=NOW)
    assert isinstance(first, NetworkUplink) and isinstance(again, NetworkUplink)
    assert isinstance(other, NetworkUplink)
    assert first.dedup_key == again.dedup_key != other.dedup_key


def test_a_time_offset_is_applied() -> None:
    uplink = parse_event(_changed("time", "2026-03-12T20:05:14+02:00"), event="up", now=NOW)
    assert isinstance(uplink, NetworkUplink) and uplink.time == 1_773_338_714.0


@pytest.mark.parametrize("event", [e for e in EVENTS if e != "up"] + ["future"])
def test_other_events_are_named(event: str) -> None:
    body = json.dumps({"deviceInfo": DOCUMENTED["deviceInfo"], "level": "ERROR"}).encode()
    assert parse_event(body, event=event, now=NOW) == OtherEvent(
        network="chirpstack", event=event, application="17c82e96-be03-4f38-aef3-f83d48582d97"
    )
    assert parse_event(b"{}", event=event, now=NOW) == OtherEvent(network="chirpstack", event=event)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("deduplicationId", _DELETE, "deduplicationId"),
        ("deduplicationId", "", "deduplicationId"),
        ("deduplicationId", 5, "deduplicationId"),
        ("deviceInfo", _DELETE, "deviceInfo"),
        ("deviceInfo.devEui", _DELETE, "deviceInfo.devEui"),
        ("deviceInfo.devEui", "0004a30b001c2ab", "deviceInfo.devEui"),
        ("deviceInfo.applicationId", _DELETE, "deviceInfo.applicationId"),
        ("fPort", 300, "fPort"),
        ("fPort", 1.5, "fPort"),
        ("fCnt", "many", "fCnt"),
        ("data", "AY", "data"),
        ("time", "2026-03-12", "time"),
        ("rxInfo", [None], "rxInfo[0]"),
        ("rxInfo", [{"rssi": "loud"}], "rxInfo[0].rssi"),
        ("txInfo", 868, "txInfo"),
        ("txInfo.modulation", {"lora": {"spreadingFactor": 13}}, "lora.spreadingFactor"),
    ],
)
def test_malformed_events_name_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_event(_changed(path, value), event="up", now=NOW)
    assert field in str(caught.value)


@pytest.mark.parametrize(("event", "body"), [(None, b"{}"), ("", b"{}"), ("up", b"[1]")])
def test_no_event_or_no_object(event: str | None, body: bytes) -> None:
    with pytest.raises(DecodeError, match=r"event|body"):
        parse_event(body, event=event, now=NOW)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
_paths = st.sampled_from(
    [
        "deduplicationId",
        "time",
        "deviceInfo",
        "deviceInfo.devEui",
        "deviceInfo.applicationId",
        "deviceInfo.deviceName",
        "fCnt",
        "fPort",
        "data",
        "rxInfo",
        "txInfo",
        "txInfo.frequency",
        "txInfo.modulation",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_paths, _json), min_size=1, max_size=4))
def test_any_field_of_any_type_is_an_uplink_or_a_decode_error(
    changes: list[tuple[str, Any]],
) -> None:
    document = json.loads(json.dumps(DOCUMENTED))
    for path, value in changes:
        *parents, last = path.split(".")
        target = document
        for name in parents:
            target = target.get(name) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[last] = value
    try:
        body = json.dumps(document).encode()
    except ValueError:
        return
    with contextlib.suppress(DecodeError):
        parse_event(body, event="up", now=NOW)


def test_event_body_refuses_what_the_network_would_not_send() -> None:
    with pytest.raises(EncodeError, match="dev_eui"):
        event_body(dev_eui="", fport=1, payload=b"", fcnt=0, time=NOW, deduplication_id="x")
    with pytest.raises(EncodeError, match="fport"):
        event_body(
            dev_eui="0004a30b001c2abc",
            fport=-1,
            payload=b"",
            fcnt=0,
            time=NOW,
            deduplication_id="x",
        )


def test_event_body_writes_like_chirpstack() -> None:
    document = json.loads(
        event_body(
            dev_eui="0004A30B001C2ABC", fport=0, payload=b"", fcnt=0, time=NOW, deduplication_id="x"
        )
    )
    assert document["deviceInfo"]["devEui"] == "0004a30b001c2abc"
    assert not {"fPort", "fCnt", "data"} & document.keys()
    assert document["time"].endswith("+00:00")


_variants = st.one_of(
    _json,
    st.sampled_from(
        [
            "16",
            16.0,
            "",
            "AYY=",
            "AYY",
            "AYZ=",
            "2026-03-12T18:05:14Z",
            "2026-03-12T18:05:14.5+00:00",
            "2026-03-12T20:05:14+02:00",
            "2026-02-30T18:05:14Z",
            "1970-01-01T00:00:00+00:00",
            "0004A30B001C2ABC",
            -97,
            -97.5,
            0,
            255,
            2**32,
            True,
            [],
            {},
            [{"rssi": -90, "snr": 1, "gatewayId": "g"}],
            [{"snr": 3}, {"rssi": "x"}],
            {"frequency": 868100000, "modulation": {"lora": {"spreadingFactor": 7}}},
            {"frequency": "868100000", "modulation": {"lora": {"spreadingFactor": "7"}}},
            {"modulation": []},
        ]
    ),
)
_all_paths = st.sampled_from(
    [
        "deduplicationId",
        "time",
        "deviceInfo",
        "deviceInfo.devEui",
        "deviceInfo.applicationId",
        "deviceInfo.deviceName",
        "fCnt",
        "fPort",
        "data",
        "rxInfo",
        "txInfo",
        "txInfo.frequency",
        "txInfo.modulation",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(_all_paths, _variants | st.just(_DELETE)), min_size=0, max_size=4))
def test_the_plain_reader_agrees_with_the_general_one(changes: list[tuple[str, Any]]) -> None:
    """Wherever the one-pass reader answers, it answers what the field-by-field one does."""
    from lora_emotion.networks import chirpstack

    document = json.loads(json.dumps(DOCUMENTED))
    for path, value in changes:
        *parents, last = path.split(".")
        target = document
        for name in parents:
            target = target.get(name) if isinstance(target, dict) else None
        if isinstance(target, dict):
            if value is _DELETE:
                target.pop(last, None)
            else:
                target[last] = value
    plain = chirpstack._plain_uplink(document)
    try:
        general: Any = chirpstack._parse(document, event="up", now=NOW)
    except DecodeError as exc:
        general = exc
    if plain is not None:
        assert plain == general
    if not changes:
        assert plain is not None, "the documented uplink takes the plain path"


@pytest.mark.parametrize(
    ("path", "value"),
    [("fCnt", {"x": 1}), ("rxInfo", [""]), ("time", "later"), ("deviceInfo.devEui", 5)],
)
def test_other_events_with_fields_chirpstack_would_not_send_are_refused(
    path: str, value: Any
) -> None:
    with pytest.raises(DecodeError, match=path.split(".")[-1]):
        parse_event(_changed(path, value), event="join", now=NOW)
