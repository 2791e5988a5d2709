"""Round trips, size bounds, canonical bytes and the decode-error invariant for every type."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lora_emotion import _radix
from lora_emotion.errors import DecodeError, EncodeError, PayloadTooLargeError
from lora_emotion.labels import (
    BUILTIN_SETS,
    DEFAULT_REGISTRY,
    FER2013,
    PHYSIO3,
    LabelRegistry,
    LabelSet,
)
from lora_emotion.messages import (
    MAX_PAYLOAD,
    STATUS_PORT,
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
    quantise_distribution,
)

BIG = LabelSet(6, "big16", tuple(f"c{i}" for i in range(16)))
REGISTRY = DEFAULT_REGISTRY.with_set(BIG)
SETS = (*BUILTIN_SETS, BIG)

label_sets = st.sampled_from(SETS)
confidences = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def readings(draw: st.DrawFn, label_set: LabelSet | None = None) -> Reading:
    ls = label_set or draw(label_sets)
    if draw(st.integers(0, 9)) == 0:
        return Reading(label_set=ls, label=None)
    return Reading(
        label_set=ls, label=draw(st.sampled_from(ls.labels)), confidence=draw(confidences)
    )


@st.composite
def distributions(draw: st.DrawFn, label_set: LabelSet | None = None) -> Distribution:
    ls = label_set or draw(label_sets)
    weights = draw(st.lists(st.floats(0, 1, allow_nan=False), min_size=len(ls), max_size=len(ls)))
    total = math.fsum(weights)
    assume(total > 1e-6)
    return Distribution(label_set=ls, probabilities=tuple(w / total for w in weights))


@st.composite
def faces_messages(draw: st.DrawFn) -> Faces:
    ls = draw(label_sets)
    items = draw(st.lists(st.tuples(st.sampled_from(ls.labels), confidences), max_size=12))
    return Faces(label_set=ls, faces=tuple(Face(label=a, confidence=c) for a, c in items))


@st.composite
def summaries(draw: st.DrawFn) -> Summary:
    ls = draw(label_sets)
    counts = tuple(draw(st.lists(st.integers(0, 6000), min_size=len(ls), max_size=len(ls))))
    no_face = draw(st.integers(0, 65535 - sum(counts)))
    return Summary(
        label_set=ls,
        window_s=draw(st.integers(1, 65536)),
        counts=counts,
        no_face=no_face,
        mean_confidence=draw(confidences) if any(counts) else None,
    )


@st.composite
def vitals(draw: st.DrawFn, label_set: LabelSet | None = None) -> Vitals:
    ls = label_set or draw(label_sets)
    heart = draw(st.none() | st.integers(0, 250))
    skin = draw(st.none() | st.floats(0, 100, allow_nan=False))
    assume(heart is not None or skin is not None)
    reading = draw(st.none() | readings(ls))
    return Vitals(label_set=ls, heart_rate_bpm=heart, skin_conductance_us=skin, reading=reading)


statuses = st.builds(
    Status,
    firmware=st.tuples(st.integers(0, 15), st.integers(0, 63), st.integers(0, 63)),
    protocol_version=st.integers(0, 15),
    battery_percent=st.none() | st.integers(0, 100),
    uptime_s=st.integers(0, 10**9),
    dropped=st.integers(0, 10**6),
    window_s=st.integers(1, 65536),
    mode=st.sampled_from(Mode),
    daily_budget_s=st.integers(1, 1024),
    label_set_id=st.integers(0, 23),
    label_set_fingerprint=st.integers(0, 65535),
    command_seq=st.integers(0, 255),
    command_status=st.sampled_from(CommandStatus),
)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    ls = draw(label_sets)
    element = draw(st.sampled_from([readings, distributions, vitals]))
    ages = draw(st.lists(st.integers(0, 4095), min_size=1, max_size=5))
    age, entries = 0, []
    for gap in ages:
        age += gap
        entries.append(BatchEntry(age_s=age, message=draw(element(ls))))
    return Batch(label_set=ls, entries=tuple(entries))


any_message = st.one_of(
    readings(), distributions(), faces_messages(), summaries(), vitals(), statuses, batches()
)


def roundtrip(message: Message) -> Message:
    payload = encode(message)
    assert 1 <= len(payload) <= MAX_PAYLOAD
    return decode(payload, fport=port_of(message), registry=REGISTRY)


def close(a: float | None, b: float | None, step: float = 0.005) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= step + 1e-12


@given(readings())
def test_reading_roundtrip(message: Reading) -> None:
    decoded = roundtrip(message)
    assert isinstance(decoded, Reading)
    assert decoded.label == message.label
    assert close(decoded.confidence, message.confidence)
    assert len(encode(message)) <= 2


@given(distributions())
def test_distribution_roundtrip(message: Distribution) -> None:
    decoded = roundtrip(message)
    assert isinstance(decoded, Distribution)
    assert math.isclose(math.fsum(decoded.probabilities), 1.0)
    for got, want in zip(decoded.probabilities, message.probabilities, strict=True):
        assert abs(got - want) < 0.01 + 1e-9
    if len(message.label_set) == 7:
        assert len(encode(message)) == 4


@given(faces_messages())
def test_faces_roundtrip(message: Faces) -> None:
    decoded = roundtrip(message)
    assert isinstance(decoded, Faces)
    assert [f.label for f in decoded.faces] == [f.label for f in message.faces]
    for got, want in zip(decoded.faces, message.faces, strict=True):
        assert close(got.confidence, want.confidence)


@given(summaries())
def test_summary_roundtrip(message: Summary) -> None:
    decoded = roundtrip(message)
    assert isinstance(decoded, Summary)
    assert decoded.counts == message.counts
    assert decoded.no_face == message.no_face
    assert decoded.window_s == message.window_s
    assert decoded.dominant == message.dominant
    assert close(decoded.mean_confidence, message.mean_confidence)


@given(vitals())
def test_vitals_roundtrip(message: Vitals) -> None:
    decoded = roundtrip(message)
    assert isinstance(decoded, Vitals)
    assert decoded.heart_rate_bpm == message.heart_rate_bpm
    assert close(decoded.skin_conductance_us, message.skin_conductance_us)
    assert (decoded.reading is None) == (message.reading is None)
    if message.reading and decoded.reading:
        assert decoded.reading.label == message.reading.label


@given(statuses)
def test_status_roundtrip(message: Status) -> None:
    decoded = roundtrip(message)
    assert isinstance(decoded, Status)
    assert len(encode(message)) == 16
    assert decoded.firmware == message.firmware
    assert decoded.uptime_s == min(message.uptime_s // 60, 2**20 - 1) * 60
    assert decoded.dropped == min(message.dropped, 65535)
    assert (decoded.mode, decoded.command_status) == (message.mode, message.command_status)


@given(batches())
def test_batch_roundtrip(message: Batch) -> None:
    decoded = roundtrip(message)
    assert isinstance(decoded, Batch)
    assert [e.age_s for e in decoded.entries] == [e.age_s for e in message.entries]
    assert [type(e.message) for e in decoded.entries] == [type(e.message) for e in message.entries]


@given(any_message)
def test_canonical_bytes_reencode_identically(message: Message) -> None:
    payload = encode(message)
    decoded = decode(payload, fport=port_of(message), registry=REGISTRY)
    assert encode(decoded) == payload


@given(st.binary(max_size=64), st.integers(0, 255))
def test_arbitrary_bytes_only_raise_decode_error(payload: bytes, fport: int) -> None:
    try:
        message = decode(payload, fport=fport, registry=REGISTRY)
    except DecodeError:
        return
    # Whatever decodes is canonical: it re-encodes to the same bytes on the same port.
    assert encode(message) == payload
    assert port_of(message) == fport


@pytest.mark.parametrize("fport", [2, *range(16, 16 + 8 * 7)])
@given(payload=st.binary(min_size=1, max_size=51))
def test_every_compact_port_fuzzed(fport: int, payload: bytes) -> None:
    try:
        decode(payload, fport=fport, registry=REGISTRY)
    except DecodeError as exc:
        assert exc.field is not None


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode(bytearray(b"\x01\x86"), fport=16) == decode(memoryview(b"\x01\x86"), fport=16)


def test_cli_example_distribution_is_four_bytes() -> None:
    message = Distribution(
        label_set=FER2013, probabilities=(0.02, 0.01, 0.03, 0.87, 0.04, 0.02, 0.01)
    )
    assert encode(message).hex() == "0b86e88e"
    assert port_of(message) == 17


def test_ports_follow_set_and_type() -> None:
    assert port_of(Reading(label_set=PHYSIO3, label="sad", confidence=0.5)) == 32
    assert port_of(Status(firmware=(1, 0, 0))) == STATUS_PORT
    batch = Batch(
        label_set=FER2013,
        entries=(BatchEntry(age_s=0, message=Vitals(label_set=FER2013, heart_rate_bpm=60)),),
    )
    assert port_of(batch) == 23


@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda: Reading(label_set=FER2013, label="joy", confidence=0.5), "label", "not in"),
        (
            lambda: Reading(label_set=FER2013, label="happy", confidence=1.2),
            "confidence",
            "outside",
        ),
        (
            lambda: Reading(label_set=FER2013, label="happy", confidence=float("nan")),
            "confidence",
            "not a number",
        ),
        (
            lambda: Reading(label_set=FER2013, label="happy", confidence=None),
            "confidence",
            "not a number",
        ),
        (lambda: Reading(label_set=FER2013, label=None, confidence=0.3), "confidence", "no face"),
        (lambda: Distribution(label_set=FER2013, probabilities=(0.5,) * 7), "probabilities", "sum"),
        (
            lambda: Distribution(label_set=FER2013, probabilities=(0.5, 0.5)),
            "probabilities",
            "2 values",
        ),
        (
            lambda: Distribution(label_set=PHYSIO3, probabilities=(-0.1, 0.6, 0.5)),
            "probabilities[0]",
            "outside",
        ),
        (
            lambda: Faces(
                label_set=FER2013, faces=tuple(Face(label="sad", confidence=0.1) for _ in range(44))
            ),
            "faces",
            "at most 43",
        ),
        (
            lambda: Faces(label_set=FER2013, faces=(Face(label="x", confidence=0.1),)),
            "faces[0].label",
            "not in",
        ),
        (
            lambda: Summary(label_set=PHYSIO3, window_s=0, counts=(1, 2, 3), mean_confidence=0.5),
            "window_s",
            "outside",
        ),
        (
            lambda: Summary(label_set=PHYSIO3, window_s=60, counts=(0, 0, 0), mean_confidence=0.5),
            "mean_confidence",
            "no class",
        ),
        (
            lambda: Summary(
                label_set=PHYSIO3, window_s=60, counts=(40000, 40000, 0), mean_confidence=0.5
            ),
            "counts",
            "at most 65535",
        ),
        (lambda: Vitals(label_set=PHYSIO3), "heart_rate_bpm", "give a heart rate"),
        (lambda: Vitals(label_set=PHYSIO3, heart_rate_bpm=300), "heart_rate_bpm", "outside"),
        (
            lambda: Vitals(label_set=PHYSIO3, skin_conductance_us=-1.0),
            "skin_conductance_us",
            "outside",
        ),
        (lambda: Status(firmware=(16, 0, 0)), "firmware[0]", "outside"),
        (lambda: Status(firmware=(1, 0, 0), battery_percent=101), "battery_percent", "outside"),
        (lambda: Batch(label_set=FER2013, entries=()), "entries", "at least one"),
    ],
)
def test_encoder_errors_name_the_field(build, field: str, words: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EncodeError) as info:
        build()
    assert info.value.field == field
    assert words in str(info.value)
    assert isinstance(info.value, ValueError)


def test_oversized_batch_is_refused_and_can_be_split() -> None:
    entries = [
        BatchEntry(age_s=i * 10, message=Reading(label_set=FER2013, label="happy", confidence=0.5))
        for i in range(40)
    ]
    with pytest.raises(PayloadTooLargeError) as info:
        Batch(label_set=FER2013, entries=tuple(entries))
    assert info.value.limit == MAX_PAYLOAD
    from lora_emotion.messages import split_batch

    parts = split_batch(FER2013, entries)
    assert sum(len(p.entries) for p in parts) == 40
    assert all(len(encode(p)) <= MAX_PAYLOAD for p in parts)


def test_unknown_label_set_is_never_guessed() -> None:
    with pytest.raises(DecodeError, match="label set id 6"):
        decode(b"\x01\x00", fport=16 + 8 * 6)
    assert decode(b"\x00", fport=16 + 8 * 6 + 3, registry=REGISTRY) == Summary(
        label_set=BIG, window_s=1, counts=(0,) * 16
    )


def test_decode_error_names_offset_for_trailing_bytes() -> None:
    with pytest.raises(DecodeError) as info:
        decode(b"\x01\x86\x00", fport=16)
    assert info.value.offset == 2
    assert "byte 2 (reading)" in str(info.value)


def test_quantise_distribution_sums_to_100() -> None:
    assert quantise_distribution([1 / 3, 1 / 3, 1 / 3]) == [34, 33, 33]
    assert quantise_distribution([0.125] * 8) == [13, 13, 13, 13, 12, 12, 12, 12]


@given(st.lists(st.integers(0, 30), min_size=2, max_size=6))
def test_composition_rank_is_a_bijection(vector: list[int]) -> None:
    total = sum(vector)
    rank = _radix.rank_composition(vector, total)
    assert 0 <= rank < _radix.compositions(total, len(vector))
    assert _radix.unrank_composition(rank, total, len(vector)) == vector
    bounded = _radix.rank_bounded(vector)
    assert _radix.unrank_bounded(bounded, len(vector), 200) == vector


def test_registry_rejects_clashes() -> None:
    with pytest.raises(EncodeError, match="built-in"):
        DEFAULT_REGISTRY.with_set(LabelSet(2, "mine", ("a", "b")))
    registry: LabelRegistry = DEFAULT_REGISTRY.with_set(LabelSet(7, "mine", ("a", "b")))
    with pytest.raises(EncodeError, match="already"):
        registry.with_set(LabelSet(7, "other", ("a", "b")))
