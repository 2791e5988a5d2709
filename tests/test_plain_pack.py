"""The webhook's one-pass resolver must agree with decode_json + resolve wherever it answers."""

from __future__ import annotations

import json
import math

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lora_emotion._plain_pack import _RAW_PAYLOAD, resolve_plain
from lora_emotion.errors import DecodeError
from lora_emotion.labels import DEFAULT_REGISTRY, LabelRegistry, LabelSet
from lora_emotion.networks import kpn
from lora_emotion.networks.kpn import delivery_body, parse_delivery, raw_payload_records
from lora_emotion.senml import decode_json, resolve

NOW = 1_700_000_000.0
URN = "urn:dev:DEVEUI:0004A30B001F1234"

names = st.sampled_from(["", "payload", "port", "emotion", "a b", "x:y", "-bad", "é", URN + ":"])
numbers = st.one_of(
    st.integers(min_value=-(2**66), max_value=2**66),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-0.0, 0.0, 1.0, 2**28 - 1, 2**28, 1.7e9, 1e308, -1e308]),
)
values = st.one_of(st.none(), st.booleans(), numbers, names, st.lists(st.integers(), max_size=2))
fields = st.sampled_from(["bn", "bt", "n", "u", "t", "v", "vs", "vb", "s", "ut", "bu", "x"])
records = st.dictionaries(fields, values, max_size=5)


def _full(body: bytes, now: float) -> tuple[list[str], list[object]]:
    decoded = decode_json(body)
    base_names = [r.bn for r in decoded if r.bn is not None]
    return base_names, resolve(decoded, now=now)


@settings(max_examples=400, deadline=None)
@given(st.lists(records, max_size=4), st.sampled_from([0.0, NOW]))
@example([{"bn": URN + ":", "bt": 1.7e9}, {"n": "v", "v": -0.0}], 0.0)
@example([{"bn": URN + ":", "bt": 1e308, "n": "x", "t": 1e308, "v": 1}], 0.0)
@example([{"n": "a", "v": 2**64 - 1}, {"n": "b", "v": 2**64}], NOW)
@example([{"bn": "a", "u": None, "v": 1}], NOW)
@example([{"n": "a", "v": -(2**63) - 1}, {"n": "b", "v": 2**63}], NOW)
@example([{"n": "a", "v": 9.3e18}, {"n": "b", "v": -9.3e18}], NOW)
def test_plain_resolver_agrees_with_the_full_path(
    pack: list[dict[str, object]], now: float
) -> None:
    body = json.dumps(pack).encode()
    fast = resolve_plain(body, now=now)
    try:
        full = _full(body, now)
    except DecodeError:
        assert fast is None  # invalid input is always left to the full path to explain
        return
    if fast is not None:
        assert fast == full
        # dedup_key hashes repr(): -0.0 and 0.0 must come out alike in both paths too.
        assert repr(fast) == repr(full)


@settings(max_examples=300)
@given(
    payload=st.binary(max_size=12),
    fport=st.integers(1, 255),
    base_time=st.one_of(
        st.sampled_from(["1.615572314E9", "1615572314", "-0.0", "0", "1E400", "9.3E18"]),
        st.floats(allow_nan=False, allow_infinity=False).map(kpn.java_double),
        st.integers(-(10**19) + 1, 10**19 - 1).map(str),
    ),
    layout=st.sampled_from(["legacy", "merged"]),
    now=st.sampled_from([0.0, NOW]),
)
def test_kpn_raw_payload_bytes_resolve_as_the_full_path_does(
    payload: bytes, fport: int, base_time: str, layout: str, now: float
) -> None:
    """The exact-bytes match for KPN's raw-payload delivery agrees with the full path."""
    body = delivery_body(
        URN.rsplit(":", 1)[1], raw_payload_records(payload, fport), base_time=1.0, layout=layout
    ).replace(b'"bt":1.0', f'"bt":{base_time}'.encode())
    assert _RAW_PAYLOAD.fullmatch(body) is not None  # this test is about that path
    fast = resolve_plain(body, now=now)
    try:
        full = _full(body, now)
    except DecodeError:
        assert fast is None
        return
    assert fast is not None or not math.isfinite(float(base_time)) or abs(float(base_time)) >= 2**63
    if fast is not None:
        assert repr(fast) == repr(full)


def test_what_the_plain_resolver_leaves_to_the_full_path() -> None:
    base = f'{{"bn":"{URN}:","bt":1.7E9,"n":"payload","vs":"0186"}}'
    assert resolve_plain(f"[{base}]".encode(), now=NOW) is not None
    refused = [
        f'[{{"bn":"{URN}:","bn":"{URN}:","n":"x","v":1}}]',  # a repeated key
        f'[{{"bn":"{URN}:","n":"x","v":1}},{{"n":"y","v":1,"v":2}}]',  # ... in a later record
        f'[{{"bn" :"{URN}:","n":"x","v":1}}]',  # space before a colon: keys are not counted
        f'[{{"bn":"{URN}:","n":"x","v":18446744073709551616}}]',  # orjson: a float
        f'[{{"bn":"{URN}:","n":"x","v":-9223372036854775809}}]',  # orjson: a float
        f'[{{"bn":"{URN}:","bt":1.7E9,"n":"payload","vs":"0186"}},{{"n":"port","v":016}}]',
        f'[{{"bn":"{URN}:","n":"x","vs":"a\\u00e9"}}]',  # an escape
        f'[{{"bn":"{URN}:","n":"x","v":1,"vs":"a"}}]',  # two values
        f'[{{"bn":"{URN}:","n":"x","s":1}}]',  # a field the fast path does not know
        f'[{{"bn":"{URN}:","n":"x","v":NaN}}]',
        f'[{{"bn":"{URN}:","n":"x","v":1e999}}]',
        f'[{{"bn":"{URN}:","n":"x","vb":1}}]',
        '{"n":"x","v":1}',
        "[1]",
        "[{}]",
        "[",
    ]
    for text in refused:
        assert resolve_plain(text.encode(), now=NOW) is None, text
    assert resolve_plain(b"\xff[]", now=NOW) is None
    assert resolve_plain("\ufeff[]".encode(), now=NOW) is None


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=6),
    fport=st.sampled_from([1, 2, 3, 16, 17, 18, 19, 20, 21, 22, 23, 24, 48, 200, 224]),
    base_time=st.sampled_from([0.0, 1.0, 1.7e9, 253_402_300_799.0, 253_402_300_800.0]),
    layout=st.sampled_from(["legacy", "merged"]),
)
def test_parse_delivery_is_the_same_by_either_path(
    payload: bytes, fport: int, base_time: float, layout: str
) -> None:
    body = delivery_body(
        URN.rsplit(":", 1)[1],
        raw_payload_records(payload, fport),
        base_time=base_time,
        layout=layout,
    )
    try:
        fast = parse_delivery(body, now=NOW)  # bytes: the one-pass resolver
    except DecodeError as exc:
        try:
            parse_delivery(body.decode(), now=NOW)
        except DecodeError as again:
            assert str(again) == str(exc)
            return
        raise AssertionError("only the fast path refused") from exc
    kpn._DECODED.clear()  # decode the payload afresh, not from what the first call remembered
    assert parse_delivery(body.decode(), now=NOW) == fast  # text: the full resolver


def test_decoded_payloads_are_remembered_per_label_set() -> None:
    custom = LabelSet(0 + 6, "custom", ("calm", "tense"))
    registry = LabelRegistry({**DEFAULT_REGISTRY.sets, custom.id: custom})
    port = 16 + 8 * custom.id  # a reading of set 6
    body = delivery_body(URN.rsplit(":", 1)[1], raw_payload_records(b"\x65", port), base_time=NOW)
    without = parse_delivery(body, now=NOW)
    with_set = parse_delivery(body, now=NOW, registry=registry)
    assert without.decode_status == "error" and "set" in (without.decode_error or "")
    assert with_set.decode_status == "ok"
    assert parse_delivery(body, now=NOW).decode_error == without.decode_error  # cached error
    emotions = [m.string_value for m in with_set.measurements if m.name == "emotion"]
    assert emotions and emotions[0] in custom.labels
    assert all(math.isfinite(m.time) for m in with_set.measurements)
