"""One-pass decoding and resolving of the SenML packs KPN sends most: the webhook's fast path.

Why a second resolver: :func:`~lora_emotion.senml.decode_json` checks every field while it builds
records and :func:`~lora_emotion.senml.resolve` checks them again, with a Python hook called for
every JSON object and number on the way. That is right for arbitrary input and is where the
error messages come from, but it cost about 40 µs of the webhook's CPU per delivery. Nearly
every delivery is a "plain" pack: records of ``bn``, ``bt``, ``n``, ``u``, ``t`` and one of
``v``/``vs``/``vb``, no escapes in the text. For exactly those, this module parses with the C
JSON scanner and resolves in one loop. Anything else returns ``None`` and the caller takes the
full path, which also produces the error message; so this module never raises and never decides
that input is invalid. ``tests/test_plain_pack.py`` checks that both paths agree on every pack
this one accepts.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from .senml import RELATIVE_TIME_LIMIT, ResolvedRecord

__all__ = ["PlainPack", "resolve_plain"]

_PLAIN_FIELDS: Final = frozenset({"bn", "bt", "n", "u", "t", "v", "vs", "vb"})
_BASE_FIELDS: Final = frozenset({"bn", "bt"})
_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*")
#: senml's bound for integers (what CBOR carries without tags).
_INT_LIMIT: Final = 2**64 - 1

PlainPack = tuple[list[str], list[ResolvedRecord]]


class _NotPlain(Exception):
    """The pack needs the full decoder (here: an object repeats a key)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        raise _NotPlain
    return record


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object)


def _number(value: object) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)  # type: ignore[arg-type]
    return kind is int and -_INT_LIMIT <= value <= _INT_LIMIT  # type: ignore[operator]


def resolve_plain(body: bytes, *, now: float) -> PlainPack | None:
    """Decode and resolve a plain pack as ``resolve(decode_json(body), now=now)`` would.

    Args:
        body: the request body.
        now: the time of reading, for times below ``RELATIVE_TIME_LIMIT``.

    Returns:
        The base names in pack order and the resolved records; ``None`` when the pack is not
        plain or not valid (the full path then decides, and explains).
    """
    if b"\\" in body:
        return None
    try:
        document = _DECODER.decode(body.decode("utf-8"))
    except (ValueError, _NotPlain, RecursionError):
        return None
    if type(document) is not list:
        return None
    base_names: list[str] = []
    base_name = ""
    base_time: float = 0
    resolved: list[ResolvedRecord] = []
    for record in document:
        if type(record) is not dict or not record or not record.keys() <= _PLAIN_FIELDS:
            return None
        if "bn" in record:
            base_name = record["bn"]
            if type(base_name) is not str:
                return None
            base_names.append(base_name)
        if "bt" in record:
            base_time = record["bt"]
            if not _number(base_time):
                return None
        if record.keys() <= _BASE_FIELDS:
            continue
        name = record.get("n", "")
        unit = record.get("u")
        offset = record.get("t", 0)
        if type(name) is not str or not _number(offset):
            return None
        if "u" in record and type(unit) is not str:
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
            if "vb" in record or type(value) is not str:
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
        resolved.append(ResolvedRecord(name=name, time=time, unit=unit, value=value))
    return base_names, resolved
