"""Tests for lora_emotion.airtime and the ``lora-emotion airtime`` command.

tests/vectors/airtime.json is shared with the C++ core's host tests. Each entry is
``{"phy_bytes" | "payload_size": n, "sf", "bandwidth_khz", "airtime_us"}`` for a LoRaWAN
uplink: CR 4/5, 8-symbol preamble, explicit header, CRC on, low-data-rate optimisation on
when a symbol is longer than 16 ms. ``payload_size`` is FRMPayload (13 bytes of frame
overhead are added); ``phy_bytes`` is the whole PHY payload.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lora_emotion.airtime import (
    EU868_DATA_RATES,
    KPN_MAX_PAYLOAD,
    LORAWAN_FRAME_OVERHEAD,
    DataRate,
    data_rate,
    data_rate_for,
    low_data_rate_optimize_default,
    max_payload,
    symbol_time_us,
    time_on_air_ms,
    time_on_air_us,
)
from lora_emotion.cli import main
from lora_emotion.errors import EncodeError, PayloadTooLargeError

VECTORS_PATH = Path(__file__).parent / "vectors" / "airtime.json"
VECTORS: list[dict[str, int]] = json.loads(VECTORS_PATH.read_text())
GRID_SIZES = (0, 1, 2, 4, 5, 8, 12, 18, 24, 45, 51)


def _size_and_overhead(vector: dict[str, int]) -> tuple[int, int]:
    if "phy_bytes" in vector:
        return vector["phy_bytes"], 0
    return vector["payload_size"], LORAWAN_FRAME_OVERHEAD


# --- check values from the reference (SX1276 datasheet formula) -----------------------------

REFERENCE_PHY = [
    # (PHY bytes, SF, ms)
    (13, 7, 46.336),
    (13, 9, 164.864),
    (10, 7, 41.216),
    (10, 11, 577.536),
]


@pytest.mark.parametrize(("phy_bytes", "sf", "expected_ms"), REFERENCE_PHY)
def test_reference_phy_check_values(phy_bytes: int, sf: int, expected_ms: float) -> None:
    assert time_on_air_ms(phy_bytes, sf=sf, header_overhead=0) == pytest.approx(
        expected_ms, abs=1e-9
    )
    assert time_on_air_us(phy_bytes, sf=sf, header_overhead=0) == round(expected_ms * 1000)


def test_empty_frmpayload_is_13_phy_bytes() -> None:
    assert time_on_air_us(0, sf=7) == 46_336
    assert time_on_air_us(0, sf=9) == 164_864


@pytest.mark.parametrize(
    ("sizes", "expected_us"),
    [(range(0, 3), 1_155_072), (range(3, 8), 1_318_912), (range(8, 13), 1_482_752)],
)
def test_sf12_airtime_is_stepped(sizes: range, expected_us: int) -> None:
    for size in sizes:
        assert time_on_air_us(size, sf=12) == expected_us
        assert time_on_air_ms(size, sf=12) == pytest.approx(expected_us / 1000, abs=1e-9)
    # The step is real: one byte past the range costs more.
    assert time_on_air_us(sizes.stop, sf=12) > expected_us


# Third-party check: loratools.nl airtime calculator, PHY payload of 7 and 51 bytes at
# 125 kHz, CR 4/5, CRC on, LDRO on SF11/SF12 only, truncated to whole ms (as quoted in the
# test suites of several LoRaWAN network servers).
LORATOOLS_TRUNCATED_MS = [
    (12, 7, 991),
    (12, 51, 2465),
    (11, 7, 495),
    (11, 51, 1314),
    (10, 7, 247),
    (10, 51, 616),
    (9, 7, 123),
    (9, 51, 328),
    (8, 7, 72),
    (8, 51, 184),
    (7, 7, 36),
    (7, 51, 102),
]


@pytest.mark.parametrize(("sf", "phy_bytes", "truncated_ms"), LORATOOLS_TRUNCATED_MS)
def test_matches_independent_calculator(sf: int, phy_bytes: int, truncated_ms: int) -> None:
    assert time_on_air_us(phy_bytes, sf=sf, header_overhead=0) // 1000 == truncated_ms


# --- shared vectors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vector", VECTORS, ids=[json.dumps(v, separators=(",", ":")) for v in VECTORS]
)
def test_vector(vector: dict[str, int]) -> None:
    size, overhead = _size_and_overhead(vector)
    kwargs: dict[str, Any] = {"sf": vector["sf"], "bandwidth_khz": vector["bandwidth_khz"]}
    assert time_on_air_us(size, header_overhead=overhead, **kwargs) == vector["airtime_us"]
    assert time_on_air_ms(size, header_overhead=overhead, **kwargs) == pytest.approx(
        vector["airtime_us"] / 1000, abs=1e-6
    )


def test_vector_file_is_language_neutral_and_complete() -> None:
    keys = set()
    for vector in VECTORS:
        assert set(vector) in (
            {"phy_bytes", "sf", "bandwidth_khz", "airtime_us"},
            {"payload_size", "sf", "bandwidth_khz", "airtime_us"},
        )
        assert all(type(value) is int for value in vector.values())
        keys.add((tuple(k for k in vector if k in ("phy_bytes", "payload_size")), *vector.values()))
    assert len(keys) == len(VECTORS), "duplicate vectors"
    covered = {
        (v["sf"], v["bandwidth_khz"], v["payload_size"]) for v in VECTORS if "payload_size" in v
    }
    for sf in range(7, 13):
        for size in GRID_SIZES:
            assert (sf, 125, size) in covered
    for size in GRID_SIZES:
        assert (7, 250, size) in covered
    reference = {(v["phy_bytes"], v["sf"], v["airtime_us"]) for v in VECTORS if "phy_bytes" in v}
    assert {(p, sf, round(ms * 1000)) for p, sf, ms in REFERENCE_PHY} <= reference


# --- integer and float implementations ------------------------------------------------------


def test_integer_and_float_agree_on_lorawan_uplinks() -> None:
    cases = [(sf, 125) for sf in range(7, 13)] + [(7, 250)]
    checked = 0
    for sf, bandwidth in cases:
        for size in range(0, 223):
            exact = time_on_air_us(size, sf=sf, bandwidth_khz=bandwidth)
            approx = time_on_air_ms(size, sf=sf, bandwidth_khz=bandwidth) * 1000
            assert abs(exact - approx) <= 1, (sf, bandwidth, size)
            checked += 1
    assert checked == 7 * 223


@given(
    size=st.integers(0, 255),
    sf=st.integers(7, 12),
    bandwidth=st.sampled_from([125, 250, 500]),
    coding_rate=st.integers(1, 4),
    preamble=st.integers(6, 0xFFFF),
    crc=st.booleans(),
    implicit=st.booleans(),
    ldro=st.sampled_from([None, True, False]),
)
def test_integer_and_float_agree_everywhere(
    size: int,
    sf: int,
    bandwidth: int,
    coding_rate: int,
    preamble: int,
    crc: bool,
    implicit: bool,
    ldro: bool | None,
) -> None:
    kwargs: dict[str, Any] = {
        "sf": sf,
        "bandwidth_khz": bandwidth,
        "coding_rate": coding_rate,
        "preamble_symbols": preamble,
        "header_overhead": 0,
        "crc": crc,
        "implicit_header": implicit,
        "low_data_rate_optimize": ldro,
    }
    exact = time_on_air_us(size, **kwargs)
    assert abs(exact - time_on_air_ms(size, **kwargs) * 1000) <= 1
    # The C++ port keeps the result in uint32_t.
    assert 0 < exact < 2**32


def test_largest_result_fits_uint32_and_lorawan_stays_small() -> None:
    worst = max(
        time_on_air_us(
            255,
            sf=12,
            header_overhead=0,
            preamble_symbols=0xFFFF,
            coding_rate=coding_rate,
            low_data_rate_optimize=ldro,
        )
        for coding_rate in range(1, 5)
        for ldro in (False, True)
    )
    # The figure the docstring gives the C++ port: needs uint32_t, overflows int32_t.
    assert worst == 2_161_221_632
    assert 2**31 < worst < 2**32
    assert time_on_air_us(255, sf=12, header_overhead=0) < 10**7


@given(size=st.integers(0, 241), sf=st.integers(7, 12), bandwidth=st.sampled_from([125, 250]))
def test_airtime_grows_with_size_and_sf(size: int, sf: int, bandwidth: int) -> None:
    here = time_on_air_us(size, sf=sf, bandwidth_khz=bandwidth)
    assert time_on_air_us(size + 1, sf=sf, bandwidth_khz=bandwidth) >= here
    if sf < 12:
        assert time_on_air_us(size, sf=sf + 1, bandwidth_khz=bandwidth) > here
    if bandwidth == 125:
        assert time_on_air_us(size, sf=sf, bandwidth_khz=250) < here


def test_symbol_time() -> None:
    assert symbol_time_us(7) == 1024
    assert symbol_time_us(12) == 32_768
    assert symbol_time_us(7, 250) == 512
    assert symbol_time_us(12, 500) == 8192


@pytest.mark.parametrize(
    ("sf", "bandwidth", "expected"),
    [
        (10, 125, False),
        (11, 125, True),
        (12, 125, True),
        (11, 250, False),
        (12, 250, True),  # 16.384 ms symbols; no EU868 data rate uses it
        (12, 500, False),
        (7, 250, False),
    ],
)
def test_low_data_rate_optimize_default(sf: int, bandwidth: int, expected: bool) -> None:
    assert low_data_rate_optimize_default(sf, bandwidth) is expected


def test_low_data_rate_optimize_override() -> None:
    on = time_on_air_us(20, sf=12, low_data_rate_optimize=True)
    off = time_on_air_us(20, sf=12, low_data_rate_optimize=False)
    assert on == time_on_air_us(20, sf=12)
    assert off < on
    assert time_on_air_us(12, sf=10, low_data_rate_optimize=True) > time_on_air_us(12, sf=10)


def test_downlink_and_coding_rate_options_change_airtime() -> None:
    base = time_on_air_us(10, sf=9)
    assert time_on_air_us(10, sf=9, crc=False) < base
    assert time_on_air_us(10, sf=9, implicit_header=True) < base
    assert time_on_air_us(10, sf=9, coding_rate=4) > base
    assert time_on_air_us(10, sf=9, preamble_symbols=10) == base + 2 * symbol_time_us(9)
    assert time_on_air_us(10, sf=9, header_overhead=14) >= base


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"payload_size": -1, "sf": 7}, "payload_size"),
        ({"payload_size": 256, "sf": 7}, "payload_size"),
        ({"payload_size": 2, "sf": 6}, "sf"),
        ({"payload_size": 2, "sf": 13}, "sf"),
        ({"payload_size": 2, "sf": True}, "sf"),
        ({"payload_size": 2, "sf": 7.0}, "sf"),
        ({"payload_size": 2, "sf": 7, "bandwidth_khz": 200}, "bandwidth_khz"),
        ({"payload_size": 2, "sf": 7, "bandwidth_khz": True}, "bandwidth_khz"),
        ({"payload_size": 2, "sf": 7, "coding_rate": 0}, "coding_rate"),
        ({"payload_size": 2, "sf": 7, "coding_rate": 5}, "coding_rate"),
        ({"payload_size": 2, "sf": 7, "preamble_symbols": 5}, "preamble_symbols"),
        ({"payload_size": 2, "sf": 7, "header_overhead": -1}, "header_overhead"),
        ({"payload_size": 2, "sf": 7, "crc": 1}, "crc"),
        ({"payload_size": 2, "sf": 7, "implicit_header": None}, "implicit_header"),
        ({"payload_size": 2, "sf": 7, "low_data_rate_optimize": 1}, "low_data_rate_optimize"),
        ({"payload_size": 243, "sf": 7}, "payload_size"),
    ],
)
def test_invalid_arguments_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    for function in (time_on_air_ms, time_on_air_us):
        with pytest.raises(EncodeError) as info:
            function(**kwargs)
        assert info.value.field == field


def test_phy_payload_limit() -> None:
    assert time_on_air_us(242, sf=7) > 0
    with pytest.raises(PayloadTooLargeError) as info:
        time_on_air_us(243, sf=7)
    assert (info.value.size, info.value.limit) == (256, 255)
    assert time_on_air_us(255, sf=7, header_overhead=0) > 0


def test_airtime_and_budget_are_sans_io() -> None:
    code = (
        "import sys, lora_emotion.airtime, lora_emotion.budget; "
        "print(sorted(m for m in ('socket', 'asyncio', 'fastapi', 'serial') "
        "if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


# --- EU868 data rates -----------------------------------------------------------------------


def test_eu868_table() -> None:
    assert [(r.index, r.sf, r.bandwidth_khz) for r in EU868_DATA_RATES] == [
        (0, 12, 125),
        (1, 11, 125),
        (2, 10, 125),
        (3, 9, 125),
        (4, 8, 125),
        (5, 7, 125),
        (6, 7, 250),
    ]
    assert [r.max_payload for r in EU868_DATA_RATES] == [51, 51, 51, 115, 222, 222, 222]
    assert [r.max_payload_no_repeater for r in EU868_DATA_RATES] == [
        51,
        51,
        51,
        115,
        242,
        242,
        242,
    ]
    assert KPN_MAX_PAYLOAD == 51
    assert min(r.max_payload for r in EU868_DATA_RATES) == KPN_MAX_PAYLOAD


def test_data_rate_lookup() -> None:
    assert data_rate(0) == DataRate(
        index=0, sf=12, bandwidth_khz=125, max_payload=51, max_payload_no_repeater=51
    )
    assert data_rate(6).name == "DR6 SF7/250"
    assert max_payload(3) == 115
    assert max_payload(5) == 222
    assert max_payload(5, repeater_compatible=False) == 242
    assert data_rate_for(7, 250) == data_rate(6)
    assert data_rate_for(12) == data_rate(0)
    assert data_rate_for(12, 250) is None
    for bad in (-1, 7, True):
        with pytest.raises(EncodeError) as info:
            data_rate(bad)
        assert info.value.field == "dr"
    with pytest.raises(EncodeError):
        max_payload(7)


def test_data_rate_is_frozen() -> None:
    rate = data_rate(0)
    with pytest.raises(AttributeError):
        rate.sf = 7  # type: ignore[misc]


def test_max_payload_airtimes_at_each_data_rate() -> None:
    # A full repeater-compatible frame at each data rate stays a sane size for one uplink.
    for rate in EU868_DATA_RATES:
        micros = time_on_air_us(rate.max_payload, sf=rate.sf, bandwidth_khz=rate.bandwidth_khz)
        assert math.isfinite(micros) and 0 < micros < 3_000_000


# --- command line ---------------------------------------------------------------------------


def test_cli_single_sf(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airtime", "12", "--sf", "12"]) == 0
    out = capsys.readouterr().out
    assert "1482.752 ms" in out
    assert "25 B PHY" in out
    assert "DR0 allows 51 B: fits" in out


def test_cli_dr_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airtime", "45", "--dr", "0", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["airtime_us"] == time_on_air_us(45, sf=12)
    assert row["phy_bytes"] == 58
    assert (row["sf"], row["bandwidth_khz"], row["data_rate"]) == (12, 125, 0)
    assert row["fits"] is True and row["max_payload"] == 51


def test_cli_table_over_all_data_rates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airtime", "120", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["data_rate"] for r in rows] == [6, 5, 4, 3, 2, 1, 0]
    assert [r["fits"] for r in rows] == [True, True, True, False, False, False, False]
    assert all(r["fits_kpn"] is False for r in rows)
    assert main(["airtime", "2"]) == 0
    text = capsys.readouterr().out
    assert "SF12/125" in text and "1155.072" in text and "SF7/250" in text


def test_cli_table_at_250_khz(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airtime", "2", "--bw", "250", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["sf"] for r in rows] == [7, 8, 9, 10, 11, 12]
    assert [r["data_rate"] for r in rows] == [6, None, None, None, None, None]


def test_cli_fopts_counts_against_limit(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["airtime", "50", "--dr", "2", "--fopts", "3", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["phy_bytes"] == 66
    assert row["max_payload"] == 48 and row["fits"] is False


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["airtime", "300"], "payload_size"),
        (["airtime", "2", "--sf", "13"], "sf"),
        (["airtime", "2", "--dr", "7"], "dr"),
        (["airtime", "2", "--dr", "6", "--bw", "125"], "--bw"),
        (["airtime", "2", "--bw", "200"], "bandwidth_khz"),
        (["airtime", "2", "--fopts", "16"], "--fopts"),
    ],
)
def test_cli_errors_go_to_stderr(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lora-emotion airtime: error:")
    assert message in captured.err


def test_cli_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["airtime", "--help"])
    assert info.value.code == 0
    assert "lora-emotion airtime 2 --sf 12" in capsys.readouterr().out


def test_cli_sf_and_dr_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["airtime", "2", "--sf", "7", "--dr", "5"])
    assert info.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
