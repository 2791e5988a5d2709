#!/usr/bin/env python3
"""Send emotion readings from a Raspberry Pi to the MKR WAN 1310 relay (I2C address 0x08).

Plain Linux I2C through /dev/i2c-1, no extra packages: the frame bytes come from
lora_emotion.relay_protocol when the package is installed, and from the few lines below
otherwise (they are the same bytes; docs/relay-protocol.md). Enable I2C with raspi-config.

Wiring: Pi pin 3 (SDA) to MKR SDA (11), pin 5 (SCL) to MKR SCL (12), pin 6 (GND) to GND. The
Pi has 1.8 kOhm pull-ups to 3.3 V; the MKR is 3.3 V, so no level shifter is needed.

Usage:
    python3 relay_i2c_master.py happy 0.87          # one reading
    python3 relay_i2c_master.py --legacy 3          # the 2021 demo's one-byte form
    python3 relay_i2c_master.py --demo              # a reading a second until Ctrl-C
"""

from __future__ import annotations

import argparse
import fcntl
import os
import random
import time

I2C_SLAVE = 0x0703  # linux/i2c-dev.h
RELAY_ADDRESS = 0x08
FER2013 = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE, as lora_emotion.labels.crc16_ccitt."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def reading_frame(label_set: int, label: int | None, confidence_pct: int | None) -> bytes:
    """Type 1: A5 01 03 <set> <class or FF> <confidence or FF> <CRC-16, big-endian>."""
    try:
        from lora_emotion.relay_protocol import ReadingFrame, encode_frame
    except ImportError:
        body = bytes([1, 3, label_set, 0xFF if label is None else label,
                      0xFF if confidence_pct is None else confidence_pct])
        return b"\xa5" + body + crc16_ccitt(body).to_bytes(2, "big")
    return encode_frame(ReadingFrame(label_set=label_set, label=label,
                                     confidence_pct=confidence_pct))


class Relay:
    """One open I2C bus with the relay selected; each write() is one I2C transaction."""

    def __init__(self, bus: int = 1, address: int = RELAY_ADDRESS) -> None:
        self._fd = os.open(f"/dev/i2c-{bus}", os.O_RDWR)
        fcntl.ioctl(self._fd, I2C_SLAVE, address)

    def write(self, data: bytes) -> None:
        if os.write(self._fd, data) != len(data):
            raise OSError("short I2C write")

    def status(self) -> tuple[int, int]:
        """(writes queued mod 256, flags: bit 0 joined, bit 1 queue overflowed)."""
        queued, flags = os.read(self._fd, 2)
        return queued, flags

    def close(self) -> None:
        os.close(self._fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("label", nargs="?", help="FER-2013 class name, or 'none'")
    parser.add_argument("confidence", nargs="?", type=float, help="0..1")
    parser.add_argument("--legacy", type=int, metavar="N", help="send one byte N (0..7)")
    parser.add_argument("--demo", action="store_true", help="a random reading every second")
    parser.add_argument("--bus", type=int, default=1)
    args = parser.parse_args()
    relay = Relay(args.bus)
    try:
        if args.legacy is not None:
            relay.write(bytes([args.legacy]))
        elif args.demo:
            while True:
                label = random.randrange(len(FER2013))
                relay.write(reading_frame(0, label, random.randint(40, 99)))
                print("sent", FER2013[label], "relay status", relay.status())
                time.sleep(1)
        elif args.label:
            label = None if args.label == "none" else FER2013.index(args.label)
            percent = None if args.confidence is None else round(args.confidence * 100)
            relay.write(reading_frame(0, label, None if label is None else percent))
        else:
            parser.error("give a label, --legacy N or --demo")
        print("relay status (queued, flags):", relay.status())
    finally:
        relay.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
