"""SenML (RFC 8428): records, their JSON and CBOR forms, and resolution.

Why decoding and resolving are separate steps: KPN Things has delivered two layouts of the same
data (a record holding only ``bn``/``bt`` followed by the measurements, and later the base fields
merged into the first measurement), and base fields may appear in any record. Instead of
recognising layouts, :func:`decode_json` keeps the records exactly as written and :func:`resolve`
applies RFC 8428 §4 literally: a base field holds for its own record and every later one until
replaced. Both layouts then resolve to the same measurements.

Why the decoders are strict about types but lenient about names: every value a decoder returns has
the type the dataclass promises (``v`` is never a bool or NaN, ``vd`` is always ``bytes``), so
nothing downstream has to re-check; unknown fields are kept in ``extra`` because KPN adds records
and fields without notice (RFC 8428 §4.4 makes only labels ending in ``_`` fatal).

Every failure leaves a decoder as :class:`~lora_emotion.errors.DecodeError` whose ``field`` names
the record index and field, e.g. ``record 2 field 'v': expected a number, got string``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

import cbor2

from .errors import DecodeError, EncodeError

__all__ = [
    "CBOR_LABELS",
    "RELATIVE_TIME_LIMIT",
    "Record",
    "ResolvedRecord",
    "decode_cbor",
    "decode_json",
    "encode_cbor",
    "encode_json",
    "resolve",
]

#: RFC 8428 §4.5.3: a time below 2**28 s (about 8.5 years) is relative to the time of reading.
RELATIVE_TIME_LIMIT: Final = 2**28

#: RFC 8428 §4.5.1: allowed characters of a resolved name.
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*")
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]*={0,2}")
#: CBOR carries integers of magnitude below 2**64 without tags (RFC 8949 §3.1); larger ones would
#: need bignums, which SenML does not use, so both representations share this bound.
_INT_LIMIT: Final = 2**64 - 1
#: SenML packs are two levels deep; the rest is headroom for nested values in unknown fields.
_MAX_CBOR_DEPTH: Final = 64
#: KPN's ThingsML C library reads subnormal half floats as zero, so halves are used only from the
#: smallest normal half (2**-14) up; below it a value takes single precision.
_SMALLEST_NORMAL_HALF: Final = 2.0**-14

_Kind = Literal["text", "number", "int", "bool", "bytes"]

# (JSON label, CBOR label, kind) in the order JSON records are written; labels per RFC 8428 §6.
# fmt: off
_FIELDS: Final[tuple[tuple[str, int, _Kind], ...]] = (
    ("bn", -2, "text"), ("bt", -3, "number"), ("bu", -4, "text"), ("bv", -5, "number"),
    ("bs", -6, "number"), ("bver", -1, "int"),
    ("n", 0, "text"), ("u", 1, "text"), ("v", 2, "number"), ("vs", 3, "text"), ("vb", 4, "bool"),
    ("vd", 8, "bytes"), ("s", 5, "number"), ("t", 6, "number"), ("ut", 7, "number"),
)
# fmt: on
#: JSON label -> SenML CBOR integer label (RFC 8428 §6, Table 4).
CBOR_LABELS: Final[Mapping[str, int]] = MappingProxyType({n: label for n, label, _ in _FIELDS})
_KINDS: Final[Mapping[str, _Kind]] = {name: kind for name, _, kind in _FIELDS}
_NAMES_BY_LABEL: Final[Mapping[int, str]] = {label: name for name, label, _ in _FIELDS}
# CBOR maps are written in the order of KPN's ThingsML C library (base fields, name, time, unit,
# update time, value), so a ThingsML pack re-encodes to the bytes a device would send.
_CBOR_ORDER: Final = ("bn", "bu", "bt", "bv", "bs", "bver", "n", "t", "u", "ut", "v", "vs")
_CBOR_ORDER_VALUES: Final = (*_CBOR_ORDER, "vb", "vd", "s")
_BASE_FIELDS: Final = ("bn", "bt", "bu", "bv", "bs", "bver")
_REGULAR_FIELDS: Final = ("n", "u", "v", "vs", "vb", "vd", "s", "t", "ut")
_VALUE_FIELDS: Final = ("v", "vs", "vb", "vd")
_VALUE_LABELS: Final[Mapping[type, str]] = {bool: "vb", str: "vs"}  # exact types: bool is an int
_SENML_VERSION: Final = 10  # RFC 8428 §4.4


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One SenML record as written on the wire, base fields included (RFC 8428 §4).

    A field left at ``None`` is absent. ``v`` keeps integers as ``int``. ``vd`` holds the raw
    bytes (base64url without padding in JSON). ``extra`` keeps unknown fields, in order, so they
    survive a decode/encode round trip.
    """

    bn: str | None = None
    bt: float | None = None
    bu: str | None = None
    bv: float | None = None
    bs: float | None = None
    bver: int | None = None
    n: str | None = None
    u: str | None = None
    v: float | None = None
    vs: str | None = None
    vb: bool | None = None
    vd: bytes | None = None
    s: float | None = None
    t: float | None = None
    ut: float | None = None
    extra: tuple[tuple[str, object], ...] = ()

    def to_json_dict(self) -> dict[str, object]:
        """Return the fields that are set, under their JSON labels, unknown fields last."""
        out: dict[str, object] = {}
        for name, _, kind in _FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = _b64encode(value) if kind == "bytes" else value
        for key, value in self.extra:
            out.setdefault(key, value)
        return out

    def to_cbor_dict(self) -> dict[int | str, object]:
        """Return the fields that are set, under SenML CBOR integer labels, unknown fields last."""
        out: dict[int | str, object] = {}
        for name in _CBOR_ORDER_VALUES:
            value = getattr(self, name)
            if value is not None:
                out[CBOR_LABELS[name]] = value
        for key, value in self.extra:
            out.setdefault(key, value)
        return out


class ResolvedRecord(NamedTuple):
    """A record in RFC 8428 §4.6 resolved form: full name, absolute time, no base fields.

    ``value`` is the one value of the record (``v`` with ``bv`` added, ``vs``, ``vb`` or ``vd``),
    or ``None`` when the record carries only a sum. ``extra`` holds the unknown fields and, when
    the pack declares a SenML version other than 10, ``("bver", version)`` as §4.6 requires.

    A named tuple rather than a frozen dataclass, like
    :class:`lora_emotion.networks.kpn.Measurement`: the webhook resolves every record of every
    delivery, and the tuple builds in a third of the time. Both are immutable.
    """

    name: str
    time: float
    unit: str | None
    value: float | str | bool | bytes | None
    sum: float | None = None
    update_time: float | None = None
    extra: tuple[tuple[str, object], ...] = ()

    def to_json_dict(self) -> dict[str, object]:
        """Return the record as resolved SenML JSON: ``n``, ``t``, ``u``, value, ``s``, ``ut``."""
        out: dict[str, object] = {"n": self.name, "t": self.time}
        if self.unit is not None:
            out["u"] = self.unit
        if isinstance(self.value, bytes):
            out["vd"] = _b64encode(self.value)
        elif self.value is not None:
            out[_VALUE_LABELS.get(type(self.value), "v")] = self.value
        if self.sum is not None:
            out["s"] = self.sum
        if self.update_time is not None:
            out["ut"] = self.update_time
        for key, extra_value in self.extra:
            out.setdefault(key, extra_value)
        return out


# --- value checks shared by the decoders and the encoders -----------------------------------


class _Invalid(Exception):
    """A field value is unusable; the caller turns it into DecodeError or EncodeError."""


class _BadNumber:
    """Stands in for a JSON number that cannot be represented, so the error can name its field."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class _DuplicateKeys(dict[str, object]):
    """A JSON object that repeated a key; rejected wherever it appears."""

    duplicate: str = ""


# fmt: off
_TYPE_NAMES: Final[Mapping[type, str]] = {
    type(None): "null", bool: "boolean", int: "number", float: "number", _BadNumber: "number",
    str: "string", bytes: "byte string", list: "array", tuple: "array", dict: "object",
    cbor2.frozendict: "object", _DuplicateKeys: "object",
}
# fmt: on


def _where(index: int, field: object) -> str:
    return f"record {index} field {field!r}"


def _type_name(value: object) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _valid_number(value: object) -> bool:
    """Whether a decoded value is a usable SenML number, in one test without a message.

    What :func:`_check_number` accepts for values of the exact types decoders return; the
    one-pass resolver in ``_plain_pack`` uses it so that both accept the same numbers.
    """
    kind = type(value)
    if kind is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    return kind is int and -_INT_LIMIT <= value <= _INT_LIMIT  # type: ignore[operator]


def _valid_text(value: object) -> bool:
    """Whether a decoded value is usable SenML text (see :func:`_valid_number`)."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_number(value: object) -> None:
    if _valid_number(value):
        return
    if isinstance(value, _BadNumber):
        raise _Invalid(value.reason)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid(f"expected a number, got {_type_name(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(f"expected a finite number, got {value!r}")
    if isinstance(value, int) and abs(value) > _INT_LIMIT:
        raise _Invalid("integer out of range (magnitude must be below 2**64)")


def _check_text(value: object) -> None:
    if _valid_text(value):
        return
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_type_name(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("string contains a lone surrogate, which UTF-8 cannot carry") from None


def _check_field(kind: _Kind, value: object) -> None:
    if kind == "number":
        _check_number(value)
    elif kind == "text":
        _check_text(value)
    elif kind == "int":
        if isinstance(value, _BadNumber):
            raise _Invalid(value.reason)
        if isinstance(value, bool) or not isinstance(value, int):
            got = repr(value) if isinstance(value, float) else _type_name(value)
            raise _Invalid(f"expected an integer, got {got}")
        _check_number(value)
    elif kind == "bool":
        if not isinstance(value, bool):
            raise _Invalid(f"expected a boolean, got {_type_name(value)}")
    elif not isinstance(value, bytes):
        raise _Invalid(f"expected a byte string, got {_type_name(value)}")


def _check_plain(value: object, *, cbor: bool) -> None:
    """Check an unknown field's value: plain JSON data, plus byte strings and int keys in CBOR."""
    pending = [value]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if isinstance(item, list | dict):
            if id(item) in seen:
                raise _Invalid("value refers to the same list or object twice (or to itself)")
            seen.add(id(item))
        if isinstance(item, _DuplicateKeys):
            raise _Invalid(f"nested object repeats the key {item.duplicate!r}")
        if isinstance(item, dict):
            for key in item:
                if isinstance(key, str):
                    _check_text(key)
                elif cbor and type(key) is int:
                    _check_number(key)
                else:
                    raise _Invalid(f"nested object has a key of type {_type_name(key)}")
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            _check_text(item)
        elif isinstance(item, int | float | _BadNumber) and not isinstance(item, bool):
            _check_number(item)
        elif not (item is None or isinstance(item, bool) or (cbor and isinstance(item, bytes))):
            raise _Invalid(f"unsupported value of type {_type_name(item)}")


def _check_fields(
    index: int,
    known: Mapping[str, object],
    extra: Iterable[object],
    *,
    error: type[DecodeError] | type[EncodeError],
    cbor: bool,
    base64_vd: bool = False,
) -> dict[str, Any]:
    """Check one record's fields and return them as Record arguments, or raise ``error``."""
    fields: dict[str, Any] = {}
    for name, raw in known.items():
        try:
            if base64_vd and name == "vd":
                if not isinstance(raw, str):
                    raise _Invalid(f"expected a base64url string, got {_type_name(raw)}")
                fields[name] = _b64decode(raw)
            else:
                _check_field(_KINDS[name], raw)
                fields[name] = raw
        except _Invalid as exc:
            raise error(str(exc), field=_where(index, name)) from exc.__cause__
    keys: set[str] = set()
    for entry in extra:
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)):
            raise error("extra must hold (name, value) pairs", field=f"record {index}")
        key, value = entry
        if key in _KINDS or key in keys:
            raise error("unknown field repeats a field name", field=_where(index, key))
        if key.endswith("_"):
            message = "must-understand field (RFC 8428 §4.4) is not supported"
            raise error(message, field=_where(index, key))
        keys.add(key)
        try:
            _check_text(key)
            _check_plain(value, cbor=cbor)
        except _Invalid as exc:
            raise error(str(exc), field=_where(index, key)) from None
    return fields


def _check_records(
    records: Sequence[Record], error: type[DecodeError] | type[EncodeError], *, cbor: bool
) -> None:
    """Check that hand-built records hold what the dataclass promises; raise ``error`` if not."""
    for index, record in enumerate(records):
        if not isinstance(record, Record):
            raise error(f"expected a Record, got {type(record).__name__}", field=f"record {index}")
        known = {name: getattr(record, name) for name in _KINDS}
        known = {name: value for name, value in known.items() if value is not None}
        _check_fields(index, known, record.extra, error=error, cbor=cbor)


def _is_base_only(record: Record) -> bool:
    """True for a record that sets base fields and nothing else (KPN's legacy first record)."""
    return all(getattr(record, name) is None for name in _REGULAR_FIELDS) and any(
        getattr(record, name) is not None for name in _BASE_FIELDS
    )


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _B64URL_RE.fullmatch(text):
        raise _Invalid("not base64url: only A-Z a-z 0-9 - _ are allowed")
    body = text.rstrip("=")
    if len(body) % 4 == 1 or (len(body) != len(text) and len(text) % 4):
        raise _Invalid("not base64url: impossible length or wrong padding")
    data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if _b64encode(data) != body:
        raise _Invalid("not base64url: stray bits in the last character")
    return data


# --- JSON -----------------------------------------------------------------------------------


def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked = _DuplicateKeys(pairs)
            marked.duplicate = key
            return marked
        seen.add(key)
    return dict(pairs)


def _json_float(token: str) -> float | _BadNumber:
    value = float(token)
    return value if math.isfinite(value) else _BadNumber(f"number out of range: {token[:24]}")


def _json_int(token: str) -> int | _BadNumber:
    # int() of a 5000-digit token raises ValueError with no position; report it per field.
    if len(token) > 21:
        return _BadNumber(f"integer out of range ({len(token)} digits)")
    return int(token)


def _json_constant(token: str) -> _BadNumber:
    return _BadNumber(f"expected a finite number, got {token}")


def decode_json(text: str | bytes) -> list[Record]:
    """Decode a SenML JSON pack (RFC 8428 §5) into records, base fields left unresolved.

    Args:
        text: the JSON document, as text or UTF-8 bytes.

    Returns:
        The records in document order. Unknown fields are kept in ``Record.extra``.

    Raises:
        DecodeError: invalid UTF-8 or JSON, not an array of objects, a field of the wrong type,
            a non-finite or out-of-range number, bad base64url in ``vd``, a repeated key, or a
            must-understand field (label ending in ``_``). ``field`` names record and field.
    """
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"not UTF-8: {exc.reason}", offset=exc.start) from exc
    try:
        document = json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_float=_json_float,
            parse_int=_json_int,
            parse_constant=_json_constant,
        )
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply") from exc
    except (ValueError, TypeError, MemoryError) as exc:
        raise DecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(document, list):
        raise DecodeError(f"expected a JSON array of records, got {_type_name(document)}")
    records = []
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            message = f"expected an object, got {_type_name(item)}"
            raise DecodeError(message, field=f"record {index}")
        if isinstance(item, _DuplicateKeys):
            raise DecodeError("field appears twice", field=_where(index, item.duplicate))
        known = {key: value for key, value in item.items() if key in _KINDS}
        extra = [(key, value) for key, value in item.items() if key not in _KINDS]
        fields = _check_fields(index, known, extra, error=DecodeError, cbor=False, base64_vd=True)
        records.append(Record(**fields, extra=tuple(extra)))
    return records


def encode_json(records: Sequence[Record]) -> str:
    """Encode records as a compact SenML JSON array.

    Args:
        records: the records; base fields are written where they are set.

    Returns:
        The JSON text, without whitespace; non-ASCII text is kept as is.

    Raises:
        EncodeError: a field holds the wrong type or a non-finite number, or an unknown field
            cannot be represented in JSON (bytes, non-string keys) or collides with a label.
    """
    _check_records(records, EncodeError, cbor=False)
    packed = [record.to_json_dict() for record in records]
    return json.dumps(packed, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- CBOR -----------------------------------------------------------------------------------


class _RejectedTag(Exception):
    """SenML CBOR has no use for tags (RFC 8428 §6 maps it one to one onto JSON)."""


def _reject_tag(*_: object) -> object:
    raise _RejectedTag("CBOR tags are not allowed in SenML")


# cbor2 turns these tags into datetimes, fractions, shared references ... before tag_hook could
# see them (found by decoding each tag number from 0 to 70000 with cbor2 6.2).
_BUILTIN_TAGS: Final = (*range(6), 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261)
_SEMANTIC_DECODERS: Final = dict.fromkeys((*_BUILTIN_TAGS, 1004, 43000, 55799), _reject_tag)


def _load_cbor(data: bytes) -> object:
    """Decode exactly one CBOR data item, turning every failure into DecodeError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream,
        tag_hook=_reject_tag,
        semantic_decoders=_SEMANTIC_DECODERS,
        max_depth=_MAX_CBOR_DEPTH,
        allow_duplicate_keys=False,
    )
    try:
        item = decoder.decode()
    except Exception as exc:  # one exit: cbor2 raises CBORDecodeError, TypeError, OverflowError...
        root: BaseException = exc
        while root.__cause__ is not None:
            root = root.__cause__
        reason = root if isinstance(root, _RejectedTag) else f"{type(exc).__name__}: {exc}"
        raise DecodeError(f"invalid CBOR: {reason}") from exc
    end = stream.tell()
    if end != len(data):
        raise DecodeError(
            f"{len(data) - end} bytes of trailing data after the CBOR item", offset=end
        )
    return item


def _record_from_cbor_map(index: int, item: object) -> Record:
    if not isinstance(item, dict):
        raise DecodeError(f"expected a map, got {_type_name(item)}", field=f"record {index}")
    known: dict[str, object] = {}
    extra: list[tuple[str, object]] = []
    for key, value in item.items():
        if type(key) is int:
            name = _NAMES_BY_LABEL.get(key)
            if name is None:
                # RFC 8428 §6: extensions use text labels; no other integer label will exist.
                raise DecodeError("unknown integer label", field=_where(index, key))
            known[name] = value
        elif isinstance(key, str):
            if key in _KINDS:
                message = f"label must be the integer {CBOR_LABELS[key]}, not text"
                raise DecodeError(message, field=_where(index, key))
            extra.append((key, value))
        else:
            message = f"map key must be an integer or text label, got {_type_name(key)}"
            raise DecodeError(message, field=f"record {index}")
    fields = _check_fields(index, known, extra, error=DecodeError, cbor=True)
    return Record(**fields, extra=tuple(extra))


def _cbor_head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if length < 1 << (8 * size):
            return bytes([major << 5 | info]) + length.to_bytes(size, "big")
    raise EncodeError(f"{length} items do not fit a CBOR length")  # pragma: no cover


def _cbor_float(value: float) -> bytes:
    """Write a float in the smallest width that holds it exactly (RFC 8949 §4.2.2)."""
    for initial, fmt in ((b"\xf9", ">e"), (b"\xfa", ">f")):
        if fmt == ">e" and value != 0 and abs(value) < _SMALLEST_NORMAL_HALF:
            continue
        try:
            packed = struct.pack(fmt, value)
        except OverflowError:
            continue
        if struct.unpack(fmt, packed)[0] == value:
            return initial + packed
    return b"\xfb" + struct.pack(">d", value)


def _encode_cbor_maps(rows: Iterable[Iterable[tuple[int | str, object]]]) -> bytes:
    """Write an array of maps, keys in the given order, floats in their smallest exact width.

    cbor2's canonical mode would pick float widths too, but it sorts map keys (ThingsML payloads
    are compared byte for byte with KPN's library, which has its own order) and it uses subnormal
    halves, which that library decodes as zero.
    """
    maps = [list(row) for row in rows]
    parts = [_cbor_head(4, len(maps))]
    try:
        for row in maps:
            parts.append(_cbor_head(5, len(row)))
            for key, value in row:
                parts.append(cbor2.dumps(key))
                if type(value) is float:
                    parts.append(_cbor_float(value))
                else:
                    parts.append(cbor2.dumps(value, canonical=True))
    except (cbor2.CBOREncodeError, TypeError, ValueError) as exc:  # pragma: no cover - checked
        raise EncodeError(f"cannot write CBOR: {exc}") from exc
    return b"".join(parts)


def decode_cbor(data: bytes) -> list[Record]:
    """Decode a SenML CBOR pack (RFC 8428 §6) into records, base fields left unresolved.

    Args:
        data: exactly one CBOR data item, an array of maps with integer labels.

    Returns:
        The records in pack order. Unknown text labels are kept in ``Record.extra``.

    Raises:
        DecodeError: malformed or truncated CBOR, trailing bytes, CBOR tags, duplicate or
            unknown integer labels, or a field of the wrong type. ``field`` names record and field.
    """
    document = _load_cbor(data)
    if not isinstance(document, list):
        raise DecodeError(f"expected a CBOR array of records, got {_type_name(document)}")
    return [_record_from_cbor_map(index, item) for index, item in enumerate(document)]


def encode_cbor(records: Sequence[Record]) -> bytes:
    """Encode records as SenML CBOR with integer labels and the smallest exact float widths.

    Args:
        records: the records; base fields are written where they are set.

    Returns:
        One CBOR array of maps.

    Raises:
        EncodeError: a field holds the wrong type or a non-finite number, or an unknown field
            collides with a label or holds a value CBOR cannot carry here.
    """
    _check_records(records, EncodeError, cbor=True)
    return _encode_cbor_maps(record.to_cbor_dict().items() for record in records)


# --- resolution -----------------------------------------------------------------------------


def resolve(records: Sequence[Record], *, now: float) -> list[ResolvedRecord]:
    """Resolve a pack as RFC 8428 §4.6 prescribes.

    Base fields apply to their own record and all later ones until replaced. Records that carry
    only base fields yield nothing. Names are ``bn + n``; ``bv``/``bs`` are added to ``v``/``s``;
    ``bu`` is the unit of records without ``u``; a time ``bt + t`` below
    :data:`RELATIVE_TIME_LIMIT` is taken relative to ``now``.

    Args:
        records: decoded (or hand-built) records.
        now: the time of reading, in seconds since the Unix epoch.

    Returns:
        One resolved record per measurement, in pack order.

    Raises:
        DecodeError: a record with no name, an invalid name, no value and no sum, more than one
            value, a field of the wrong type, or an arithmetic overflow; ``field`` names it.
    """
    _check_records(records, DecodeError, cbor=True)
    base_name, base_unit, version = "", None, _SENML_VERSION
    base_time: float = 0
    base_value: float = 0
    base_sum: float = 0
    resolved = []
    for index, record in enumerate(records):
        base_name = record.bn if record.bn is not None else base_name
        base_time = record.bt if record.bt is not None else base_time
        base_unit = record.bu if record.bu is not None else base_unit
        base_value = record.bv if record.bv is not None else base_value
        base_sum = record.bs if record.bs is not None else base_sum
        version = record.bver if record.bver is not None else version
        if _is_base_only(record):
            continue
        name = base_name + (record.n or "")
        name_field = "n" if record.n is not None else "bn"
        if not name:
            raise DecodeError("record has no name: neither bn nor n", field=_where(index, "n"))
        if not _NAME_RE.fullmatch(name):
            message = f"name {name!r} is not a SenML name (RFC 8428 §4.5.1)"
            raise DecodeError(message, field=_where(index, name_field))
        present = [field for field in _VALUE_FIELDS if getattr(record, field) is not None]
        if len(present) > 1:
            message = f"more than one value: {', '.join(present)}"
            raise DecodeError(message, field=_where(index, present[1]))
        if not present and record.s is None:
            message = "record has neither a value (v, vs, vb, vd) nor a sum (s)"
            raise DecodeError(message, field=_where(index, "v"))
        value: float | str | bool | bytes | None = None
        if present:
            value = getattr(record, present[0])
        if record.v is not None:
            value = base_value + record.v
        total = None if record.s is None else base_sum + record.s
        time = float(base_time + (record.t if record.t is not None else 0))
        if time < RELATIVE_TIME_LIMIT:
            time = now + time
        for field, number in (("v", value), ("s", total), ("t", time)):
            if isinstance(number, float) and not math.isfinite(number):
                raise DecodeError("resolved value is not finite", field=_where(index, field))
        extra = record.extra
        if version != _SENML_VERSION:
            extra = (*extra, ("bver", version))
        resolved.append(
            ResolvedRecord(
                name=name,
                time=time,
                unit=record.u if record.u is not None else base_unit,
                value=value,
                sum=total,
                update_time=record.ut,
                extra=extra,
            )
        )
    return resolved
