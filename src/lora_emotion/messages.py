"""Compact emotion messages and their wire format (format version 1).

Why this shape: LoRaWAN gives every uplink an FPort for free, so the port says which label set
and which message type follow (port = 16 + 8 * set_id + type), and the payload spends no byte
on a header. Each payload is one big-endian unsigned integer: the message's fields as digits of
a mixed-radix number (see ``_radix``). Fixed-size types have one length per label set; the
variable ones (faces, summary, batches) are told apart by their length, which grows strictly
with the number of elements. docs/payload-format.md is the normative description; the
``LAYOUTS`` table here is checked against it by the tests.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from . import _radix
from .errors import DecodeError, EncodeError, PayloadTooLargeError, TruncatedPayloadError
from .labels import DEFAULT_REGISTRY, MAX_SET_ID, LabelRegistry, LabelSet

__all__ = [
    "BATCH_GAP_RADIX",
    "LAYOUTS",
    "MAX_PAYLOAD",
    "MESSAGE_TYPES",
    "PROBABILITY_SCALE",
    "PROTOCOL_VERSION",
    "STATUS_PORT",
    "SUMMARY_MAX_READINGS",
    "THINGSML_PORT",
    "Batch",
    "BatchEntry",
    "CommandStatus",
    "Distribution",
    "Face",
    "Faces",
    "LayoutField",
    "Message",
    "Mode",
    "Reading",
    "Status",
    "Summary",
    "Vitals",
    "decode",
    "encode",
    "largest_remainder",
    "port_of",
    "quantise_distribution",
    "set_id_of_port",
    "split_batch",
]

PROTOCOL_VERSION = 1
#: KPN is reported to accept 51 B at every data rate, the EU868 DR0-DR2 limit
#: (RP002-1.0.3 §2.4.6, repeater-compatible); every payload is kept within it.
MAX_PAYLOAD = 51
#: The 2021 demo's ThingsML uplinks.
THINGSML_PORT = 1
STATUS_PORT = 2
#: First port of the per-label-set blocks; LoRaWAN reserves 224..255 (LoRaWAN 1.0.4 §4.3.2).
SET_BLOCK_BASE = 16
SET_BLOCK_SIZE = 8

CONFIDENCE_STEPS = 101  # 0 .. 100 %
DISTRIBUTION_TOTAL = 100  # probabilities in whole percent, summing exactly to 100
SUMMARY_MAX_READINGS = 65_535
WINDOW_RADIX = 65_536  # window length 1 .. 65 536 s
HEART_RATE_RADIX = 252  # absent, 0 .. 250 bpm
SKIN_CONDUCTANCE_RADIX = 10_002  # absent, 0.00 .. 100.00 µS
BATCH_GAP_RADIX = 4_096  # seconds between consecutive batch entries (or age of the newest)


class Mode(enum.IntEnum):
    """What the relay sends by default (reported in the status message)."""

    READING = 0
    DISTRIBUTION = 1
    SUMMARY = 2
    VITALS = 3


class CommandStatus(enum.IntEnum):
    """Outcome of the last downlink command (reported in the status message)."""

    NONE = 0
    APPLIED = 1
    REJECTED = 2
    UNKNOWN_COMMAND = 3


def _percent(value: float | None, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise EncodeError(f"{value!r} is not a number in [0, 1]", field=field_name)
    if not 0.0 <= value <= 1.0:
        raise EncodeError(f"{value!r} is outside [0, 1]", field=field_name)
    return math.floor(value * 100 + 0.5)


def _check_int(value: object, low: int, high: int, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"{value!r} is not an integer", field=field_name)
    if not low <= value <= high:
        raise EncodeError(f"{value} is outside {low}..{high}", field=field_name)
    return value


def _label_state(label_set: LabelSet, label: str | None, confidence: float | None) -> int:
    """0 .. 101·K: a class with its confidence in percent, or K·101 for "no face"."""
    if label is None:
        if confidence is not None:
            raise EncodeError("a reading with no face carries no confidence", field="confidence")
        return len(label_set.labels) * CONFIDENCE_STEPS
    return label_set.index(label) * CONFIDENCE_STEPS + _percent(confidence, "confidence")


def _state_label(label_set: LabelSet, state: int) -> tuple[str | None, float | None]:
    index, percent = divmod(state, CONFIDENCE_STEPS)
    if index == len(label_set.labels):
        return None, None
    return label_set.labels[index], percent / 100


@dataclass(frozen=True, slots=True, kw_only=True)
class LayoutField:
    """One digit of a payload: its name, how many values it has, what it means."""

    name: str
    radix: str
    meaning: str


class Message:
    """Base of all compact messages; ``type_code`` is the low three bits of the port."""

    type_code: ClassVar[int]

    def payload(self) -> bytes:
        raise NotImplementedError


# -- a: single reading ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class Reading(Message):
    """One prediction: a class with its confidence, or no face (``label=None``).

    Why a hand-written ``__init__``: a reading is built per prediction on the sending side, and
    the generated one of a frozen dataclass (``object.__setattr__`` per field, then
    ``__post_init__``) cost more than cbor2's whole SenML round trip (docs/bench-codec.md).
    This one sets the slots through their descriptors and checks the common case (a known
    label, a float confidence in [0, 1]) inline; everything else takes the full checks.
    """

    type_code: ClassVar[int] = 0
    label_set: LabelSet
    label: str | None
    confidence: float | None = None

    def __init__(
        self, *, label_set: LabelSet, label: str | None, confidence: float | None = None
    ) -> None:
        _set_label_set(self, label_set)
        _set_label(self, label)
        _set_confidence(self, confidence)
        if (
            type(confidence) is not float
            or not 0.0 <= confidence <= 1.0
            or type(label) is not str
            or label not in label_set._index
        ):
            _label_state(label_set, label, confidence)

    def payload(self) -> bytes:
        # Hot path: the fields were validated on construction and the object is frozen.
        label_set = self.label_set
        classes = len(label_set.labels)
        if self.label is None:
            state = classes * CONFIDENCE_STEPS
        else:
            state = label_set._index[self.label] * CONFIDENCE_STEPS + math.floor(
                self.confidence * 100 + 0.5  # type: ignore[operator]
            )
        return state.to_bytes(_reading_length(classes), "big")

    @classmethod
    def from_payload(cls, data: bytes, label_set: LabelSet) -> Reading:
        memo = label_set.memo
        known = memo.get(data)
        if known is not None:
            return known  # type: ignore[return-value]
        # A payload seen for the first time: a face's reading decoded in place (what
        # _decode_new does, without its two calls); anything else takes _decode_new.
        labels = label_set.labels
        if len(data) == _READING_LENGTHS.get(len(labels)):
            index, percent = divmod(int.from_bytes(data, "big"), CONFIDENCE_STEPS)
            if index < len(labels):
                reading: Reading = _new_object(Reading)
                _set_label_set(reading, label_set)
                _set_label(reading, labels[index])
                _set_confidence(reading, percent / 100)
                memo[data] = reading
                return reading
        reading = cls._decode_new(data, label_set)
        memo[data] = reading
        return reading

    @classmethod
    def _decode_new(cls, data: bytes, label_set: LabelSet) -> Reading:
        classes = len(label_set.labels)
        length = _reading_length(classes)
        if len(data) != length:
            _exact_length(data, length, "reading")
        index, percent = divmod(int.from_bytes(data, "big"), CONFIDENCE_STEPS)
        if index < classes:
            return _trusted_reading(label_set, label_set.labels[index], percent / 100)
        if index == classes and percent == 0:
            return _trusted_reading(label_set, None, None)
        raise DecodeError(
            f"value {index * CONFIDENCE_STEPS + percent} is out of range "
            f"(the field has {classes * CONFIDENCE_STEPS + 1} values)",
            field="reading",
            offset=0,
        )


_new_object = object.__new__
# The slots' own setters: they skip the frozen class's __setattr__ and the name lookup.
_set_label_set = Reading.__dict__["label_set"].__set__
_set_label = Reading.__dict__["label"].__set__
_set_confidence = Reading.__dict__["confidence"].__set__


def _trusted_reading(label_set: LabelSet, label: str | None, confidence: float | None) -> Reading:
    """A Reading built from values the decoder has range-checked: skips re-validation."""
    reading: Reading = _new_object(Reading)
    _set_label_set(reading, label_set)
    _set_label(reading, label)
    _set_confidence(reading, confidence)
    return reading


_READING_LENGTHS: dict[int, int] = {}


def _reading_length(classes: int) -> int:
    length = _READING_LENGTHS.get(classes)
    if length is None:
        length = _READING_LENGTHS[classes] = _radix.byte_length(classes * CONFIDENCE_STEPS + 1)
    return length


def _exact_length(data: bytes, expected: int, field_name: str) -> None:
    if len(data) < expected:
        raise TruncatedPayloadError(field=field_name, expected=expected, got=len(data))
    if len(data) > expected:
        raise DecodeError(
            f"{len(data) - expected} unexpected trailing bytes "
            f"(a {field_name} is {expected} bytes)",
            field=field_name,
            offset=expected,
        )


# -- b: distribution --------------------------------------------------------------------------


#: Probabilities become integer weights on this scale before quantisation:
#: lcm(1..16) * 5, divisible by 100 and by every whole number up to 16, so decoded percentages
#: and small-integer ratios (4/6, 1/7, ...) become exact integer ratios (docs/payload-format.md
#: section 4.1).
PROBABILITY_SCALE = 3_603_600
#: The weights of accepted probabilities sum to PROBABILITY_SCALE within 1 %.
PROBABILITY_SUM_TOLERANCE = PROBABILITY_SCALE // 100


def largest_remainder(weights: Sequence[int], total: int = DISTRIBUTION_TOTAL) -> list[int]:
    """Whole shares of ``total`` by largest remainder, ties to the lower index, in integers.

    The one quantisation rule (docs/payload-format.md section 4.1). ``weights`` are
    non-negative integers with a positive sum; the caller checks that.
    """
    mass = sum(weights)
    shares = [w * total // mass for w in weights]
    remainders = [w * total % mass for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def quantise_distribution(
    probabilities: Sequence[float], total: int = DISTRIBUTION_TOTAL
) -> list[int]:
    """Whole-percent shares summing exactly to ``total`` (docs/payload-format.md section 4.1).

    Each probability becomes the integer weight ``floor(q * PROBABILITY_SCALE + 0.5)``; the
    weights are quantised by :func:`largest_remainder`, so exact ties (``4/6, 1/6, 1/6``) give
    the same bytes as the relay's integer weights ``4, 1, 1``.

    Raises:
        EncodeError: a probability that is not finite, is negative or above 1, or weights whose
            sum is not within 1 % of PROBABILITY_SCALE.
    """
    weights = []
    for position, value in enumerate(probabilities):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise EncodeError(
                f"{value!r} is not a finite number", field=f"probabilities[{position}]"
            )
        if not 0.0 <= value <= 1.0:
            raise EncodeError(f"{value!r} is outside [0, 1]", field=f"probabilities[{position}]")
        weights.append(math.floor(value * PROBABILITY_SCALE + 0.5))
    mass = sum(weights)
    if abs(mass - PROBABILITY_SCALE) > PROBABILITY_SUM_TOLERANCE:
        raise EncodeError(
            f"sum is {mass / PROBABILITY_SCALE:.4g}, expected 1 ± 0.01", field="probabilities"
        )
    return largest_remainder(weights, total)


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution(Message):
    """The probability of every class; carried in whole percent summing to 100."""

    type_code: ClassVar[int] = 1
    label_set: LabelSet
    probabilities: tuple[float, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "probabilities", tuple(self.probabilities))
        if len(self.probabilities) != len(self.label_set.labels):
            raise EncodeError(
                f"{len(self.probabilities)} values for {len(self.label_set.labels)} classes "
                f"of {self.label_set.name!r}",
                field="probabilities",
            )
        quantise_distribution(self.probabilities)

    @property
    def label(self) -> str:
        """The most probable class (lowest index on ties)."""
        best = max(range(len(self.probabilities)), key=lambda i: (self.probabilities[i], -i))
        return self.label_set.labels[best]

    @property
    def confidence(self) -> float:
        return max(self.probabilities)

    def payload(self) -> bytes:
        shares = quantise_distribution(self.probabilities)
        rank = _radix.rank_composition(shares, DISTRIBUTION_TOTAL)
        return rank.to_bytes(_distribution_length(len(shares)), "big")

    @classmethod
    def from_payload(cls, data: bytes, label_set: LabelSet) -> Distribution:
        classes = len(label_set.labels)
        _exact_length(data, _distribution_length(classes), "distribution")
        rank = int.from_bytes(data, "big")
        _radix.require_below(
            rank, _radix.compositions(DISTRIBUTION_TOTAL, classes), field="distribution"
        )
        shares = _radix.unrank_composition(rank, DISTRIBUTION_TOTAL, classes)
        return cls(label_set=label_set, probabilities=tuple(s / 100 for s in shares))


def _distribution_length(classes: int) -> int:
    return _radix.byte_length(_radix.compositions(DISTRIBUTION_TOTAL, classes))


# -- c: faces ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Face:
    """One face's class and confidence, within a :class:`Faces` message."""

    label: str
    confidence: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Faces(Message):
    """Every face found in one frame, in the order the model reported them (may be empty)."""

    type_code: ClassVar[int] = 2
    label_set: LabelSet
    faces: tuple[Face, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "faces", tuple(self.faces))
        limit = len(_faces_lengths(len(self.label_set.labels))) - 1
        if len(self.faces) > limit:
            raise EncodeError(
                f"{len(self.faces)} faces; at most {limit} fit in {MAX_PAYLOAD} bytes "
                f"with label set {self.label_set.name!r}",
                field="faces",
            )
        for position, face in enumerate(self.faces):
            if not isinstance(face, Face):
                raise EncodeError("expected a Face", field=f"faces[{position}]")
            try:
                _label_state(self.label_set, face.label, face.confidence)
            except EncodeError as exc:
                raise EncodeError(exc.reason, field=f"faces[{position}].{exc.field}") from exc

    def payload(self) -> bytes:
        states = len(self.label_set.labels) * CONFIDENCE_STEPS
        value = _radix.pack_digits(
            [(_label_state(self.label_set, f.label, f.confidence), states) for f in self.faces]
        )
        return value.to_bytes(_faces_lengths(len(self.label_set.labels))[len(self.faces)], "big")

    @classmethod
    def from_payload(cls, data: bytes, label_set: LabelSet) -> Faces:
        classes = len(label_set.labels)
        lengths = _faces_lengths(classes)
        count = _count_from_length(data, lengths, "faces")
        states = classes * CONFIDENCE_STEPS
        value = int.from_bytes(data, "big")
        _radix.require_below(value, states**count, field="faces")
        faces = []
        for state in _radix.unpack_digits(value, [states] * count):
            label, confidence = _state_label(label_set, state)
            assert label is not None and confidence is not None
            faces.append(Face(label=label, confidence=confidence))
        return cls(label_set=label_set, faces=tuple(faces))


_FACES_LENGTHS: dict[int, list[int]] = {}


def _faces_lengths(classes: int) -> list[int]:
    lengths = _FACES_LENGTHS.get(classes)
    if lengths is None:
        lengths = _radix.sequence_lengths(classes * CONFIDENCE_STEPS, 1, MAX_PAYLOAD)
        _FACES_LENGTHS[classes] = lengths
    return lengths


def _count_from_length(data: bytes, lengths: list[int], field_name: str) -> int:
    try:
        return lengths.index(len(data))
    except ValueError:
        shown = ", ".join(str(n) for n in lengths[:8])
        raise DecodeError(
            f"{len(data)} bytes is not a valid length (valid: {shown}, ...)",
            field=field_name,
            offset=0,
        ) from None


# -- d: window summary ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary(Message):
    """Per-class counts over a window, plus the dominant class's mean confidence.

    The dominant class is the one with the highest count (lowest index on ties); it is implied
    by the counts, so it costs no bits. With no class counted there is no dominant class and
    ``mean_confidence`` must be None.
    """

    type_code: ClassVar[int] = 3
    label_set: LabelSet
    window_s: int
    counts: tuple[int, ...]
    no_face: int = 0
    mean_confidence: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", tuple(self.counts))
        _check_int(self.window_s, 1, WINDOW_RADIX, "window_s")
        if len(self.counts) != len(self.label_set.labels):
            raise EncodeError(
                f"{len(self.counts)} counts for {len(self.label_set.labels)} classes",
                field="counts",
            )
        for position, count in enumerate(self.counts):
            _check_int(count, 0, SUMMARY_MAX_READINGS, f"counts[{position}]")
        _check_int(self.no_face, 0, SUMMARY_MAX_READINGS, "no_face")
        if sum(self.counts) + self.no_face > SUMMARY_MAX_READINGS:
            raise EncodeError(
                f"{sum(self.counts) + self.no_face} readings; at most {SUMMARY_MAX_READINGS}",
                field="counts",
            )
        if any(self.counts):
            _percent(self.mean_confidence, "mean_confidence")
        elif self.mean_confidence is not None:
            raise EncodeError(
                "no class was counted, so there is no dominant class", field="mean_confidence"
            )
        self.payload()

    @property
    def dominant(self) -> str | None:
        if not any(self.counts):
            return None
        best = max(range(len(self.counts)), key=lambda i: (self.counts[i], -i))
        return self.label_set.labels[best]

    @property
    def total(self) -> int:
        return sum(self.counts) + self.no_face

    def payload(self) -> bytes:
        rank = _radix.rank_bounded((*self.counts, self.no_face))
        percent = 0 if self.mean_confidence is None else _percent(self.mean_confidence, "")
        value = (rank * WINDOW_RADIX + self.window_s - 1) * CONFIDENCE_STEPS + percent
        length = _radix.byte_length(value + 1)
        if length > MAX_PAYLOAD:
            raise PayloadTooLargeError(field="summary", size=length, limit=MAX_PAYLOAD)
        return value.to_bytes(length, "big")

    @classmethod
    def from_payload(cls, data: bytes, label_set: LabelSet) -> Summary:
        if not data:
            raise TruncatedPayloadError(field="summary", expected=1, got=0)
        if len(data) > 1 and data[0] == 0:
            raise DecodeError(
                "leading zero byte (not the shortest encoding)", field="summary", offset=0
            )
        value = int.from_bytes(data, "big")
        rest, percent = divmod(value, CONFIDENCE_STEPS)
        rank, window = divmod(rest, WINDOW_RADIX)
        classes = len(label_set.labels)
        vector = _radix.unrank_bounded(rank, classes + 1, SUMMARY_MAX_READINGS)
        if vector is None:
            raise DecodeError(
                f"counts exceed {SUMMARY_MAX_READINGS} readings", field="summary", offset=0
            )
        counts = tuple(vector[:classes])
        if not any(counts) and percent:
            raise DecodeError(
                "mean confidence given but no class counted", field="summary", offset=0
            )
        return cls(
            label_set=label_set,
            window_s=window + 1,
            counts=counts,
            no_face=vector[classes],
            mean_confidence=percent / 100 if any(counts) else None,
        )


# -- e: vitals --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Vitals(Message):
    """Heart rate (bpm, whole) and skin conductance (µS, 0.01 steps), optionally with a reading."""

    type_code: ClassVar[int] = 4
    label_set: LabelSet
    heart_rate_bpm: int | None = None
    skin_conductance_us: float | None = None
    reading: Reading | None = None

    def __post_init__(self) -> None:
        if self.heart_rate_bpm is None and self.skin_conductance_us is None:
            raise EncodeError(
                "give a heart rate, a skin conductance or both", field="heart_rate_bpm"
            )
        self._digits()

    def _digits(self) -> list[tuple[int, int]]:
        classes = len(self.label_set.labels)
        if self.reading is None:
            label_digit = 0
        else:
            if self.reading.label_set != self.label_set:
                raise EncodeError("the reading uses another label set", field="reading")
            label_digit = 1 + _label_state(
                self.label_set, self.reading.label, self.reading.confidence
            )
        heart = 0
        if self.heart_rate_bpm is not None:
            heart = 1 + _check_int(self.heart_rate_bpm, 0, HEART_RATE_RADIX - 2, "heart_rate_bpm")
        skin = 0
        if self.skin_conductance_us is not None:
            value = self.skin_conductance_us
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0.0 <= value <= (SKIN_CONDUCTANCE_RADIX - 2) / 100)
            ):
                raise EncodeError(f"{value!r} is outside 0..100 µS", field="skin_conductance_us")
            skin = 1 + math.floor(value * 100 + 0.5)
        return [
            (label_digit, classes * CONFIDENCE_STEPS + 2),
            (skin, SKIN_CONDUCTANCE_RADIX),
            (heart, HEART_RATE_RADIX),
        ]

    def payload(self) -> bytes:
        return _radix.pack_digits(self._digits()).to_bytes(
            _vitals_length(len(self.label_set.labels)), "big"
        )

    @classmethod
    def from_payload(cls, data: bytes, label_set: LabelSet) -> Vitals:
        classes = len(label_set.labels)
        _exact_length(data, _vitals_length(classes), "vitals")
        value = int.from_bytes(data, "big")
        radices = [classes * CONFIDENCE_STEPS + 2, SKIN_CONDUCTANCE_RADIX, HEART_RATE_RADIX]
        _radix.require_below(value, math.prod(radices), field="vitals")
        label_digit, skin, heart = _radix.unpack_digits(value, radices)
        if not skin and not heart:
            raise DecodeError(
                "neither heart rate nor skin conductance present", field="vitals", offset=0
            )
        reading = None
        if label_digit:
            label, confidence = _state_label(label_set, label_digit - 1)
            reading = Reading(label_set=label_set, label=label, confidence=confidence)
        return cls(
            label_set=label_set,
            heart_rate_bpm=heart - 1 if heart else None,
            skin_conductance_us=(skin - 1) / 100 if skin else None,
            reading=reading,
        )


def _vitals_length(classes: int) -> int:
    return _radix.byte_length(
        (classes * CONFIDENCE_STEPS + 2) * SKIN_CONDUCTANCE_RADIX * HEART_RATE_RADIX
    )


# -- f: device status -------------------------------------------------------------------------

_STATUS_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("protocol_version", 16, "wire-format version (1)"),
    ("firmware_major", 16, "firmware version, major"),
    ("firmware_minor", 64, "firmware version, minor"),
    ("firmware_patch", 64, "firmware version, patch"),
    ("battery", 102, "0 unknown, else 1 + battery %"),
    ("uptime_min", 1 << 20, "minutes since boot, saturating"),
    ("dropped", 65_536, "readings dropped since boot, saturating"),
    ("window", WINDOW_RADIX, "window length in seconds − 1"),
    ("mode", 4, "0 reading, 1 distribution, 2 summary, 3 vitals"),
    ("daily_budget", 1024, "daily airtime cap in seconds − 1"),
    ("label_set_id", MAX_SET_ID + 1, "label set in use"),
    ("label_set_fingerprint", 65_536, "CRC-16/CCITT-FALSE of its class names"),
    ("command_seq", 256, "sequence number of the last downlink command"),
    ("command_status", 4, "0 none, 1 applied, 2 rejected, 3 unknown command"),
)
_STATUS_RADICES = tuple((name, radix) for name, radix, _ in _STATUS_FIELDS)
_STATUS_LENGTH = _radix.byte_length(math.prod(r for _, r in _STATUS_RADICES))


@dataclass(frozen=True, slots=True, kw_only=True)
class Status(Message):
    """The relay's health and configuration, sent periodically on port 2.

    Counters saturate instead of wrapping: ``uptime_s`` at 2^20 minutes, ``dropped`` at 65535.
    """

    type_code: ClassVar[int] = -1
    firmware: tuple[int, int, int]
    protocol_version: int = PROTOCOL_VERSION
    battery_percent: int | None = None
    uptime_s: int = 0
    dropped: int = 0
    window_s: int = 60
    mode: Mode = Mode.SUMMARY
    daily_budget_s: int = 30
    label_set_id: int = 0
    label_set_fingerprint: int = 0
    command_seq: int = 0
    command_status: CommandStatus = CommandStatus.NONE

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", Mode(self.mode))
        object.__setattr__(self, "command_status", CommandStatus(self.command_status))
        if not isinstance(self.firmware, tuple) or len(self.firmware) != 3:
            raise EncodeError("expected (major, minor, patch)", field="firmware")
        self._digits()

    def _digits(self) -> list[int]:
        major, minor, patch = self.firmware
        battery = self.battery_percent
        return [
            _check_int(self.protocol_version, 0, 15, "protocol_version"),
            _check_int(major, 0, 15, "firmware[0]"),
            _check_int(minor, 0, 63, "firmware[1]"),
            _check_int(patch, 0, 63, "firmware[2]"),
            0 if battery is None else 1 + _check_int(battery, 0, 100, "battery_percent"),
            min(_check_int(self.uptime_s, 0, 2**63, "uptime_s") // 60, (1 << 20) - 1),
            min(_check_int(self.dropped, 0, 2**63, "dropped"), 65_535),
            _check_int(self.window_s, 1, WINDOW_RADIX, "window_s") - 1,
            int(self.mode),
            _check_int(self.daily_budget_s, 1, 1024, "daily_budget_s") - 1,
            _check_int(self.label_set_id, 0, MAX_SET_ID, "label_set_id"),
            _check_int(self.label_set_fingerprint, 0, 65_535, "label_set_fingerprint"),
            _check_int(self.command_seq, 0, 255, "command_seq"),
            int(self.command_status),
        ]

    def payload(self) -> bytes:
        digits = zip(self._digits(), (r for _, r in _STATUS_RADICES), strict=True)
        return _radix.pack_digits(list(digits)).to_bytes(_STATUS_LENGTH, "big")

    @classmethod
    def from_payload(cls, data: bytes) -> Status:
        _exact_length(data, _STATUS_LENGTH, "status")
        radices = [r for _, r in _STATUS_RADICES]
        value = int.from_bytes(data, "big")
        _radix.require_below(value, math.prod(radices), field="status")
        d = dict(
            zip((n for n, _ in _STATUS_RADICES), _radix.unpack_digits(value, radices), strict=True)
        )
        return cls(
            protocol_version=d["protocol_version"],
            firmware=(d["firmware_major"], d["firmware_minor"], d["firmware_patch"]),
            battery_percent=d["battery"] - 1 if d["battery"] else None,
            uptime_s=d["uptime_min"] * 60,
            dropped=d["dropped"],
            window_s=d["window"] + 1,
            mode=Mode(d["mode"]),
            daily_budget_s=d["daily_budget"] + 1,
            label_set_id=d["label_set_id"],
            label_set_fingerprint=d["label_set_fingerprint"],
            command_seq=d["command_seq"],
            command_status=CommandStatus(d["command_status"]),
        )


# -- g: batches -------------------------------------------------------------------------------

BatchItem: TypeAlias = Reading | Distribution | Vitals


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchEntry:
    """One timed entry: ``age_s`` seconds before the uplink was sent."""

    age_s: int
    message: BatchItem


_BATCH_KINDS: dict[type[Message], int] = {Reading: 5, Distribution: 6, Vitals: 7}


def _element_states(kind: type[Message], classes: int) -> int:
    if kind is Reading:
        return classes * CONFIDENCE_STEPS + 1
    if kind is Distribution:
        return _radix.compositions(DISTRIBUTION_TOTAL, classes)
    return (classes * CONFIDENCE_STEPS + 2) * SKIN_CONDUCTANCE_RADIX * HEART_RATE_RADIX


def _element_value(message: BatchItem) -> int:
    if isinstance(message, Reading):
        return _label_state(message.label_set, message.label, message.confidence)
    return int.from_bytes(message.payload(), "big")


_BATCH_LENGTHS: dict[tuple[type[Message], int], list[int]] = {}


def _batch_lengths(kind: type[Message], classes: int) -> list[int]:
    key = (kind, classes)
    lengths = _BATCH_LENGTHS.get(key)
    if lengths is None:
        element = BATCH_GAP_RADIX * _element_states(kind, classes)
        lengths = _radix.sequence_lengths(element, 1, MAX_PAYLOAD)
        _BATCH_LENGTHS[key] = lengths
    return lengths


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch(Message):
    """Several readings, distributions or vitals of one label set, each with its age.

    Entries are kept newest first. Times are carried as the age of the newest entry and the
    gap to each older one, each at most 4095 s.
    """

    label_set: LabelSet
    entries: tuple[BatchEntry, ...]

    def __post_init__(self) -> None:
        entries = tuple(sorted(self.entries, key=lambda e: e.age_s))
        object.__setattr__(self, "entries", entries)
        if not entries:
            raise EncodeError("a batch needs at least one entry", field="entries")
        kind = type(entries[0].message)
        if kind not in _BATCH_KINDS:
            raise EncodeError(f"{kind.__name__} cannot be batched", field="entries[0].message")
        previous = 0
        for position, entry in enumerate(entries):
            if type(entry.message) is not kind:
                raise EncodeError(
                    f"mixes {kind.__name__} and {type(entry.message).__name__}",
                    field=f"entries[{position}].message",
                )
            if entry.message.label_set != self.label_set:
                raise EncodeError("uses another label set", field=f"entries[{position}].message")
            _check_int(
                entry.age_s, previous, previous + BATCH_GAP_RADIX - 1, f"entries[{position}].age_s"
            )
            previous = entry.age_s
        lengths = _batch_lengths(kind, len(self.label_set.labels))
        if len(entries) >= len(lengths):
            raise PayloadTooLargeError(
                field="entries",
                size=_radix.byte_length(
                    (BATCH_GAP_RADIX * _element_states(kind, len(self.label_set.labels)))
                    ** len(entries)
                ),
                limit=MAX_PAYLOAD,
            )

    @property
    def type_code(self) -> int:  # type: ignore[override]
        return _BATCH_KINDS[type(self.entries[0].message)]

    def payload(self) -> bytes:
        kind = type(self.entries[0].message)
        states = _element_states(kind, len(self.label_set.labels))
        digits: list[tuple[int, int]] = []
        previous = 0
        for entry in self.entries:
            digits.append((entry.age_s - previous, BATCH_GAP_RADIX))
            digits.append((_element_value(entry.message), states))
            previous = entry.age_s
        length = _batch_lengths(kind, len(self.label_set.labels))[len(self.entries)]
        return _radix.pack_digits(digits).to_bytes(length, "big")

    @classmethod
    def _decoder(cls, kind: type[Message]) -> Callable[[bytes, LabelSet], Batch]:
        def from_payload(data: bytes, label_set: LabelSet) -> Batch:
            classes = len(label_set.labels)
            count = _count_from_length(data, _batch_lengths(kind, classes), "batch")
            if count == 0:
                raise DecodeError("a batch needs at least one entry", field="batch", offset=0)
            states = _element_states(kind, classes)
            value = int.from_bytes(data, "big")
            _radix.require_below(value, (BATCH_GAP_RADIX * states) ** count, field="batch")
            digits = _radix.unpack_digits(value, [BATCH_GAP_RADIX, states] * count)
            entries = []
            age = 0
            for gap, element in zip(digits[0::2], digits[1::2], strict=True):
                age += gap
                message: BatchItem
                if kind is Reading:
                    label, confidence = _state_label(label_set, element)
                    message = Reading(label_set=label_set, label=label, confidence=confidence)
                else:
                    raw = element.to_bytes(_radix.byte_length(states), "big")
                    decoded = _DECODERS[kind.type_code](raw, label_set)
                    assert isinstance(decoded, Distribution | Vitals)
                    message = decoded
                entries.append(BatchEntry(age_s=age, message=message))
            return cls(label_set=label_set, entries=tuple(entries))

        return from_payload


def split_batch(label_set: LabelSet, entries: Sequence[BatchEntry]) -> list[Batch]:
    """Split ``entries`` into as few batches as fit :data:`MAX_PAYLOAD` each, newest first.

    Ages stay relative to the same uplink time, so every part must be sent at once (or its
    ages rebuilt); the newest entry of each part must be at most 4095 s old.

    Raises:
        EncodeError: entries that cannot be batched at all (mixed kinds, gaps over 4095 s).
    """
    ordered = sorted(entries, key=lambda e: e.age_s)
    if not ordered:
        raise EncodeError("nothing to split", field="entries")
    kind = type(ordered[0].message)
    if kind not in _BATCH_KINDS:
        raise EncodeError(f"{kind.__name__} cannot be batched", field="entries[0].message")
    per_part = len(_batch_lengths(kind, len(label_set.labels))) - 1
    return [
        Batch(label_set=label_set, entries=tuple(ordered[start : start + per_part]))
        for start in range(0, len(ordered), per_part)
    ]


# -- dispatch ---------------------------------------------------------------------------------

#: Message class by type code (port = 16 + 8 * set_id + type code).
MESSAGE_TYPES: dict[int, type[Message]] = {
    0: Reading,
    1: Distribution,
    2: Faces,
    3: Summary,
    4: Vitals,
    5: Batch,
    6: Batch,
    7: Batch,
}

_DECODERS: dict[int, Callable[[bytes, LabelSet], Message]] = {
    0: Reading.from_payload,
    1: Distribution.from_payload,
    2: Faces.from_payload,
    3: Summary.from_payload,
    4: Vitals.from_payload,
    5: Batch._decoder(Reading),
    6: Batch._decoder(Distribution),
    7: Batch._decoder(Vitals),
}

#: The digits of each payload, most significant first; K is the number of classes.
LAYOUTS: dict[str, tuple[LayoutField, ...]] = {
    "reading": (
        LayoutField(
            name="state", radix="101·K+1", meaning="class·101 + confidence %, or 101·K for no face"
        ),
    ),
    "distribution": (
        LayoutField(
            name="rank",
            radix="C(100+K-1, K-1)",
            meaning="lexicographic rank of the percentages (sum 100)",
        ),
    ),
    "faces": (
        LayoutField(name="face[i]", radix="101·K", meaning="class·101 + confidence %, per face"),
    ),
    "summary": (
        LayoutField(
            name="counts",
            radix="C(65535+K+1, K+1)",
            meaning="graded rank of (count per class..., no-face count)",
        ),
        LayoutField(name="window", radix="65536", meaning="window length in seconds − 1"),
        LayoutField(
            name="mean_confidence",
            radix="101",
            meaning="dominant class's mean confidence %, 0 if none",
        ),
    ),
    "vitals": (
        LayoutField(name="label", radix="101·K+2", meaning="0 none given, else 1 + reading state"),
        LayoutField(name="skin_conductance", radix="10002", meaning="0 absent, else 1 + µS·100"),
        LayoutField(name="heart_rate", radix="252", meaning="0 absent, else 1 + bpm"),
    ),
    "status": tuple(
        LayoutField(name=name, radix=str(radix), meaning=meaning)
        for name, radix, meaning in _STATUS_FIELDS
    ),
    "batch": (
        LayoutField(
            name="gap[i]",
            radix="4096",
            meaning="age of the newest entry, then seconds to each older one",
        ),
        LayoutField(
            name="entry[i]",
            radix="element states",
            meaning="reading state, distribution rank or vitals value",
        ),
    ),
}


_PORT_TABLE: dict[int, tuple[int, int]] = {
    SET_BLOCK_BASE + SET_BLOCK_SIZE * set_id + type_code: (set_id, type_code)
    for set_id in range(MAX_SET_ID + 1)
    for type_code in range(SET_BLOCK_SIZE)
}


def port_of(message: Message) -> int:
    """The FPort that identifies ``message``'s type and label set."""
    if isinstance(message, Status):
        return STATUS_PORT
    label_set: LabelSet = message.label_set  # type: ignore[attr-defined]
    return SET_BLOCK_BASE + SET_BLOCK_SIZE * label_set.id + message.type_code


def set_id_of_port(fport: int) -> tuple[int, int] | None:
    """``(set_id, type_code)`` for a compact-message port, None for any other port."""
    if not SET_BLOCK_BASE <= fport < SET_BLOCK_BASE + SET_BLOCK_SIZE * (MAX_SET_ID + 1):
        return None
    return divmod(fport - SET_BLOCK_BASE, SET_BLOCK_SIZE)


def encode(message: Message) -> bytes:
    """The payload bytes of ``message`` (send them on :func:`port_of` ``(message)``).

    Raises:
        EncodeError: the message cannot be represented; PayloadTooLargeError when it would
            exceed :data:`MAX_PAYLOAD`.
    """
    try:
        return message.payload()
    except AttributeError:
        if isinstance(message, Message):
            raise
        raise EncodeError(f"{type(message).__name__} is not a message", field="message") from None


def decode(payload: bytes, *, fport: int, registry: LabelRegistry = DEFAULT_REGISTRY) -> Message:
    """Decode a compact payload received on ``fport``.

    Raises:
        DecodeError: an unknown port or label set, a wrong length, or a value out of range;
            the message names the field and byte offset. Nothing else is ever raised.
    """
    data = payload if type(payload) is bytes else bytes(payload)
    located = _PORT_TABLE.get(fport) if type(fport) is int else None
    if located is None:
        if fport == STATUS_PORT:
            return Status.from_payload(data)
        raise DecodeError(f"port {fport!r} carries no compact emotion message", field="fport")
    set_id, type_code = located
    label_set = registry.sets.get(set_id)
    if label_set is None:
        raise DecodeError(
            f"port {fport} is label set id {set_id}, which this decoder does not know; "
            "declare it (labels file) rather than guess",
            field="fport",
        )
    try:
        return _DECODERS[type_code](data, label_set)
    except DecodeError:
        raise
    except (EncodeError, ValueError, IndexError, OverflowError) as exc:
        # A value that decodes but fails the message's own checks is still bad input.
        raise DecodeError(
            str(exc), field=MESSAGE_TYPES[type_code].__name__.lower(), offset=0
        ) from exc
