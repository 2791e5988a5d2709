"""``lora-emotion feed``: send readings from a host model to the relay over USB serial."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import serial

from ..errors import DecodeError, EncodeError, LoraEmotionError
from ..labels import LabelSet
from ..relay_protocol import Frame, encode_frame
from ..serial_tools import (
    DEFAULT_BAUDRATE,
    LineSplitter,
    SerialPortError,
    find_relay_port,
    open_port,
    parse_reading_line,
)
from ..simulator import EmotionStream, StreamConfig, observation_frames
from ._common import add_label_options, registry_from

EPILOG = """\
input, one reading per line (stdin or --input), text or JSON:
  happy 0.87                       a class and its confidence (0.87 or 87%)
  3                                a class by index (7 = no face for fer2013)
  none                             no face
  dist 0.1,0.05,0.05,0.6,0.1,0.05,0.05
  faces happy:0.9 sad:0.4
  vitals hr=72 eda=3.21 happy 0.6  heart rate, skin conductance (µS), optional reading
  {"label": "happy", "confidence": 0.87}
  {"probabilities": [...]}   {"faces": [...]}   {"heart_rate_bpm": 72, "skin_conductance_us": 3.2}
  blank lines and lines starting with # are skipped

examples:
  my-model --jsonl | lora-emotion feed /dev/ttyACM0
  lora-emotion feed /dev/ttyACM0 --input readings.txt --rate 1 --echo
  lora-emotion feed --simulate --count 600      # a simulated model, 1 reading/s, found port
  lora-emotion feed COM5 --label-set physio3 --strict

A bad line is reported with its number and skipped (--strict stops instead); the exit code is
1 if any line was rejected.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``feed`` subcommand."""
    parser = subparsers.add_parser(
        "feed",
        help="send readings to the relay over USB serial (framed protocol)",
        description="Send readings from a host (a speech or physiological model on a Raspberry "
        "Pi, a file, or a simulated model) to the relay, which accepts the same framed "
        "protocol on USB serial as on I2C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "port", nargs="?", metavar="PORT", help="device path or pyserial URL (default: find it)"
    )
    parser.add_argument("--input", type=Path, metavar="FILE", help="read lines from FILE")
    parser.add_argument(
        "--label-set", default="fer2013", metavar="NAME", help="label set of the readings"
    )
    add_label_options(parser)
    parser.add_argument("--rate", type=float, metavar="HZ", help="at most HZ readings per second")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="feed a simulated model (distributions and vitals, 1 Hz) instead of input lines",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --simulate")
    parser.add_argument("--count", type=int, metavar="N", help="stop after N frames")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad line")
    parser.add_argument("--echo", action="store_true", help="print the relay's log lines")
    parser.add_argument("--baud", type=int, default=DEFAULT_BAUDRATE, help="ignored by USB")
    parser.set_defaults(handler=handle)


def simulated_frames(label_set: LabelSet, *, seed: int) -> Iterator[Frame]:
    """Frames a host model would send: a distribution (or no face) and vitals per second."""
    stream = EmotionStream(StreamConfig(label_set=label_set), seed=seed)
    while True:
        yield from observation_frames(stream.next(), label_set)


class Feeder:
    """Writes frames to an open port, paced and bounded, echoing the relay's log if asked.

    Args:
        port: the open serial port.
        rate_hz: at most this many frames per second, or None.
        echo: print the lines the relay writes back to ``echo_to``.
    """

    def __init__(
        self,
        port: serial.SerialBase,
        *,
        rate_hz: float | None = None,
        echo: bool = False,
        echo_to: TextIO | None = None,
    ) -> None:
        self.port = port
        self.interval = None if not rate_hz else 1.0 / rate_hz
        self.echo = echo
        self.echo_to = echo_to
        self.frames = 0
        self.bytes = 0
        self._next = time.monotonic()
        self._lines = LineSplitter()

    def send(self, frame: Frame) -> None:
        """Write one frame (waiting for its turn under the rate).

        Raises:
            SerialPortError: the port went away or the relay stopped reading.
        """
        if self.interval is not None:
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next, time.monotonic() - self.interval) + self.interval
        data = encode_frame(frame)
        try:
            self.port.write(data)
            self.port.flush()
        except serial.SerialTimeoutException as exc:
            raise SerialPortError(
                "the relay is not reading its serial port (write timed out)"
            ) from exc
        except (serial.SerialException, OSError) as exc:
            raise SerialPortError(f"the port went away ({exc}); board reset or unplugged?") from exc
        self.frames += 1
        self.bytes += len(data)
        self.drain()

    def drain(self) -> None:
        """Read whatever the relay has written; print it when echoing."""
        try:
            waiting = self.port.in_waiting  # type: ignore[attr-defined]  # on every concrete port
            data = self.port.read(waiting) if waiting else b""
        except (serial.SerialException, OSError):
            return
        if self.echo:
            for line in self._lines.feed(data):
                if line.strip():
                    print(line, file=self.echo_to or sys.stderr, flush=True)


def _input_lines(path: Path | None) -> Iterator[str]:
    if path is None:
        yield from sys.stdin
        return
    try:
        with path.open(encoding="utf-8") as handle:
            yield from handle
    except OSError as exc:
        raise LoraEmotionError(f"cannot read {path}: {exc.strerror}") from exc


def feed_lines(
    feeder: Feeder,
    lines: Iterator[str],
    label_set: LabelSet,
    *,
    strict: bool = False,
    count: int | None = None,
    deadline: float | None = None,
    err: TextIO | None = None,
) -> int:
    """Parse and send lines; returns how many were rejected (each reported on ``err``).

    Raises:
        DecodeError, EncodeError: a bad line when ``strict``.
    """
    rejected = 0
    for number, line in enumerate(lines, start=1):
        if count is not None and feeder.frames >= count:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            frame = parse_reading_line(line, label_set)
        except (DecodeError, EncodeError) as exc:
            if strict:
                raise DecodeError(str(exc), field=f"line {number}") from exc
            rejected += 1
            print(f"line {number}: {line.strip()!r}: {exc}", file=err or sys.stderr)
            continue
        if frame is not None:
            feeder.send(frame)
    return rejected


def handle(args: argparse.Namespace) -> int:
    """Open the port and feed it."""
    label_set = registry_from(args).by_name(args.label_set)
    if args.count is not None and args.count < 1:
        raise LoraEmotionError("--count must be at least 1")
    if args.rate is not None and not args.rate > 0:
        raise LoraEmotionError("--rate must be positive")
    if args.simulate and args.count is None and args.duration is None:
        args.count = 3600  # a simulated feed is always bounded
    name = args.port
    if name is None:
        found = find_relay_port()
        name = found.device
        print(f"using {name} ({found.board})", file=sys.stderr)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    rejected = 0
    with open_port(name, baudrate=args.baud) as port:
        port.write_timeout = 2.0
        # A simulated host sends two frames per second: the camera's and the sensor's.
        rate = args.rate if args.rate is not None else (2.0 if args.simulate else None)
        feeder = Feeder(port, rate_hz=rate, echo=args.echo)
        try:
            if args.simulate:
                for frame in simulated_frames(label_set, seed=args.seed):
                    if args.count is not None and feeder.frames >= args.count:
                        break
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                    feeder.send(frame)
            else:
                try:
                    rejected = feed_lines(
                        feeder,
                        _input_lines(args.input),
                        label_set,
                        strict=args.strict,
                        count=args.count,
                        deadline=deadline,
                    )
                except (DecodeError, EncodeError) as exc:
                    raise LoraEmotionError(str(exc)) from exc
        except KeyboardInterrupt:
            pass
        feeder.drain()
    print(
        f"sent {feeder.frames} frame(s), {feeder.bytes} bytes to {name}"
        + (f"; {rejected} line(s) rejected" if rejected else ""),
        file=sys.stderr,
    )
    return 1 if rejected else 0
