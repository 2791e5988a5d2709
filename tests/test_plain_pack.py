"""The webhook's one-pass resolver must agree with decode_json + resolve wherever it answers."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lora_emotion._plain_pack import _RAW_PAYLOAD, resolve_plain
from lora_emotion.errors import DecodeError
from lora_emotion.labels import DEFAULT_REGISTRY, LabelRegistry, LabelSet
from lora_emotion.networks import kpn
from lora_emotion.networks.kpn import delivery_body, parse_delivery, raw_payload_records
from lora_emotion.senml import Record, decode_json, resolve

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


# --- differential: the whole parse, with and without the one-pass resolver ------------------
#
# ``parse_delivery`` takes the one-pass resolver for bytes and always the full one for text, so
# the same body as bytes and as text runs both. Valid or not, they must agree: the same
# Delivery, or a DecodeError from both.

WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "\t ", "\r\n"])
KEYS = st.sampled_from(
    ["bn", "bt", "n", "u", "t", "v", "vs", "vb", "s", "ut", "bu", "bv", "bver", "vd", "x", "n_"]
)
NUMBER_TEXT = st.one_of(
    st.sampled_from(
        [
            "0", "-0", "1", "016", "-0.0", "1.0", "2E-5", "1e-400", "1e400", "-1e400", "NaN",
            "Infinity", "1.7E9", "1.615572314E9", "1615572314", "253402300800",
            "18446744073709551615", "18446744073709551616", "9223372036854775808",
            "-9223372036854775809", "268435455", "268435456", "1.", ".5", "+1", "0x10",
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)  # fmt: skip
STRING_TEXT = st.one_of(
    st.sampled_from(
        [
            URN + ":", "urn:dev:DEVEUI:abcdefabcdef0123:", "urn:dev:IMEI:123456789012345:",
            "payload", "port", "emotion", "confidence", "latitude", "/", "Cel", "0186", "",
            "a b", "-x", "é", "\\u00e9", "\\ud800", '\\"', "\\\\", "\\n",
        ]
    ),
    st.text(max_size=6).map(lambda text: json.dumps(text)[1:-1]),
).map(lambda inner: f'"{inner}"')  # fmt: skip
VALUE_TEXT = st.one_of(
    NUMBER_TEXT, STRING_TEXT, st.sampled_from(["true", "false", "null", "[]", "{}", '{"a":1}'])
)


# Records as KPN writes them, each a list of (key, value as JSON text): most generated records
# start from one, so that a single odd field is often the only thing wrong with a pack.
TEMPLATES = (
    [("bn", f'"{URN}:"'), ("bt", "1.7E9")],
    [("bn", f'"{URN}:"'), ("bt", "1.615572314E9"), ("n", '"payload"'), ("vs", '"0186"')],
    [("n", '"payload"'), ("vs", '"0B86E88E"')],
    [("n", '"port"'), ("v", "16")],
    [("n", '"emotion"'), ("vs", '"happy"')],
    [("n", '"confidence"'), ("u", '"/"'), ("v", "0.87"), ("t", "-1")],
    [("n", '"alarm"'), ("vb", "true")],
)


@st.composite
def json_records(draw: st.DrawFn, *, first: bool = False) -> str:
    if draw(st.integers(0, 3)) == 0:
        fields = [(draw(KEYS), draw(VALUE_TEXT)) for _ in range(draw(st.integers(0, 5)))]
    else:
        # A pack names its device in its first record (else both paths refuse it alike).
        fields = list(draw(st.sampled_from(TEMPLATES[:2] if first else TEMPLATES)))
        for _ in range(draw(st.integers(0, 2))):
            at = draw(st.integers(0, len(fields)))
            change = draw(st.sampled_from(["add", "repeat", "value", "drop"]))
            if change == "add":
                fields.insert(at, (draw(KEYS), draw(VALUE_TEXT)))
            elif change == "repeat" and fields:
                fields.insert(at, (fields[at % len(fields)][0], draw(VALUE_TEXT)))
            elif change == "value" and fields:
                fields[at % len(fields)] = (fields[at % len(fields)][0], draw(VALUE_TEXT))
            elif fields:
                del fields[at % len(fields)]
    written = [
        f'{draw(WHITESPACE)}"{key}"{draw(WHITESPACE)}:{draw(WHITESPACE)}{value}'
        for key, value in fields
    ]
    return "{" + ",".join(written) + draw(WHITESPACE) + "}"


@st.composite
def json_texts(draw: st.DrawFn) -> bytes:
    """SenML-like JSON written by hand: odd spacing, repeats, escapes, number spellings."""
    records = [draw(json_records(first=True)), *draw(st.lists(json_records(), max_size=3))]
    text = draw(WHITESPACE) + "[" + ",".join(records) + "]" + draw(WHITESPACE)
    wrapper = draw(st.sampled_from(["{}", "{}", "{}", "\ufeff{}", "{}x", "[{}]", "{{}}"]))
    return wrapper.format(text).encode("utf-8", "surrogatepass")


def _kpn_bodies() -> st.SearchStrategy[bytes]:
    eui = st.sampled_from(["0004A30B001F1234", "abcdefabcdef0123", "02EE000100000000"])
    raw = st.builds(
        lambda dev_eui, payload, fport, base_time, layout: delivery_body(
            dev_eui, raw_payload_records(payload, fport), base_time=base_time, layout=layout
        ),
        eui,
        st.binary(max_size=6),
        st.sampled_from([1, 2, 16, 17, 19, 21, 200]),
        st.sampled_from([0.0, 1.7e9, 1_615_572_314.0, 253_402_300_799.0]),
        st.sampled_from(["legacy", "merged"]),
    )
    decoded = st.builds(
        lambda dev_eui, label, confidence, base_time: delivery_body(
            dev_eui,
            [Record(n="emotion", vs=label), Record(n="confidence", u="/", v=confidence, t=-1)],
            base_time=base_time,
        ),
        eui,
        st.sampled_from(["happy", "sad", "neutral"]),
        st.floats(0, 1),
        st.sampled_from([1.7e9, 100.0]),
    )
    return st.one_of(raw, decoded)


@st.composite
def mutated_kpn_bodies(draw: st.DrawFn) -> bytes:
    """A KPN delivery with a few bytes deleted, inserted or replaced."""
    body = bytearray(draw(_kpn_bodies()))
    alphabet = b'"{}[],:\\ .-+0123456789eEabnstuvx\xc3\xa9\xff'
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        operation = draw(st.sampled_from(["delete", "insert", "replace"]))
        if operation == "delete":
            del body[at : at + draw(st.integers(1, 4))]
        elif operation == "insert":
            body[at:at] = bytes(draw(st.lists(st.sampled_from(alphabet), min_size=1, max_size=3)))
        elif at < len(body):
            body[at] = draw(st.sampled_from(alphabet))
    return bytes(body)


def _parse(body: bytes | str) -> object:
    try:
        return parse_delivery(body, now=NOW)
    except DecodeError:
        return DecodeError


def _assert_both_ways_agree(body: bytes) -> bool:
    """Parse ``body`` both ways; True when the one-pass resolver took it."""
    fast = _parse(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        assert fast is DecodeError  # the full path refuses what is not UTF-8
        with pytest.raises(DecodeError):
            decode_json(body)
        return False
    assert fast == _parse(text), body
    return resolve_plain(body, now=0.0) is not None


BASE = f'{{"bn":"{URN}:","bt":1.7E9'


@settings(max_examples=1500, deadline=None)
@given(json_texts())
@example(f'[{BASE},"n":"port","v":16,"v":17}}]'.encode())  # a repeated key
@example(f'[{BASE},"n":"emotion","vs":16}}]'.encode())  # a number where text belongs
@example(f'[{BASE},"n":5,"v":1}}]'.encode())
@example(f'[{BASE},"n":"a b","v":1}}]'.encode())  # not a SenML name
@example(f'[{BASE},"n":"x","u":true,"v":1}}]'.encode())
@example(f'[{BASE},"n":"x","t":"1","v":1}}]'.encode())
def test_hand_written_json_parses_alike_both_ways(body: bytes) -> None:
    _assert_both_ways_agree(body)


@settings(max_examples=1500, deadline=None)
@given(mutated_kpn_bodies())
def test_mutated_kpn_deliveries_parse_alike_both_ways(body: bytes) -> None:
    _assert_both_ways_agree(body)


@settings(max_examples=300, deadline=None)
@given(_kpn_bodies())
def test_kpn_deliveries_take_the_one_pass_resolver_and_parse_alike(body: bytes) -> None:
    """The differential tests above are not vacuous: valid KPN bodies do take the fast path."""
    assert _assert_both_ways_agree(body)


def test_the_plain_resolver_uses_senml_fields_and_checks() -> None:
    from lora_emotion import _plain_pack, senml

    assert senml._KINDS.keys() >= _plain_pack._PLAIN_FIELDS
    assert _plain_pack._PLAIN_FIELDS & set(senml._BASE_FIELDS) == _plain_pack._PLAIN_BASE_FIELDS
    assert _plain_pack._NAME_RE is senml._NAME_RE
    assert _plain_pack.RELATIVE_TIME_LIMIT is senml.RELATIVE_TIME_LIMIT


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=-(2**66), max_value=2**66),
        st.floats(),
        st.text(),
        st.booleans(),
        st.none(),
        st.binary(max_size=2),
    )
)
def test_the_shared_predicates_accept_what_the_checks_accept(value: object) -> None:
    from lora_emotion import senml

    for predicate, check in (
        (senml._valid_number, senml._check_number),
        (senml._valid_text, senml._check_text),
    ):
        try:
            check(value)
            accepted = True
        except senml._Invalid:
            accepted = False
        assert predicate(value) == accepted
