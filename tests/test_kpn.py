"""Tests of lora_emotion.networks.kpn: tokens, KPN-style bodies and taking deliveries apart."""

from __future__ import annotations

import contextlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.networks.kpn import (
    MAX_DEVICE_LENGTH,
    dedup_key,
    delivery_body,
    device_base_name,
    device_urn,
    java_double,
    message_token,
    parse_delivery,
    raw_payload_records,
    split_name,
    verify_token,
)
from lora_emotion.senml import Record, decode_json, resolve

VECTORS = json.loads((Path(__file__).parent / "vectors" / "messages.json").read_text())
EUI = "0004A30B001F1234"
URN = "urn:dev:DEVEUI:0004A30B001F1234"
BT = 1_615_572_314.0
NOW = 1_700_000_000.0
HAPPY = bytes.fromhex("81A20067656D6F74696F6E03656861707079")


def raw(payload: bytes = HAPPY, fport: int = 1, layout: str = "legacy", bt: float = BT) -> bytes:
    return delivery_body(EUI, raw_payload_records(payload, fport), base_time=bt, layout=layout)  # type: ignore[arg-type]


def test_message_token_matches_an_independent_sha256() -> None:
    # printf '[{"n":"x"}]Shared-Secret-1!' | sha256sum
    expected = "4f4fe224d3546103c6c11af3fb056465f632dc5fcd5a72d47e4975a7fcb71b05"
    assert message_token(b'[{"n":"x"}]', "Shared-Secret-1!") == expected


def test_verify_token_accepts_any_current_secret_and_nothing_else() -> None:
    body = raw()
    token = message_token(body, "new-secret")
    assert verify_token(body, token, ["old-secret", "new-secret"])
    assert verify_token(body, token.upper(), ["new-secret"])
    assert not verify_token(body, token, ["old-secret"])
    assert not verify_token(body, token, [])
    assert not verify_token(body, None, ["new-secret"])
    assert not verify_token(body + b" ", token, ["new-secret"])
    assert not verify_token(body, "é" * 64, ["new-secret"])


def test_token_is_over_the_bytes_not_the_json() -> None:
    body = raw()
    reserialised = json.dumps(json.loads(body)).encode()
    assert message_token(body, "s") != message_token(reserialised, "s")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1_615_572_314.0, "1.615572314E9"),
        (1_615_572_314.123, "1.615572314123E9"),
        (1e7, "1.0E7"),
        (9_999_999.0, "9999999.0"),
        (123.45, "123.45"),
        (0.001, "0.001"),
        (0.0001, "1.0E-4"),
        (-2.5e10, "-2.5E10"),
        (0.0, "0.0"),
    ],
)
def test_java_double_writes_like_java(value: float, text: str) -> None:
    assert java_double(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_java_double_round_trips(value: float) -> None:
    text = java_double(value)
    assert float(text) == value
    assert re.fullmatch(r"-?\d+\.\d+(E-?\d+)?", text)


def test_java_double_refuses_non_finite() -> None:
    with pytest.raises(EncodeError):
        java_double(math.inf)


def test_delivery_body_layouts() -> None:
    legacy = raw(layout="legacy")
    merged = raw(layout="merged")
    assert legacy.startswith(b'[{"bn":"urn:dev:DEVEUI:0004A30B001F1234:","bt":1.615572314E9},')
    assert merged.startswith(b'[{"bn":"urn:dev:DEVEUI:0004A30B001F1234:","bt":1.615572314E9,"n"')
    assert len(json.loads(legacy)) == 3
    assert len(json.loads(merged)) == 2
    first = parse_delivery(legacy, now=NOW)
    second = parse_delivery(merged, now=NOW)
    assert first.measurements == second.measurements


def test_delivery_body_refuses_bad_input() -> None:
    with pytest.raises(EncodeError):
        delivery_body("XYZ", [], base_time=BT)
    with pytest.raises(EncodeError):
        delivery_body(EUI, [Record(bn="x:", n="a", v=1)], base_time=BT, layout="merged")
    with pytest.raises(EncodeError):
        raw_payload_records(b"\x00", 0)


def test_device_base_name_and_split_name() -> None:
    assert device_base_name("0004a30b001f1234") == URN + ":"
    assert split_name(URN + ":face:0:emotion") == (URN, "face:0:emotion")
    assert split_name("temperature") == (None, "temperature")


def test_the_2021_demo_uplink_becomes_an_emotion_reading() -> None:
    delivery = parse_delivery(raw(), now=NOW)
    assert delivery.device == URN
    assert delivery.dev_eui == EUI
    assert (delivery.kind, delivery.decode_status, delivery.fport) == ("payload", "ok", 1)
    assert delivery.payload == HAPPY
    assert delivery.event_time == BT
    decoded = [m for m in delivery.measurements if m.origin == "payload"]
    assert [(m.name, m.string_value, m.time) for m in decoded] == [("emotion", "happy", BT)]
    assert [m.name for m in delivery.measurements if m.origin == "kpn"] == ["payload", "port"]


def _expected(record: dict[str, Any]) -> tuple[str, Any, float]:
    value = record.get("v", record.get("vs", record.get("vb")))
    if isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return record["n"], value, BT + record.get("t", 0.0)


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_every_golden_vector_decodes_from_a_delivery(vector: dict[str, Any]) -> None:
    body = raw(bytes.fromhex(vector["hex"]), vector["fport"], layout="merged")
    delivery = parse_delivery(body, now=NOW)
    assert delivery.decode_status == "ok", delivery.decode_error
    decoded = [
        (m.name, m.value if m.value is not None else m.string_value, m.time)
        for m in delivery.measurements
        if m.origin == "payload"
    ]
    assert decoded == [_expected(r) for r in vector["senml"]]


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["name"])
def test_undecodable_payloads_are_kept_with_the_error(vector: dict[str, Any]) -> None:
    body = raw(bytes.fromhex(vector["hex"]), vector["fport"])
    delivery = parse_delivery(body, now=NOW)
    assert delivery.decode_status == "error"
    assert delivery.decode_error
    assert [m.name for m in delivery.measurements] == ["payload", "port"]


def test_kpn_decoded_thingsml_geolocation_and_unknown_records() -> None:
    decoded = parse_delivery(
        f'[{{"bn":"{URN}:","bt":1.615572314E9,"n":"emotion","vs":"happy"}}]', now=NOW
    )
    assert (decoded.kind, decoded.decode_status) == ("decoded", "none")
    assert decoded.measurements[0].string_value == "happy"
    geo = parse_delivery(
        f'[{{"bn":"{URN}:","bt":{BT}}},{{"n":"locOrigin","vs":"LORA"}},'
        '{"n":"latitude","u":"lat","v":52.1},{"n":"longitude","u":"lon","v":5.1},'
        '{"n":"radius","u":"m","v":120}]',
        now=NOW,
    )
    assert geo.kind == "geolocation"
    assert {m.name: m.unit for m in geo.measurements}["latitude"] == "lat"
    odd = parse_delivery(
        f'[{{"bn":"{URN}:","bt":{BT},"n":"TIME_ORIGIN","vs":"NETWORK","x_custom":[1,2]}},'
        '{"n":"rssi","v":-97,"u":"dBm"}]',
        now=NOW,
    )
    assert [m.name for m in odd.measurements] == ["TIME_ORIGIN", "rssi"]
    assert odd.measurements[0].extra == (("x_custom", [1, 2]),)


def test_payload_problems_are_decode_errors_not_exceptions() -> None:
    no_port = parse_delivery(f'[{{"bn":"{URN}:","bt":{BT},"n":"payload","vs":"0186"}}]', now=NOW)
    assert no_port.decode_status == "error"
    assert "port" in (no_port.decode_error or "")
    not_hex = parse_delivery(
        f'[{{"bn":"{URN}:","bt":{BT},"n":"payload","vs":"zz"}},{{"n":"port","v":16}}]', now=NOW
    )
    assert "not hex" in (not_hex.decode_error or "")
    bad_port = parse_delivery(
        f'[{{"bn":"{URN}:","bt":{BT},"n":"payload","vs":"0186"}},{{"n":"port","v":1.5}}]', now=NOW
    )
    assert "FPort" in (bad_port.decode_error or "")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "invalid JSON"),
        (b"{}", "array"),
        (b'[{"n":"emotion","vs":"happy"}]', "names no device"),
        (f'[{{"bn":"{URN}:","bt":1e13,"n":"x","v":1}}]'.encode(), "outside"),
        (f'[{{"bn":"{URN}:","n":"x","v":1,"vs":"a"}}]'.encode(), "more than one value"),
    ],
)
def test_malformed_deliveries_raise_decode_error(body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment):
        parse_delivery(body, now=NOW)


def test_batch_entries_keep_their_own_times() -> None:
    vector = next(v for v in VECTORS["vectors"] if v["name"] == "batch-readings-fer2013")
    delivery = parse_delivery(raw(bytes.fromhex(vector["hex"]), vector["fport"]), now=NOW)
    times = [m.time for m in delivery.measurements if m.name == "emotion"]
    assert times == [BT - 5, BT - 65, BT - 4160]


def test_dedup_key_ignores_spelling_but_not_content() -> None:
    body = raw()
    spelled = body.replace(b"1.615572314E9", b"1615572314")
    spaced = json.dumps(json.loads(body), indent=2).encode()
    reordered = json.dumps([dict(reversed(list(r.items()))) for r in json.loads(body)]).encode()
    merged = raw(layout="merged")
    keys = {
        parse_delivery(b, now=NOW).dedup_key for b in (body, spelled, spaced, reordered, merged)
    }
    assert len(keys) == 1
    assert parse_delivery(body, now=NOW + 60).dedup_key in keys
    assert parse_delivery(raw(bt=BT + 0.001), now=NOW).dedup_key not in keys
    assert parse_delivery(raw(HAPPY[:-1] + b"x"), now=NOW).dedup_key not in keys
    other = body.replace(b"001F1234", b"001F1235")
    assert parse_delivery(other, now=NOW).dedup_key not in keys
    assert dedup_key(URN, resolve(decode_json(body), now=0.0)) in keys


def test_dedup_key_of_records_without_time_ignores_arrival() -> None:
    body = f'[{{"bn":"{URN}:","n":"emotion","vs":"sad"}}]'
    first, later = parse_delivery(body, now=NOW), parse_delivery(body, now=NOW + 3600)
    assert first.dedup_key == later.dedup_key
    assert first.measurements[0].time == NOW


_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_hexes = st.sampled_from([v["hex"] for v in VECTORS["vectors"] + VECTORS["invalid"]])
_record = st.dictionaries(
    st.sampled_from(["bn", "bt", "n", "u", "v", "vs", "vb", "vd", "t", "s", "ut", "bu", "other"]),
    _json_value
    | st.just(URN + ":")
    | st.sampled_from(["payload", "port", "emotion"])
    | _hexes
    | st.sampled_from([1, 2, 16, 17, 21, 36, 300]),
    max_size=6,
)
_pack = st.tuples(st.booleans(), st.lists(_record, max_size=5)).map(
    lambda t: ([{"bn": URN + ":", "bt": BT}] if t[0] else []) + t[1]
)


@given(_pack, st.floats(0, 2e9))
def test_parse_delivery_raises_only_decode_error(records: list[dict[str, Any]], now: float) -> None:
    body = json.dumps(records).encode()
    try:
        delivery = parse_delivery(body, now=now)
    except DecodeError:
        return
    assert delivery.device.startswith("urn:dev:")
    assert len(delivery.dedup_key) == 64


@given(st.binary(max_size=80))
def test_parse_delivery_on_arbitrary_bytes(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        parse_delivery(body, now=NOW)


def test_kpn_is_sans_io() -> None:
    script = (
        "import json, sys, lora_emotion.networks.kpn\n"
        "print(json.dumps([m for m in ('socket', 'asyncio', 'fastapi', 'sqlalchemy', "
        "'http.client') if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


def test_device_urns_are_spelled_one_way_and_bounded() -> None:
    lower = "urn:dev:deveui:0004a30b001f1234"
    assert device_urn(lower) == URN
    assert split_name(lower + ":emotion") == (URN, "emotion")
    body = delivery_body("0004A30B001F1234", raw_payload_records(b"\x01\x86", 16), base_time=1e9)
    parsed = parse_delivery(body.replace(URN.encode(), lower.encode()), now=1e9)
    assert parsed.device == URN and parsed.dev_eui == "0004A30B001F1234"
    assert {m.device for m in parsed.measurements} == {URN}
    assert device_urn("urn:dev:mac:0024befffe804ff1") == "urn:dev:mac:0024befffe804ff1"
    for bad, fragment in [
        ("urn:dev:DEVEUI:" + "AB" * 2_000, "4000 characters"),
        ("urn:dev:DEVEUI:0004A30B001F123G", "16 hex digits"),
        ("urn:dev:DEVEUI:0004A30B001F123", "16 hex digits"),
        ("urn:dev:os:" + "x" * (MAX_DEVICE_LENGTH - 10), "more than the 200"),
    ]:
        with pytest.raises(DecodeError, match=fragment) as caught:
            device_urn(bad)
        assert caught.value.field == "device URN"


def test_the_old_import_path_is_the_same_module_and_warns() -> None:
    import importlib
    import sys
    import warnings

    from lora_emotion.networks import kpn

    sys.modules.pop("lora_emotion.kpn", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("lora_emotion.kpn")
    assert old is kpn
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert "lora_emotion.networks.kpn" in str(caught[0].message)
