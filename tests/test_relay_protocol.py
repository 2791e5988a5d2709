"""Relay input frames, the serial stream reader, quantisation and the relay's log lines."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import random
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lora_emotion import relay_protocol as rp
from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.labels import FER2013, PHYSIO3
from lora_emotion.messages import PROBABILITY_SCALE, largest_remainder, quantise_distribution

VECTORS = Path(__file__).parent / "vectors"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_relay_vectors", VECTORS / "make_relay_vectors.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


FRAMES = _load("relay_frames.json")


# -- strategies -------------------------------------------------------------------------------

confidences = st.none() | st.integers(0, 100)
labels = st.integers(0, 63)
set_ids = st.integers(0, 23)


@st.composite
def predictions(draw: st.DrawFn) -> tuple[int | None, int | None]:
    label = draw(st.none() | labels)
    return label, None if label is None else draw(confidences)


@st.composite
def frames(draw: st.DrawFn) -> rp.Frame:
    kind = draw(st.sampled_from(["reading", "distribution", "faces", "vitals"]))
    label_set = draw(set_ids)
    if kind == "reading":
        label, confidence = draw(predictions())
        return rp.ReadingFrame(label_set=label_set, label=label, confidence_pct=confidence)
    if kind == "distribution":
        weights = draw(st.lists(st.integers(0, 0xFFFF), min_size=2, max_size=16).filter(any))
        return rp.DistributionFrame(label_set=label_set, weights=tuple(weights))
    if kind == "faces":
        faces = draw(
            st.lists(
                st.builds(rp.FaceEntry, label=labels, confidence_pct=confidences),
                max_size=rp.MAX_FACES,
            )
        )
        return rp.FacesFrame(label_set=label_set, faces=tuple(faces))
    heart = draw(st.none() | st.integers(0, 250))
    skin = draw(st.integers(0, 10_000) if heart is None else st.none() | st.integers(0, 10_000))
    prediction = None
    if draw(st.booleans()):
        label, confidence = draw(predictions())
        prediction = rp.Prediction(label=label, confidence_pct=confidence)
    return rp.VitalsFrame(
        label_set=label_set,
        heart_rate_bpm=heart,
        skin_conductance_centi_us=skin,
        prediction=prediction,
    )


# -- vectors ----------------------------------------------------------------------------------


def test_the_shared_vector_files_are_what_the_reference_produces() -> None:
    # The C++ tests read these files; they must not drift from the Python modules.
    generator = _generator()
    assert generator.frames_document() == FRAMES
    assert generator.downlinks_document() == _load("downlinks.json")
    assert generator.quantise_document() == _load("quantise.json")
    assert generator.ledger_document() == _load("ledger.json")


@pytest.mark.parametrize("vector", FRAMES["frames"], ids=lambda v: v["name"])
def test_frame_vectors_round_trip(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    frame = rp.decode_frame(data)
    assert _generator().frame_fields(frame) == vector["frame"]
    assert rp.encode_frame(frame) == data
    assert rp.decode_i2c_transaction(data) == frame


@pytest.mark.parametrize("vector", FRAMES["invalid"], ids=lambda v: v["name"])
def test_invalid_frames_name_what_is_wrong(vector: dict[str, Any]) -> None:
    with pytest.raises(DecodeError) as caught:
        rp.decode_frame(bytes.fromhex(vector["hex"]))
    assert caught.value.field == vector["error"]


@pytest.mark.parametrize("vector", FRAMES["transactions"], ids=lambda v: v["name"])
def test_transaction_vectors(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    kind, _, value = vector["expect"].partition(":")
    if kind == "error" and value != "legacy_range":
        with pytest.raises(DecodeError) as caught:
            rp.decode_i2c_transaction(data)
        assert caught.value.field == value
        return
    decoded = rp.decode_i2c_transaction(data)
    if kind == "frame":
        assert isinstance(decoded, rp.ReadingFrame)
        return
    assert isinstance(decoded, rp.LegacyByte)
    if value == "legacy_range":
        with pytest.raises(DecodeError):
            decoded.label(7)
    else:
        assert decoded.label(7) == (None if value == "none" else int(value))


def _events(chunks: list[bytes]) -> list[str]:
    buffer = bytearray()
    events = []
    for chunk in chunks:
        buffer += chunk
        while True:
            try:
                frame = rp.maybe_next_frame(buffer)
            except DecodeError as exc:
                events.append(f"error:{exc.field}")
                continue
            if frame is None:
                break
            events.append(f"frame:{type(frame).__name__.removesuffix('Frame').lower()}")
    return events


@pytest.mark.parametrize("vector", FRAMES["streams"], ids=lambda v: v["name"])
def test_stream_vectors_do_not_depend_on_how_the_bytes_arrive(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    assert _events([data]) == vector["events"]
    # One byte at a time, as the relay reads them, and in random chunks.
    assert _events([data[i : i + 1] for i in range(len(data))]) == vector["events"]
    rng = random.Random(vector["name"])
    cuts = sorted(rng.sample(range(1, len(data)), min(5, len(data) - 1)))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    assert _events(pieces) == vector["events"]


# -- properties -------------------------------------------------------------------------------


@given(frames())
def test_every_frame_round_trips(frame: rp.Frame) -> None:
    data = rp.encode_frame(frame)
    assert len(data) <= rp.FRAME_OVERHEAD + rp.MAX_FRAME_PAYLOAD
    assert rp.decode_frame(data) == frame
    buffer = bytearray(b"junk" + data)
    assert rp.maybe_next_frame(buffer) == frame and buffer == bytearray()


@given(st.binary(max_size=64))
def test_decoders_raise_only_decode_error(data: bytes) -> None:
    for decoder in (rp.decode_frame, rp.decode_i2c_transaction):
        with contextlib.suppress(DecodeError):
            decoder(data)


@given(st.lists(st.binary(max_size=12) | frames().map(rp.encode_frame), max_size=8))
def test_the_stream_reader_always_progresses(chunks: list[bytes]) -> None:
    buffer = bytearray(b"".join(chunks))
    for _ in range(len(buffer) + 1):
        before = len(buffer)
        try:
            if rp.maybe_next_frame(buffer) is None:
                assert len(buffer) < rp.FRAME_OVERHEAD + rp.MAX_FRAME_PAYLOAD
                return
        except DecodeError:
            pass
        assert len(buffer) < before
    pytest.fail("the reader did not finish")


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=64).filter(any))
def test_quantised_weights_are_whole_percent_summing_to_100(weights: list[int]) -> None:
    shares = rp.quantise_weights(weights)
    total = sum(weights)
    assert sum(shares) == 100
    assert all(
        abs(share * total - 100 * w) < total for share, w in zip(shares, weights, strict=True)
    )


def test_quantisation_follows_the_one_rule_on_the_vectors() -> None:
    document = _load("quantise.json")
    assert document["probability_scale"] == PROBABILITY_SCALE
    for case in document["cases"]:
        assert rp.quantise_weights(case["weights"]) == case["percent"]
        assert largest_remainder(case["weights"]) == case["percent"]
    for case in document["probabilities"]:
        assert quantise_distribution(case["probabilities"]) == case["percent"]
        assert rp.quantise_weights(case["weights"]) == case["percent"]
    for probabilities in document["rejected"]:
        with pytest.raises(EncodeError):
            quantise_distribution(probabilities)


def test_exact_ties_go_to_the_lower_index_in_every_form() -> None:
    # 4:1:1 used to give [66, 17, 17] from floats and [67, 17, 16] from integers.
    assert rp.quantise_weights([4, 1, 1]) == [67, 17, 16]
    assert quantise_distribution([4 / 6, 1 / 6, 1 / 6]) == [67, 17, 16]


@given(st.lists(st.integers(0, 12), min_size=2, max_size=16).filter(any))
def test_small_integer_ratios_quantise_alike_as_floats(weights: list[int]) -> None:
    mass = sum(weights)
    assume(PROBABILITY_SCALE % mass == 0)  # the ratio is exact on the scale
    assert quantise_distribution([w / mass for w in weights]) == rp.quantise_weights(weights)


@given(st.lists(st.integers(0, 100), min_size=2, max_size=16))
def test_decoded_percentages_re_encode_unchanged(percent: list[int]) -> None:
    assume(sum(percent) <= 100)
    percent[-1] += 100 - sum(percent)
    assert quantise_distribution([p / 100 for p in percent]) == percent


@pytest.mark.parametrize("weights", [[], [0, 0], [-1, 2], [42_949_673, 0]])
def test_quantisation_rejects_what_the_relay_cannot_compute(weights: list[int]) -> None:
    with pytest.raises(EncodeError):
        rp.quantise_weights(weights)


# -- building frames --------------------------------------------------------------------------


def test_helpers_build_frames_from_names_and_probabilities() -> None:
    assert rp.reading_frame(FER2013, "happy", 0.87) == rp.ReadingFrame(
        label_set=0, label=3, confidence_pct=87
    )
    assert rp.reading_frame(FER2013, None) == rp.ReadingFrame(label_set=0, label=None)
    frame = rp.distribution_frame(PHYSIO3, (0.2, 0.7, 0.1))
    assert frame.weights == (2000, 7000, 1000) and frame.label_set == PHYSIO3.id
    assert rp.encode_legacy(3) == b"\x03" and rp.encode_legacy(None) == b"\x07"
    assert rp.encode_legacy(None, classes=3) == b"\x03"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: rp.ReadingFrame(label_set=24, label=1), "label_set"),
        (lambda: rp.ReadingFrame(label_set=0, label=None, confidence_pct=50), "confidence_pct"),
        (lambda: rp.ReadingFrame(label_set=0, label=64), "label"),
        (lambda: rp.DistributionFrame(label_set=0, weights=(1,)), "weights"),
        (lambda: rp.DistributionFrame(label_set=0, weights=(0, 0)), "weights"),
        (lambda: rp.DistributionFrame(label_set=0, weights=(1, 65_536)), "weights[1]"),
        (lambda: rp.FacesFrame(label_set=0, faces=(rp.FaceEntry(label=1),) * 17), "faces"),
        (lambda: rp.VitalsFrame(label_set=2), "heart_rate_bpm"),
        (lambda: rp.VitalsFrame(label_set=2, heart_rate_bpm=251), "heart_rate_bpm"),
        (
            lambda: rp.VitalsFrame(label_set=2, skin_conductance_centi_us=10_001),
            "skin_conductance_centi_us",
        ),
        (lambda: rp.reading_frame(FER2013, "bored", 0.5), "label"),
        (lambda: rp.reading_frame(FER2013, "happy", 1.5), "confidence"),
        (lambda: rp.distribution_frame(FER2013, (0.5, 0.5)), "probabilities"),
        (lambda: rp.encode_legacy(7), "label"),
    ],
)
def test_invalid_frames_cannot_be_built(build: Any, field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        build()
    assert caught.value.field == field


# -- log lines --------------------------------------------------------------------------------

LINES = [
    "LE1 0 boot fw=1.0.0 proto=1 set=0 classes=7 mode=summary window_s=60 budget_s=30 "
    "ledger=56 status_min=360",
    "LE1 6000 join ok=0 attempt=1 next_s=15",
    "LE1 27000 join ok=1 attempt=2 dr=5",
    "LE1 28000 reading src=i2c kind=legacy set=0 label=none n=1",
    "LE1 29000 reading src=serial kind=vitals set=2 label=absent n=0",
    "LE1 35500 uplink kind=reading cause=change port=16 size=2 hex=01F9 dr=5 airtime_ms=47 "
    "rc=2 outcome=sent readings=0 hour_ms=3080 day_ms=3080 credit_s=10479",
    "LE1 40000 uplink kind=summary cause=window port=19 size=7 hex=6CC27622461799 dr=5 "
    "airtime_ms=57 rc=-1 outcome=retry readings=0 hour_ms=1 day_ms=1 credit_s=-20",
    "LE1 1220500 downlink port=3 size=5 hex=2A01007705 seq=42 result=applied",
    "LE1 1220500 downlink port=-1 size=1 hex=07 seq=7 result=applied",
    "LE1 5 error code=checksum src=serial total=3",
    "LE1 5 drop reason=set_mismatch n=1 total=1",
    "LE1 6 defer kind=window reason=budget",
    "LE1 7 config mode=vitals window_s=10 budget_s=30 set=2 classes=3 status_min=360",
    "LE1 8 stats received=3 dropped=0 invalid=0 window_readings=3 uplinks=1",
    "LE1 9 future_event anything=goes",
]


@pytest.mark.parametrize("line", LINES)
def test_log_lines_parse_and_format_back(line: str) -> None:
    event = rp.parse_log_line(line + "\r\n")
    assert rp.format_log_line(event) == line


def test_log_line_fields() -> None:
    uplink = rp.parse_log_line(LINES[5])
    assert uplink.event == "uplink" and uplink.uptime_ms == 35_500
    assert uplink.integer("port") == 16 and uplink.data() == bytes.fromhex("01F9")
    assert uplink.get("outcome") == "sent" and uplink.get("missing") is None
    assert rp.parse_log_line(LINES[6]).integer("rc") == -1
    with pytest.raises(DecodeError):
        uplink.integer("outcome")
    with pytest.raises(DecodeError):
        uplink.data("kind")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "+EVENT=1,1",
        "LE2 0 boot",
        "LE1 -5 join ok=1 attempt=1",
        "LE1 x join ok=1 attempt=1",
        "LE1 0 Join ok=1 attempt=1",
        "LE1 0 join ok=1",  # a join line has attempt=
        "LE1 0 join ok=yes attempt=1",
        "LE1 0 join ok=1 ok=1 attempt=1",
        "LE1 0 join ok=1 attempt=1 =3",
        "LE1 0 join ok=1 attempt=1 extra",
        "LE1 0 uplink kind=reading cause=change port=16 size=3 hex=01F9 dr=5 airtime_ms=47 rc=2 "
        "outcome=sent readings=0",
        "LE1 0 downlink port=3 size=1 hex=0G result=applied",
    ],
)
def test_malformed_log_lines_are_decode_errors(line: str) -> None:
    with pytest.raises(DecodeError):
        rp.parse_log_line(line)


@given(st.text(max_size=80))
def test_parse_log_line_raises_only_decode_error(line: str) -> None:
    with contextlib.suppress(DecodeError):
        rp.parse_log_line("LE1 " + line)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9_.:+-]{1,12}", fullmatch=True),
        max_size=6,
    ),
    st.integers(0, 2**32 - 1),
)
def test_unknown_events_round_trip(fields: dict[str, str], uptime: int) -> None:
    # Keys with a meaning of their own (integers, hex) are covered by the tests above.
    fields = {k: v for k, v in fields.items() if k not in {"hex", *rp._INT_KEYS}}
    event = rp.LogEvent(event="custom", uptime_ms=uptime, fields=fields)
    assert rp.parse_log_line(rp.format_log_line(event)) == event
