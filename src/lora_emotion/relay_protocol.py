"""The relay's input frames (I2C and USB serial) and its structured log lines, sans-IO.

Why this shape: the MKR WAN 1310 relay must keep the 2021 demo's one-byte I2C contract
(a transaction of exactly one byte is a FER-2013 class, 7 = no face) while letting new
models send more: confidences, distributions, several faces, vitals. An I2C write
transaction delimits itself, so any transaction of two or more bytes is one *frame*; a serial
port is a byte stream, so frames there start with a sync byte and carry a length and a
CRC-16, and the reader resynchronises after garbage. The same frame bytes work on both.

Frame layout (docs/relay-protocol.md is the normative description)::

    A5 | type | length | payload (length bytes, <= 33) | CRC-16/CCITT-FALSE, big-endian

The CRC covers type, length and payload. Labels are class indexes, so the producer and the
relay agree through the label-set id that starts every payload.

The relay reports what it does as one text line per event on USB serial,
``LE1 <uptime_ms> <event> key=value ...``; :func:`parse_log_line` reads them back.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from .errors import DecodeError, EncodeError, TruncatedPayloadError
from .labels import MAX_CLASSES, MAX_SET_ID, LabelSet, crc16_ccitt
from .messages import largest_remainder

__all__ = [
    "FRAME_OVERHEAD",
    "LOG_EVENTS",
    "LOG_PREFIX",
    "MAX_FACES",
    "MAX_FRAME_PAYLOAD",
    "MAX_RELAY_CLASSES",
    "SYNC",
    "DistributionFrame",
    "FaceEntry",
    "FacesFrame",
    "Frame",
    "FrameType",
    "LegacyByte",
    "LogEvent",
    "Prediction",
    "ReadingFrame",
    "VitalsFrame",
    "decode_frame",
    "decode_i2c_transaction",
    "distribution_frame",
    "encode_frame",
    "encode_legacy",
    "format_log_line",
    "maybe_next_frame",
    "parse_log_line",
    "quantise_weights",
    "reading_frame",
]

#: First byte of every frame. Not in 0..7, so it never looks like a legacy class byte.
SYNC = 0xA5
#: Sync, type, length, two CRC bytes.
FRAME_OVERHEAD = 5
#: The relay keeps per-class sums for at most this many classes (RAM on the SAMD21).
MAX_RELAY_CLASSES = 16
#: A set byte plus 16 big-endian 16-bit weights: the largest payload any frame type needs.
MAX_FRAME_PAYLOAD = 1 + 2 * MAX_RELAY_CLASSES
MAX_FACES = (MAX_FRAME_PAYLOAD - 1) // 2

_NO_FACE = 0xFF
_NO_READING = 0xFE
_UNKNOWN = 0xFF
_ABSENT_SKIN = 0xFFFF
_MAX_HEART_RATE = 250
_MAX_SKIN_CENTI_US = 10_000
_MAX_WEIGHT_SUM = 0xFFFFFFFF // 100  # the relay computes 100 * weight in 32 bits


class FrameType(enum.IntEnum):
    """The type byte of a frame."""

    READING = 1
    DISTRIBUTION = 2
    FACES = 3
    VITALS = 4


def _check_int(value: object, low: int, high: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EncodeError(f"{value!r} is not an integer in {low}..{high}", field=field)
    return value


def _check_prediction(label: int | None, confidence_pct: int | None, field: str) -> None:
    if label is None:
        if confidence_pct is not None:
            raise EncodeError(
                "a reading without a face carries no confidence", field=f"{field}confidence_pct"
            )
        return
    _check_int(label, 0, MAX_CLASSES - 1, f"{field}label")
    if confidence_pct is not None:
        _check_int(confidence_pct, 0, 100, f"{field}confidence_pct")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prediction:
    """A class index with an optional confidence, or no face (``label=None``)."""

    label: int | None
    confidence_pct: int | None = None

    def __post_init__(self) -> None:
        _check_prediction(self.label, self.confidence_pct, "")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadingFrame:
    """One prediction: class index and confidence in percent (None when the model has none)."""

    label_set: int
    label: int | None
    confidence_pct: int | None = None

    def __post_init__(self) -> None:
        _check_int(self.label_set, 0, MAX_SET_ID, "label_set")
        _check_prediction(self.label, self.confidence_pct, "")


@dataclass(frozen=True, slots=True, kw_only=True)
class DistributionFrame:
    """Integer weights per class, any scale; the relay quantises them to whole percent."""

    label_set: int
    weights: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_int(self.label_set, 0, MAX_SET_ID, "label_set")
        object.__setattr__(self, "weights", tuple(self.weights))
        if not 2 <= len(self.weights) <= MAX_RELAY_CLASSES:
            raise EncodeError(
                f"{len(self.weights)} weights; a frame carries 2..16", field="weights"
            )
        for position, weight in enumerate(self.weights):
            _check_int(weight, 0, 0xFFFF, f"weights[{position}]")
        if sum(self.weights) == 0:
            raise EncodeError("the weights sum to 0", field="weights")


@dataclass(frozen=True, slots=True, kw_only=True)
class FaceEntry:
    """One face of a :class:`FacesFrame`."""

    label: int
    confidence_pct: int | None = None

    def __post_init__(self) -> None:
        _check_int(self.label, 0, MAX_CLASSES - 1, "label")
        if self.confidence_pct is not None:
            _check_int(self.confidence_pct, 0, 100, "confidence_pct")


@dataclass(frozen=True, slots=True, kw_only=True)
class FacesFrame:
    """Every face of one camera frame (none means no face was found)."""

    label_set: int
    faces: tuple[FaceEntry, ...]

    def __post_init__(self) -> None:
        _check_int(self.label_set, 0, MAX_SET_ID, "label_set")
        object.__setattr__(self, "faces", tuple(self.faces))
        if len(self.faces) > MAX_FACES:
            raise EncodeError(
                f"{len(self.faces)} faces; a frame carries at most {MAX_FACES}", field="faces"
            )
        for position, face in enumerate(self.faces):
            if not isinstance(face, FaceEntry):
                raise EncodeError("expected a FaceEntry", field=f"faces[{position}]")


@dataclass(frozen=True, slots=True, kw_only=True)
class VitalsFrame:
    """Heart rate (bpm) and skin conductance (0.01 µS steps), optionally with a prediction."""

    label_set: int
    heart_rate_bpm: int | None = None
    skin_conductance_centi_us: int | None = None
    prediction: Prediction | None = None

    def __post_init__(self) -> None:
        _check_int(self.label_set, 0, MAX_SET_ID, "label_set")
        if self.heart_rate_bpm is None and self.skin_conductance_centi_us is None:
            raise EncodeError(
                "give a heart rate, a skin conductance or both", field="heart_rate_bpm"
            )
        if self.heart_rate_bpm is not None:
            _check_int(self.heart_rate_bpm, 0, _MAX_HEART_RATE, "heart_rate_bpm")
        if self.skin_conductance_centi_us is not None:
            _check_int(
                self.skin_conductance_centi_us, 0, _MAX_SKIN_CENTI_US, "skin_conductance_centi_us"
            )
        if self.prediction is not None and not isinstance(self.prediction, Prediction):
            raise EncodeError("expected a Prediction", field="prediction")


Frame: TypeAlias = ReadingFrame | DistributionFrame | FacesFrame | VitalsFrame


@dataclass(frozen=True, slots=True, kw_only=True)
class LegacyByte:
    """A one-byte I2C transaction: the 2021 demo's class index (7 = no face for FER-2013)."""

    value: int

    def label(self, classes: int = 7) -> int | None:
        """The class index, or None for "no face" (the value equal to ``classes``).

        Raises:
            DecodeError: the value is above ``classes`` (the relay counts and ignores it).
        """
        if self.value > classes:
            raise DecodeError(
                f"{self.value} is not a class of {classes} nor 'no face'", field="legacy", offset=0
            )
        return None if self.value == classes else self.value


# -- encoding ---------------------------------------------------------------------------------


def _confidence_byte(confidence_pct: int | None) -> int:
    return _UNKNOWN if confidence_pct is None else confidence_pct


def _payload(frame: Frame) -> tuple[FrameType, bytes]:
    head = bytes([frame.label_set])
    if isinstance(frame, ReadingFrame):
        label = _NO_FACE if frame.label is None else frame.label
        return FrameType.READING, head + bytes([label, _confidence_byte(frame.confidence_pct)])
    if isinstance(frame, DistributionFrame):
        return FrameType.DISTRIBUTION, head + b"".join(w.to_bytes(2, "big") for w in frame.weights)
    if isinstance(frame, FacesFrame):
        body = b"".join(bytes([f.label, _confidence_byte(f.confidence_pct)]) for f in frame.faces)
        return FrameType.FACES, head + body
    if isinstance(frame, VitalsFrame):
        heart = _UNKNOWN if frame.heart_rate_bpm is None else frame.heart_rate_bpm
        skin = (
            _ABSENT_SKIN
            if frame.skin_conductance_centi_us is None
            else frame.skin_conductance_centi_us
        )
        if frame.prediction is None:
            label, confidence = _NO_READING, _UNKNOWN
        else:
            label = _NO_FACE if frame.prediction.label is None else frame.prediction.label
            confidence = _confidence_byte(frame.prediction.confidence_pct)
        return FrameType.VITALS, head + bytes([heart]) + skin.to_bytes(2, "big") + bytes(
            [label, confidence]
        )
    raise EncodeError(f"{type(frame).__name__} is not a frame", field="frame")


def encode_frame(frame: Frame) -> bytes:
    """The bytes of one frame, ready for an I2C write or a serial port.

    Raises:
        EncodeError: ``frame`` is not a frame.
    """
    frame_type, payload = _payload(frame)
    body = bytes([frame_type, len(payload)]) + payload
    return bytes([SYNC]) + body + crc16_ccitt(body).to_bytes(2, "big")


def encode_legacy(label: int | None, *, classes: int = 7) -> bytes:
    """The 2021 demo's one-byte transaction: a class index, or ``classes`` for no face.

    Raises:
        EncodeError: the label is not a class of a set with ``classes`` classes.
    """
    _check_int(classes, 2, 254, "classes")
    if label is None:
        return bytes([classes])
    return bytes([_check_int(label, 0, classes - 1, "label")])


def reading_frame(
    label_set: LabelSet, label: str | None, confidence: float | None = None
) -> ReadingFrame:
    """A :class:`ReadingFrame` from a class name and a confidence in [0, 1].

    Raises:
        EncodeError: an unknown label or a confidence outside [0, 1].
    """
    index = None if label is None else label_set.index(label)
    percent = None
    if confidence is not None:
        if isinstance(confidence, bool) or not 0.0 <= confidence <= 1.0:
            raise EncodeError(f"{confidence!r} is outside [0, 1]", field="confidence")
        percent = int(confidence * 100 + 0.5)
    return ReadingFrame(label_set=label_set.id, label=index, confidence_pct=percent)


def distribution_frame(label_set: LabelSet, probabilities: Sequence[float]) -> DistributionFrame:
    """A :class:`DistributionFrame` with weights in units of 1/10000 (0.01 %).

    Raises:
        EncodeError: the wrong number of values, or a value outside [0, 1].
    """
    if len(probabilities) != len(label_set):
        raise EncodeError(
            f"{len(probabilities)} values for {len(label_set)} classes", field="probabilities"
        )
    weights = []
    for position, p in enumerate(probabilities):
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
            raise EncodeError(f"{p!r} is outside [0, 1]", field=f"probabilities[{position}]")
        weights.append(int(p * 10_000 + 0.5))
    return DistributionFrame(label_set=label_set.id, weights=tuple(weights))


def quantise_weights(weights: Sequence[int], total: int = 100) -> list[int]:
    """Whole shares of ``total`` by largest remainder, ties to the lower index, exactly.

    :func:`lora_emotion.messages.largest_remainder` (docs/payload-format.md section 4.1)
    within the limits of the relay's 32-bit arithmetic.

    Raises:
        EncodeError: no weights, a negative one, a zero sum, or a sum the relay cannot
            multiply by 100 in 32 bits.
    """
    if not weights:
        raise EncodeError("no weights", field="weights")
    for position, weight in enumerate(weights):
        _check_int(weight, 0, _MAX_WEIGHT_SUM, f"weights[{position}]")
    mass = sum(weights)
    if not 0 < mass <= _MAX_WEIGHT_SUM:
        raise EncodeError(
            f"the weights sum to {mass}; expected 1..{_MAX_WEIGHT_SUM}", field="weights"
        )
    return largest_remainder(weights, total)


# -- decoding ---------------------------------------------------------------------------------


def _prediction(label: int, confidence: int, offset: int) -> tuple[int | None, int | None]:
    if label == _NO_FACE:
        if confidence != _UNKNOWN:
            raise DecodeError(
                "a reading without a face carries no confidence", field="payload", offset=offset + 1
            )
        return None, None
    if label >= MAX_CLASSES:
        raise DecodeError(
            f"class {label} is above {MAX_CLASSES - 1}", field="payload", offset=offset
        )
    if confidence != _UNKNOWN and confidence > 100:
        raise DecodeError(
            f"confidence {confidence} exceeds 100", field="payload", offset=offset + 1
        )
    return label, None if confidence == _UNKNOWN else confidence


_FRAME_TYPES = frozenset(int(t) for t in FrameType)


def _decode_payload(frame_type: int, payload: bytes) -> Frame:
    # Offsets in errors count from the start of the frame (payload starts at byte 3).
    if frame_type not in _FRAME_TYPES:
        raise DecodeError(f"unknown frame type {frame_type}", field="type", offset=1)
    if not payload:
        raise TruncatedPayloadError(field="payload", expected=1, got=0, offset=3)
    label_set = payload[0]
    if label_set > MAX_SET_ID:
        raise DecodeError(f"label set {label_set} is above {MAX_SET_ID}", field="payload", offset=3)
    body = payload[1:]
    if frame_type == FrameType.READING:
        if len(body) != 2:
            raise DecodeError(
                f"a reading has 3 payload bytes, not {len(payload)}", field="payload", offset=3
            )
        label, confidence = _prediction(body[0], body[1], 4)
        return ReadingFrame(label_set=label_set, label=label, confidence_pct=confidence)
    if frame_type == FrameType.DISTRIBUTION:
        if len(body) % 2 or not 2 <= len(body) // 2 <= MAX_RELAY_CLASSES:
            raise DecodeError(
                f"{len(body)} weight bytes; expected 2..16 big-endian pairs",
                field="payload",
                offset=4,
            )
        weights = tuple(int.from_bytes(body[i : i + 2], "big") for i in range(0, len(body), 2))
        if not any(weights):
            raise DecodeError("the weights sum to 0", field="payload", offset=4)
        return DistributionFrame(label_set=label_set, weights=weights)
    if frame_type == FrameType.FACES:
        if len(body) % 2:
            raise DecodeError("faces come in (class, confidence) pairs", field="payload", offset=4)
        faces = []
        for i in range(0, len(body), 2):
            label, confidence = _prediction(body[i], body[i + 1], 4 + i)
            if label is None:
                raise DecodeError("a face needs a class", field="payload", offset=4 + i)
            faces.append(FaceEntry(label=label, confidence_pct=confidence))
        return FacesFrame(label_set=label_set, faces=tuple(faces))
    if len(body) != 5:
        raise DecodeError(
            f"vitals have 6 payload bytes, not {len(payload)}", field="payload", offset=3
        )
    heart = None if body[0] == _UNKNOWN else body[0]
    skin_raw = int.from_bytes(body[1:3], "big")
    skin = None if skin_raw == _ABSENT_SKIN else skin_raw
    if heart is not None and heart > _MAX_HEART_RATE:
        raise DecodeError(
            f"heart rate {heart} exceeds {_MAX_HEART_RATE}", field="payload", offset=4
        )
    if skin is not None and skin > _MAX_SKIN_CENTI_US:
        raise DecodeError(
            f"skin conductance {skin} exceeds {_MAX_SKIN_CENTI_US}", field="payload", offset=5
        )
    if heart is None and skin is None:
        raise DecodeError(
            "neither heart rate nor skin conductance present", field="payload", offset=4
        )
    prediction = None
    if body[3] == _NO_READING:
        if body[4] != _UNKNOWN:
            raise DecodeError("a confidence without a reading", field="payload", offset=8)
    else:
        label, confidence = _prediction(body[3], body[4], 7)
        prediction = Prediction(label=label, confidence_pct=confidence)
    return VitalsFrame(
        label_set=label_set,
        heart_rate_bpm=heart,
        skin_conductance_centi_us=skin,
        prediction=prediction,
    )


def _check_crc(data: bytes | bytearray, length: int) -> None:
    expected = int.from_bytes(data[3 + length : 5 + length], "big")
    actual = crc16_ccitt(bytes(data[1 : 3 + length]))
    if expected != actual:
        raise DecodeError(
            f"CRC {expected:04X} does not match the frame ({actual:04X})",
            field="checksum",
            offset=3 + length,
        )


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one whole frame (one I2C transaction of two or more bytes).

    Raises:
        DecodeError: with ``field`` ``sync``, ``length``, ``checksum``, ``type`` or
            ``payload`` naming what is wrong. Nothing else is ever raised.
    """
    data = bytes(data)
    if len(data) < FRAME_OVERHEAD:
        raise TruncatedPayloadError(field="length", expected=FRAME_OVERHEAD, got=len(data))
    if data[0] != SYNC:
        raise DecodeError(
            f"first byte {data[0]:#04x} is not the sync byte {SYNC:#04x}", field="sync", offset=0
        )
    length = data[2]
    if length > MAX_FRAME_PAYLOAD:
        raise DecodeError(
            f"payload length {length} exceeds {MAX_FRAME_PAYLOAD}", field="length", offset=2
        )
    if len(data) != FRAME_OVERHEAD + length:
        raise DecodeError(
            f"{len(data)} bytes for a frame of {FRAME_OVERHEAD + length}", field="length", offset=2
        )
    _check_crc(data, length)
    return _decode_payload(data[1], data[3 : 3 + length])


def decode_i2c_transaction(data: bytes) -> Frame | LegacyByte:
    """Decode what one I2C write transaction carried: a legacy byte or one frame.

    Raises:
        DecodeError: an empty transaction, or a bad frame (see :func:`decode_frame`).
    """
    data = bytes(data)
    if not data:
        raise TruncatedPayloadError(field="length", expected=1, got=0)
    if len(data) == 1:
        return LegacyByte(value=data[0])
    return decode_frame(data)


def maybe_next_frame(buffer: bytearray) -> Frame | None:
    """Take the next frame off the front of a serial byte stream.

    Bytes before a sync byte are discarded silently (a serial line may carry anything before
    the host starts sending frames). Returns None when the buffer holds no complete frame yet;
    what is left in it is the start of one. The relay runs the same steps after every byte,
    so the frames and errors do not depend on how the stream was split into reads.

    Raises:
        DecodeError: a length above the maximum or a CRC mismatch (only the sync byte is then
            dropped, so a real frame inside the bad one is still found), or a frame whose
            checksum is right but whose type or payload is invalid (the whole frame is
            dropped). The buffer is left ready for the next call.
    """
    start = buffer.find(SYNC)
    del buffer[: len(buffer) if start < 0 else start]
    if len(buffer) < 3:
        return None
    length = buffer[2]
    if length > MAX_FRAME_PAYLOAD:
        del buffer[:1]
        raise DecodeError(
            f"payload length {length} exceeds {MAX_FRAME_PAYLOAD}", field="length", offset=2
        )
    size = FRAME_OVERHEAD + length
    if len(buffer) < size:
        return None
    try:
        _check_crc(buffer, length)
    except DecodeError:
        del buffer[:1]
        raise
    frame_bytes = bytes(buffer[:size])
    del buffer[:size]
    return _decode_payload(frame_bytes[1], frame_bytes[3 : 3 + length])


# -- log lines --------------------------------------------------------------------------------

#: First token of every line the relay logs; the digit is the log format version.
LOG_PREFIX = "LE1"

#: Keys each known event always has. Unknown events are accepted (newer firmware).
LOG_EVENTS: dict[str, tuple[str, ...]] = {
    "boot": ("fw", "set", "classes", "mode", "window_s", "budget_s", "ledger"),
    "join": ("ok", "attempt"),
    "reading": ("src", "kind", "set", "label", "n"),
    "drop": ("reason", "n", "total"),
    "error": ("code", "src", "total"),
    "defer": ("kind", "reason"),
    "uplink": ("kind", "port", "size", "hex", "dr", "airtime_ms", "rc", "outcome", "readings"),
    "downlink": ("port", "size", "hex", "result"),
    "config": ("mode", "window_s", "budget_s", "set", "classes", "status_min"),
    "stats": ("received", "dropped", "invalid", "window_readings", "uplinks"),
}

#: Keys whose values are decimal integers (possibly negative).
_INT_KEYS = frozenset(
    {
        "set",
        "classes",
        "window_s",
        "budget_s",
        "ledger",
        "ok",
        "attempt",
        "next_s",
        "n",
        "total",
        "port",
        "size",
        "dr",
        "airtime_ms",
        "rc",
        "readings",
        "hour_ms",
        "day_ms",
        "seq",
        "wait_s",
        "received",
        "dropped",
        "invalid",
        "window_readings",
        "uplinks",
        "conf",
        "status_min",
        "credit_s",
    }
)
_TOKEN = re.compile(r"[A-Za-z0-9_.:+-]+\Z")
_KEY = re.compile(r"[a-z][a-z0-9_]*\Z")
_EVENT = re.compile(r"[a-z][a-z0-9_]*\Z")
_HEX = re.compile(r"(?:[0-9A-F]{2})*\Z")
_INT = re.compile(r"-?[0-9]+\Z")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogEvent:
    """One structured line of the relay's USB log."""

    event: str
    uptime_ms: int
    fields: Mapping[str, str]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def integer(self, key: str) -> int:
        """The value of an integer field.

        Raises:
            DecodeError: the field is missing or not an integer.
        """
        value = self.fields.get(key)
        if value is None or not _INT.match(value):
            raise DecodeError(f"{key}={value!r} is not an integer", field=key)
        return int(value)

    def data(self, key: str = "hex") -> bytes:
        """The bytes of a hex field (``hex`` of uplinks and downlinks).

        Raises:
            DecodeError: the field is missing or not uppercase hex.
        """
        value = self.fields.get(key)
        if value is None or not _HEX.match(value):
            raise DecodeError(f"{key}={value!r} is not hex", field=key)
        return bytes.fromhex(value)


def parse_log_line(line: str) -> LogEvent:
    """Parse one line of the relay's USB log (``LE1 <uptime_ms> <event> key=value ...``).

    Args:
        line: the text, with or without its line ending.

    Returns:
        The :class:`LogEvent`.

    Raises:
        DecodeError: any other line (modem chatter, a partial line), a malformed token, a
            duplicate key, a missing key of a known event, or an integer or hex field that
            is not one. Nothing else is ever raised.
    """
    if not isinstance(line, str):
        raise DecodeError("a log line is text", field="line")
    tokens = line.rstrip("\r\n").split(" ")
    if len(tokens) < 3 or tokens[0] != LOG_PREFIX:
        raise DecodeError(
            f"not a relay log line (expected '{LOG_PREFIX} <ms> <event> ...')",
            field="prefix",
            offset=0,
        )
    if not _INT.match(tokens[1]) or tokens[1].startswith("-"):
        raise DecodeError(f"uptime {tokens[1]!r} is not a whole number of ms", field="uptime")
    if not _EVENT.match(tokens[2]):
        raise DecodeError(f"event {tokens[2]!r} is not a lowercase name", field="event")
    fields: dict[str, str] = {}
    for token in tokens[3:]:
        key, sep, value = token.partition("=")
        if not sep or not _KEY.match(key) or not _TOKEN.match(value):
            raise DecodeError(f"{token!r} is not key=value", field="fields")
        if key in fields:
            raise DecodeError(f"duplicate key {key!r}", field=key)
        if key in _INT_KEYS and not _INT.match(value):
            raise DecodeError(f"{key}={value!r} is not an integer", field=key)
        fields[key] = value
    event = LogEvent(event=tokens[2], uptime_ms=int(tokens[1]), fields=fields)
    for key in LOG_EVENTS.get(event.event, ()):
        if key not in fields:
            raise DecodeError(f"a {event.event} line needs {key}=", field=key)
    if "hex" in fields:
        payload = event.data("hex")
        if "size" in fields and len(payload) != event.integer("size"):
            raise DecodeError(
                f"hex holds {len(payload)} bytes, size says {fields['size']}", field="hex"
            )
    return event


def format_log_line(event: LogEvent) -> str:
    """The line :func:`parse_log_line` reads back as ``event`` (for tests and replays).

    Raises:
        EncodeError: a key or value that the format cannot carry.
    """
    parts = [LOG_PREFIX, str(event.uptime_ms), event.event]
    for key, value in event.fields.items():
        if not _KEY.match(key) or not _TOKEN.match(value):
            raise EncodeError(f"{key}={value!r} cannot be logged", field=key)
        parts.append(f"{key}={value}")
    return " ".join(parts)
