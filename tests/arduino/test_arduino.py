"""The MKR WAN 1310 relay (arduino/) built and run without a board.

Five builds, each from the same sources the board compiles, all with -std=gnu++11 (the board
core's standard):

* the relay and the library's examples on the real board core (ArduinoCore-samd 1.8.14,
  MKRWAN 1.1.2) with ../shared/arduino-board/build-sketch, within the sketch budget;
* the core's unit tests on the host with g++ -Wall -Wextra -Werror and address/undefined
  sanitizers (shared vectors in tests/vectors, the same files the Python tests read);
* the unchanged sketch against the project's fakes of Arduino.h, Wire.h and MKRWAN.h, driven
  through setup()/loop() for a simulated hour of 1 Hz I2C traffic; its USB log is parsed with
  lora_emotion.relay_protocol and every uplink decoded with lora_emotion.messages;
* the core cross-compiled for the board's Cortex-M0+ with a flash/RAM budget;
* the core's unit tests again, for ARMv6-M, run under qemu-system-arm -M microbit.

A missing toolchain skips its tests with the reason, except under CI=true where it fails;
the real-core builds skip (with the reason) only where ../shared/arduino-board is absent.
Build outputs go to pytest's temporary directory, never into the repository.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import pytest

from lora_emotion import downlink as dl
from lora_emotion.budget import AirtimeLedger, airtime_charge_ms
from lora_emotion.errors import DecodeError
from lora_emotion.labels import FER2013
from lora_emotion.messages import CommandStatus, Status, Summary, decode
from lora_emotion.relay_protocol import LogEvent, parse_log_line

ROOT = Path(__file__).resolve().parents[2]
ARDUINO = ROOT / "arduino"
LIBRARY = ARDUINO / "LoraEmotion" / "src"
EXAMPLES = ARDUINO / "LoraEmotion" / "examples"
SKETCH_DIR = EXAMPLES / "lora_emotion_relay"
SKETCH = SKETCH_DIR / "lora_emotion_relay.ino"
TESTS = ARDUINO / "tests"
VECTORS = ROOT / "tests" / "vectors"

CORE_SOURCES = sorted(LIBRARY.glob("*.cpp"))
HOST_TEST_SOURCES = [
    TESTS / n
    for n in ("test_main.cpp", "test_platform_host.cpp", "test_codec.cpp", "test_relay.cpp")
]
#: The board core's standard (platform.txt of arduino:samd 1.8.14), in every build here: a
#: host test must never pass on code the board's compiler rejects.
CXX_STD = "-std=gnu++11"
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wshadow"]
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
# The ARM builds use the C driver, which compiles .cpp files as C++ but links no C++ library,
# and -nostdinc++: the core needs no C++ runtime, so Debian's 313 MB
# libstdc++-arm-none-eabi-newlib (and -dev) are not needed.
CORTEX_M0PLUS = [
    "-nostdinc++",
    "-mcpu=cortex-m0plus",
    "-mthumb",
    "-Os",
    "-fno-exceptions",
    "-fno-rtti",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-threadsafe-statics",
]

#: The growth guard of the relay core (everything the sketch uses from arduino/LoraEmotion
#: except the text log formatter), on the Cortex-M0+ with -Os. The 4 KB target is withdrawn
#: (issue 13: the bars are the whole sketch on the real core, below); the core measures
#: 5 893 B with the bounded modem start, the join's off-time and the legacy label set
#: (docs/arduino.md, "Size and memory"), and this guard is that plus about 2 %: it stops
#: growth, it is not a target.
CORE_FLASH_BUDGET = 6_000
#: The codec alone (encoders, quantisation, big integer, airtime, ledger, CRC), which is what
#: ThingsML's C library (about 9.9 KB with soft-float) compares with: at most 2 KB.
CODEC_FLASH_BUDGET = 2_048
CORE_RAM_BUDGET = 1_024
#: Runtime helpers that every SAMD sketch links anyway (the Arduino core's Print, USB and
#: Wire code use them): listed in the report, not charged to the core's budget.
SHARED_RUNTIME = {
    "memcpy",
    "memset",
    "__udivsi3",
    "__aeabi_uidiv",
    "__aeabi_uidivmod",
    "__aeabi_idiv0",
    "__aeabi_ldiv0",
}
#: Helpers whose presence means floating point or 64-bit arithmetic crept in.
FORBIDDEN_HELPER = re.compile(
    r"^__(aeabi_[fd]|aeabi_u?l|(add|sub|mul|div|fix|float|extend|trunc|cmp|eq|ne|lt|le|gt|ge)"
    r"[sdt]f|.*di3$)"
)


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is not installed (Debian: see .ci/run)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _run(
    command: list[str],
    *,
    timeout: float = 180,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def _build(command: list[str]) -> None:
    result = _run(command, timeout=300)
    assert result.returncode == 0, f"build failed:\n{' '.join(command)}\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("arduino")


# -- host unit tests ------------------------------------------------------------------------------


def test_core_unit_tests_pass_on_the_host_with_sanitizers(build_dir: Path) -> None:
    gxx = _need("g++")
    binary = build_dir / "test_host"
    _build(
        [
            gxx,
            CXX_STD,
            *WARNINGS,
            "-Wconversion",
            *SANITIZE,
            "-g",
            "-O1",
            f"-I{LIBRARY}",
            *map(str, HOST_TEST_SOURCES),
            *map(str, CORE_SOURCES),
            "-o",
            str(binary),
        ]
    )
    result = subprocess.run(
        [str(binary)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LE_VECTORS_DIR": str(VECTORS)},
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    match = re.search(r"checks: (\d+), failures: (\d+)", output)
    assert match, output[-2000:]
    checks, failures = map(int, match.groups())
    assert failures == 0 and checks > 3000, output[-2000:]
    # Every vector file the Python tests use for the device was consumed.
    for suite in (
        "messages.json vectors",
        "airtime.json vectors",
        "quantise.json vectors",
        "ledger.json traces",
        "relay_frames.json streams",
        "downlinks.json",
    ):
        assert re.search(rf"^ok   {re.escape(suite)} \(\d+ checks\)$", output, re.M), suite


# -- the sketch against the fakes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimRun:
    events: list[LogEvent]
    air: list[dict[str, str]]  # the fake network's own record ("SIM uplink ...")
    joins: list[dict[str, str]]
    summary: dict[str, str]
    other_lines: list[str]

    def of(self, event: str) -> list[LogEvent]:
        return [e for e in self.events if e.event == event]


def _fields(line: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in line.split()[2:])


@pytest.fixture(scope="module")
def sim_binary(build_dir: Path) -> Path:
    gxx = _need("g++")
    secrets = build_dir / "secrets"
    secrets.mkdir(exist_ok=True)
    # The real arduino_secrets.h is never in the repository: the build makes one from the
    # committed template, with test keys.
    template = (SKETCH_DIR / "arduino_secrets.h.example").read_text()
    keys = template.replace('"0000000000000000"', '"70B3D57ED0000001"').replace(
        '"00000000000000000000000000000000"', '"2B7E151628AED2A6ABF7158809CF4F3C"'
    )
    (secrets / "arduino_secrets.h").write_text(keys)
    binary = build_dir / "sim"
    _build(
        [
            gxx,
            CXX_STD,
            *WARNINGS,
            *SANITIZE,
            "-g",
            "-O1",
            f"-I{ARDUINO / 'fakes'}",
            f"-I{LIBRARY}",
            f"-I{secrets}",
            "-x",
            "c++",
            str(SKETCH),
            "-x",
            "none",
            str(TESTS / "sim_main.cpp"),
            str(ARDUINO / "fakes" / "fakes.cpp"),
            *map(str, CORE_SOURCES),
            "-o",
            str(binary),
        ]
    )
    return binary


def _simulate(binary: Path, *args: str, returncode: int = 0) -> SimRun:
    result = _run([str(binary), *args], timeout=120)
    assert result.returncode == returncode, result.stderr[-4000:] + result.stdout[-2000:]
    events, air, joins, other = [], [], [], []
    summary: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("SIM uplink "):
            air.append(_fields(line))
        elif line.startswith("SIM join "):
            joins.append(_fields(line))
        elif line.startswith("SIM summary "):
            summary = _fields(line)
        elif line.startswith("SIM hang "):
            summary = {"hang": line}
        elif line.startswith("LE1 "):
            events.append(parse_log_line(line))  # every device line must parse
        else:
            other.append(line)
    assert summary, result.stdout[-2000:]
    return SimRun(events=events, air=air, joins=joins, summary=summary, other_lines=other)


@pytest.fixture(scope="module")
def hour(sim_binary: Path) -> SimRun:
    return _simulate(sim_binary, "--seconds", "3600", "--dr", "5")


def _sf(dr: int) -> tuple[int, int]:
    return (7, 250) if dr == 6 else (12 - dr, 125)


def test_the_sketch_prints_only_structured_lines(hour: SimRun) -> None:
    assert hour.other_lines == []
    boot = hour.of("boot")
    assert len(boot) == 1 and boot[0].get("mode") == "summary"
    assert boot[0].integer("set") == 0 and boot[0].integer("classes") == 7


def test_every_uplink_on_the_air_is_logged_and_decodes(hour: SimRun) -> None:
    logged = hour.of("uplink")
    assert len(logged) == len(hour.air) > 10
    for event, on_air in zip(logged, hour.air, strict=True):
        assert event.get("hex") == on_air["hex"] and event.integer("port") == int(on_air["port"])
        assert event.integer("rc") == int(on_air["rc"])
        payload = event.data("hex")
        message = decode(payload, fport=event.integer("port"))
        kind = "status" if isinstance(message, Status) else type(message).__name__.lower()
        assert event.get("kind") == kind
        sf, bandwidth = _sf(event.integer("dr"))
        assert event.integer("airtime_ms") == airtime_charge_ms(
            len(payload), sf=sf, bandwidth_khz=bandwidth
        )
        if isinstance(message, Summary):
            assert sum(message.counts) + message.no_face == event.integer("readings")


def _transmissions(run: SimRun) -> list[tuple[int, int]]:
    """(start ms, airtime us) of everything the fake radio put on the air, in time order."""
    on_air = [(int(j["t"]), int(j["airtime_us"])) for j in run.joins]
    on_air += [(int(a["t"]), int(a["airtime_us"])) for a in run.air if a["on_air"] == "1"]
    return sorted(on_air)


def _check_air_time(run: SimRun) -> None:
    """The regulatory view, from actual transmit times and airtimes: every rolling hour at
    most 36 s, every rolling 24 h at most the 30-s cap, and after each transmission of T
    (joins included) the sub-band silent for 99 T."""
    tx = _transmissions(run)
    assert tx
    for i, (start, _) in enumerate(tx):
        hour = sum(a for s, a in tx[i:] if s < start + 3_600_000)
        day = sum(a for s, a in tx[i:] if s < start + 86_400_000)
        assert hour <= 36_000_000 and day <= 30_000_000, (start, hour, day)
    for (start, airtime), (next_start, _) in pairwise(tx):
        assert next_start * 1000 >= start * 1000 + 100 * airtime, (start, next_start)


def test_an_hour_keeps_to_the_duty_cycle_and_the_daily_cap(hour: SimRun) -> None:
    _check_air_time(hour)
    # The relay's own ledger agrees: every charge, replayed into the Python reference ledger
    # at the time the relay made it, was allowed (joins as 23-byte requests at SF12).
    ledger = AirtimeLedger(capacity=10_000)
    charges = [(int(j["t"]), 1483) for j in hour.joins]
    charges += [
        (int(air["t"]), event.integer("airtime_ms"))
        for air, event in zip(hour.air, hour.of("uplink"), strict=True)
    ]
    for start, airtime in sorted(charges):
        assert ledger.can_send(start, airtime), (start, airtime)
        ledger.record(start, airtime)
    last = hour.of("uplink")[-1]
    assert last.integer("hour_ms") <= 36_000 and last.integer("day_ms") <= 30_000


def test_the_join_request_is_charged_before_the_status_goes_out(hour: SimRun) -> None:
    # It used to go out 5 ms after a 1.48 s SF12 join; now 99 x the join's airtime later.
    joined = next(j for j in hour.joins if j["ok"] == "1")
    status = hour.air[0]
    assert status["port"] == "2"
    assert int(status["t"]) * 1000 >= int(joined["t"]) * 1000 + 100 * int(joined["airtime_us"])


def test_every_reading_is_carried_or_counted(hour: SimRun) -> None:
    stats = hour.of("stats")[-1]  # logged at the end of the run
    sent = hour.summary
    received, dropped = stats.integer("received"), stats.integer("dropped")
    # What the I2C master and the host sent, as counted by the simulation itself:
    assert received == int(sent["readings"])
    assert dropped == int(sent["mismatch_readings"])
    assert stats.integer("invalid") == int(sent["invalid"]) > 0
    carried = sum(e.integer("readings") for e in hour.of("uplink") if e.get("outcome") == "sent")
    window_losses = sum(
        e.integer("n")
        for e in hour.of("drop")
        if e.get("reason")
        in {"uplink_rejected", "label_set_change", "encode", "window_full", "queue_overflow"}
    )
    assert window_losses == 0
    assert carried + stats.integer("window_readings") == received
    assert int(sent["nacked"]) == 0 and int(sent["serial_frames"]) == 120


def test_prompt_changes_status_and_a_downlink_round_trip(hour: SimRun) -> None:
    uplinks = [e for e in hour.of("uplink") if e.get("outcome") == "sent"]
    causes = Counter(e.get("cause") for e in uplinks)
    assert causes["change"] >= 3 and causes["window"] >= 10 and causes["status"] >= 2
    assert {e.integer("port") for e in uplinks if e.get("cause") == "change"} == {16}
    # The simulation queued downlink 42 = SetWindow(120) + SendStatus on port 3.
    (received,) = hour.of("downlink")
    command = dl.decode(received.data("hex"))
    assert command.seq == 42 and received.get("result") == "applied"
    assert command.commands == (dl.SetWindow(window_s=120), dl.SendStatus())
    acks = [
        decode(e.data("hex"), fport=2)
        for e in uplinks
        if e.get("cause") == "status" and e.uptime_ms > received.uptime_ms
    ]
    assert acks, "no status after the downlink"
    ack = acks[0]
    assert isinstance(ack, Status)
    assert dl.outcome(ack, command) is CommandStatus.APPLIED and ack.window_s == 120
    assert ack.label_set_fingerprint == FER2013.fingerprint
    later = [
        decode(e.data("hex"), fport=19)
        for e in uplinks
        if e.get("cause") == "window" and e.uptime_ms > received.uptime_ms
    ]
    assert later and all(isinstance(s, Summary) and s.window_s >= 120 for s in later)


def test_join_failure_backs_off_and_adr_is_on(hour: SimRun) -> None:
    joins = hour.of("join")
    assert [j.integer("ok") for j in joins] == [0, 1]
    assert joins[0].integer("next_s") == 15
    assert hour.summary["adr"] == "1"
    # The I2C master can read back how many writes were queued (mod 256) and the flags.
    assert int(hour.summary["i2c_reply"], 16) & 0xFF == 0x01  # joined, no overflow


@pytest.mark.parametrize("dr", [0, 3])
def test_slower_data_rates_stay_within_budget(sim_binary: Path, dr: int) -> None:
    run = _simulate(sim_binary, "--seconds", "7200", "--dr", str(dr), "--seed", str(dr + 7))
    uplinks = [e for e in run.of("uplink") if e.get("outcome") == "sent"]
    assert uplinks
    _check_air_time(run)
    if dr == 0:
        # At SF12 the modem answers after the uplink, later than endPacket waits: every
        # uplink returns -1, went out once, is taken as sent and charged once.
        assert {e.integer("rc") for e in uplinks} == {-1}
        assert len(uplinks) == len(run.air) == int(run.summary["uplinks"])
        assert len({(a["t"], a["hex"]) for a in run.air}) == len(run.air)
    sf, bandwidth = _sf(dr)
    spent = sum(
        airtime_charge_ms(len(e.data("hex")), sf=sf, bandwidth_khz=bandwidth) for e in uplinks
    )
    assert spent + 1483 * len(run.joins) <= 30_000
    assert max(e.integer("hour_ms") for e in uplinks) <= 36_000
    stats = run.of("stats")[-1]
    carried = sum(e.integer("readings") for e in uplinks)
    assert carried + stats.integer("window_readings") == stats.integer("received")


def test_thirty_hours_at_sf12_keep_the_daily_cap_on_the_air(sim_binary: Path) -> None:
    # At DR0 the daily cap binds: measured on the actual transmit times and airtimes (not on
    # the relay's charges), no rolling 24 h holds more than 30 s, joins included.
    run = _simulate(sim_binary, "--seconds", "108000", "--dr", "0", "--seed", "3")
    _check_air_time(run)
    tx = _transmissions(run)
    busiest = max(
        sum(a for s, a in tx[i:] if s < start + 86_400_000) for i, (start, _) in enumerate(tx)
    )
    assert 25_000_000 < busiest <= 30_000_000  # the cap is used, and kept


def test_a_silent_modem_never_hangs_the_relay(sim_binary: Path) -> None:
    # The modem answers nothing for the first 20 minutes (a dead or unflashed modem, then
    # one that comes to life): I2C and serial input run from the start, readings count, the
    # log says why nothing is sent, and the start is retried every 10 minutes.
    run = _simulate(sim_binary, "--seconds", "3600", "--modem-silent", "1200")
    failures = [e for e in run.of("error") if e.get("code") == "modem"]
    assert [e.get("src") for e in failures] == ["setup", "setup"]
    assert failures[0].uptime_ms < 10_000 and 600_000 <= failures[1].uptime_ms < 610_000
    assert int(run.summary["nacked"]) == 0
    stats = run.of("stats")[-1]
    assert stats.integer("received") == int(run.summary["readings"])
    assert all(int(j["t"]) > 1_200_000 for j in run.joins)
    assert [e.integer("ok") for e in run.of("join")][-1] == 1
    assert run.of("uplink") and all(e.uptime_ms > 1_200_000 for e in run.of("uplink"))
    carried = sum(e.integer("readings") for e in run.of("uplink") if e.get("outcome") == "sent")
    assert carried + stats.integer("window_readings") == stats.integer("received")


def test_the_fake_modem_library_hangs_like_the_real_one(sim_binary: Path) -> None:
    # Negative control: MKRWAN 1.1.2's begin() calls itself again while the modem is silent,
    # and so does the fake: a sketch that called it first would never reach its I2C set-up.
    run = _simulate(
        sim_binary,
        "--naive-begin",
        "1",
        "--modem-silent",
        "100000",
        "--seconds",
        "60",
        returncode=86,
    )
    assert "hang" in run.summary and not run.of("error")


# -- layout of the library and the sketch ---------------------------------------------------------


def test_the_sketch_is_glue_and_the_core_is_portable() -> None:
    sketch = SKETCH.read_text()
    assert len(sketch.splitlines()) <= 60
    for name in ("Wire.h", "MKRWAN.h", "LoraEmotion.h", "arduino_secrets.h"):
        assert f"{name}" in sketch
    for source in LIBRARY.iterdir():
        text = source.read_text()
        assert not re.search(r'#\s*include\s*[<"](Arduino|Wire|MKRWAN)\.h', text), source
        code = re.sub(r"//.*", "", text)
        assert not re.search(r"\b(float|double|malloc|new\s|delete\s|String)\b", code), source
    properties = dict(
        line.split("=", 1)
        for line in (ARDUINO / "LoraEmotion" / "library.properties").read_text().splitlines()
        if "=" in line
    )
    assert properties["name"] == "LoraEmotion" and properties["includes"] == "LoraEmotion.h"
    # The library needs MKRWAN and builds for SAMD boards only (Library Manager installs the
    # dependency and hides the examples for other architectures).
    assert properties["depends"] == "MKRWAN" and properties["architectures"] == "samd"
    assert (ARDUINO / "LoraEmotion" / "API.md").exists()
    profile = (SKETCH_DIR / "sketch.yaml").read_text()
    assert "fqbn: arduino:samd:mkrwan1310" in profile
    assert "arduino:samd (1.8.14)" in profile and "MKRWAN (1.1.2)" in profile
    assert "arduino_secrets.h" in (ROOT / ".gitignore").read_text().split()


# -- Cortex-M0+ size budget -----------------------------------------------------------------------


def _symbols(nm: str, elf: Path) -> dict[str, int]:
    out = _run([nm, "-S", "--size-sort", str(elf)]).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def _size_image(build_dir: Path, name: str, main: Path, sources: list[Path]) -> dict[str, int]:
    gcc = _need("arm-none-eabi-gcc")
    size_tool = _need("arm-none-eabi-size")
    nm = _need("arm-none-eabi-nm")
    elf = build_dir / f"{name}.elf"
    _build(
        [
            gcc,
            CXX_STD,
            *CORTEX_M0PLUS,
            *WARNINGS,
            f"-I{LIBRARY}",
            str(main),
            *map(str, sources),
            "-x",
            "none",
            "--specs=nano.specs",
            "-nostartfiles",
            "-Wl,--gc-sections",
            f"-T{TESTS / 'arm' / 'size.ld'}",
            "-lc_nano",
            "-lgcc",
            "-o",
            str(elf),
        ]
    )
    text, data, bss = map(int, _run([size_tool, str(elf)]).stdout.splitlines()[1].split()[:3])
    symbols = _symbols(nm, elf)
    forbidden = sorted(s for s in symbols if FORBIDDEN_HELPER.match(s) and s not in SHARED_RUNTIME)
    assert not forbidden, f"floating-point or 64-bit helpers linked: {forbidden}"
    shared = sum(size for symbol, size in symbols.items() if symbol in SHARED_RUNTIME)
    return {
        "flash": text + data - shared,
        "ram": data + bss,
        "shared_runtime": shared,
        "text": text,
        "data": data,
        "bss": bss,
    }


def test_core_fits_its_budget_on_the_cortex_m0plus(
    build_dir: Path, record_property: Callable[[str, object], None]
) -> None:
    core_sources = [LIBRARY / "LoraEmotionCore.cpp", LIBRARY / "LoraEmotionRelay.cpp"]
    relay = _size_image(build_dir, "relay", TESTS / "arm" / "size_main.cpp", core_sources)
    codec = _size_image(
        build_dir, "codec", TESTS / "arm" / "size_codec.cpp", [LIBRARY / "LoraEmotionCore.cpp"]
    )
    log = _size_image(
        build_dir, "log", TESTS / "arm" / "size_log.cpp", [LIBRARY / "LoraEmotionLog.cpp"]
    )
    report = (
        f"relay core: {relay['flash']} B flash, {relay['ram']} B RAM "
        f"(+{relay['shared_runtime']} B shared runtime helpers); codec alone: "
        f"{codec['flash']} B flash; log formatter: {log['flash']} B flash"
    )
    record_property("size_report", report)
    print(report)
    assert relay["ram"] <= CORE_RAM_BUDGET, report
    assert relay["flash"] <= CORE_FLASH_BUDGET, report
    assert codec["flash"] <= CODEC_FLASH_BUDGET, report


# -- the real board core -------------------------------------------------------------------------

#: The MKR WAN 1310's real build (ArduinoCore-samd 1.8.14, MKRWAN 1.1.2, Wire, CMSIS) and
#: build-sketch, which compiles a sketch with the core's own flags as arduino-cli does. It sits
#: beside the project on the development machines; a user's own clone has arduino-cli instead.
BOARD = ROOT.parent / "shared" / "arduino-board"
#: What arduino-cli would report for the whole sketch: "Sketch uses N bytes of program
#: storage" (text + data) and "Global variables use M bytes" (data + bss).
SKETCH_FLASH_BUDGET = 32 * 1024
SKETCH_RAM_BUDGET = 8 * 1024
OUR_OBJECTS = re.compile(r"/obj/(sketch|LoraEmotion_)[^ ]*\.o")


@dataclass(frozen=True, slots=True)
class BoardBuild:
    flash: int
    ram: int
    elf: Path
    map_text: str


def _board_build(build_dir: Path, sketch_dir: Path) -> BoardBuild:
    script = BOARD / "build-sketch"
    if not script.exists():
        pytest.skip(f"{BOARD} is absent: build with arduino-cli instead (docs/arduino.md)")
    _need("arm-none-eabi-g++")
    out = build_dir / "board"  # one folder: the core archive is built once for all sketches
    result = _run(
        [str(script), str(sketch_dir), str(out), str(ARDUINO / "LoraEmotion")],
        timeout=900,
        # Warnings are errors in our own files; the core itself is built with -w.
        env={"WARN": "-Wall -Wextra -Werror", "CXXSTD": "gnu++11"},
    )
    assert result.returncode == 0, result.stderr[-6000:]
    match = re.search(r"^flash=(\d+) ram=(\d+)$", result.stdout, re.M)
    assert match, result.stdout[-2000:]
    name = sketch_dir.name
    return BoardBuild(
        flash=int(match.group(1)),
        ram=int(match.group(2)),
        elf=out / f"{name}.elf",
        map_text=(out / f"{name}.map").read_text(),
    )


def _check_no_helpers(build: BoardBuild) -> None:
    symbols = _symbols(_need("arm-none-eabi-nm"), build.elf)
    linked = sorted(s for s in symbols if FORBIDDEN_HELPER.match(s) and s not in SHARED_RUNTIME)
    assert not linked, f"floating-point or 64-bit helpers linked: {linked}"
    # The map's archive section names, for each library member, the object and symbol that
    # pulled it in: none of ours asks for a helper (the core's may, and --gc-sections drops
    # them when nothing reaches them, as the symbol check above shows).
    asked = re.findall(r"^\s+(\S+\.o) \((__\w+)\)$", build.map_text, re.M)
    ours = sorted(
        (obj, symbol)
        for obj, symbol in asked
        if OUR_OBJECTS.search(obj)
        and FORBIDDEN_HELPER.match(symbol)
        and symbol not in SHARED_RUNTIME
    )
    assert not ours, ours


def test_the_relay_builds_on_the_real_core_within_budget(
    build_dir: Path, record_property: Callable[[str, object], None]
) -> None:
    build = _board_build(build_dir, SKETCH_DIR)
    report = f"relay sketch on arduino:samd 1.8.14: flash={build.flash} B, ram={build.ram} B"
    record_property("board_size", report)
    print(report)
    assert build.flash <= SKETCH_FLASH_BUDGET and build.ram <= SKETCH_RAM_BUDGET, report
    _check_no_helpers(build)


@pytest.mark.parametrize("example", ["send_one_reading"])
def test_the_library_examples_build_on_the_real_core(build_dir: Path, example: str) -> None:
    build = _board_build(build_dir, EXAMPLES / example)
    assert build.flash <= SKETCH_FLASH_BUDGET and build.ram <= SKETCH_RAM_BUDGET
    _check_no_helpers(build)


def test_every_example_is_built_by_a_test() -> None:
    built = {"lora_emotion_relay", "send_one_reading"}
    assert {d.name for d in EXAMPLES.iterdir() if d.is_dir()} == built
    for name in built:
        assert (EXAMPLES / name / f"{name}.ino").exists()
        profile = (EXAMPLES / name / "sketch.yaml").read_text()
        assert "dir: ../.." in profile and "arduino-cli 1.3 or later" in profile


# -- ARMv6-M emulator -----------------------------------------------------------------------------


def _qemu(elf: Path) -> subprocess.CompletedProcess[str]:
    qemu = _need("qemu-system-arm")
    return _run(
        [
            qemu,
            "-M",
            "microbit",
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
            str(elf),
        ],
        timeout=240,
    )


def _m0_binary(build_dir: Path, name: str, sources: list[Path]) -> Path:
    gcc = _need("arm-none-eabi-gcc")
    elf = build_dir / f"{name}.elf"
    _build(
        [
            gcc,
            CXX_STD,
            *CORTEX_M0PLUS,
            *WARNINGS,
            f"-I{LIBRARY}",
            f'-DLE_VECTORS_DIR="{VECTORS}"',
            str(TESTS / "arm" / "startup.cpp"),
            *map(str, sources),
            "-x",
            "none",
            "--specs=nano.specs",
            "-nostartfiles",
            "-Wl,--gc-sections",
            f"-T{TESTS / 'arm' / 'microbit.ld'}",
            "-lc_nano",
            "-lgcc",
            "-o",
            str(elf),
        ]
    )
    return elf


def test_core_unit_tests_pass_on_an_armv6m_emulator(build_dir: Path) -> None:
    elf = _m0_binary(
        build_dir,
        "test_m0",
        [
            TESTS / "test_platform_arm.cpp",
            TESTS / "test_main.cpp",
            TESTS / "test_codec.cpp",
            TESTS / "test_relay.cpp",
            *CORE_SOURCES,
        ],
    )
    result = _qemu(elf)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    match = re.search(r"checks: (\d+), failures: 0", output)
    assert match and int(match.group(1)) > 3000, output[-2000:]


def test_the_emulator_faults_on_unaligned_loads(build_dir: Path) -> None:
    # Negative control: without it a green emulator run could hide alignment bugs.
    elf = _m0_binary(build_dir, "canary", [TESTS / "arm" / "unaligned_canary.cpp"])
    result = _qemu(elf)
    output = result.stdout + result.stderr  # semihosting writes to qemu's stderr or stdout
    assert result.returncode == 1 and "HARD FAULT" in output, output


def test_parse_log_line_rejects_what_the_sketch_never_prints() -> None:
    with pytest.raises(DecodeError):
        parse_log_line("+EVENT=1,1")


# -- example I2C masters --------------------------------------------------------------------------


def _pi_example() -> ModuleType:
    path = ARDUINO / "examples" / "raspberry_pi" / "relay_i2c_master.py"
    spec = importlib.util.spec_from_file_location("relay_i2c_master", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("without_package", [False, True])
def test_the_raspberry_pi_example_writes_the_vector_bytes(
    monkeypatch: pytest.MonkeyPatch, without_package: bool
) -> None:
    example = _pi_example()
    if without_package:
        # A Pi without lora_emotion installed uses the example's own few lines.
        monkeypatch.setitem(sys.modules, "lora_emotion.relay_protocol", None)
    vectors = json.loads((VECTORS / "relay_frames.json").read_text())["frames"]
    readings = [v for v in vectors if v["frame"]["type"] == "reading"]
    assert readings
    for vector in readings:
        frame = vector["frame"]
        data = example.reading_frame(frame["label_set"], frame["label"], frame["confidence_pct"])
        assert data.hex().upper() == vector["hex"]
