"""Talking to the relay over USB serial: find the board, read its log, feed it readings.

The protocol work is elsewhere: ``relay_protocol`` encodes the input frames and parses the log
lines, ``uplink`` decodes what the relay sent. This module adds only what a serial port needs:

* finding the MKR WAN 1310 by its USB vendor and product id (the sketch's id and the
  bootloader's, which tells "flashing" apart from "running");
* opening a port by device path or pyserial URL (``loop://``, ``socket://``, a pty), with
  errors that say what to do: no such port, a port another program holds, no permission;
* splitting the byte stream into lines, and reading text or JSON readings for the feeder.

Port ids are Arduino's (VID 0x2341): MKR WAN 1310 0x8059 running a sketch and 0x0059 in its
bootloader, as the board manifests of the Arduino SAMD core and PlatformIO list them; the older
MKR WAN 1300 (0x8053 / 0x0053) runs the same sketch and is accepted too.
"""

from __future__ import annotations

import errno
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import serial
from serial.tools import list_ports

from .errors import DecodeError, EncodeError, LoraEmotionError
from .labels import LabelSet
from .relay_protocol import (
    FaceEntry,
    FacesFrame,
    Frame,
    Prediction,
    ReadingFrame,
    VitalsFrame,
    distribution_frame,
    reading_frame,
)

__all__ = [
    "ARDUINO_VID",
    "BOARDS",
    "DEFAULT_BAUDRATE",
    "LineSplitter",
    "PortBusyError",
    "PortNotFoundError",
    "RelayPort",
    "SerialPortError",
    "find_relay_port",
    "open_port",
    "parse_reading_line",
    "relay_ports",
]

ARDUINO_VID = 0x2341
#: (vid, pid) -> (board, in bootloader).
BOARDS: dict[tuple[int, int], tuple[str, bool]] = {
    (ARDUINO_VID, 0x8059): ("MKR WAN 1310", False),
    (ARDUINO_VID, 0x0059): ("MKR WAN 1310", True),
    (ARDUINO_VID, 0x8053): ("MKR WAN 1300", False),
    (ARDUINO_VID, 0x0053): ("MKR WAN 1300", True),
}
#: Native USB ignores the rate; any value but 1200 will do (see ``open_port``).
DEFAULT_BAUDRATE = 115_200
#: Opening a SAMD board's port at 1200 baud and closing it resets it into the bootloader.
_BOOTLOADER_TOUCH_BAUD = 1200
#: The relay's log lines are short; a longer "line" is noise or a lost newline.
MAX_LINE = 512


class SerialPortError(LoraEmotionError):
    """A serial port that cannot be used."""

    http_status = 503


class PortNotFoundError(SerialPortError):
    """No such port, or no relay board connected."""


class PortBusyError(SerialPortError):
    """The port exists but another program has it open."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayPort:
    """A connected relay board.

    Attributes:
        device: what to open (``/dev/ttyACM0``, ``COM5``).
        board: the board's name.
        bootloader: True while it is in its bootloader (no sketch running).
        serial_number: the USB serial number, when the OS reports one.
        description: the OS's description of the port.
    """

    device: str
    board: str
    bootloader: bool
    serial_number: str | None
    description: str


def relay_ports(ports: Iterable[Any] | None = None) -> list[RelayPort]:
    """The relay boards among ``ports`` (default: every serial port of this machine).

    Args:
        ports: objects with ``device``, ``vid``, ``pid``, ``serial_number`` and
            ``description``, as ``serial.tools.list_ports.comports()`` returns them.

    Returns:
        Boards running a sketch first, then those in their bootloader, each by device name.
    """
    found = []
    for port in list_ports.comports() if ports is None else ports:
        ids = (getattr(port, "vid", None), getattr(port, "pid", None))
        known = BOARDS.get(ids) if None not in ids else None  # type: ignore[arg-type]
        if known is None:
            continue
        board, bootloader = known
        found.append(
            RelayPort(
                device=port.device,
                board=board,
                bootloader=bootloader,
                serial_number=getattr(port, "serial_number", None),
                description=getattr(port, "description", "") or "",
            )
        )
    return sorted(found, key=lambda p: (p.bootloader, p.device))


def find_relay_port(ports: Iterable[Any] | None = None) -> RelayPort:
    """The one relay board running a sketch.

    Raises:
        PortNotFoundError: no board, only a board in its bootloader, or several boards (the
            message lists them so that one can be named).
    """
    candidates = list(list_ports.comports() if ports is None else ports)
    boards = relay_ports(candidates)
    running = [p for p in boards if not p.bootloader]
    if len(running) == 1:
        return running[0]
    if len(running) > 1:
        names = ", ".join(f"{p.device} ({p.serial_number or 'no serial'})" for p in running)
        raise PortNotFoundError(f"several relay boards are connected: {names}; name one")
    if boards:
        raise PortNotFoundError(
            f"the {boards[0].board} at {boards[0].device} is in its bootloader (no sketch "
            "running): upload the sketch, or press reset once"
        )
    others = ", ".join(
        f"{p.device} ({getattr(p, 'vid', None) or 0:04x}:{getattr(p, 'pid', None) or 0:04x})"
        for p in candidates
    )
    raise PortNotFoundError(
        "no MKR WAN 1310 (USB 2341:8059) is connected"
        + (f"; other serial ports: {others}" if others else "; no serial ports at all")
        + ". Check the cable (some carry power only) or name the port."
    )


def open_port(
    port: str, *, baudrate: int = DEFAULT_BAUDRATE, timeout: float = 0.05, exclusive: bool = True
) -> serial.SerialBase:
    """Open a port by device path or pyserial URL.

    Args:
        port: ``/dev/ttyACM0``, ``COM5``, or a URL such as ``loop://`` or ``socket://host:p``.
        baudrate: ignored by native USB, but 1200 is refused: on SAMD boards it means "reset
            into the bootloader".
        timeout: read timeout in seconds (reads return what arrived by then).
        exclusive: lock the port so that a second program cannot open it meanwhile.

    Returns:
        The open port.

    Raises:
        PortNotFoundError: the port does not exist.
        PortBusyError: another program has it.
        SerialPortError: any other reason (permission, a bad URL), with a hint.
    """
    if baudrate == _BOOTLOADER_TOUCH_BAUD:
        raise SerialPortError(
            "1200 baud resets a SAMD board into its bootloader; use any other rate"
        )
    options: dict[str, Any] = {"baudrate": baudrate, "timeout": timeout}
    if "://" not in port:
        options["exclusive"] = exclusive
    try:
        return serial.serial_for_url(port, **options)
    except serial.SerialException as exc:
        raise _port_error(port, exc) from exc
    except (ValueError, OSError) as exc:
        raise SerialPortError(f"cannot open {port}: {exc}") from exc


def _port_error(port: str, exc: serial.SerialException) -> SerialPortError:
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        return PortNotFoundError(
            f"{port} does not exist; is the board plugged in? (lora-emotion monitor without a "
            "port finds it by its USB id)"
        )
    if code == errno.EBUSY or "exclusively lock" in text or "Device or resource busy" in text:
        return PortBusyError(
            f"{port} is in use by another program (a serial monitor, the Arduino IDE, "
            "ModemManager?); close it and try again"
        )
    if code == errno.EACCES or "Permission denied" in text:
        return SerialPortError(
            f"no permission to open {port}; on Linux add yourself to the 'dialout' group "
            "(sudo usermod -aG dialout $USER, then log in again)"
        )
    return SerialPortError(f"cannot open {port}: {text}")


class LineSplitter:
    """Bytes in, text lines out, however the stream was cut into reads.

    Lines end in ``\\n``, ``\\r\\n`` or ``\\r``; bytes that are not UTF-8 become U+FFFD. A line
    longer than ``max_line`` is cut there and the rest of it dropped (``overlong`` counts
    them), so a stream without newlines cannot grow the buffer without bound.
    """

    def __init__(self, *, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self.overlong = 0
        self._buffer = bytearray()
        self._skipping = False
        self._after_cr = False

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the lines they complete."""
        lines: list[str] = []
        for byte in data:
            if byte == 0x0A and self._after_cr:
                self._after_cr = False
                continue
            self._after_cr = byte == 0x0D
            if byte in (0x0A, 0x0D):
                if not self._skipping:
                    lines.append(self._buffer.decode("utf-8", "replace"))
                self._buffer.clear()
                self._skipping = False
            elif not self._skipping:
                self._buffer.append(byte)
                if len(self._buffer) > self.max_line:
                    lines.append(self._buffer[: self.max_line].decode("utf-8", "replace"))
                    self._buffer.clear()
                    self._skipping = True
                    self.overlong += 1
        return lines


def _confidence(text: str, where: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise DecodeError(f"{text!r} is not a confidence", field=where) from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise DecodeError(f"confidence {text} is outside 0..1 (or 0%..100%)", field=where)
    return value


def _label(text: str, label_set: LabelSet, where: str) -> str | None:
    if text in ("none", "-"):
        return None
    if text.isdigit():
        index = int(text)
        if index == len(label_set):
            return None  # the 2021 contract: K means no face
        if index > len(label_set):
            raise DecodeError(
                f"class {index} is not in {label_set.name} (0..{len(label_set) - 1}, "
                f"{len(label_set)} = no face)",
                field=where,
            )
        return label_set.labels[index]
    try:
        label_set.index(text)
    except EncodeError as exc:
        raise DecodeError(exc.reason, field=where) from None
    return text


def _prediction(label: str | None, confidence: float | None, label_set: LabelSet) -> Prediction:
    return Prediction(
        label=None if label is None else label_set.index(label),
        confidence_pct=None if confidence is None else int(confidence * 100 + 0.5),
    )


def _from_json(item: Any, label_set: LabelSet) -> Frame:
    if not isinstance(item, dict):
        raise DecodeError("expected a JSON object", field="line")
    confidence = item.get("confidence")
    if confidence is not None and not isinstance(confidence, int | float):
        raise DecodeError("confidence must be a number", field="confidence")
    if "probabilities" in item:
        probabilities = item["probabilities"]
        if not isinstance(probabilities, list):
            raise DecodeError("probabilities must be a list", field="probabilities")
        return distribution_frame(label_set, probabilities)
    if "faces" in item:
        faces = []
        for position, face in enumerate(item["faces"] or []):
            if not isinstance(face, dict) or "label" not in face:
                raise DecodeError("a face is {label, confidence}", field=f"faces[{position}]")
            label = _label(str(face["label"]), label_set, f"faces[{position}].label")
            if label is None:
                raise DecodeError("a face needs a class", field=f"faces[{position}].label")
            value = face.get("confidence")
            frame = reading_frame(label_set, label, None if value is None else float(value))
            assert frame.label is not None
            faces.append(FaceEntry(label=frame.label, confidence_pct=frame.confidence_pct))
        return FacesFrame(label_set=label_set.id, faces=tuple(faces))
    heart = item.get("heart_rate_bpm")
    skin = item.get("skin_conductance_us")
    if heart is not None or skin is not None:
        prediction = None
        if "label" in item:
            label = _label(str(item["label"]), label_set, "label")
            prediction = _prediction(label, None if label is None else confidence, label_set)
        return VitalsFrame(
            label_set=label_set.id,
            heart_rate_bpm=None if heart is None else int(heart),
            skin_conductance_centi_us=None if skin is None else int(float(skin) * 100 + 0.5),
            prediction=prediction,
        )
    if "label" not in item:
        raise DecodeError(
            "expected label, probabilities, faces or heart_rate_bpm/skin_conductance_us",
            field="line",
        )
    label = _label(str(item["label"]) if item["label"] is not None else "none", label_set, "label")
    return reading_frame(label_set, label, None if label is None else confidence)


def _from_text(words: Sequence[str], label_set: LabelSet) -> Frame:
    head = words[0].lower()
    if head in ("dist", "distribution"):
        if len(words) != 2:
            raise DecodeError("dist takes comma-separated probabilities", field="line")
        try:
            probabilities = [float(p) for p in words[1].split(",")]
        except ValueError:
            raise DecodeError(f"{words[1]!r} is not a list of numbers", field="line") from None
        return distribution_frame(label_set, probabilities)
    if head == "faces":
        faces = []
        for position, word in enumerate(words[1:]):
            name, _, value = word.partition(":")
            label = _label(name, label_set, f"faces[{position}]")
            if label is None:
                raise DecodeError("a face needs a class", field=f"faces[{position}]")
            confidence = _confidence(value, f"faces[{position}]") if value else None
            frame = reading_frame(label_set, label, confidence)
            assert frame.label is not None
            faces.append(FaceEntry(label=frame.label, confidence_pct=frame.confidence_pct))
        return FacesFrame(label_set=label_set.id, faces=tuple(faces))
    if head == "vitals":
        values: dict[str, str] = {}
        rest: list[str] = []
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if sep:
                values[key.lower()] = value
            else:
                rest.append(word)
        unknown = set(values) - {"hr", "eda"}
        if unknown or not values:
            raise DecodeError("vitals takes hr=<bpm> and/or eda=<µS>", field="line")
        try:
            heart = int(values["hr"]) if "hr" in values else None
            skin = int(float(values["eda"]) * 100 + 0.5) if "eda" in values else None
        except ValueError:
            raise DecodeError("hr and eda must be numbers", field="line") from None
        prediction = None
        if rest:
            reading = _from_text(rest, label_set)
            assert isinstance(reading, ReadingFrame)
            prediction = Prediction(label=reading.label, confidence_pct=reading.confidence_pct)
        return VitalsFrame(
            label_set=label_set.id,
            heart_rate_bpm=heart,
            skin_conductance_centi_us=skin,
            prediction=prediction,
        )
    if len(words) > 2:
        raise DecodeError("expected '<label> [confidence]'", field="line")
    label = _label(words[0], label_set, "label")
    confidence = _confidence(words[1], "confidence") if len(words) == 2 else None
    if label is None and confidence is not None:
        raise DecodeError("'none' (no face) takes no confidence", field="confidence")
    return reading_frame(label_set, label, confidence)


def parse_reading_line(line: str, label_set: LabelSet) -> Frame | None:
    """One line of the feeder's input as a relay frame; None for a blank or comment line.

    Text forms (labels by name or index; ``none`` or index K is no face; confidences as 0.87
    or 87%)::

        happy 0.87
        none
        dist 0.1,0.05,0.05,0.6,0.1,0.05,0.05
        faces happy:0.9 sad:0.4
        vitals hr=72 eda=3.21 happy 0.6

    JSON forms: ``{"label": "happy", "confidence": 0.87}``, ``{"probabilities": [...]}``,
    ``{"faces": [{"label": "happy", "confidence": 0.9}]}``,
    ``{"heart_rate_bpm": 72, "skin_conductance_us": 3.21, "label": "happy"}``.

    Raises:
        DecodeError: the line is neither form; the message says what is wrong.
        EncodeError: a value out of range for the relay protocol.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if text.startswith("{"):
        try:
            item = json.loads(text)
        except ValueError as exc:
            raise DecodeError(f"not JSON: {exc}", field="line") from None
        return _from_json(item, label_set)
    return _from_text(text.split(), label_set)
