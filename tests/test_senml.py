"""Tests for lora_emotion.senml: KPN bodies, RFC 8428 resolution, strict decoding, round trips."""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.senml import (
    CBOR_LABELS,
    RELATIVE_TIME_LIMIT,
    Record,
    ResolvedRecord,
    decode_cbor,
    decode_json,
    encode_cbor,
    encode_json,
    resolve,
)

NOW = 1_700_000_000.0
BN = "urn:dev:DEVEUI:0004A30B001C2ABC:"
KPN_BT = 1615572314.0

# Bodies as KPN Things sends them: base time in exponent notation, both layouts.
KPN_LEGACY = (
    '[{"bn":"urn:dev:DEVEUI:0004A30B001C2ABC:","bt":1.615572314E9},'
    '{"n":"payload","vs":"0123"},{"n":"port","v":1},{"n":"emotion","vs":"happy"}]'
)
KPN_MERGED = (
    '[{"bn":"urn:dev:DEVEUI:0004A30B001C2ABC:","bt":1.615572314E9,"n":"payload","vs":"0123"},'
    '{"n":"port","v":1},{"n":"emotion","vs":"happy"}]'
)
# A "LoRa Geolocation" delivery: no payload at all. The locOrigin value is illustrative.
KPN_GEOLOCATION = (
    '[{"bn":"urn:dev:DEVEUI:0004A30B001C2ABC:","bt":1.615572314E9,"n":"locOrigin",'
    '"vs":"KPNLORA"},{"n":"latitude","u":"lat","v":52.0872},{"n":"longitude","u":"lon",'
    '"v":5.1165},{"n":"radius","u":"m","v":120},{"n":"timeOrigin","vs":"NETWORK"}]'
)


def _resolved(name: str, value: object, unit: str | None = None) -> ResolvedRecord:
    return ResolvedRecord(name=BN + name, time=KPN_BT, unit=unit, value=value)  # type: ignore[arg-type]


# --- KPN Things bodies ----------------------------------------------------------------------


def test_kpn_legacy_layout_decodes_as_written() -> None:
    records = decode_json(KPN_LEGACY)
    assert records == [
        Record(bn=BN, bt=KPN_BT),
        Record(n="payload", vs="0123"),
        Record(n="port", v=1),
        Record(n="emotion", vs="happy"),
    ]
    assert type(records[2].v) is int


def test_both_kpn_layouts_resolve_to_the_same_measurements() -> None:
    expected = [
        _resolved("payload", "0123"),
        _resolved("port", 1),
        _resolved("emotion", "happy"),
    ]
    assert resolve(decode_json(KPN_LEGACY), now=NOW) == expected
    assert resolve(decode_json(KPN_MERGED), now=NOW) == expected
    assert resolve(decode_json(KPN_MERGED.encode()), now=NOW) == expected


def test_kpn_geolocation_delivery() -> None:
    resolved = resolve(decode_json(KPN_GEOLOCATION), now=NOW)
    assert resolved == [
        _resolved("locOrigin", "KPNLORA"),
        _resolved("latitude", 52.0872, "lat"),
        _resolved("longitude", 5.1165, "lon"),
        _resolved("radius", 120, "m"),
        _resolved("timeOrigin", "NETWORK"),
    ]
    assert resolved[1].to_json_dict() == {
        "n": BN + "latitude",
        "t": KPN_BT,
        "u": "lat",
        "v": 52.0872,
    }


def test_kpn_body_re_encodes_to_equivalent_json() -> None:
    # KPN's exponent notation does not survive (so the webhook must hash the received bytes),
    # but the content does.
    text = encode_json(decode_json(KPN_MERGED))
    assert "1.615572314E9" not in text
    assert json.loads(text) == json.loads(KPN_MERGED)


# --- resolution (RFC 8428 §4) ---------------------------------------------------------------


def test_base_fields_apply_from_any_record_until_replaced() -> None:
    pack = decode_json(
        '[{"bn":"a:","bu":"Cel","bv":20,"n":"t1","v":1.5},{"n":"t2","u":"K","v":2},'
        '{"bn":"b:","n":"x","v":3},{"n":"y","bs":100,"s":5},{"bv":0,"n":"z","v":4}]'
    )
    resolved = resolve(pack, now=NOW)
    assert [(r.name, r.unit, r.value, r.sum) for r in resolved] == [
        ("a:t1", "Cel", 21.5, None),
        ("a:t2", "K", 22, None),
        ("b:x", "Cel", 23, None),
        ("b:y", "Cel", None, 105),
        ("b:z", "Cel", 4, None),
    ]
    assert type(resolved[1].value) is int


@pytest.mark.parametrize(
    ("record", "time"),
    [
        (Record(n="a", v=1), NOW),
        (Record(n="a", v=1, t=-5), NOW - 5),
        (Record(n="a", v=1, t=1.6e9), 1.6e9),
        (Record(bt=1e9, n="a", v=1, t=-60), 1e9 - 60),
        (Record(n="a", v=1, t=RELATIVE_TIME_LIMIT - 1), NOW + RELATIVE_TIME_LIMIT - 1),
        (Record(n="a", v=1, t=RELATIVE_TIME_LIMIT), float(RELATIVE_TIME_LIMIT)),
        (Record(bt=10, n="a", v=1, t=1), NOW + 11),
    ],
)
def test_times_resolve_relative_below_2_to_the_28(record: Record, time: float) -> None:
    (resolved,) = resolve([record], now=NOW)
    assert resolved.time == time
    assert type(resolved.time) is float


def test_base_name_alone_is_a_name() -> None:
    (resolved,) = resolve([Record(bn="urn:dev:x", v=1)], now=NOW)
    assert resolved.name == "urn:dev:x"


def test_records_with_only_base_fields_yield_nothing() -> None:
    pack = [Record(bn=BN, bt=KPN_BT), Record(n="a", v=1), Record(bn="other:"), Record(n="b", v=2)]
    assert [r.name for r in resolve(pack, now=NOW)] == [BN + "a", "other:b"]
    assert resolve([Record(bn=BN, bt=KPN_BT)], now=NOW) == []


def test_resolution_keeps_unknown_fields_and_a_non_default_version() -> None:
    pack = [Record(bver=11, n="a", v=1, extra=(("conf", 0.9),)), Record(n="b", vb=True)]
    resolved = resolve(pack, now=NOW)
    assert resolved[0].extra == (("conf", 0.9), ("bver", 11))
    assert resolved[1].to_json_dict() == {"n": "b", "t": NOW, "vb": True, "bver": 11}
    assert resolve([Record(bver=10, n="a", v=1)], now=NOW)[0].extra == ()


def test_resolved_json_has_one_value_field() -> None:
    pack = [
        Record(n="d", vd=b"\xfb\xff"),
        Record(n="s", s=3, ut=60),
        Record(n="v", v=2.5, s=1),
    ]
    assert [r.to_json_dict() for r in resolve(pack, now=NOW)] == [
        {"n": "d", "t": NOW, "vd": "-_8"},
        {"n": "s", "t": NOW, "s": 3, "ut": 60},
        {"n": "v", "t": NOW, "v": 2.5, "s": 1},
    ]


@pytest.mark.parametrize(
    ("pack", "message"),
    [
        ([Record(v=1)], "record 0 field 'n': record has no name"),
        ([Record(n="bad name", v=1)], "record 0 field 'n': name 'bad name' is not"),
        ([Record(bn="-x", v=1)], "record 0 field 'bn': name '-x' is not"),
        ([Record(bn="urn:é:", n="a", v=1)], "record 0 field 'n': name"),
        ([Record(n="a", v=1, vs="x")], "record 0 field 'vs': more than one value: v, vs"),
        ([Record(n="a")], "record 0 field 'v': record has neither a value"),
        ([Record(n="a", u="Cel", t=1)], "record 0 field 'v': record has neither a value"),
        ([Record(n="a", v=1), Record(n="b")], "record 1 field 'v'"),
        ([Record(bver="10", n="a", v=1)], "record 0 field 'bver': expected an integer"),  # type: ignore[arg-type]
        ([Record(n="a", v=True)], "record 0 field 'v': expected a number, got boolean"),
        ([Record(bt=1e308, n="a", v=1, t=1e308)], "record 0 field 't': resolved value is not"),
        ([Record(bv=1e308, n="a", v=1e308)], "record 0 field 'v': resolved value is not"),
        (["not a record"], "record 0: expected a Record, got str"),
    ],
)
def test_resolve_rejects_invalid_packs(pack: list[Record], message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        resolve(pack, now=NOW)


def test_resolve_rejects_non_finite_now() -> None:
    with pytest.raises(DecodeError, match="'t'"):
        resolve([Record(n="a", v=1)], now=math.inf)


# --- JSON decoding --------------------------------------------------------------------------


def test_error_message_names_record_and_field() -> None:
    with pytest.raises(DecodeError) as info:
        decode_json('[{"n":"a","v":1},{"n":"b","v":2},{"n":"c","v":"x"}]')
    assert str(info.value) == "record 2 field 'v': expected a number, got string"
    assert info.value.field == "record 2 field 'v'"
    assert info.value.reason == "expected a number, got string"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"n":"a","v":true}]', "record 0 field 'v': expected a number, got boolean"),
        ('[{"n":"a","v":null}]', "record 0 field 'v': expected a number, got null"),
        ('[{"n":"a","v":NaN}]', "record 0 field 'v': expected a finite number, got NaN"),
        ('[{"n":"a","v":Infinity}]', "record 0 field 'v': expected a finite number, got Infinity"),
        ('[{"n":"a","t":-Infinity,"v":1}]', "record 0 field 't': expected a finite number"),
        ('[{"n":"a","v":1e400}]', "record 0 field 'v': number out of range: 1e400"),
        ('[{"n":"a","v":-1e400}]', "record 0 field 'v': number out of range"),
        ('[{"n":"a","v":18446744073709551616}]', "record 0 field 'v': integer out of range"),
        ('[{"n":"a","v":' + "9" * 5000 + "}]", "record 0 field 'v': integer out of range"),
        ('[{"bver":10.5,"n":"a","v":1}]', "record 0 field 'bver': expected an integer, got 10.5"),
        ('[{"bver":true,"n":"a","v":1}]', "record 0 field 'bver': expected an integer"),
        ('[{"n":5,"v":1}]', "record 0 field 'n': expected a string, got number"),
        ('[{"n":"a","vb":1}]', "record 0 field 'vb': expected a boolean, got number"),
        ('[{"n":"a","vs":["x"]}]', "record 0 field 'vs': expected a string, got array"),
        ('[{"n":"a","vd":5}]', "record 0 field 'vd': expected a base64url string, got number"),
        ('[{"n":"a","vd":"a"}]', "record 0 field 'vd': not base64url: impossible length"),
        ('[{"n":"a","vd":"a+b/"}]', "record 0 field 'vd': not base64url: only"),
        ('[{"n":"a","vd":"AA="}]', "record 0 field 'vd': not base64url: impossible length"),
        ('[{"n":"a","vd":"AB"}]', "record 0 field 'vd': not base64url: stray bits"),
        ('[{"n":"a","vd":"AA\\n"}]', "record 0 field 'vd': not base64url: only"),
        ('[{"n":"a","v":1,"foo_":1}]', "record 0 field 'foo_': must-understand field"),
        ('[{"n":"a","v":1,"i_":-24}]', "record 0 field 'i_': must-understand field"),
        ('[{"n":"a","n":"b","v":1}]', "record 0 field 'n': field appears twice"),
        ('[{"n":"a","v":1,"x":{"k":1,"k":2}}]', "record 0 field 'x': nested object repeats"),
        ('[{"n":"a","v":1,"x":[1,NaN]}]', "record 0 field 'x': expected a finite number"),
        ('[{"n":"\\ud800","v":1}]', "record 0 field 'n': string contains a lone surrogate"),
        ('[{"n":"a","v":1,"\\udfff":1}]', "string contains a lone surrogate"),
        ('{"n":"a","v":1}', "expected a JSON array of records, got object"),
        ("7", "expected a JSON array of records, got number"),
        ('[{"n":"a","v":1},1]', "record 1: expected an object, got number"),
        ('[{"n":"a","v":1},[]]', "record 1: expected an object, got array"),
        ('[{"n":"a"', "invalid JSON"),
        ("", "invalid JSON"),
        ("[" * 100_000, "JSON nested too deeply"),
        ("[1]x", "invalid JSON: Extra data"),
    ],
)
def test_decode_json_rejects(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        decode_json(text)


def test_decode_json_rejects_invalid_utf8() -> None:
    with pytest.raises(DecodeError, match="not UTF-8") as info:
        decode_json(b'[{"n":"\xff","v":1}]')
    assert info.value.offset == 7


def test_unknown_fields_are_kept_in_order_and_round_trip() -> None:
    text = '[{"n":"a","v":1,"zeta":{"k":[1,2.5,null,true]},"alpha":"x"}]'
    (record,) = decode_json(text)
    assert record.extra == (("zeta", {"k": [1, 2.5, None, True]}), ("alpha", "x"))
    assert encode_json([record]) == text


def test_vd_is_base64url_without_padding() -> None:
    (record,) = decode_json('[{"n":"f","vd":"aG9paG9pAA"}]')
    assert record.vd == b"hoihoi\x00"
    assert decode_json('[{"n":"f","vd":"aG9paG9pAA=="}]') == [record]
    assert encode_json([record]) == '[{"n":"f","vd":"aG9paG9pAA"}]'
    assert decode_json('[{"n":"f","vd":"-_8"}]')[0].vd == b"\xfb\xff"
    assert decode_json('[{"n":"f","vd":""}]')[0].vd == b""


def test_integers_stay_integers() -> None:
    records = decode_json('[{"n":"a","v":1},{"n":"b","v":1.0},{"n":"c","v":-0}]')
    assert [type(r.v) for r in records] == [int, float, int]
    assert encode_json(records) == '[{"n":"a","v":1},{"n":"b","v":1.0},{"n":"c","v":0}]'


def test_empty_pack() -> None:
    assert decode_json("[]") == []
    assert encode_json([]) == "[]"
    assert decode_cbor(b"\x80") == []


# --- encoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (Record(n="a", v=math.nan), "record 0 field 'v': expected a finite number"),
        (Record(n="a", v=True), "record 0 field 'v': expected a number, got boolean"),
        (Record(n="a", v=2**64), "record 0 field 'v': integer out of range"),
        (Record(n="a", vd="aGk"), "record 0 field 'vd': expected a byte string"),  # type: ignore[arg-type]
        (Record(n="a", vs=b"x"), "record 0 field 'vs': expected a string"),  # type: ignore[arg-type]
        (Record(n="\udc00", v=1), "record 0 field 'n': string contains a lone surrogate"),
        (Record(n="a", v=1, extra=(("v", 2),)), "record 0 field 'v': unknown field repeats"),
        (Record(n="a", v=1, extra=(("x", 1), ("x", 2))), "field 'x': unknown field repeats"),
        (Record(n="a", v=1, extra=(("x_", 1),)), "record 0 field 'x_': must-understand"),
        (Record(n="a", v=1, extra=(("x", b"b"),)), "record 0 field 'x': unsupported value"),
        (Record(n="a", v=1, extra=(("x", {1: 2}),)), "field 'x': nested object has a key"),
        (Record(n="a", v=1, extra=(("x", (1, 2)),)), "record 0 field 'x': unsupported value"),
        (Record(n="a", v=1, extra=(("x", [math.inf]),)), "field 'x': expected a finite"),
        (Record(n="a", v=1, extra=(("x",),)), "record 0: extra must hold (name, value) pairs"),  # type: ignore[arg-type]
    ],
)
def test_encode_json_rejects(record: Record, message: str) -> None:
    with pytest.raises(EncodeError, match=re.escape(message)):
        encode_json([record])


def test_encoders_reject_cyclic_extras() -> None:
    loop: list[object] = []
    loop.append(loop)
    for encode in (encode_json, encode_cbor):
        with pytest.raises(EncodeError, match="to itself"):
            encode([Record(n="a", v=1, extra=(("x", loop),))])


def test_encode_json_is_compact_in_label_order() -> None:
    record = Record(ut=5, t=-1, s=2, vs="x", u="m", n="a", bt=1.5, bn="b:")
    assert (
        encode_json([record])
        == '[{"bn":"b:","bt":1.5,"n":"a","u":"m","vs":"x","s":2,"t":-1,"ut":5}]'
    )


# --- CBOR -----------------------------------------------------------------------------------


def test_cbor_labels_are_rfc_8428_table_4() -> None:
    assert dict(CBOR_LABELS) == {
        "bver": -1, "bn": -2, "bt": -3, "bu": -4, "bv": -5, "bs": -6,
        "n": 0, "u": 1, "v": 2, "vs": 3, "vb": 4, "s": 5, "t": 6, "ut": 7, "vd": 8,
    }  # fmt: skip
    record = Record(bver=10, bn="b", bt=1, bu="u", bv=2, bs=3, n="n", u="u", v=4, s=5, t=6, ut=7)
    assert set(record.to_cbor_dict()) == set(CBOR_LABELS.values()) - {3, 4, 8}
    assert Record(n="x", vd=b"\x00").to_cbor_dict() == {0: "x", 8: b"\x00"}


def test_encode_cbor_bytes() -> None:
    assert encode_cbor([Record(n="a", v=1)]).hex() == "81a2006161" + "0201"
    # Floats take the smallest exact width; unknown text labels come last, in order.
    data = encode_cbor([Record(n="a", v=1.5, extra=(("z", 1), ("a", 2)))])
    assert data.hex() == "81a4006161" + "02f93e00" + "617a01" + "616102"
    assert cbor2.loads(data) == [{0: "a", 2: 1.5, "z": 1, "a": 2}]


def test_encode_cbor_float_widths() -> None:
    def value_bytes(v: float) -> str:
        return encode_cbor([Record(v=v)])[3:].hex()

    assert value_bytes(1.5) == "f93e00"
    assert value_bytes(-0.0) == "f98000"
    assert value_bytes(65504.0) == "f97bff"
    assert value_bytes(100000.0) == "fa47c35000"
    assert value_bytes(2.0**-24) == "fa33800000"  # a subnormal half: sent as single instead
    assert value_bytes(0.1) == "fb3fb999999999999a"
    assert value_bytes(1e300) == "fb7e37e43c8800759c"
    assert value_bytes(1) == "01"


@pytest.mark.parametrize(
    ("hex_data", "message"),
    [
        ("", "invalid CBOR"),
        ("a0", "expected a CBOR array of records, got object"),
        ("8101", "record 0: expected a map, got number"),
        ("81a10901", "record 0 field 9: unknown integer label"),
        ("81a1617601", "record 0 field 'v': label must be the integer 2, not text"),
        ("81a1f501", "record 0: map key must be an integer or text label, got boolean"),
        ("81a1f93c0001", "record 0: map key must be an integer or text label, got number"),
        ("81a18000", "record 0: map key must be an integer or text label, got array"),
        ("81a1a000", "record 0: map key must be an integer or text label, got object"),
        ("81a2006161026178", "record 0 field 'v': expected a number, got string"),
        ("81a200616102f97e00", "record 0 field 'v': expected a finite number, got nan"),
        ("81a200616102f7", "record 0 field 'v': expected a number, got UndefinedType"),
        ("81a200616103f0", "record 0 field 'vs': expected a string, got CBORSimpleValue"),
        ("81a200616108616b", "record 0 field 'vd': expected a byte string, got string"),
        ("81a20061610ac100", "CBOR tags are not allowed"),
        ("81a2006161c1006178", "CBOR tags are not allowed"),
        ("d9d9f781a1006161", "CBOR tags are not allowed"),
        ("81a200616102c24101", "CBOR tags are not allowed"),
        ("81a200616102", "invalid CBOR: CBORDecodeEOF"),
        ("81a20061610061620201", "invalid CBOR"),
        ("81a1006161" + "00", "1 bytes of trailing data"),
        ("9bffffffffffffffff", "invalid CBOR"),
        ("5bffffffffffffffff", "invalid CBOR"),
        ("81" * 1000 + "00", "invalid CBOR"),
        ("81a10061ff", "invalid CBOR"),
        ("81a2006161016278", "invalid CBOR"),
        ("81a3006161020162785f01", "record 0 field 'x_': must-understand field"),
    ],
)
def test_decode_cbor_rejects(hex_data: str, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        decode_cbor(bytes.fromhex(hex_data))


def test_decode_cbor_chains_the_cbor2_error() -> None:
    with pytest.raises(DecodeError) as info:
        decode_cbor(bytes.fromhex("81a2"))
    assert isinstance(info.value.__cause__, cbor2.CBORDecodeError)


def test_decode_cbor_trailing_data_offset() -> None:
    with pytest.raises(DecodeError) as info:
        decode_cbor(bytes.fromhex("80ff"))
    assert info.value.offset == 1


def test_decode_cbor_keeps_unknown_text_labels() -> None:
    data = cbor2.dumps([{0: "a", 2: 1, "conf": [0.5, b"\x01"], "k": {1: "x"}}])
    (record,) = decode_cbor(data)
    assert record == Record(n="a", v=1, extra=(("conf", [0.5, b"\x01"]), ("k", {1: "x"})))
    assert decode_cbor(encode_cbor([record])) == [record]
    with pytest.raises(EncodeError, match="field 'conf': unsupported value of type byte string"):
        encode_json([record])


# --- properties -----------------------------------------------------------------------------

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9:./_-]{0,12}", fullmatch=True)
finite = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(st.integers(-(2**64) + 1, 2**64 - 1), finite)
json_leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8))
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
extra_keys = st.text(max_size=6).filter(lambda k: k not in CBOR_LABELS and not k.endswith("_"))
extras = st.lists(st.tuples(extra_keys, json_values), max_size=3, unique_by=lambda e: e[0]).map(
    tuple
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


records = st.builds(
    Record,
    bn=_maybe(names),
    bt=_maybe(numbers),
    bu=_maybe(st.text(max_size=6)),
    bv=_maybe(numbers),
    bs=_maybe(numbers),
    bver=_maybe(st.integers(0, 20)),
    n=_maybe(names),
    u=_maybe(st.text(max_size=6)),
    v=_maybe(numbers),
    vs=_maybe(st.text(max_size=10)),
    vb=_maybe(st.booleans()),
    vd=_maybe(st.binary(max_size=10)),
    s=_maybe(numbers),
    t=_maybe(numbers),
    ut=_maybe(numbers),
    extra=extras,
)
packs = st.lists(records, max_size=4)


@given(packs)
def test_json_round_trip(pack: list[Record]) -> None:
    assert decode_json(encode_json(pack)) == pack


@given(packs)
def test_cbor_round_trip(pack: list[Record]) -> None:
    assert decode_cbor(encode_cbor(pack)) == pack


@given(packs)
def test_json_and_cbor_carry_the_same_records(pack: list[Record]) -> None:
    assert decode_json(encode_json(decode_cbor(encode_cbor(pack)))) == pack


def _decode_or_reject(decode: Any, data: object) -> None:
    try:
        result = decode(data)
    except DecodeError:
        return
    assert all(isinstance(record, Record) for record in result)
    with contextlib.suppress(DecodeError):
        resolve(result, now=NOW)


@given(st.binary(max_size=64))
def test_decode_cbor_fuzz_raises_only_decode_error(data: bytes) -> None:
    _decode_or_reject(decode_cbor, data)


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_decode_json_fuzz_raises_only_decode_error(data: bytes | str) -> None:
    _decode_or_reject(decode_json, data)


sloppy_values = st.recursive(
    json_leaves | st.floats() | st.integers(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
sloppy_records = st.dictionaries(
    st.sampled_from([*CBOR_LABELS, "x", "i_", "é"]), sloppy_values, max_size=5
)


@given(st.lists(sloppy_records, max_size=3) | sloppy_values)
def test_decode_json_arbitrary_documents(document: object) -> None:
    _decode_or_reject(decode_json, json.dumps(document))


cbor_keys = st.integers(-8, 24) | st.sampled_from(list(CBOR_LABELS)) | st.text(max_size=3)
cbor_leaves = json_leaves | st.floats() | st.binary(max_size=4) | st.integers()
cbor_values = st.recursive(
    cbor_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(cbor_keys, inner, max_size=3),
    max_leaves=8,
)


@given(st.lists(st.dictionaries(cbor_keys, cbor_values, max_size=5), max_size=3) | cbor_values)
def test_decode_cbor_generated_structures(document: object) -> None:
    _decode_or_reject(decode_cbor, cbor2.dumps(document))


value_fields = st.one_of(
    st.tuples(st.just("v"), st.floats(-1e6, 1e6) | st.integers(-1000, 1000)),
    st.tuples(st.just("vs"), st.text(max_size=5)),
    st.tuples(st.just("vb"), st.booleans()),
    st.tuples(st.just("vd"), st.binary(max_size=5)),
)


@given(
    eui=st.from_regex(r"[0-9A-F]{16}", fullmatch=True),
    bt=st.floats(RELATIVE_TIME_LIMIT + 1e4, 4e9),
    items=st.lists(st.tuples(names, st.integers(-3600, 0), value_fields), min_size=1, max_size=5),
)
def test_resolve_treats_both_kpn_layouts_alike(
    eui: str, bt: float, items: list[tuple[str, int, tuple[str, object]]]
) -> None:
    bn = f"urn:dev:DEVEUI:{eui}:"
    measurements = [Record(n=n, t=t, **{field: value}) for n, t, (field, value) in items]  # type: ignore[arg-type]
    legacy = [Record(bn=bn, bt=bt), *measurements]
    merged = [Record(bn=bn, bt=bt, **_fields(measurements[0])), *measurements[1:]]
    resolved = resolve(merged, now=NOW)
    assert resolve(legacy, now=NOW) == resolved
    assert [r.name for r in resolved] == [bn + n for n, _, _ in items]
    assert [r.time for r in resolved] == [bt + t for _, t, _ in items]
    assert [r.value for r in resolved] == [value for _, _, (_, value) in items]
    assert resolve(decode_json(encode_json(merged)), now=NOW) == resolved


def _fields(record: Record) -> dict[str, Any]:
    return {
        name: getattr(record, name) for name in CBOR_LABELS if getattr(record, name) is not None
    }
