"""Tests for lora_emotion.thingsml: KPN's vectors, the index table, strict decoding, round trips."""

from __future__ import annotations

import contextlib
import json
import re
import struct
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion import thingsml
from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.senml import Record, decode_json, resolve
from lora_emotion.thingsml import INDEX_LABEL, INDEX_TABLE, decode, encode

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "thingsml.json").read_text(encoding="utf-8")
)
BN = "urn:dev:DEVEUI:0004A30B001C2ABC:"


def _records(vector: dict[str, Any]) -> list[Record]:
    return decode_json(json.dumps(vector["records"]))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_decodes(vector: dict[str, Any]) -> None:
    assert decode(bytes.fromhex(vector["hex"])) == _records(vector)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_encodes_byte_for_byte(vector: dict[str, Any]) -> None:
    assert encode(_records(vector)).hex().upper() == vector["hex"]


def test_vectors_file_shape() -> None:
    assert len(VECTORS) >= 10
    assert all(set(v) == {"name", "hex", "fport", "records"} for v in VECTORS)
    assert all(v["fport"] == 1 for v in VECTORS)
    assert len({v["hex"] for v in VECTORS}) == len(VECTORS)


def test_public_temperature_vector() -> None:
    payload = bytes.fromhex("81A2173702F93E00")
    assert decode(payload) == [Record(n="temperature", u="Cel", v=1.5)]
    assert encode([Record(n="temperature", u="Cel", v=1.5)]) == payload


def test_2021_emotion_demo_payload() -> None:
    payload = bytes.fromhex("81A20067656D6F74696F6E03656861707079")
    assert len(payload) == 18
    assert decode(payload) == [Record(n="emotion", vs="happy")]
    assert encode([Record(n="emotion", vs="happy")]) == payload
    # What KPN's "Decoded ThingsML" destination delivered for it.
    (resolved,) = resolve([Record(bn=BN, bt=1.615572314e9), *decode(payload)], now=0)
    assert resolved.to_json_dict() == {"n": BN + "emotion", "t": 1.615572314e9, "vs": "happy"}


# --- the index table ------------------------------------------------------------------------


def test_index_table_covers_minus_24_to_14() -> None:
    assert sorted(INDEX_TABLE) == list(range(-24, 15))
    assert INDEX_TABLE[-24] == ("temperature", "Cel")
    assert INDEX_TABLE[-23] == ("humidity", "%RH")
    assert INDEX_TABLE[-5] == ("electricResistance", "Ohm")
    assert INDEX_TABLE[5] == ("batteryLevel", "%EL")
    assert INDEX_TABLE[8] == ("batteryLevelLow", "/")
    assert INDEX_TABLE[13] == ("presence", None)
    assert INDEX_TABLE[14] == ("counter", None)
    assert len(set(INDEX_TABLE.values())) == len(INDEX_TABLE)
    assert INDEX_LABEL == 23
    with pytest.raises(TypeError):
        INDEX_TABLE[99] = ("x", None)  # type: ignore[index]


@pytest.mark.parametrize("index", sorted(INDEX_TABLE))
def test_every_index_round_trips(index: int) -> None:
    name, unit = INDEX_TABLE[index]
    record = Record(n=name, u=unit, v=1)
    payload = encode([record])
    assert cbor2.loads(payload) == [{INDEX_LABEL: index, 2: 1}]
    assert decode(payload) == [record]


def test_name_with_another_unit_is_sent_by_name() -> None:
    for record, expected in [
        (Record(n="temperature", u="K", v=300), {0: "temperature", 1: "K", 2: 300}),
        (Record(n="temperature", v=21), {0: "temperature", 2: 21}),
        (Record(n="presence", u="/", vb=True), {0: "presence", 1: "/", 4: True}),
    ]:
        assert cbor2.loads(encode([record])) == [expected]
        assert decode(encode([record])) == [record]


def test_explicit_unit_wins_over_the_index_unit() -> None:
    payload = cbor2.dumps([{INDEX_LABEL: -24, 1: "K", 2: 300}])
    assert decode(payload) == [Record(n="temperature", u="K", v=300)]


def test_index_unit_wins_over_base_unit_only_where_it_has_one() -> None:
    payload = cbor2.dumps([{-4: "count", INDEX_LABEL: -24, 2: 20}, {INDEX_LABEL: 14, 2: 7}])
    records = decode(payload)
    assert records == [Record(bu="count", n="temperature", u="Cel", v=20), Record(n="counter", v=7)]
    assert [r.unit for r in resolve(records, now=0)] == ["Cel", "count"]
    assert encode(records) == payload


def test_text_label_i_is_accepted() -> None:
    payload = cbor2.dumps([{"i_": -24, 2: 1.5}])
    assert decode(payload) == [Record(n="temperature", u="Cel", v=1.5)]


# --- encoding -------------------------------------------------------------------------------


def test_floats_take_the_smallest_exact_width() -> None:
    def value_bytes(v: float) -> str:
        return encode([Record(n="x", v=v)])[6:].hex()

    # cbor2's canonical mode picks the same widths for normal numbers.
    for v in (1.5, 65504.0, 100000.0, 0.1, 1e300, -0.0):
        assert value_bytes(v) == cbor2.dumps(v, canonical=True).hex()
    assert value_bytes(1.5) == "f93e00"
    assert value_bytes(100000.0) == "fa47c35000"
    assert value_bytes(0.1) == "fb3fb999999999999a"
    # KPN's C library decodes subnormal halves as zero; cbor2 would write f90002 here.
    assert cbor2.dumps(2.0**-23, canonical=True).hex() == "f90002"
    assert value_bytes(2.0**-23) == "fa34000000"
    assert value_bytes(2.0**-14) == "f90400"
    assert value_bytes(10) == "0a"
    assert value_bytes(-500) == "3901f3"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_width_is_exact_and_minimal(value: float) -> None:
    encoded = encode([Record(n="x", v=value)])[6:]
    (decoded,) = decode(encode([Record(n="x", v=value)]))
    assert decoded.v == value and type(decoded.v) is float
    widths = {0xF9: 2, 0xFA: 4, 0xFB: 8}
    width = widths[encoded[0]]
    assert len(encoded) == 1 + width
    if width > 2 and (value == 0 or abs(value) >= 2.0**-14):
        with pytest.raises((OverflowError, AssertionError)):
            assert struct.unpack(">e", struct.pack(">e", value))[0] == value
    if width > 4:
        with pytest.raises((OverflowError, AssertionError)):
            assert struct.unpack(">f", struct.pack(">f", value))[0] == value


def test_legacy_base_record_is_merged_into_the_first_measurement() -> None:
    legacy = [Record(bn=BN, bt=1615572314), Record(n="emotion", vs="happy"), Record(n="x", v=1)]
    payload = encode(legacy)
    assert decode(payload) == [
        Record(bn=BN, bt=1615572314, n="emotion", vs="happy"),
        Record(n="x", v=1),
    ]
    assert resolve(decode(payload), now=0) == resolve(legacy, now=0)


def test_base_record_is_kept_when_merging_would_change_meaning() -> None:
    pack = [Record(bn="a:", bt=1.5e9), Record(bn="b:", n="x", v=1)]
    assert decode(encode(pack)) == pack
    only_base = [Record(bn="a:")]
    assert decode(encode(only_base)) == only_base


def test_unknown_text_fields_travel_after_the_value() -> None:
    record = Record(n="emotion", vs="happy", extra=(("model", "fer2013"),))
    payload = encode([record])
    assert payload.hex().endswith("656d6f64656c6766657232303133")
    assert decode(payload) == [record]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([Record(n="x", v=float("nan"))], "record 0 field 'v': expected a finite number"),
        ([Record(n="x", vs=1)], "record 0 field 'vs': expected a string"),  # type: ignore[arg-type]
        ([Record(n="x", v=1, extra=(("i_", -24),))], "record 0 field 'i_': must-understand"),
        ([Record(n="x", v=1), "x"], "record 1: expected a Record"),
    ],
)
def test_encode_rejects(records: list[Record], message: str) -> None:
    with pytest.raises(EncodeError, match=re.escape(message)):
        encode(records)


# --- decoding errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hex_data", "message"),
    [
        ("", "invalid CBOR"),
        ("81a2173702", "invalid CBOR: CBORDecodeEOF"),
        ("a2173702f93e00", "expected a CBOR array of records, got object"),
        ("8101", "record 0: expected a map, got number"),
        ("81a2171863020a", "record 0 field 'i_': unknown measurement index 99"),
        (
            "81a21761780201",
            "record 0 field 'i_': expected an integer measurement index, got string",
        ),
        ("81a217f90000020a", "record 0 field 'i_': expected an integer measurement index"),
        ("81a217f5020a", "record 0 field 'i_': expected an integer measurement index"),
        ("81a3006161173702f93e00", "record 0 field 'n': record has both a name and a measurement"),
        ("81a3173762695f370201", "record 0 field 'i_': measurement index given twice"),
        ("81a2006165030a", "record 0 field 'vs': expected a string, got number"),
        ("81a200616503f5", "record 0 field 'vs': expected a string, got boolean"),
        ("81a2173702617a", "record 0 field 'v': expected a number, got string"),
        ("81a2173702f7", "record 0 field 'v': expected a number"),
        ("81a2173704f93c00", "record 0 field 'vb': expected a boolean, got number"),
        ("81a2173708617a", "record 0 field 'vd': expected a byte string"),
        ("81a21737186302", "record 0 field 99: unknown integer label"),
        ("81a2173702c11a00000000", "CBOR tags are not allowed"),
        ("81a2173702f93e0000", "1 bytes of trailing data"),
        ("81a3173702f93e0002f93e00", "invalid CBOR"),
        ("81a1818000", "map key must be an integer or text label, got array"),
        ("81a1a1000000", "map key must be an integer or text label, got object"),
        ("9bffffffffffffffff", "invalid CBOR"),
        ("81" * 200 + "00", "invalid CBOR"),
    ],
)
def test_decode_rejects(hex_data: str, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        decode(bytes.fromhex(hex_data))


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(DecodeError, match="expected bytes, got str"):
        decode("81A2173702F93E00")  # type: ignore[arg-type]


def test_decode_accepts_bytearray_and_memoryview() -> None:
    payload = bytes.fromhex("81A2173702F93E00")
    expected = decode(payload)
    assert decode(bytearray(payload)) == expected  # type: ignore[arg-type]
    assert decode(memoryview(payload)) == expected  # type: ignore[arg-type]


# --- properties -----------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_decode_fuzz_raises_only_decode_error(data: bytes) -> None:
    try:
        records = decode(data)
    except DecodeError:
        return
    assert all(isinstance(record, Record) for record in records)


@given(
    st.sampled_from([bytes.fromhex(v["hex"]) for v in VECTORS]),
    st.integers(0, 200),
    st.binary(min_size=0, max_size=3),
    st.integers(0, 3),
)
def test_decode_mutated_vectors_raises_only_decode_error(
    payload: bytes, where: int, insert: bytes, cut: int
) -> None:
    where %= len(payload)
    mutated = payload[:where] + insert + payload[where + cut :]
    with contextlib.suppress(DecodeError):
        decode(mutated)


keys = st.integers(-8, 30) | st.sampled_from(["i_", "x", "n", "y_"])
leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.binary(max_size=6)
)
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


@given(st.lists(st.dictionaries(keys, values, max_size=6), max_size=4) | values)
def test_decode_generated_cbor_raises_only_decode_error(document: object) -> None:
    try:
        records = decode(cbor2.dumps(document))
    except DecodeError:
        return
    # Whatever decodes encodes again, to a payload that means the same.
    again = decode(encode(records))
    try:
        expected = resolve(records, now=0)
    except DecodeError:
        return
    assert resolve(again, now=0) == expected


measurements: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.sampled_from(sorted(INDEX_TABLE.values())).map(lambda nu: {"n": nu[0], "u": nu[1]}),
    st.builds(
        dict,
        n=st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}", fullmatch=True),
        u=st.none() | st.sampled_from(["Cel", "/", "beat/min", "S"]),
    ),
)
value_fields: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.builds(dict, v=st.floats(allow_nan=False, allow_infinity=False) | st.integers(-1000, 1000)),
    st.builds(dict, vs=st.text(max_size=8)),
    st.builds(dict, vb=st.booleans()),
    st.builds(dict, vd=st.binary(max_size=8)),
)
timed: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict, t=st.none() | st.integers(-3600, 0) | st.floats(-3600, 0)
)


@st.composite
def thingsml_packs(draw: st.DrawFn) -> list[Record]:
    pack = []
    for position in range(draw(st.integers(1, 5))):
        fields = {**draw(measurements), **draw(value_fields), **draw(timed)}
        if position == 0:
            fields["bn"] = draw(st.none() | st.just(BN))
            fields["bt"] = draw(
                st.none() | st.floats(1.5e9, 2e9) | st.integers(1_500_000_000, 2**31)
            )
        pack.append(Record(**fields))
    return pack


@given(thingsml_packs())
def test_round_trip(pack: list[Record]) -> None:
    payload = encode(pack)
    assert decode(payload) == pack
    assert encode(decode(payload)) == payload


@given(thingsml_packs())
def test_indexes_never_cost_bytes(pack: list[Record]) -> None:
    by_name = thingsml.encode(pack)
    plain = cbor2.dumps([record.to_cbor_dict() for record in pack])
    assert len(by_name) <= len(plain)
