"""``lora-emotion monitor`` over a pseudo-terminal playing the relay's USB log."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/helpers.py

from helpers import PseudoTerminal

from lora_emotion.cli import main
from lora_emotion.serial_tools import relay_ports
from lora_emotion.uplink import decode_uplink

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")

# Lines exactly as the sketch's log formatter writes them (arduino tests pin the format).
BOOT = (
    "LE1 1234 boot fw=1.0.0 proto=1 set=0 classes=7 mode=summary window_s=60 budget_s=30 "
    "ledger=72 status_min=360"
)
READING = "LE1 2000 reading src=i2c kind=distribution set=0 label=3 conf=87 n=1"
LEGACY = "LE1 2100 reading src=i2c kind=legacy set=0 label=none n=2"
SUMMARY_HEX = "9B8794D4A81798"  # docs/payload-format.md §3.4 example, port 19
UPLINK = (
    f"LE1 61000 uplink kind=summary cause=window port=19 size=7 hex={SUMMARY_HEX} dr=5 "
    "airtime_ms=62 rc=7 outcome=sent readings=60 hour_ms=62 day_ms=62 credit_s=3000"
)
STATS = "LE1 62000 stats received=60 dropped=0 invalid=0 window_readings=2 uplinks=1"


def run_monitor(
    pty: PseudoTerminal, lines: list[str], argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    player = pty.write_later(lines)
    code = main(["monitor", pty.path, "--duration", "10", *argv])
    player.join()
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_events_come_out_as_json_with_uplinks_decoded(capsys: pytest.CaptureFixture[str]) -> None:
    with PseudoTerminal() as pty:
        lines = [BOOT, "+EVENT=1,1 (modem chatter)", READING, LEGACY, UPLINK, STATS]
        code, out, _ = run_monitor(pty, lines, ["--json", "--count", "5"], capsys)
    assert code == 0
    items = [json.loads(line) for line in out.splitlines()]
    assert [i["event"] for i in items] == ["boot", "reading", "reading", "uplink", "stats"]
    assert items[0]["fields"]["mode"] == "summary" and items[0]["uptime_ms"] == 1234
    assert items[1]["label_name"] == "happy" and items[2]["label_name"] == "none"
    expected = decode_uplink(bytes.fromhex(SUMMARY_HEX), fport=19)
    assert items[3]["records"] == [r.to_json_dict() for r in expected]
    assert items[3]["records"][0] == {"n": "emotion", "vs": "happy"}


def test_text_output_reads_like_readings(capsys: pytest.CaptureFixture[str]) -> None:
    with PseudoTerminal() as pty:
        code, out, _ = run_monitor(pty, [READING, UPLINK], ["--count", "2"], capsys)
    assert code == 0
    first, second = out.splitlines()
    assert first.endswith("reading i2c distribution: happy 87%")
    assert "uplink summary port 19 7 B DR5 62 ms sent: emotion=happy, confidence=0.81" in second
    assert "window=60 s" in second and "count:happy=40" in second


def test_other_lines_only_with_raw_and_malformed_ones_are_reported(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with PseudoTerminal() as pty:
        lines = ["modem chatter", "LE1 x boot", "LE1 5 uplink kind=reading", STATS]
        code, out, err = run_monitor(pty, lines, ["--raw", "--count", "1"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "> modem chatter"
    assert out.splitlines()[-1].endswith(
        "stats received=60 dropped=0 invalid=0 window_readings=2 uplinks=1"
    )
    assert err.count("malformed log line (") == 2 and "2 malformed log line(s) skipped" in err


def test_an_uplink_that_does_not_decode_is_shown_not_fatal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = UPLINK.replace(f"hex={SUMMARY_HEX}", "hex=00FF").replace("size=7", "size=2")
    bad = bad.replace("port=19", "port=208")
    with PseudoTerminal() as pty:
        code, out, _ = run_monitor(pty, [bad], ["--count", "1"], capsys)
    assert code == 0 and "payload does not decode" in out


def test_the_duration_bounds_a_quiet_port(capsys: pytest.CaptureFixture[str]) -> None:
    with PseudoTerminal() as pty:
        began = time.monotonic()
        assert main(["monitor", pty.path, "--duration", "0.5"]) == 0
        assert time.monotonic() - began < 3


def test_a_port_that_goes_away_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    pty = PseudoTerminal()
    try:
        closer = threading.Timer(0.4, pty.close)  # unplugged: both ends of the pty gone
        closer.start()
        code = main(["monitor", pty.path, "--duration", "10"])
        closer.join()
    finally:
        pty.close()
    assert code == 1
    assert "went away" in capsys.readouterr().err


def test_missing_and_busy_ports_are_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "/dev/ttyNOSUCHPORT9", "--duration", "1"]) == 1
    assert "does not exist" in capsys.readouterr().err
    from lora_emotion.serial_tools import open_port

    with PseudoTerminal() as pty, open_port(pty.path):
        assert main(["monitor", pty.path, "--duration", "1"]) == 1
    assert "in use by another program" in capsys.readouterr().err


@pytest.mark.skipif(bool(relay_ports()), reason="a relay board is connected to this machine")
def test_without_a_port_and_without_a_board_it_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["monitor", "--duration", "1"]) == 1
    assert "no MKR WAN 1310 (USB 2341:8059)" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["monitor", "--help"])
    assert "examples:" in capsys.readouterr().out
