"""From an uplink (payload + FPort) to the SenML records KPN Things would deliver.

Why these names: the 2021 demo's ThingsML uplinks reached KPN's "Decoded ThingsML" destination
as ``{"n": "emotion", "vs": "happy"}``. Compact payloads decode to the same ``emotion`` record,
so dashboards and stored history read alike whichever encoding the device used; everything
the compact formats add (confidence, per-class shares, counts, vitals) comes as extra records
in SenML units. Records are relative: no base name, and times (``t``) only where an entry is
older than the uplink, as negative offsets that RFC 8428 resolves against the base time.
"""

from __future__ import annotations

from . import thingsml
from .errors import DecodeError
from .labels import DEFAULT_REGISTRY, NO_FACE, LabelRegistry
from .messages import (
    THINGSML_PORT,
    Batch,
    Distribution,
    Faces,
    Message,
    Reading,
    Status,
    Summary,
    Vitals,
    decode,
)
from .senml import Record

__all__ = ["decode_uplink", "message_records"]

RATIO = "/"
BPM = "beat/min"
SIEMENS = "S"
SECONDS = "s"


def _reading(
    label: str | None, confidence: float | None, *, prefix: str = "", t: float | None = None
) -> list[Record]:
    records = [Record(n=f"{prefix}emotion", vs=label if label is not None else NO_FACE, t=t)]
    if confidence is not None:
        records.append(Record(n=f"{prefix}confidence", u=RATIO, v=confidence, t=t))
    return records


def _distribution(message: Distribution, *, t: float | None = None) -> list[Record]:
    records = _reading(message.label, message.confidence, t=t)
    records.extend(
        Record(n=f"probability:{label}", u=RATIO, v=share, t=t)
        for label, share in zip(message.label_set.labels, message.probabilities, strict=True)
    )
    return records


def _vitals(message: Vitals, *, t: float | None = None) -> list[Record]:
    records = []
    if message.reading is not None:
        records.extend(_reading(message.reading.label, message.reading.confidence, t=t))
    if message.heart_rate_bpm is not None:
        records.append(Record(n="heartRate", u=BPM, v=message.heart_rate_bpm, t=t))
    if message.skin_conductance_us is not None:
        # Stored in µS·100 steps; dividing the integer keeps values like 3.21e-06 exact-looking.
        centi = round(message.skin_conductance_us * 100)
        records.append(Record(n="skinConductance", u=SIEMENS, v=centi / 100_000_000, t=t))
    return records


def _summary(message: Summary) -> list[Record]:
    records = _reading(message.dominant, message.mean_confidence)
    records.append(Record(n="window", u=SECONDS, v=message.window_s))
    records.append(Record(n="readings", v=message.total))
    records.extend(
        Record(n=f"count:{label}", v=count)
        for label, count in zip(message.label_set.labels, message.counts, strict=True)
    )
    records.append(Record(n=f"count:{NO_FACE}", v=message.no_face))
    return records


def _status(message: Status) -> list[Record]:
    major, minor, patch = message.firmware
    records = [
        Record(n="protocolVersion", v=message.protocol_version),
        Record(n="firmwareVersion", vs=f"{major}.{minor}.{patch}"),
        Record(n="uptime", u=SECONDS, v=message.uptime_s),
        Record(n="droppedReadings", v=message.dropped),
        Record(n="windowLength", u=SECONDS, v=message.window_s),
        Record(n="mode", vs=message.mode.name.lower()),
        Record(n="dailyBudget", u=SECONDS, v=message.daily_budget_s),
        Record(n="labelSetId", v=message.label_set_id),
        Record(n="labelSetFingerprint", vs=f"{message.label_set_fingerprint:04x}"),
        Record(n="commandSeq", v=message.command_seq),
        Record(n="commandStatus", vs=message.command_status.name.lower()),
    ]
    if message.battery_percent is not None:
        records.insert(2, Record(n="batteryLevel", u="%EL", v=message.battery_percent))
    return records


def message_records(message: Message) -> list[Record]:
    """The SenML records (relative, no base name) that describe ``message``."""
    if isinstance(message, Reading):
        return _reading(message.label, message.confidence)
    if isinstance(message, Distribution):
        return _distribution(message)
    if isinstance(message, Faces):
        records = [Record(n="faces", v=len(message.faces))]
        for position, face in enumerate(message.faces):
            records.extend(_reading(face.label, face.confidence, prefix=f"face:{position}:"))
        return records
    if isinstance(message, Summary):
        return _summary(message)
    if isinstance(message, Vitals):
        return _vitals(message)
    if isinstance(message, Status):
        return _status(message)
    if isinstance(message, Batch):
        records = []
        for entry in message.entries:
            t = -float(entry.age_s) if entry.age_s else None
            item = entry.message
            if isinstance(item, Reading):
                records.extend(_reading(item.label, item.confidence, t=t))
            elif isinstance(item, Distribution):
                records.extend(_distribution(item, t=t))
            else:
                records.extend(_vitals(item, t=t))
        return records
    raise TypeError(f"not a message: {type(message).__name__}")


def decode_uplink(
    payload: bytes, *, fport: int, registry: LabelRegistry = DEFAULT_REGISTRY
) -> list[Record]:
    """Decode an uplink's FRMPayload into SenML records, whatever encoding the port says.

    Port 1 carries ThingsML (the 2021 demo and any KPN ThingsML sensor); ports 2 and 16..207
    carry the compact messages.

    Raises:
        DecodeError: the payload does not decode; nothing else is ever raised.
    """
    if fport == THINGSML_PORT:
        return thingsml.decode(payload)
    message = decode(payload, fport=fport, registry=registry)
    try:
        return message_records(message)
    except (ValueError, TypeError) as exc:  # pragma: no cover - message_records is total
        raise DecodeError(str(exc), field="records") from exc
