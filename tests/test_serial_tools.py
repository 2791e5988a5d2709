"""Serial tools: board discovery by USB id, opening ports (loop://, pty), lines, input forms."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serial.tools.list_ports_common import ListPortInfo

from lora_emotion.errors import DecodeError, EncodeError
from lora_emotion.labels import FER2013, PHYSIO3
from lora_emotion.relay_protocol import (
    DistributionFrame,
    FaceEntry,
    FacesFrame,
    ReadingFrame,
    VitalsFrame,
    encode_frame,
    maybe_next_frame,
)
from lora_emotion.serial_tools import (
    LineSplitter,
    PortBusyError,
    PortNotFoundError,
    SerialPortError,
    find_relay_port,
    open_port,
    parse_reading_line,
    relay_ports,
)

needs_pty = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


def port(device: str, vid: int | None, pid: int | None, serial_number: str = "") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial_number or None
    info.description = f"port {device}"
    return info


def test_the_board_is_found_by_its_usb_id() -> None:
    ports = [
        port("/dev/ttyUSB0", 0x0403, 0x6001),  # an FTDI cable
        port("/dev/ttyS0", None, None),  # a motherboard UART
        port("/dev/ttyACM1", 0x2341, 0x8059, "ABC123"),
    ]
    found = find_relay_port(ports)
    assert found.device == "/dev/ttyACM1" and found.board == "MKR WAN 1310"
    assert found.serial_number == "ABC123" and not found.bootloader


def test_running_boards_come_before_bootloaders() -> None:
    ports = [port("/dev/ttyACM0", 0x2341, 0x0059), port("/dev/ttyACM1", 0x2341, 0x8053)]
    listed = relay_ports(ports)
    assert [(p.device, p.board, p.bootloader) for p in listed] == [
        ("/dev/ttyACM1", "MKR WAN 1300", False),
        ("/dev/ttyACM0", "MKR WAN 1310", True),
    ]
    assert find_relay_port(ports).device == "/dev/ttyACM1"


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        ([], "no serial ports at all"),
        ([port("/dev/ttyUSB0", 0x0403, 0x6001)], "/dev/ttyUSB0 (0403:6001)"),
        ([port("/dev/ttyACM0", 0x2341, 0x0059)], "bootloader"),
        (
            [port("/dev/ttyACM0", 0x2341, 0x8059, "A"), port("/dev/ttyACM1", 0x2341, 0x8059, "B")],
            "several relay boards",
        ),
    ],
)
def test_discovery_explains_what_it_did_not_find(ports: list[ListPortInfo], message: str) -> None:
    with pytest.raises(PortNotFoundError, match=r"2341:8059|bootloader|several") as caught:
        find_relay_port(ports)
    assert message in str(caught.value)


def test_this_machine_can_be_scanned() -> None:
    # Whatever is plugged in here, scanning must not fail and returns only known boards.
    assert all(p.board.startswith("MKR WAN") for p in relay_ports())


def test_loop_url_carries_frames_both_ways() -> None:
    with open_port("loop://", timeout=0.2) as loop:
        frame = ReadingFrame(label_set=0, label=3, confidence_pct=87)
        loop.write(encode_frame(frame) + b"noise" + encode_frame(frame))
        buffer = bytearray(loop.read(64))
    assert maybe_next_frame(buffer) == frame
    assert maybe_next_frame(buffer) == frame  # the noise before the second sync is skipped
    assert maybe_next_frame(buffer) is None


def test_a_missing_port_is_a_clear_error() -> None:
    with pytest.raises(PortNotFoundError, match="does not exist"):
        open_port("/dev/ttyDOESNOTEXIST42")


@needs_pty
def test_a_busy_port_is_a_clear_error() -> None:
    master, slave = os.openpty()
    try:
        path = os.ttyname(slave)
        with open_port(path), pytest.raises(PortBusyError, match="in use by another program"):
            open_port(path)
        with open_port(path) as again:  # free again once closed
            assert again.is_open
    finally:
        os.close(master)
        os.close(slave)


def test_1200_baud_and_bad_urls_are_refused() -> None:
    with pytest.raises(SerialPortError, match="bootloader"):
        open_port("loop://", baudrate=1200)
    with pytest.raises(SerialPortError):
        open_port("nosuchscheme://x")


def test_lines_are_split_whatever_the_reads() -> None:
    stream = b"LE1 5 boot fw=1.0.0\r\nmodem chatter\rLE1 9 stats received=3\n\xffok\n"
    for size in (1, 2, 3, 7, len(stream)):
        splitter = LineSplitter()
        lines = []
        for start in range(0, len(stream), size):
            lines += splitter.feed(stream[start : start + size])
        assert lines == [
            "LE1 5 boot fw=1.0.0",
            "modem chatter",
            "LE1 9 stats received=3",
            "\ufffdok",
        ]


def test_an_endless_line_is_cut_and_counted() -> None:
    splitter = LineSplitter(max_line=16)
    lines = splitter.feed(b"x" * 100 + b"\nshort\n")
    assert lines == ["x" * 16, "short"] and splitter.overlong == 1


@given(st.binary(max_size=300))
def test_the_splitter_never_fails_nor_grows(data: bytes) -> None:
    splitter = LineSplitter(max_line=32)
    for line in splitter.feed(data):
        assert len(line) <= 32 and "\n" not in line and "\r" not in line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("happy 0.87", ReadingFrame(label_set=0, label=3, confidence_pct=87)),
        ("happy 87%", ReadingFrame(label_set=0, label=3, confidence_pct=87)),
        ("3", ReadingFrame(label_set=0, label=3)),
        ("7", ReadingFrame(label_set=0, label=None)),
        ("none", ReadingFrame(label_set=0, label=None)),
        (
            '{"label": "sad", "confidence": 0.4}',
            ReadingFrame(label_set=0, label=4, confidence_pct=40),
        ),
        ('{"label": null}', ReadingFrame(label_set=0, label=None)),
        (
            "dist 0.1,0.05,0.05,0.6,0.1,0.05,0.05",
            DistributionFrame(label_set=0, weights=(1000, 500, 500, 6000, 1000, 500, 500)),
        ),
        (
            "faces happy:0.9 sad:0.4",
            FacesFrame(
                label_set=0,
                faces=(
                    FaceEntry(label=3, confidence_pct=90),
                    FaceEntry(label=4, confidence_pct=40),
                ),
            ),
        ),
        ('{"faces": []}', FacesFrame(label_set=0, faces=())),
        ("  # a comment", None),
        ("", None),
    ],
)
def test_input_lines_become_frames(line: str, expected: object) -> None:
    assert parse_reading_line(line, FER2013) == expected


def test_vitals_lines_in_both_forms() -> None:
    text = parse_reading_line("vitals hr=72 eda=3.21 happy 0.6", PHYSIO3)
    as_json = parse_reading_line(
        '{"heart_rate_bpm": 72, "skin_conductance_us": 3.21, "label": "happy", "confidence": 0.6}',
        PHYSIO3,
    )
    assert isinstance(text, VitalsFrame) and text == as_json
    assert text.heart_rate_bpm == 72 and text.skin_conductance_centi_us == 321
    assert text.prediction is not None and text.prediction.label == 1
    assert text.prediction.confidence_pct == 60
    only_heart = parse_reading_line("vitals hr=90", PHYSIO3)
    assert isinstance(only_heart, VitalsFrame) and only_heart.skin_conductance_centi_us is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("hapy 0.8", "not in label set"),
        ("happy 1.5", "outside 0..1"),
        ("happy lots", "not a confidence"),
        ("9", "not in fer2013"),
        ("none 0.5", "no face"),
        ("happy 0.5 extra", "expected"),
        ("dist 0.5,x", "not a list of numbers"),
        ("dist 0.5,0.5", "values for 7 classes"),
        ("vitals", "hr="),
        ("vitals bp=120", "hr="),
        ("faces none:0.5", "needs a class"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not in label set"),
        ('{"mood": "happy"}', "expected label"),
        ('{"label": "happy", "confidence": "high"}', "must be a number"),
    ],
)
def test_malformed_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises((DecodeError, EncodeError), match=message):
        parse_reading_line(line, FER2013)
