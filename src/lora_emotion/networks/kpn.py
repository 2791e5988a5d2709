"""KPN Things HTTPS-destination deliveries, sans-IO: sign, verify, build and take apart.

Why the token is checked over the bytes as received: KPN signs ``SHA-256(body || secret)`` over
its own serialisation (base time written like ``1.615572314E9``); any re-serialised JSON has a
different hash. So nothing here parses before :func:`verify_token` has accepted the bytes.

Why deliveries are deduplicated on their content rather than their bytes: KPN sends no delivery
id and makes up to three attempts. A retry is expected to carry the same bytes, but nothing in
KPN's documentation promises it; the measurements themselves (device, network time, payload,
metadata) are what identify an uplink. :func:`dedup_key` hashes the resolved records in a
canonical form, so a byte-identical retry and a re-serialised one (other number spelling, key
order or layout) collapse alike, while two uplinks always differ at least in their time.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Final, Literal, NamedTuple

from .._plain_pack import resolve_plain
from ..errors import DecodeError, EncodeError
from ..labels import DEFAULT_REGISTRY, LabelRegistry, LabelSet
from ..messages import set_id_of_port
from ..senml import RELATIVE_TIME_LIMIT, Record, ResolvedRecord, decode_json, resolve
from ..uplink import decode_uplink

__all__ = [
    "DEVEUI_URN_PREFIX",
    "EMOTION_NAME",
    "MAX_DEVICE_LENGTH",
    "MAX_TIME",
    "MIN_TIME",
    "PAYLOAD_NAME",
    "PORT_NAME",
    "DecodeStatus",
    "Delivery",
    "DeliveryKind",
    "Measurement",
    "dedup_key",
    "delivery_body",
    "device_base_name",
    "device_urn",
    "java_double",
    "message_token",
    "parse_delivery",
    "payload_measurements",
    "raw_payload_records",
    "split_name",
    "verify_token",
]

DEVEUI_URN_PREFIX: Final = "urn:dev:DEVEUI:"
#: Resolved times the store accepts: the Unix epoch up to the end of year 9999.
MIN_TIME: Final = 0.0
MAX_TIME: Final = 253_402_300_800.0
#: Longest device URN accepted (what the read API's device parameter takes): the URN is a key
#: of three indexes, and PostgreSQL refuses an index entry over about 2,700 bytes.
MAX_DEVICE_LENGTH: Final = 200
#: LoRaWAN 1.0.4 §4.3.2: FPort is one byte.
MAX_FPORT: Final = 255

DeliveryKind = Literal["payload", "decoded", "geolocation", "other"]
DecodeStatus = Literal["ok", "error", "none"]
Layout = Literal["legacy", "merged"]

# A device URN (RFC 9039 style, as KPN writes it) followed by the measurement name.
_DEVICE_NAME_RE: Final = re.compile(r"(urn:dev:[A-Za-z0-9]+:[^:]+):(.*)", re.DOTALL)
_DEV_EUI_RE: Final = re.compile(r"[0-9A-Fa-f]{16}")
_DEVEUI_PREFIX_LOWER: Final = DEVEUI_URN_PREFIX.lower()
#: RFC 8428 §4.5.1 name characters (the codec's names always match; checked all the same).
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*")
_GEOLOCATION_NAMES: Final = frozenset({"latitude", "longitude", "radius", "locOrigin"})
PAYLOAD_NAME: Final = "payload"
PORT_NAME: Final = "port"
EMOTION_NAME: Final = "emotion"


def message_token(body: bytes, secret: str) -> str:
    """KPN's ``Things-Message-Token`` for ``body``: lowercase hex SHA-256 of body || secret.

    Args:
        body: the raw request body, exactly as sent.
        secret: the destination's shared secret.

    Returns:
        64 lowercase hex digits.
    """
    return hashlib.sha256(bytes(body) + secret.encode("utf-8")).hexdigest()


def verify_token(body: bytes, token: str | None, secrets: Iterable[str]) -> bool:
    """Whether ``token`` is the message token of ``body`` under any of ``secrets``.

    Every secret is tried, whatever the earlier ones gave, and each comparison is
    ``hmac.compare_digest``, so the time taken tells nothing about the token.

    Args:
        body: the raw request body.
        token: the ``Things-Message-Token`` header, or ``None`` when it was missing.
        secrets: the destination's current shared secrets (several during a rotation).

    Returns:
        True when one secret matches; False for a missing token or no match.
    """
    if token is None:
        return False
    offered = token.strip().lower().encode("utf-8", "replace")
    matched = False
    for secret in secrets:
        expected = message_token(body, secret).encode("ascii")
        matched |= hmac.compare_digest(expected, offered)
    return matched


def device_base_name(dev_eui: str) -> str:
    """The SenML base name KPN gives a LoRa device: ``urn:dev:DEVEUI:<EUI upper-case>:``.

    Raises:
        EncodeError: ``dev_eui`` is not 16 hex digits.
    """
    if not isinstance(dev_eui, str) or not _DEV_EUI_RE.fullmatch(dev_eui):
        raise EncodeError(f"{dev_eui!r} is not a DevEUI of 16 hex digits", field="dev_eui")
    return f"{DEVEUI_URN_PREFIX}{dev_eui.upper()}:"


def java_double(value: float) -> str:
    """``value`` written as Java's ``Double.toString`` writes it, which is how KPN writes ``bt``.

    Decimal notation between 10^-3 and 10^7, otherwise ``<d>.<digits>E<exponent>``; always a
    fractional digit. ``1615572314.0`` becomes ``1.615572314E9``.

    Raises:
        EncodeError: ``value`` is not finite.
    """
    number = float(value)
    if not math.isfinite(number):
        raise EncodeError(f"{value!r} is not a finite number", field="bt")
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign = "-" if number < 0 else ""
    magnitude = abs(number)
    shortest = Decimal(repr(magnitude)).normalize()
    if 1e-3 <= magnitude < 1e7:
        text = format(shortest, "f")
        return sign + (text if "." in text else text + ".0")
    digits_tuple = shortest.as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits)
    assert isinstance(digits_tuple.exponent, int)
    exponent = len(digits) - 1 + digits_tuple.exponent
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _record_json(fields: dict[str, object]) -> str:
    parts = []
    for key, value in fields.items():
        text = (
            java_double(value)  # type: ignore[arg-type]
            if key == "bt"
            else json.dumps(value, ensure_ascii=False, allow_nan=False)
        )
        parts.append(f"{json.dumps(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def delivery_body(
    dev_eui: str, records: Sequence[Record], *, base_time: float, layout: Layout = "merged"
) -> bytes:
    """The body KPN Things would POST for ``records`` of device ``dev_eui``.

    Args:
        dev_eui: 16 hex digits.
        records: relative records (no ``bn``), as :func:`raw_payload_records` or the codec
            return them.
        base_time: the uplink's network time, seconds since the Unix epoch.
        layout: ``"legacy"`` puts ``bn``/``bt`` in a record of their own before the
            measurements; ``"merged"`` (KPN since December 2022) merges them into the first.

    Returns:
        UTF-8 JSON without whitespace, ``bt`` in Java notation.

    Raises:
        EncodeError: a bad DevEUI, a non-finite base time, an unknown layout, or a first record
            that already carries base fields when they should be merged into it.
    """
    base: dict[str, object] = {"bn": device_base_name(dev_eui), "bt": float(base_time)}
    java_double(base_time)
    dicts = [record.to_json_dict() for record in records]
    if layout == "legacy":
        dicts.insert(0, base)
    elif layout == "merged":
        if dicts and any(key in dicts[0] for key in ("bn", "bt")):
            raise EncodeError("the first record already has bn or bt", field="records[0]")
        dicts[0:1] = [{**base, **(dicts[0] if dicts else {})}]
    else:
        raise EncodeError(f"unknown layout {layout!r}", field="layout")
    return ("[" + ",".join(_record_json(d) for d in dicts) + "]").encode("utf-8")


def raw_payload_records(payload: bytes, fport: int) -> list[Record]:
    """The records KPN's "Raw LoRa payload" decoder delivers for one uplink.

    Args:
        payload: the FRMPayload.
        fport: the uplink's FPort, 1..255.

    Returns:
        ``[{"n": "payload", "vs": <hex>}, {"n": "port", "v": fport}]``.

    Raises:
        EncodeError: ``fport`` outside 1..255.
    """
    if isinstance(fport, bool) or not isinstance(fport, int) or not 1 <= fport <= MAX_FPORT:
        raise EncodeError(f"{fport!r} is not an FPort in 1..{MAX_FPORT}", field="fport")
    return [Record(n=PAYLOAD_NAME, vs=bytes(payload).hex().upper()), Record(n=PORT_NAME, v=fport)]


@functools.lru_cache(maxsize=8192)  # a fleet repeats its few names in every delivery
def split_name(name: str) -> tuple[str | None, str]:
    """Split a resolved SenML name into the device URN and the measurement name.

    ``urn:dev:DEVEUI:0004A30B001F1234:emotion`` gives
    ``("urn:dev:DEVEUI:0004A30B001F1234", "emotion")``; a name without a device URN gives
    ``(None, name)``.
    The device URN comes back as :func:`device_urn` spells it.

    Raises:
        DecodeError: the name holds a device URN the store cannot keep (see
            :func:`device_urn`).
    """
    match = _DEVICE_NAME_RE.fullmatch(name)
    if match is None:
        return None, name
    return device_urn(match.group(1)), match.group(2)


def device_urn(urn: str) -> str:
    """``urn`` in the one spelling the store keeps, so that every route finds the device.

    A ``DEVEUI`` URN gets the prefix as KPN writes it and its EUI upper-case
    (``urn:dev:deveui:abcdefabcdef0123`` becomes ``urn:dev:DEVEUI:ABCDEFABCDEF0123``);
    other URNs are kept as sent.

    Raises:
        DecodeError: a ``DEVEUI`` URN whose EUI is not 16 hex digits, or a URN longer than
            :data:`MAX_DEVICE_LENGTH`.
    """
    prefix = urn[: len(DEVEUI_URN_PREFIX)]
    if prefix.lower() == _DEVEUI_PREFIX_LOWER:
        eui = urn[len(DEVEUI_URN_PREFIX) :]
        if not _DEV_EUI_RE.fullmatch(eui):
            shown = eui if len(eui) <= 24 else f"{eui[:20]}... ({len(eui)} characters)"
            raise DecodeError(
                f"{shown!r} is not a DevEUI: a DevEUI is 16 hex digits", field="device URN"
            )
        return DEVEUI_URN_PREFIX + eui.upper()
    if len(urn) > MAX_DEVICE_LENGTH:
        raise DecodeError(
            f"{urn[:24]!r}... is {len(urn)} characters long, more than the "
            f"{MAX_DEVICE_LENGTH} a device URN may have",
            field="device URN",
        )
    return urn


class Measurement(NamedTuple):
    """One resolved record of a delivery, attributed to a device.

    ``origin`` is ``"kpn"`` for records as delivered and ``"payload"`` for records this
    receiver decoded from a raw payload. Exactly one of the value fields is set, unless the
    record carries only a sum.

    A named tuple rather than a frozen dataclass: a delivery makes four or more of these, and
    a frozen dataclass of twelve fields took 2.0 µs to build against 0.7 µs for the tuple
    (a delivery costs the webhook about 110 µs of CPU in all). Both are immutable.
    """

    device: str
    name: str
    time: float
    unit: str | None = None
    value: float | None = None
    string_value: str | None = None
    bool_value: bool | None = None
    data_value: bytes | None = None
    sum: float | None = None
    update_time: float | None = None
    extra: tuple[tuple[str, object], ...] = ()
    origin: Literal["kpn", "payload"] = "kpn"


class Delivery(NamedTuple):
    """A verified delivery taken apart: what the store keeps besides the raw body.

    A named tuple for the reason :class:`Measurement` is one: one is built per delivery on the
    webhook's path.

    Attributes:
        device: the device URN of the pack (from its first base name).
        dev_eui: the DevEUI when the URN is a ``DEVEUI`` one.
        event_time: the time of the first measurement, or the first base time.
        kind: ``payload`` (raw payload and port), ``decoded`` (records KPN decoded, such as
            ``emotion``), ``geolocation`` (location records only) or ``other`` (no
            measurement at all).
        decode_status: ``ok`` when every raw payload decoded, ``error`` when one did not,
            ``none`` when there was nothing to decode.
        decode_error: the codec's message(s) when ``decode_status`` is ``error``.
        fport, payload: the first raw payload and its port, when there is one.
        measurements: every resolved record, then the records decoded from payloads.
        dedup_key: see :func:`dedup_key`.
    """

    device: str
    dev_eui: str | None
    event_time: float | None
    kind: DeliveryKind
    decode_status: DecodeStatus
    decode_error: str | None
    fport: int | None
    payload: bytes | None
    measurements: tuple[Measurement, ...]
    dedup_key: str


def dedup_key(device: str, resolved: Sequence[ResolvedRecord]) -> str:
    """A key identifying a delivery by its content: SHA-256 over its measurements, canonically.

    ``resolved`` must be resolved with ``now=0`` so that relative times stay relative and the key
    does not depend on when the delivery arrived. Whitespace, key order, number spelling
    (``1.615572314E9`` or ``1615572314``) and the layout (separate or merged base record) do not
    change the key; any difference in the device, a name, value, unit, time or unknown field
    does. Python's ``repr`` is the canonical form: it writes every float in its shortest
    round-tripping digits, so equal numbers always look alike.
    """
    parts: list[object] = [device]
    for record in resolved:
        value = record.value
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        parts.append(
            (
                record.name,
                record.time,
                record.unit,
                value,
                None if record.sum is None else float(record.sum),
                record.update_time,
                tuple(sorted(record.extra, key=lambda field: field[0])),
            )
        )
    return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _measurement(
    resolved: ResolvedRecord, *, device: str, index: int, origin: Literal["kpn", "payload"]
) -> Measurement:
    if not MIN_TIME <= resolved.time < MAX_TIME:
        raise DecodeError(
            f"time {resolved.time!r} is outside 1970-01-01 .. 9999-12-31",
            field=f"record {index} field 't'",
        )
    owner, name = split_name(resolved.name)
    if owner is not None:
        device = owner
    value = resolved.value
    return Measurement(
        device=device,
        name=name,
        time=resolved.time,
        unit=resolved.unit,
        value=float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else None,
        string_value=value if isinstance(value, str) else None,
        bool_value=value if isinstance(value, bool) else None,
        data_value=value if isinstance(value, bytes) else None,
        sum=None if resolved.sum is None else float(resolved.sum),
        update_time=resolved.update_time,
        extra=resolved.extra,
        origin=origin,
    )


def _plain_measurements(
    device: str, resolved: Sequence[ResolvedRecord], now: float
) -> tuple[str, list[Measurement]] | None:
    """:func:`dedup_key` and the measurements of records from the plain resolver, in one loop.

    Those records have a name, a time, a unit and a float, int, str or bool value, and nothing
    else, which leaves little of the general path's per-record work: this one loop took a
    third of its time. ``None`` when a time is out of range, for the general path to explain.
    """
    parts: list[object] = [device]
    measurements = []
    for name, time, unit, value, _, _, _ in resolved:
        number = float(value) if type(value) is int or type(value) is float else None
        text = value if type(value) is str else None
        flag = value if type(value) is bool else None
        parts.append((name, time, unit, value if number is None else number, None, None, ()))
        if time < RELATIVE_TIME_LIMIT:
            time += now
        if not MIN_TIME <= time < MAX_TIME:
            return None
        owner, short_name = split_name(name)
        measurements.append(
            Measurement(owner or device, short_name, time, unit, number, text, flag)
        )
    key = hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return key, measurements


def _pack_device(base_names: Iterable[str]) -> str:
    for base_name in base_names:
        owner, _ = split_name(base_name)
        if owner is not None:
            return owner
    raise DecodeError(
        "the pack names no device: expected a base name like urn:dev:DEVEUI:<16 hex digits>:",
        field="record 0 field 'bn'",
    )


#: One decoded record of a payload without its device and time: (name, unit, value, string
#: value, bool value, data value, sum, update time, time offset).
_Template = tuple[
    str,
    str | None,
    float | None,
    str | None,
    bool | None,
    bytes | None,
    float | None,
    float | None,
    float,
]
#: Payloads decoded so far, with the label set they were decoded with: a fleet sends the same
#: few hundred compact payloads over and over, and decoding one into records cost more CPU than
#: the rest of a delivery's parsing. Emptied when full; the values are immutable.
_NO_BASE: Final = (None,) * 6
_Decoded = tuple[tuple[Record, ...], tuple[_Template, ...] | None]
_DECODED: dict[tuple[int, bytes, LabelSet | None], _Decoded | str] = {}
DECODED_CACHE_LIMIT: Final = 4096


def _relative_templates(records: Sequence[Record]) -> tuple[_Template, ...] | None:
    """Codec output in the short form: named records with exactly one value, no base fields.

    That is what compact messages always decode to, and resolving it is only
    ``time = base_time + t``. Anything else (a ThingsML pack with base fields of its own)
    returns ``None`` and goes through :func:`resolve`.
    """
    out = []
    for record in records:
        if (
            record.n is None
            or record.extra
            or (record.bn, record.bt, record.bu, record.bv, record.bs, record.bver) != _NO_BASE
            or (
                (record.v is not None)
                + (record.vs is not None)
                + (record.vb is not None)
                + (record.vd is not None)
            )
            != 1
            or not _NAME_RE.fullmatch(record.n)
        ):
            return None
        out.append(
            (
                record.n,
                record.u,
                None if record.v is None else float(record.v),
                record.vs,
                record.vb,
                record.vd,
                None if record.s is None else float(record.s),
                record.ut,
                record.t or 0.0,
            )
        )
    return tuple(out)


def _decoded(payload: bytes, fport: int, registry: LabelRegistry) -> _Decoded:
    """``decode_uplink`` with its records' templates, remembered per payload.

    Raises:
        DecodeError: the payload does not decode.
    """
    set_port = set_id_of_port(fport)
    key = (fport, payload, None if set_port is None else registry.get(set_port[0]))
    known: _Decoded | str | None = _DECODED.get(key)
    if known is None:
        try:
            records = tuple(decode_uplink(payload, fport=fport, registry=registry))
            known = (records, _relative_templates(records))
        except DecodeError as exc:
            known = str(exc)
        if len(_DECODED) >= DECODED_CACHE_LIMIT:
            _DECODED.clear()
        _DECODED[key] = known
    if isinstance(known, str):
        raise DecodeError(known)
    return known


def _from_templates(
    templates: Sequence[_Template], *, device: str, base_time: float
) -> list[Measurement] | None:
    if base_time < RELATIVE_TIME_LIMIT:
        return None
    out = []
    for name, unit, value, text, flag, data, total, update_time, offset in templates:
        time = base_time + offset
        if not MIN_TIME <= time < MAX_TIME:
            return None
        out.append(
            Measurement(
                device, name, time, unit, value, text, flag, data, total, update_time, (), "payload"
            )
        )
    return out


def payload_measurements(
    payload: bytes,
    fport: int,
    *,
    device: str,
    time: float,
    now: float,
    registry: LabelRegistry = DEFAULT_REGISTRY,
) -> list[Measurement]:
    """The measurements decoded from one raw uplink payload, as the store keeps them.

    Every network's uplinks go through this, so a payload gives the same readings whichever
    network delivered it.

    Args:
        payload: the FRMPayload.
        fport: its FPort.
        device: the device URN (``urn:dev:DEVEUI:<EUI>``).
        time: the uplink's time, the base of the records' relative times.
        now: the receiver's clock, for records without a time.
        registry: the label sets compact payloads are decoded with.

    Raises:
        DecodeError: the payload does not decode on that port.
    """
    records, templates = _decoded(payload, fport, registry)
    if templates is not None:
        fast = _from_templates(templates, device=device, base_time=time)
        if fast is not None:
            return fast
    resolved = resolve([Record(bn=device + ":", bt=time), *records], now=now)
    return [
        _measurement(r, device=device, index=i, origin="payload") for i, r in enumerate(resolved)
    ]


def _decode_payloads(
    measurements: Sequence[Measurement], *, now: float, registry: LabelRegistry
) -> tuple[list[Measurement], list[str], int | None, bytes | None]:
    """Decode every raw payload of the pack with the port recorded beside it."""
    decoded: list[Measurement] = []
    errors: list[str] = []
    first_port: int | None = None
    first_payload: bytes | None = None
    ports = [m for m in measurements if m.name == PORT_NAME and m.value is not None]
    for item in measurements:
        if item.name != PAYLOAD_NAME:
            continue
        if len(ports) == 1:
            port_record: Measurement | None = ports[0]
        else:
            same = [p for p in ports if p.device == item.device and p.time == item.time]
            port_record = same[0] if same else None
        try:
            if item.string_value is None:
                raise DecodeError("expected the payload as a hex string (vs)", field="payload")
            try:
                payload = bytes.fromhex(item.string_value)
            except ValueError:
                raise DecodeError("payload is not hex", field="payload") from None
            if first_payload is None:
                first_payload = payload
            if port_record is None or port_record.value is None:
                raise DecodeError("payload without a port record", field="port")
            port_value = port_record.value
            if not port_value.is_integer() or not 0 <= port_value <= MAX_FPORT:
                raise DecodeError(f"{port_value!r} is not an FPort in 0..255", field="port")
            fport = int(port_value)
            if first_port is None:
                first_port = fport
            decoded.extend(
                payload_measurements(
                    payload, fport, device=item.device, time=item.time, now=now, registry=registry
                )
            )
        except DecodeError as exc:
            errors.append(str(exc))
    return decoded, errors, first_port, first_payload


def _kind(names: AbstractSet[str]) -> DeliveryKind:
    """What a delivery is, from the names of the records KPN sent."""
    if PAYLOAD_NAME in names:
        return "payload"
    if not names:
        return "other"
    return "geolocation" if names <= _GEOLOCATION_NAMES else "decoded"


def parse_delivery(
    body: bytes | str, *, now: float, registry: LabelRegistry = DEFAULT_REGISTRY
) -> Delivery:
    """Take a (verified) KPN delivery apart into the measurements to store.

    Both SenML layouts are resolved as RFC 8428 §4 says. Raw payloads are decoded with the
    project codec; a payload that does not decode leaves ``decode_status="error"`` and the
    message, never an exception, so that the delivery is still stored.

    Args:
        body: the request body.
        now: the receiver's clock (seconds since the Unix epoch) for records without a time.
        registry: the label sets compact payloads are decoded with.

    Returns:
        The delivery with its measurements and deduplication key.

    Raises:
        DecodeError: the body is not a SenML JSON pack, names no device, or holds a record
            that does not resolve (no name, several values, a time outside 1970..9999).
    """
    # Resolved against 0 first: the key must not depend on the arrival time.
    plain = resolve_plain(body, now=0.0) if isinstance(body, bytes) else None
    fast = None
    if plain is not None and plain[1]:
        base_names, resolved = plain
        device = _pack_device(base_names)
        first_base_time = None  # only needed when there is no measurement
        fast = _plain_measurements(device, resolved, now)
    else:
        records = decode_json(body)
        device = _pack_device(record.bn for record in records if record.bn is not None)
        resolved = resolve(records, now=0.0)
        first_base_time = _first_base_time(records)
    if fast is not None:
        key, measurements = fast
    else:
        key = dedup_key(device, resolved)
        measurements = [
            _measurement(
                r._replace(time=r.time + now) if r.time < RELATIVE_TIME_LIMIT else r,
                device=device,
                index=i,
                origin="kpn",
            )
            for i, r in enumerate(resolved)
        ]
    decoded, errors, fport, payload = _decode_payloads(measurements, now=now, registry=registry)
    names = {m.name for m in measurements}
    event_time = measurements[0].time if measurements else first_base_time
    return Delivery(
        device=device,
        dev_eui=_dev_eui_of(device),
        event_time=event_time,
        kind=_kind(names),
        decode_status="error" if errors else ("ok" if PAYLOAD_NAME in names else "none"),
        decode_error="; ".join(errors) if errors else None,
        fport=fport,
        payload=payload,
        measurements=(*measurements, *decoded),
        dedup_key=key,
    )


@functools.lru_cache(maxsize=8192)  # one entry per device of a fleet
def _dev_eui_of(device: str) -> str | None:
    eui = device[len(DEVEUI_URN_PREFIX) :]
    if device.startswith(DEVEUI_URN_PREFIX) and _DEV_EUI_RE.fullmatch(eui):
        return eui.upper()
    return None


def _first_base_time(records: Sequence[Record]) -> float | None:
    for record in records:
        if record.bt is not None:
            time = float(record.bt)
            return time if MIN_TIME <= time < MAX_TIME else None
    return None
