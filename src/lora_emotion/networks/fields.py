"""Reading the JSON the network servers send: typed fields, RFC 3339 times, base64, DevEUIs.

Why a module of its own: The Things Stack and ChirpStack both send protobuf messages in their
JSON mapping, which omits every field at its default value (an FPort or frame counter of 0 is
absent, not 0) and writes 64-bit integers as strings. Each adapter reads a dozen such fields,
and every refusal must name the field by its dotted path (``uplink_message.f_port``), so the
webhook's 422 says what to fix. Nothing here raises anything but :class:`DecodeError`.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import functools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from ..errors import DecodeError
from ..senml import RELATIVE_TIME_LIMIT

__all__ = [
    "Fields",
    "dev_eui_of",
    "format_time",
    "load_object",
    "parse_time",
    "plain_time",
]

_loads: Callable[[bytes | str], Any]
try:  # the webhook extra installs orjson: about a fifth of json's time on a network's body
    import orjson

    _loads = orjson.loads
except ImportError:  # pragma: no cover - the codec alone (CLI) works with the standard library
    _loads = json.loads

_DEV_EUI_RE: Final = re.compile(r"[0-9A-Fa-f]{16}")
_BASE64_RE: Final = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# RFC 3339 section 5.6 date-time; ChirpStack writes "+00:00", The Things Stack "Z" and nanoseconds.
_PLAIN_TIME_RE: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|\+00:00)"
)
_TIME_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
#: Network times this module reads: from 1978-07-04 (below it SenML reads a base time as
#: relative to now, so an uplink would be filed at the wrong time) to the end of year 9999.
_MIN_TIME: Final = RELATIVE_TIME_LIMIT
_MAX_TIME: Final = 253_402_300_800


def load_object(body: bytes | str, *, what: str) -> dict[str, Any]:
    """The JSON object of a request body.

    Args:
        body: the raw body.
        what: what the body should be, for the message (``"a The Things Stack message"``).

    Raises:
        DecodeError: not UTF-8 JSON, or JSON that is not an object.
    """
    try:
        document = _loads(body)
    except (ValueError, TypeError) as exc:
        raise DecodeError(f"not JSON ({exc}); expected {what}", field="body") from None
    if not isinstance(document, dict):
        raise DecodeError(
            f"expected {what} as a JSON object, got {type(document).__name__}", field="body"
        )
    return document


def dev_eui_of(text: object, *, field: str) -> str:
    """A DevEUI as this project stores it everywhere: 16 upper-case hex digits.

    Raises:
        DecodeError: not a string of 16 hex digits.
    """
    if not isinstance(text, str) or not _DEV_EUI_RE.fullmatch(text):
        raise DecodeError(f"{text!r} is not a DevEUI of 16 hex digits", field=field)
    return text.upper()


def parse_time(text: object, *, field: str) -> float:
    """Seconds since the Unix epoch of an RFC 3339 time, as the closest double.

    Why not ``datetime.fromisoformat``: it keeps microseconds only, and The Things Stack writes
    nanoseconds; here the fraction is read exactly and rounded once, so a time written from a
    float's shortest digits reads back as that very float.

    Raises:
        DecodeError: not an RFC 3339 date-time, an impossible date, or before 1978 / after 9999.
    """
    match = _TIME_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise DecodeError(f"{text!r} is not an RFC 3339 time", field=field)
    year, month, day, hour, minute, second = (int(part) for part in match.group(1, 2, 3, 4, 5, 6))
    if not (
        1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 60  # a leap second, as RFC 3339 allows
    ):
        raise DecodeError(f"{text!r} is not a valid date and time", field=field)
    seconds = calendar.timegm((year, month, day, hour, minute, second))
    if match.group(9):
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60
        seconds -= offset if match.group(9) == "+" else -offset
    if not _MIN_TIME <= seconds < _MAX_TIME:
        raise DecodeError(f"{text!r} is outside 1978-07-04 .. 9999-12-31", field=field)
    fraction = match.group(7)
    # CPython divides integers with correct rounding: the double nearest the decimal time.
    return int(f"{seconds}{fraction}") / 10 ** len(fraction) if fraction else float(seconds)


@functools.lru_cache(maxsize=1024)  # deliveries of one day share it
def _day_start(date: str) -> int | None:
    year, month, day = int(date[:4]), int(date[5:7]), int(date[8:10])
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return calendar.timegm((year, month, day, 0, 0, 0))


def plain_time(text: object) -> float | None:
    """:func:`parse_time` for the UTC times the networks write, or ``None`` for anything else.

    ``YYYY-MM-DDTHH:MM:SS[.fraction]`` then ``Z`` or ``+00:00``: the one shape The Things
    Stack and ChirpStack send, read with a cached start of the day instead of a calendar
    computation each time. ``None`` (never an error) for any other text, which
    :func:`parse_time` then reads or explains; both give the same number where this one answers.
    """
    match = _PLAIN_TIME_RE.fullmatch(text) if type(text) is str else None
    if match is None:
        return None
    date, hour, minute, second, fraction = match.groups()
    day = _day_start(date)
    hours, minutes, seconds = int(hour), int(minute), int(second)
    if day is None or hours > 23 or minutes > 59 or seconds > 59:
        return None
    whole = day + hours * 3600 + minutes * 60 + seconds
    if not _MIN_TIME <= whole < _MAX_TIME:
        return None
    return int(f"{whole}{fraction}") / 10 ** len(fraction) if fraction else float(whole)


def format_time(seconds: float, *, zulu: bool = True) -> str:
    """``seconds`` since the epoch as RFC 3339 UTC, with exactly the digits of its shortest repr.

    ``zulu`` writes ``Z`` (The Things Stack); otherwise ``+00:00`` (ChirpStack).
    """
    exact = Decimal(repr(float(seconds)))
    whole = int(exact.to_integral_value(rounding="ROUND_FLOOR"))
    fraction = exact - whole
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    if fraction:
        text += "." + format(fraction, "f").split(".", 1)[1].rstrip("0")[:9]
    return text + ("Z" if zulu else "+00:00")


class Fields:
    """A JSON object read field by field, each refusal naming the field's dotted path.

    Args:
        document: the object.
        path: its own path (``""`` for the body, ``"uplink_message"`` ...).
    """

    __slots__ = ("document", "path")

    def __init__(self, document: Mapping[str, Any], path: str = "") -> None:
        self.document = document
        self.path = path

    def where(self, name: str) -> str:
        """The dotted path of field ``name``."""
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        """Whether ``name`` is present and not null."""
        return self.document.get(name) is not None

    def object(self, name: str, *, required: bool = True) -> Fields:
        """The object at ``name``; an empty one when absent and not ``required``.

        Raises:
            DecodeError: absent though required, or not an object.
        """
        value = self.document.get(name)
        if value is None:
            if required:
                raise DecodeError("missing", field=self.where(name))
            value = {}
        if not isinstance(value, dict):
            raise DecodeError(
                f"expected an object, got {type(value).__name__}", field=self.where(name)
            )
        return Fields(value, self.where(name))

    def objects(self, name: str) -> list[Fields]:
        """The objects of the list at ``name``; empty when absent.

        Raises:
            DecodeError: not a list, or an item that is not an object.
        """
        value = self.document.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise DecodeError(
                f"expected a list, got {type(value).__name__}", field=self.where(name)
            )
        out = []
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise DecodeError(
                    f"expected an object, got {type(item).__name__}",
                    field=f"{self.where(name)}[{index}]",
                )
            out.append(Fields(item, f"{self.where(name)}[{index}]"))
        return out

    def text(self, name: str, *, required: bool = False) -> str | None:
        """The string at ``name``, or ``None`` when absent and not ``required``.

        Raises:
            DecodeError: absent though required, or not a string (an empty one counts as absent
                when required: the JSON mapping never writes one).
        """
        value = self.document.get(name)
        if value is None or (required and value == ""):
            if required:
                raise DecodeError("missing", field=self.where(name))
            return None
        if not isinstance(value, str):
            raise DecodeError(
                f"expected a string, got {type(value).__name__}", field=self.where(name)
            )
        return value

    def integer(self, name: str, *, low: int, high: int, default: int | None = 0) -> int | None:
        """The integer at ``name`` in ``low..high``; ``default`` when absent.

        The protobuf JSON mapping writes 64-bit integers as decimal strings, so those are read
        too.

        Raises:
            DecodeError: not an integer (a bool, a fraction, other text) or out of range.
        """
        value = self.document.get(name)
        if value is None:
            return default
        if (isinstance(value, str) and re.fullmatch(r"-?\d{1,20}", value)) or (
            isinstance(value, float) and value.is_integer()
        ):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(f"{value!r} is not an integer", field=self.where(name))
        if not low <= value <= high:
            raise DecodeError(f"{value} is outside {low}..{high}", field=self.where(name))
        return value

    def number(self, name: str) -> float | None:
        """The finite number at ``name``, or ``None`` when absent.

        Raises:
            DecodeError: not a number, or not finite.
        """
        value = self.document.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DecodeError(f"{value!r} is not a number", field=self.where(name))
        number = float(value)
        if not math.isfinite(number):
            raise DecodeError(f"{value!r} is not a finite number", field=self.where(name))
        return number

    def flag(self, name: str) -> bool:
        """The boolean at ``name``; false when absent.

        Raises:
            DecodeError: not a boolean.
        """
        value = self.document.get(name, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise DecodeError(f"{value!r} is not true or false", field=self.where(name))
        return value

    def base64(self, name: str) -> bytes:
        """The bytes of the base64 string at ``name``; empty when absent.

        Raises:
            DecodeError: not a string of standard base64 with correct padding.
        """
        text = self.text(name)
        if not text:
            return b""
        if len(text) % 4 or not _BASE64_RE.fullmatch(text):
            raise DecodeError(f"{_shorten(text)!r} is not base64", field=self.where(name))
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise DecodeError(f"{_shorten(text)!r} is not base64", field=self.where(name)) from None


def json_number(value: object) -> float | None:
    """A JSON number as a float; ``None`` for anything else (bool included)."""
    kind = type(value)
    return float(value) if kind is int or kind is float else None  # type: ignore[arg-type]


def strongest_gateway(
    gateways: Any, rssi_keys: tuple[str, ...]
) -> tuple[dict[str, Any] | None, float | None, float | None] | None:
    """The gateway that heard an uplink best, its RSSI and SNR, for the one-pass readers.

    ``rssi_keys`` are tried in order in each gateway's object. ``None`` where the list is not
    of the shape the readers expect (the field-by-field reader then says what is wrong).
    """
    if type(gateways) is not list and gateways != ():
        return None
    best: dict[str, Any] | None = None
    best_rssi = snr = None
    for gateway in gateways:
        if type(gateway) is not dict:
            return None
        rssi = None
        for key in rssi_keys:
            rssi = gateway.get(key)
            if rssi is not None:
                break
        if rssi is None:
            continue
        rssi = json_number(rssi)
        if rssi is None:
            return None
        if best_rssi is None or rssi > best_rssi:
            best, best_rssi = gateway, rssi
    if best is not None:
        snr = best.get("snr")
        if snr is not None and (snr := json_number(snr)) is None:
            return None
    return best, best_rssi, snr


def lora_rate(lora: Any, spreading_factor_key: str) -> tuple[int | None, int | None] | None:
    """A LoRa data rate's spreading factor and bandwidth; ``None`` where either is not valid."""
    if type(lora) is not dict:
        return None
    spreading_factor, bandwidth = lora.get(spreading_factor_key), lora.get("bandwidth")
    if spreading_factor is not None and not (
        type(spreading_factor) is int and 5 <= spreading_factor <= 12
    ):
        return None
    if bandwidth is not None and not (type(bandwidth) is int and 1 <= bandwidth <= 10**7):
        return None
    return spreading_factor, bandwidth


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
