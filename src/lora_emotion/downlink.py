"""Downlink commands to the relay and how its status message acknowledges them, sans-IO.

Why this shape: LoRaWAN class A devices hear the network only right after an uplink, and
KPN's downlink capacity is scarcer than its uplink capacity, so a command must be small,
must be safe to repeat, and its outcome must come back without a dedicated message. A
downlink on FPort 3 is therefore a sequence number followed by one or more commands that
set absolute values (never "increase by"); the relay applies all of them or none, and its
next :class:`~lora_emotion.messages.Status` carries the sequence number and the outcome
(``command_seq``, ``command_status``).

Layout (docs/downlink.md)::

    seq (1 byte) | opcode (1 byte) | arguments (fixed size per opcode) | opcode | ...

Multi-byte arguments are big-endian.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from .errors import DecodeError, EncodeError, PayloadTooLargeError, TruncatedPayloadError
from .labels import MAX_CLASSES, MAX_SET_ID, LabelSet
from .messages import MAX_PAYLOAD, CommandStatus, Mode, Status

__all__ = [
    "COMMAND_PORT",
    "Command",
    "Downlink",
    "Opcode",
    "SendStatus",
    "SetDailyBudget",
    "SetLabelSet",
    "SetMode",
    "SetStatusInterval",
    "SetWindow",
    "decode",
    "encode",
    "outcome",
]

#: FPort of command downlinks (ports 16..207 carry uplink messages, 2 the status).
COMMAND_PORT = 3


class Opcode(enum.IntEnum):
    """The first byte of each command."""

    SET_WINDOW = 1
    SET_MODE = 2
    SET_DAILY_BUDGET = 3
    SET_LABEL_SET = 4
    SEND_STATUS = 5
    SET_STATUS_INTERVAL = 6


def _check_int(value: object, low: int, high: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EncodeError(f"{value!r} is not an integer in {low}..{high}", field=field)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SetWindow:
    """Aggregation window in seconds, 1..65536 (carried as window - 1)."""

    window_s: int

    def __post_init__(self) -> None:
        _check_int(self.window_s, 1, 65_536, "window_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMode:
    """Which message each window produces (see docs/arduino.md)."""

    mode: Mode

    def __post_init__(self) -> None:
        if (
            isinstance(self.mode, bool)
            or not isinstance(self.mode, int)
            or self.mode not in (0, 1, 2, 3)
        ):
            raise EncodeError(f"{self.mode!r} is not a Mode", field="mode")
        object.__setattr__(self, "mode", Mode(self.mode))


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDailyBudget:
    """Daily airtime cap in seconds, 1..1024 (carried as budget - 1, as in the status)."""

    budget_s: int

    def __post_init__(self) -> None:
        _check_int(self.budget_s, 1, 1024, "budget_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class SetLabelSet:
    """Switch to another label set, identified by id and pinned by class count and fingerprint.

    The relay rejects a built-in id whose class count or fingerprint differ from its own
    table, and any set of more classes than it keeps sums for (16).
    """

    set_id: int
    classes: int
    fingerprint: int

    def __post_init__(self) -> None:
        _check_int(self.set_id, 0, MAX_SET_ID, "set_id")
        _check_int(self.classes, 2, MAX_CLASSES, "classes")
        _check_int(self.fingerprint, 0, 0xFFFF, "fingerprint")

    @classmethod
    def of(cls, label_set: LabelSet) -> SetLabelSet:
        """The command that selects ``label_set``."""
        return cls(set_id=label_set.id, classes=len(label_set), fingerprint=label_set.fingerprint)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendStatus:
    """Send a status message at the next opportunity (it also carries the acknowledgement)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStatusInterval:
    """Minutes between periodic status messages, 1..65535."""

    interval_min: int

    def __post_init__(self) -> None:
        _check_int(self.interval_min, 1, 65_535, "interval_min")


Command: TypeAlias = (
    SetWindow | SetMode | SetDailyBudget | SetLabelSet | SendStatus | SetStatusInterval
)

#: Argument bytes after each opcode.
_ARGUMENT_BYTES: dict[Opcode, int] = {
    Opcode.SET_WINDOW: 2,
    Opcode.SET_MODE: 1,
    Opcode.SET_DAILY_BUDGET: 2,
    Opcode.SET_LABEL_SET: 4,
    Opcode.SEND_STATUS: 0,
    Opcode.SET_STATUS_INTERVAL: 2,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Downlink:
    """A numbered group of commands, applied all together or not at all.

    Raises:
        EncodeError: a sequence number outside 0..255 or something that is not a command.
    """

    seq: int
    commands: tuple[Command, ...] = ()

    def __post_init__(self) -> None:
        _check_int(self.seq, 0, 255, "seq")
        object.__setattr__(self, "commands", tuple(self.commands))
        for position, command in enumerate(self.commands):
            if not isinstance(command, Command):
                raise EncodeError(f"{command!r} is not a command", field=f"commands[{position}]")


def _command_bytes(command: Command) -> bytes:
    if isinstance(command, SetWindow):
        return bytes([Opcode.SET_WINDOW]) + (command.window_s - 1).to_bytes(2, "big")
    if isinstance(command, SetMode):
        return bytes([Opcode.SET_MODE, int(command.mode)])
    if isinstance(command, SetDailyBudget):
        return bytes([Opcode.SET_DAILY_BUDGET]) + (command.budget_s - 1).to_bytes(2, "big")
    if isinstance(command, SetLabelSet):
        return bytes([Opcode.SET_LABEL_SET, command.set_id, command.classes]) + (
            command.fingerprint.to_bytes(2, "big")
        )
    if isinstance(command, SendStatus):
        return bytes([Opcode.SEND_STATUS])
    return bytes([Opcode.SET_STATUS_INTERVAL]) + command.interval_min.to_bytes(2, "big")


def encode(downlink: Downlink) -> bytes:
    """The payload to schedule on :data:`COMMAND_PORT`.

    Raises:
        EncodeError: ``downlink`` is not a :class:`Downlink`.
        PayloadTooLargeError: more than 51 bytes (the EU868 DR0 limit, RP002-1.0.3 §2.4.6).
    """
    if not isinstance(downlink, Downlink):
        raise EncodeError(f"{type(downlink).__name__} is not a Downlink", field="downlink")
    payload = bytes([downlink.seq]) + b"".join(_command_bytes(c) for c in downlink.commands)
    if len(payload) > MAX_PAYLOAD:
        raise PayloadTooLargeError(field="commands", size=len(payload), limit=MAX_PAYLOAD)
    return payload


def _decode_command(opcode: Opcode, args: bytes, offset: int) -> Command:
    try:
        if opcode == Opcode.SET_WINDOW:
            return SetWindow(window_s=int.from_bytes(args, "big") + 1)
        if opcode == Opcode.SET_MODE:
            return SetMode(mode=args[0])  # type: ignore[arg-type]
        if opcode == Opcode.SET_DAILY_BUDGET:
            return SetDailyBudget(budget_s=int.from_bytes(args, "big") + 1)
        if opcode == Opcode.SET_LABEL_SET:
            return SetLabelSet(
                set_id=args[0], classes=args[1], fingerprint=int.from_bytes(args[2:4], "big")
            )
        if opcode == Opcode.SEND_STATUS:
            return SendStatus()
        return SetStatusInterval(interval_min=int.from_bytes(args, "big"))
    except EncodeError as exc:
        raise DecodeError(exc.reason, field=exc.field, offset=offset + 1) from exc


def decode(payload: bytes) -> Downlink:
    """Decode a command downlink.

    The relay answers an unknown opcode or a truncated command with ``UNKNOWN_COMMAND`` and
    a value out of range with ``REJECTED``; this decoder raises for both.

    Raises:
        DecodeError: with ``field`` ``seq`` (empty payload), ``opcode``, the command's
            argument name, or ``TruncatedPayloadError`` for missing argument bytes.
    """
    data = bytes(payload)
    if not data:
        raise TruncatedPayloadError(field="seq", expected=1, got=0)
    commands: list[Command] = []
    offset = 1
    while offset < len(data):
        try:
            opcode = Opcode(data[offset])
        except ValueError:
            raise DecodeError(
                f"unknown opcode {data[offset]}", field="opcode", offset=offset
            ) from None
        size = _ARGUMENT_BYTES[opcode]
        args = data[offset + 1 : offset + 1 + size]
        if len(args) < size:
            raise TruncatedPayloadError(
                field=opcode.name.lower(), expected=size, got=len(args), offset=offset + 1
            )
        commands.append(_decode_command(opcode, args, offset))
        offset += 1 + size
    return Downlink(seq=data[0], commands=tuple(commands))


def outcome(status: Status, downlink: Downlink | int) -> CommandStatus | None:
    """What the relay did with a downlink, if ``status`` is its acknowledgement.

    Args:
        status: a decoded status message.
        downlink: the downlink (or its sequence number).

    Returns:
        ``status.command_status`` when the status acknowledges that sequence number, else
        None (the downlink has not been processed yet, or a later one has).
    """
    seq = downlink.seq if isinstance(downlink, Downlink) else downlink
    if status.command_status == CommandStatus.NONE or status.command_seq != seq:
        return None
    return status.command_status
