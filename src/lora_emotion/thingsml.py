"""KPN ThingsML: SenML CBOR made smaller for LoRa uplinks.

A ThingsML payload is a SenML CBOR pack (RFC 8428 §6) with one extension: map key 23, ``i_``,
a measurement index that stands for a well-known name and unit (``-24`` is ``temperature`` in
``Cel``). The base fields travel in the first measurement's map rather than in a record of their
own, and numbers take the fewest bytes that hold them exactly.

Why the encoder writes its own map order: KPN's C library (kpn-iot/thingsml-c-library) writes
base fields, then name or index, time, unit, update time and value, and device payloads are
compared byte for byte with it. Decoded records always carry names, never indexes, so the rest of
the project sees plain SenML and :func:`lora_emotion.senml.resolve` applies unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

from .errors import DecodeError, EncodeError
from .senml import (
    _BASE_FIELDS,
    Record,
    _check_records,
    _encode_cbor_maps,
    _is_base_only,
    _load_cbor,
    _record_from_cbor_map,
    _type_name,
    _where,
)

__all__ = ["INDEX_LABEL", "INDEX_TABLE", "decode", "encode"]

#: The ThingsML map key of the measurement index (``i_``; the ``_`` makes it must-understand).
INDEX_LABEL: Final = 23

#: Measurement index -> (name, unit); ``None`` where the index implies no unit. Published by KPN
#: with the ThingsML documentation and library; the indexes are part of the wire format.
INDEX_TABLE: Final[Mapping[int, tuple[str, str | None]]] = MappingProxyType(
    {
        -24: ("temperature", "Cel"),
        -23: ("humidity", "%RH"),
        -22: ("latitude", "lat"),
        -21: ("longitude", "lon"),
        -20: ("altitude", "m"),
        -19: ("power", "W"),
        -18: ("pressure", "Pa"),
        -17: ("angle", "rad"),
        -16: ("length", "m"),
        -15: ("breadth", "m"),
        -14: ("height", "m"),
        -13: ("weight", "kg"),
        -12: ("thickness", "m"),
        -11: ("distance", "m"),
        -10: ("area", "m2"),
        -9: ("volume", "m3"),
        -8: ("velocity", "m/s"),
        -7: ("electricCurrent", "A"),
        -6: ("electricPotential", "V"),
        -5: ("electricResistance", "Ohm"),
        -4: ("illuminance", "lx"),
        -3: ("accelerationX", "m/s2"),
        -2: ("accelerationY", "m/s2"),
        -1: ("accelerationZ", "m/s2"),
        0: ("heading", "rad"),
        1: ("COConcentration", "ppm"),
        2: ("CO2Concentration", "ppm"),
        3: ("sound", "dB"),
        4: ("frequency", "Hz"),
        5: ("batteryLevel", "%EL"),
        6: ("batteryVoltage", "V"),
        7: ("radius", "m"),
        8: ("batteryLevelLow", "/"),
        9: ("compassX", "T"),
        10: ("compassY", "T"),
        11: ("compassZ", "T"),
        12: ("readSwitch", "/"),
        13: ("presence", None),
        14: ("counter", None),
    }
)
_INDEX_BY_MEANING: Final = {meaning: index for index, meaning in INDEX_TABLE.items()}
_N_LABEL: Final = 0
_U_LABEL: Final = 1


def _record_from_map(index: int, item: object) -> Record:
    if not isinstance(item, dict):
        raise DecodeError(f"expected a map, got {_type_name(item)}", field=f"record {index}")
    rest = {}
    measurement: list[object] = []
    for key, value in item.items():
        # The JSON spelling "i_" is accepted too; type() keeps True and 23.0 from matching 23.
        if (type(key) is int and key == INDEX_LABEL) or key == "i_":
            measurement.append(value)
        else:
            rest[key] = value
    record = _record_from_cbor_map(index, rest)
    if not measurement:
        return record
    if len(measurement) > 1:
        raise DecodeError("measurement index given twice (23 and 'i_')", field=_where(index, "i_"))
    raw = measurement[0]
    if type(raw) is not int:
        message = f"expected an integer measurement index, got {_type_name(raw)}"
        raise DecodeError(message, field=_where(index, "i_"))
    if raw not in INDEX_TABLE:
        raise DecodeError(f"unknown measurement index {raw}", field=_where(index, "i_"))
    if record.n is not None:
        raise DecodeError(
            "record has both a name and a measurement index", field=_where(index, "n")
        )
    name, unit = INDEX_TABLE[raw]
    # An explicit unit still wins: the index replaces the name and the default unit only.
    return dataclasses.replace(record, n=name, u=record.u if record.u is not None else unit)


def decode(payload: bytes) -> list[Record]:
    """Decode a ThingsML payload into SenML records.

    Args:
        payload: the LoRaWAN FRMPayload, one CBOR array of maps.

    Returns:
        The records in pack order, with every measurement index expanded to its name (and its
        unit, unless the record states one). Base fields stay where they were sent.

    Raises:
        DecodeError: malformed, truncated or trailing CBOR, CBOR tags, a field of the wrong type
            (key 3 must be text, key 2 a number ...), an unknown measurement index, or a record
            with both a name and an index. ``field`` names the record and field.
    """
    document = _load_cbor(payload)
    if not isinstance(document, list):
        raise DecodeError(f"expected a CBOR array of records, got {_type_name(document)}")
    return [_record_from_map(index, item) for index, item in enumerate(document)]


def _merge_leading_base(records: list[Record]) -> list[Record]:
    """Fold a record holding only base fields into the next record, as ThingsML sends packs."""
    if len(records) < 2 or not _is_base_only(records[0]) or records[0].extra:
        return records
    base = {name: getattr(records[0], name) for name in _BASE_FIELDS}
    base = {name: value for name, value in base.items() if value is not None}
    if any(getattr(records[1], name) is not None for name in base):
        return records  # the next record replaces a base field: merging would change meaning
    return [dataclasses.replace(records[1], **base), *records[2:]]


def _items(record: Record) -> list[tuple[int | str, object]]:
    items = list(record.to_cbor_dict().items())
    index = _INDEX_BY_MEANING.get((record.n, record.u)) if record.n is not None else None
    if index is None:
        return items
    return [
        (INDEX_LABEL, index) if key == _N_LABEL else (key, value)
        for key, value in items
        if key != _U_LABEL
    ]


def encode(records: Sequence[Record]) -> bytes:
    """Encode SenML records as a ThingsML payload.

    A record whose name and unit match an :data:`INDEX_TABLE` entry is sent as that index. A
    leading record that holds only base fields (KPN's legacy layout) is merged into the next
    record when that changes nothing. Floats take the smallest exact width (half, single or
    double precision) and integers stay CBOR integers.

    Args:
        records: the records to send.

    Returns:
        The payload bytes. Their size is not checked here: compare it with the data rate's limit.

    Raises:
        EncodeError: a field holds the wrong type or a non-finite number, or an unknown field
            collides with a label or cannot be written as CBOR.
    """
    _check_records(records, EncodeError, cbor=True)
    return _encode_cbor_maps(_items(record) for record in _merge_leading_base(list(records)))
