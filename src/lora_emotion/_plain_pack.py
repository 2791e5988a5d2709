"""One-pass decoding and resolving of the SenML packs KPN sends most: the webhook's fast path.

Why a second resolver: :func:`~lora_emotion.senml.decode_json` checks every field while it builds
records and :func:`~lora_emotion.senml.resolve` checks them again, with a Python hook called for
every JSON object and number on the way. That is right for arbitrary input and is where the
error messages come from, but measured per delivery ``parse_delivery`` takes several times as
long on that path (``python bench/kpn_parse_bench.py``, docs/bench-kpn-parse.md). Nearly every
delivery is a "plain" pack: records of ``bn``, ``bt``, ``n``, ``u``, ``t`` and one of
``v``/``vs``/``vb``, no escapes in the text. For exactly those, this module parses with orjson
and resolves in one loop. Anything else returns ``None`` and the caller takes the full path,
which also produces the error message; so this module never raises and never decides that
input is invalid.

What keeps the two from drifting apart: the field names, name pattern, base fields, number and
text checks and the relative-time rule are ``senml``'s own (imported, not restated), and
``tests/test_plain_pack.py`` runs both on generated valid and invalid packs, JSON written with
odd spacing, escapes, repeated keys and number spellings, and mutated KPN bodies: the result is
the same, or both refuse.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final

from .senml import (
    _BASE_FIELDS,
    _NAME_RE,
    RELATIVE_TIME_LIMIT,
    ResolvedRecord,
    _valid_number,
    _valid_text,
)

try:
    from orjson import loads as _orjson_loads
except ModuleNotFoundError:  # pragma: no cover - orjson comes with the webhook extra
    _loads: Callable[[bytes], Any] | None = None
else:
    _loads = _orjson_loads

__all__ = ["PlainPack", "resolve_plain"]

#: The SenML fields a plain record may have (senml's names; tests check they are its fields).
_PLAIN_FIELDS: Final = frozenset({"bn", "bt", "n", "u", "t", "v", "vs", "vb"})
_PLAIN_BASE_FIELDS: Final = _PLAIN_FIELDS & frozenset(_BASE_FIELDS)
#: orjson reads an integer beyond 64 bits as a float, where senml reads an integer (or refuses
#: it); no float at or beyond this magnitude is taken here, so those go to the full path.
_FLOAT_LIMIT: Final = 2.0**63

PlainPack = tuple[list[str], list[ResolvedRecord]]


# Whitespace between a key and its colon. Without it, and without escapes, every ``":`` of
# the text ends a key (a ``"`` can only delimit a string, and only a key is followed by a
# colon), so counting them counts the keys as written. orjson keeps the last of a repeated
# key silently; comparing that count with the keys it returned finds repeats, which the full
# decoder refuses. orjson took 0.6 µs for a delivery that the json module with a hook to
# catch repeats took 3.2 µs for.
_SPACE_BEFORE_COLON: Final = re.compile(rb'"\s+:')


# KPN's "Raw LoRa payload" delivery exactly as KPN serialises it, in either layout: a DevEUI
# base name, a base time, the payload as hex and the port. It is most of what arrives, and
# matching its bytes whole skips the JSON parser and the per-field checks below (6.6 -> 2.5 µs
# to resolve a delivery); anything that differs in a byte takes the general loop.
_RAW_PAYLOAD: Final = re.compile(
    rb'\[\{"bn":"(urn:dev:DEVEUI:[0-9A-Fa-f]{16}:)","bt":'
    rb"(-?(?:0|[1-9][0-9]{0,18})(?:\.[0-9]+)?(?:[eE][-+]?[0-9]{1,3})?)"
    rb'(?:\},\{|,)"n":"payload","vs":"([0-9A-Fa-f]*)"\},\{"n":"port","v":(0|[1-9][0-9]{0,2})\}\]'
)
_FRACTION_OR_EXPONENT: Final = re.compile(rb"[.eE]")


def _raw_payload(body: bytes, now: float) -> PlainPack | None:
    match = _RAW_PAYLOAD.fullmatch(body)
    if match is None:
        return None
    base_name_bytes, base_time_text, payload, port = match.groups()
    # As the json module reads numbers: an int unless there is a fraction or an exponent.
    base_time = (
        float(base_time_text)
        if _FRACTION_OR_EXPONENT.search(base_time_text)
        else int(base_time_text)
    )
    if not _number(base_time):
        return None
    # As in the general loop: the base time plus an offset of 0; finite, as _number bounds it.
    time = float(base_time + 0)
    if time < RELATIVE_TIME_LIMIT:
        time = now + time
    base_name = base_name_bytes.decode("ascii")
    return [base_name], [
        ResolvedRecord(base_name + "payload", time, None, payload.decode("ascii")),
        ResolvedRecord(base_name + "port", time, None, int(port)),
    ]


def _number(value: object) -> bool:
    """senml's number check, less the floats orjson may have made of large integers."""
    if type(value) is float:
        return -_FLOAT_LIMIT < value < _FLOAT_LIMIT
    return _valid_number(value)


def resolve_plain(body: bytes, *, now: float) -> PlainPack | None:
    """Decode and resolve a plain pack as ``resolve(decode_json(body), now=now)`` would.

    Args:
        body: the request body.
        now: the time of reading, for times below ``RELATIVE_TIME_LIMIT``.

    Returns:
        The base names in pack order and the resolved records; ``None`` when the pack is not
        plain or not valid (the full path then decides, and explains).
    """
    raw_payload = _raw_payload(body, now)
    if raw_payload is not None:
        return raw_payload
    if _loads is None or b"\\" in body or _SPACE_BEFORE_COLON.search(body):
        return None
    try:
        document = _loads(body)
    except ValueError:  # orjson.JSONDecodeError is one
        return None
    if type(document) is not list:
        return None
    keys = 0
    base_names: list[str] = []
    base_name = ""
    base_time: float = 0
    resolved: list[ResolvedRecord] = []
    for record in document:
        if type(record) is not dict or not record or not record.keys() <= _PLAIN_FIELDS:
            return None
        keys += len(record)
        if "bn" in record:
            base_name = record["bn"]
            if not _valid_text(base_name):
                return None
            base_names.append(base_name)
        if "bt" in record:
            base_time = record["bt"]
            if not _number(base_time):
                return None
        if record.keys() <= _PLAIN_BASE_FIELDS:
            continue
        name = record.get("n", "")
        unit = record.get("u")
        offset = record.get("t", 0)
        if not _valid_text(name) or not _number(offset):
            return None
        if "u" in record and not _valid_text(unit):
            return None
        name = base_name + name
        if not _NAME_RE.fullmatch(name):
            return None
        if "v" in record:
            if "vs" in record or "vb" in record or not _number(record["v"]):
                return None
            # senml.resolve adds the base value, an int 0 here: 0 + -0.0 is 0.0.
            value: float | str | bool = 0 + record["v"]
        elif "vs" in record:
            value = record["vs"]
            if "vb" in record or not _valid_text(value):
                return None
        else:
            value = record.get("vb")  # type: ignore[assignment]
            if type(value) is not bool:
                return None
        time = float(base_time + offset)
        if not math.isfinite(time):
            return None
        if time < RELATIVE_TIME_LIMIT:
            time = now + time
        resolved.append(ResolvedRecord(name, time, unit, value))
    if keys != body.count(b'":'):
        return None  # a repeated key
    return base_names, resolved
