"""``lora-emotion monitor``: the relay's USB log, with its uplinks decoded into readings."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, TextIO

import serial

from ..errors import DecodeError
from ..labels import LabelRegistry
from ..relay_protocol import LogEvent, parse_log_line
from ..serial_tools import (
    DEFAULT_BAUDRATE,
    LineSplitter,
    SerialPortError,
    find_relay_port,
    open_port,
)
from ..uplink import decode_uplink
from ._common import add_label_options, registry_from

EPILOG = """\
what it shows:
  the relay writes one line per event to its USB serial port (LE1 <uptime_ms> <event>
  key=value ...). The monitor prints each event; uplinks are decoded with the payload codec
  into the readings the webhook will store, input readings get their class names.

examples:
  lora-emotion monitor                     # finds the MKR WAN 1310 by its USB id
  lora-emotion monitor /dev/ttyACM0 --json # one JSON object per event
  lora-emotion monitor COM5 --raw          # also print lines that are not relay events
  lora-emotion monitor --count 20 --duration 300
  lora-emotion monitor socket://127.0.0.1:7000   # any pyserial URL
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``monitor`` subcommand."""
    parser = subparsers.add_parser(
        "monitor",
        help="show the relay's USB log with uplinks decoded",
        description="Read the relay's log over USB serial and turn it into decoded readings. "
        "Without PORT the MKR WAN 1310 is found by its USB vendor/product id (2341:8059).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("port", nargs="?", metavar="PORT", help="device path or pyserial URL")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE, help="ignored by USB")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")
    parser.add_argument("--raw", action="store_true", help="also show non-event lines")
    parser.add_argument("--count", type=int, metavar="N", help="stop after N events")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    add_label_options(parser)
    parser.set_defaults(handler=handle)


def _label_name(event: LogEvent, registry: LabelRegistry) -> str | None:
    label = event.get("label")
    if label is None or not label.isdigit():
        return label
    label_set = registry.get(int(event.get("set", "-1") or -1))
    index = int(label)
    if label_set is None or index >= len(label_set):
        return label
    return label_set.labels[index]


def describe(event: LogEvent, registry: LabelRegistry) -> dict[str, Any]:
    """An event as JSON-ready builtins, with uplinks decoded and labels named.

    Never raises for a well-formed event: a payload that does not decode gets
    ``decode_error`` instead of ``records``.
    """
    item: dict[str, Any] = {
        "uptime_ms": event.uptime_ms,
        "event": event.event,
        "fields": dict(event.fields),
    }
    if event.event == "reading":
        item["label_name"] = _label_name(event, registry)
    if event.event in ("uplink", "downlink") and "hex" in event.fields:
        try:
            payload, port = event.data("hex"), event.integer("port")
            if event.event == "uplink":
                records = decode_uplink(payload, fport=port, registry=registry)
                item["records"] = [record.to_json_dict() for record in records]
        except DecodeError as exc:
            item["decode_error"] = str(exc)
    return item


def _value(record: dict[str, Any]) -> str:
    if "vs" in record:
        return str(record["vs"])
    value = record.get("v")
    unit = record.get("u")
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if unit and unit != "/":
        text += f" {unit}"
    if "t" in record:
        text += f" @{record['t']:g}s"
    return text


def format_event(item: dict[str, Any]) -> str:
    """One line for people (see :func:`describe` for the fields)."""
    fields = item["fields"]
    stamp = f"[{item['uptime_ms'] / 1000:10.3f} s]"
    event = item["event"]
    if event == "reading":
        confidence = f" {fields['conf']}%" if "conf" in fields else ""
        return (
            f"{stamp} reading {fields.get('src')} {fields.get('kind')}: "
            f"{item.get('label_name')}{confidence}"
        )
    if event == "uplink":
        head = (
            f"{stamp} uplink {fields.get('kind')} port {fields.get('port')} "
            f"{fields.get('size')} B DR{fields.get('dr')} {fields.get('airtime_ms')} ms "
            f"{fields.get('outcome')}"
        )
        if "records" in item:
            readings = ", ".join(f"{r.get('n')}={_value(r)}" for r in item["records"])
            return f"{head}: {readings}"
        if "decode_error" in item:
            return f"{head}: payload does not decode ({item['decode_error']})"
        return head
    rest = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{stamp} {event} {rest}".rstrip()


def monitor(
    port: serial.SerialBase,
    *,
    registry: LabelRegistry,
    as_json: bool = False,
    raw: bool = False,
    count: int | None = None,
    duration_s: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Print the relay's events from an open port until a bound is reached or Ctrl-C.

    Returns:
        0, or 1 when the port went away.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    splitter = LineSplitter()
    deadline = None if duration_s is None else time.monotonic() + duration_s
    events = malformed = 0
    while (count is None or events < count) and (deadline is None or time.monotonic() < deadline):
        try:
            data = port.read(max(1, port.in_waiting))  # type: ignore[attr-defined]
        except (serial.SerialException, OSError) as exc:
            print(
                f"lora-emotion monitor: the port went away ({exc}); board reset or unplugged?",
                file=err,
            )
            return 1
        for line in splitter.feed(data):
            if not line.strip():
                continue
            try:
                event = parse_log_line(line)
            except DecodeError as exc:
                if line.startswith("LE"):
                    malformed += 1
                    print(f"malformed log line ({exc}): {line!r}", file=err)
                elif raw:
                    print(json.dumps({"raw": line}) if as_json else f"> {line}", file=out)
                continue
            item = describe(event, registry)
            print(json.dumps(item) if as_json else format_event(item), file=out, flush=True)
            events += 1
            if count is not None and events >= count:
                break
    if malformed:
        print(f"{malformed} malformed log line(s) skipped", file=err)
    return 0


def handle(args: argparse.Namespace) -> int:
    """Find or open the port and monitor it."""
    registry = registry_from(args)
    name = args.port
    if name is None:
        found = find_relay_port()
        name = found.device
        print(f"using {name} ({found.board}, serial {found.serial_number or '?'})", file=sys.stderr)
    if args.count is not None and args.count < 1:
        raise SerialPortError("--count must be at least 1")
    with open_port(name, baudrate=args.baud) as port:
        try:
            return monitor(
                port,
                registry=registry,
                as_json=args.json,
                raw=args.raw,
                count=args.count,
                duration_s=args.duration,
            )
        except KeyboardInterrupt:
            return 0
