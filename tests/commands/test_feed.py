"""``lora-emotion feed`` over a pseudo-terminal standing in for the relay."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers.py

from helpers import PseudoTerminal

from lora_emotion.cli import main
from lora_emotion.errors import DecodeError
from lora_emotion.relay_protocol import (
    DistributionFrame,
    Frame,
    ReadingFrame,
    VitalsFrame,
    maybe_next_frame,
)
from lora_emotion.serial_tools import open_port

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")


def frames_in(data: bytes) -> list[Frame]:
    """Decode the byte stream as the relay's serial reader does."""
    buffer = bytearray(data)
    frames: list[Frame] = []
    while True:
        try:
            frame = maybe_next_frame(buffer)
        except DecodeError as exc:  # pragma: no cover - would mean a broken frame
            pytest.fail(f"the feeder wrote a bad frame: {exc}")
        if frame is None:
            assert not buffer, "bytes left over after the last frame"
            return frames
        frames.append(frame)


def test_input_lines_reach_the_relay_as_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "readings.txt"
    source.write_text(
        "# from a speech model\nhappy 0.87\nnone\n\n"
        '{"probabilities": [0.1, 0.05, 0.05, 0.6, 0.1, 0.05, 0.05]}\n'
        "vitals hr=72 eda=3.21\n",
        encoding="utf-8",
    )
    with PseudoTerminal() as pty:
        code = main(["feed", pty.path, "--input", str(source)])
        received = frames_in(pty.read_available())
    assert code == 0
    assert received == [
        ReadingFrame(label_set=0, label=3, confidence_pct=87),
        ReadingFrame(label_set=0, label=None),
        DistributionFrame(label_set=0, weights=(1000, 500, 500, 6000, 1000, 500, 500)),
        VitalsFrame(label_set=0, heart_rate_bpm=72, skin_conductance_centi_us=321),
    ]
    assert "sent 4 frame(s)" in capsys.readouterr().err


def test_bad_lines_are_reported_with_their_number_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "readings.txt"
    source.write_text("happy 0.9\nhapy 0.9\nsad 2.0\nsad 0.2\n", encoding="utf-8")
    with PseudoTerminal() as pty:
        code = main(["feed", pty.path, "--input", str(source)])
        received = frames_in(pty.read_available())
    err = capsys.readouterr().err
    assert code == 1
    assert [f.label for f in received] == [3, 4]  # type: ignore[union-attr]
    assert "line 2: 'hapy 0.9':" in err and "not in label set" in err
    assert "line 3: 'sad 2.0':" in err and "2 line(s) rejected" in err


def test_strict_stops_at_the_first_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "readings.txt"
    source.write_text("happy 0.9\nhapy\nsad 0.2\n", encoding="utf-8")
    with PseudoTerminal() as pty:
        code = main(["feed", pty.path, "--input", str(source), "--strict"])
        received = frames_in(pty.read_available())
    assert code == 1 and len(received) == 1
    assert "line 2" in capsys.readouterr().err


def test_a_simulated_model_feeds_distributions_and_vitals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with PseudoTerminal() as pty:
        code = main(["feed", pty.path, "--simulate", "--count", "8", "--rate", "200"])
        received = frames_in(pty.read_available())
    assert code == 0 and len(received) == 8
    kinds = {type(frame) for frame in received}
    assert VitalsFrame in kinds and kinds <= {VitalsFrame, DistributionFrame, ReadingFrame}
    for frame in received:
        if isinstance(frame, DistributionFrame):
            assert sum(frame.weights) == pytest.approx(10_000, abs=7)


def test_echo_shows_what_the_relay_logs_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "readings.txt"
    source.write_text("happy 0.5\n" * 5, encoding="utf-8")
    with PseudoTerminal() as pty:
        pty.write_later(
            ["LE1 10 reading src=serial kind=reading set=0 label=3 conf=50 n=1"], delay_s=0.1
        )
        code = main(["feed", pty.path, "--input", str(source), "--rate", "10", "--echo"])
    assert code == 0
    assert "LE1 10 reading src=serial" in capsys.readouterr().err


def test_the_rate_paces_the_frames(tmp_path: Path) -> None:
    import time

    source = tmp_path / "readings.txt"
    source.write_text("happy 0.5\n" * 6, encoding="utf-8")
    with PseudoTerminal() as pty:
        began = time.monotonic()
        assert main(["feed", pty.path, "--input", str(source), "--rate", "10"]) == 0
        took = time.monotonic() - began
    assert 0.4 < took < 3.0  # six frames at 10/s: five intervals of 0.1 s


def test_missing_and_busy_ports_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "readings.txt"
    source.write_text("happy 0.5\n", encoding="utf-8")
    assert main(["feed", "/dev/ttyNOSUCHPORT9", "--input", str(source)]) == 1
    assert "does not exist" in capsys.readouterr().err
    with PseudoTerminal() as pty, open_port(pty.path):
        assert main(["feed", pty.path, "--input", str(source)]) == 1
    assert "in use by another program" in capsys.readouterr().err


def test_an_unreadable_input_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with PseudoTerminal() as pty:
        assert main(["feed", pty.path, "--input", str(tmp_path / "missing.txt")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_help_lists_the_input_forms(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["feed", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "vitals hr=72" in text and "--simulate" in text
