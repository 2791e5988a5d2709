"""The Things Stack webhook messages: uplinks, other message types, refusals naming the field."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.networks import NetworkUplink, OtherEvent
from lora_emotion.networks.ttn import MESSAGE_TYPES, message_body, parse_message

NOW = 1_800_000_000.0
# An uplink as The Things Stack documents it (field names and shapes from its data-formats page).
DOCUMENTED: dict[str, Any] = {
    "end_device_ids": {
        "device_id": "relay-7",
        "application_ids": {"application_id": "emotion-app"},
        "dev_eui": "70B3D57ED005E2A1",
        "join_eui": "0000000000000000",
        "dev_addr": "260B1234",
    },
    "correlation_ids": ["as:up:01H5KE4Q5M2JD5YHWTFBR7R2Y7", "gs:uplink:01H5KE4PZ4902R414DJ2T4PAPC"],
    "received_at": "2026-03-12T18:05:14.223456789Z",
    "uplink_message": {
        "session_key_id": "AXZkNZjJuP9Ee5p9AUsdQw==",
        "f_port": 16,
        "f_cnt": 42,
        "frm_payload": "AYY=",
        "decoded_payload": {"ignored": True},
        "rx_metadata": [
            {"gateway_ids": {"gateway_id": "gw-a"}, "rssi": -110, "snr": -3.5},
            {"gateway_ids": {"gateway_id": "gw-b"}, "rssi": -97, "channel_rssi": -97, "snr": 7.2},
        ],
        "settings": {
            "data_rate": {
                "lora": {"bandwidth": 125000, "spreading_factor": 12, "coding_rate": "4/5"}
            },
            "frequency": "868100000",
        },
        "received_at": "2026-03-12T18:05:14.123456789Z",
        "consumed_airtime": "1.155072s",
    },
}


def _body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


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
    return _body(document)


_DELETE = object()


def test_the_documented_uplink() -> None:
    uplink = parse_message(_body(DOCUMENTED), now=NOW)
    assert isinstance(uplink, NetworkUplink)
    assert uplink.dev_eui == "70B3D57ED005E2A1"
    assert (uplink.fport, uplink.payload, uplink.fcnt) == (16, b"\x01\x86", 42)
    assert uplink.application == "emotion-app"
    assert uplink.device_name == "relay-7"
    # The Network Server's receive time, to the nanosecond's nearest double.
    assert uplink.time == pytest.approx(1_773_338_714.123456789, abs=1e-6)
    assert uplink.radio.rssi == -97 and uplink.radio.snr == 7.2
    assert uplink.radio.gateway_id == "gw-b" and uplink.radio.gateways == 2
    assert (uplink.radio.spreading_factor, uplink.radio.bandwidth_hz) == (12, 125000)
    assert uplink.radio.frequency_hz == 868_100_000
    assert uplink.radio.airtime_s == 1.155072
    assert not uplink.simulated


def test_the_key_is_session_and_counter_so_a_rejoin_is_a_new_uplink() -> None:
    first = parse_message(_body(DOCUMENTED), now=NOW)
    retry = parse_message(_changed("received_at", "2026-03-12T18:09:00Z"), now=NOW + 60)
    rejoined = parse_message(_changed("uplink_message.session_key_id", "BBBB"), now=NOW)
    simulated = parse_message(_changed("simulated", True), now=NOW)
    assert isinstance(first, NetworkUplink) and isinstance(retry, NetworkUplink)
    assert isinstance(rejoined, NetworkUplink) and isinstance(simulated, NetworkUplink)
    assert first.dedup_key == retry.dedup_key
    assert first.dedup_key != rejoined.dedup_key
    assert simulated.simulated and simulated.dedup_key != first.dedup_key


def test_without_a_session_key_id_the_as_up_correlation_id_identifies_it() -> None:
    body = _changed("uplink_message.session_key_id", _DELETE)
    uplink = parse_message(body, now=NOW)
    assert isinstance(uplink, NetworkUplink)
    assert uplink.idempotency_key == "70B3D57ED005E2A1/as:up:01H5KE4Q5M2JD5YHWTFBR7R2Y7"


def test_defaults_are_omitted_fields() -> None:
    document = json.loads(json.dumps(DOCUMENTED))
    for name in ("f_port", "f_cnt", "frm_payload", "rx_metadata", "settings", "consumed_airtime"):
        del document["uplink_message"][name]
    uplink = parse_message(_body(document), now=NOW)
    assert isinstance(uplink, NetworkUplink)
    assert (uplink.fport, uplink.fcnt, uplink.payload) == (0, 0, b"")
    assert uplink.radio.as_dict() == {}


def test_without_any_receive_time_the_receivers_clock_is_used() -> None:
    document = json.loads(json.dumps(DOCUMENTED))
    del document["uplink_message"]["received_at"]
    uplink = parse_message(_body(document), now=NOW)
    assert isinstance(uplink, NetworkUplink)
    assert uplink.time == pytest.approx(1_773_338_714.223456789, abs=1e-6)
    del document["received_at"]
    uplink = parse_message(_body(document), now=NOW)
    assert isinstance(uplink, NetworkUplink) and uplink.time == NOW


@pytest.mark.parametrize("kind", MESSAGE_TYPES)
def test_other_message_types_are_named(kind: str) -> None:
    document = {"end_device_ids": DOCUMENTED["end_device_ids"], kind: {"anything": 1}}
    event = parse_message(_body(document), now=NOW)
    assert event == OtherEvent(network="ttn", event=kind, application="emotion-app")


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("end_device_ids", _DELETE, "end_device_ids"),
        ("end_device_ids.dev_eui", _DELETE, "end_device_ids.dev_eui"),
        ("end_device_ids.dev_eui", "70B3D57ED005E2", "end_device_ids.dev_eui"),
        ("end_device_ids.application_ids", _DELETE, "end_device_ids.application_ids"),
        ("end_device_ids.application_ids", {"x": 1}, "application_ids.application_id"),
        ("uplink_message", "AYY=", "uplink_message"),
        ("uplink_message.f_port", 256, "uplink_message.f_port"),
        ("uplink_message.f_port", "16x", "uplink_message.f_port"),
        ("uplink_message.f_port", True, "uplink_message.f_port"),
        ("uplink_message.f_cnt", -1, "uplink_message.f_cnt"),
        ("uplink_message.f_cnt", 2**32, "uplink_message.f_cnt"),
        ("uplink_message.frm_payload", "AYY", "uplink_message.frm_payload"),
        ("uplink_message.frm_payload", "A!Y=", "uplink_message.frm_payload"),
        ("uplink_message.frm_payload", 5, "uplink_message.frm_payload"),
        ("uplink_message.received_at", "yesterday", "uplink_message.received_at"),
        ("uplink_message.received_at", "2026-02-30T00:00:00Z", "uplink_message.received_at"),
        ("uplink_message.received_at", "1970-01-01T00:00:00Z", "uplink_message.received_at"),
        ("uplink_message.rx_metadata", {}, "uplink_message.rx_metadata"),
        ("uplink_message.rx_metadata", [1], "uplink_message.rx_metadata[0]"),
        ("uplink_message.settings", [], "uplink_message.settings"),
        ("uplink_message.consumed_airtime", "1.1", "uplink_message.consumed_airtime"),
        ("simulated", "yes", "simulated"),
    ],
)
def test_malformed_messages_name_the_field(path: str, value: Any, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        parse_message(_changed(path, value), now=NOW)
    assert field in str(caught.value)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "body"),
        (b"[]", "body"),
        (b"\xff", "body"),
        (b'{"end_device_ids": {"application_ids": {"application_id": "a"}}}', "body"),
    ],
)
def test_bodies_that_are_no_message(body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment):
        parse_message(body, now=NOW)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
_paths = st.sampled_from(
    [
        "end_device_ids",
        "end_device_ids.dev_eui",
        "end_device_ids.device_id",
        "end_device_ids.application_ids",
        "correlation_ids",
        "received_at",
        "simulated",
        "uplink_message",
        "uplink_message.f_port",
        "uplink_message.f_cnt",
        "uplink_message.frm_payload",
        "uplink_message.session_key_id",
        "uplink_message.rx_metadata",
        "uplink_message.settings",
        "uplink_message.received_at",
        "uplink_message.consumed_airtime",
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
        parse_message(body, now=NOW)


def test_message_body_refuses_what_the_network_would_not_send() -> None:
    with pytest.raises(EncodeError, match="dev_eui"):
        message_body(dev_eui="xyz", fport=1, payload=b"", fcnt=0, time=NOW)
    with pytest.raises(EncodeError, match="fport"):
        message_body(dev_eui="02EE0000000000AB", fport=256, payload=b"", fcnt=0, time=NOW)
    with pytest.raises(EncodeError, match="fcnt"):
        message_body(dev_eui="02EE0000000000AB", fport=1, payload=b"", fcnt=-1, time=NOW)


def test_message_body_omits_defaults_as_the_stack_does() -> None:
    document = json.loads(
        message_body(dev_eui="02ee0000000000ab", fport=0, payload=b"", fcnt=0, time=NOW)
    )
    message = document["uplink_message"]
    assert not {"f_port", "f_cnt", "frm_payload"} & message.keys()
    assert document["end_device_ids"]["dev_eui"] == "02EE0000000000AB"
    assert "simulated" not in document


_variants = st.one_of(
    _json,
    st.sampled_from(
        [
            "16",
            16.0,
            "",
            "AYY=",
            "AYY",
            "AY==",
            "AYZ=",
            " AYY=",
            "2026-03-12T18:05:14Z",
            "2026-03-12T18:05:14.5+00:00",
            "2026-03-12T19:05:14+01:00",
            "2026-03-12 18:05:14Z",
            "2026-02-30T18:05:14Z",
            "1970-01-01T00:00:00Z",
            "1.5s",
            "868100000",
            "0004a30b001c2abc",
            -97,
            -97.5,
            7.2,
            0,
            255,
            2**32,
            True,
            [],
            {},
            [{"rssi": -90, "snr": 1, "gateway_ids": {"gateway_id": "g"}}],
            [{"channel_rssi": -80}, {"rssi": "x"}],
            {"data_rate": {"lora": {"spreading_factor": 7, "bandwidth": 125000}}},
            {"data_rate": {"lora": {"spreading_factor": "7"}}, "frequency": 868100000.0},
            {"data_rate": []},
        ]
    ),
)
_all_paths = st.sampled_from(
    [
        "end_device_ids.dev_eui",
        "end_device_ids.device_id",
        "end_device_ids.application_ids",
        "end_device_ids.application_ids.application_id",
        "received_at",
        "simulated",
        "uplink_message.f_port",
        "uplink_message.f_cnt",
        "uplink_message.frm_payload",
        "uplink_message.session_key_id",
        "uplink_message.rx_metadata",
        "uplink_message.settings",
        "uplink_message.settings.frequency",
        "uplink_message.settings.data_rate",
        "uplink_message.received_at",
        "uplink_message.consumed_airtime",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(_all_paths, _variants | st.just(_DELETE)), min_size=0, max_size=4))
def test_the_plain_reader_agrees_with_the_general_one(changes: list[tuple[str, Any]]) -> None:
    """Wherever the one-pass reader answers, it answers what the field-by-field one does."""
    from lora_emotion.networks import ttn

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
    plain = ttn._plain_uplink(document)
    try:
        general: Any = ttn._parse(document, now=NOW)
    except DecodeError as exc:
        general = exc
    if plain is not None:
        assert plain == general
    if not changes:
        assert plain is not None, "the documented uplink takes the plain path"


@pytest.mark.parametrize(
    ("field", "value"),
    [("dev_eui", 5), ("dev_eui", "02EE"), ("device_id", []), ("received_at", "soon")],
)
def test_other_messages_with_fields_the_stack_would_not_send_are_refused(
    field: str, value: Any
) -> None:
    ids = {**DOCUMENTED["end_device_ids"]}
    document: dict[str, Any] = {"end_device_ids": ids, "join_accept": {}}
    if field == "received_at":
        document["received_at"] = value
    else:
        ids[field] = value
    with pytest.raises(DecodeError, match=field):
        parse_message(_body(document), now=NOW)
