"""LoRa time on air and the EU868 data-rate table.

Why this module exists: every design decision about the emotion payload (how many bytes, how
often, which data rate) is paid for in airtime, and airtime is what the duty cycle and the
fair-use caps limit. The formula is the one in the Semtech SX1276 datasheet ("Time on air") and
application note AN1200.13. It is pure arithmetic: no I/O, no clock.

There are two implementations on purpose:

* :func:`time_on_air_ms` follows the datasheet literally in floating point; it is the readable
  one and the one the check values in the reference were computed with.
* :func:`time_on_air_us` uses integer arithmetic only, because the Arduino core that runs the
  device sketch has no floating-point unit. It is the reference the C++ port copies, and the
  tests hold the two to within 1 µs of each other (in fact they agree exactly: every supported
  symbol time is a whole number of microseconds divisible by 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import EncodeError, PayloadTooLargeError

__all__ = [
    "BANDWIDTHS_KHZ",
    "EU868_DATA_RATES",
    "KPN_MAX_PAYLOAD",
    "LORAWAN_FRAME_OVERHEAD",
    "MAX_PHY_PAYLOAD",
    "DataRate",
    "data_rate",
    "data_rate_for",
    "low_data_rate_optimize_default",
    "max_payload",
    "symbol_time_us",
    "time_on_air_ms",
    "time_on_air_us",
]

#: Bytes a LoRaWAN 1.0.x data frame adds to the FRMPayload without FOpts: MHDR 1, DevAddr 4,
#: FCtrl 1, FCnt 2, FPort 1, MIC 4 (LoRaWAN 1.0.4 §4). Piggy-backed MAC commands add 0..15.
LORAWAN_FRAME_OVERHEAD = 13

#: The SX1276 payload-length register is one byte: a PHY payload holds at most 255 bytes.
MAX_PHY_PAYLOAD = 255

#: LoRa bandwidths used by LoRaWAN regional parameters (RP002-1.0.3 §2); EU868 uses 125 and 250.
BANDWIDTHS_KHZ = (125, 250, 500)

#: The SX1276 datasheet mandates low-data-rate optimisation when a symbol lasts longer than
#: 16 ms. Among the EU868 data rates that is exactly SF11 and SF12 at 125 kHz.
_LDRO_SYMBOL_THRESHOLD_US = 16_000

#: A third-party report says KPN accepts only 51 B of FRMPayload at every data rate, so every
#: uplink of this project is designed to fit it (the DR0..DR2 limit of RP002-1.0.3 §2.4.6).
KPN_MAX_PAYLOAD = 51


@dataclass(frozen=True, slots=True, kw_only=True)
class DataRate:
    """One EU868 LoRa data rate and its largest application payload.

    Attributes:
        index: DR number as sent in LinkADRReq.
        sf: spreading factor 7..12.
        bandwidth_khz: 125 or 250.
        max_payload: largest FRMPayload (no FOpts) when repeater compatibility is kept, the
            "N" column of RP002-1.0.3 §2.4.6.
        max_payload_no_repeater: the same without repeater compatibility (same section).
    """

    index: int
    sf: int
    bandwidth_khz: int
    max_payload: int
    max_payload_no_repeater: int

    @property
    def name(self) -> str:
        """Short label such as ``DR0 SF12/125``."""
        return f"DR{self.index} SF{self.sf}/{self.bandwidth_khz}"


#: EU868 LoRa data rates DR0..DR6 (RP002-1.0.3 §2.4.3; DR7 is FSK and not modelled),
#: with their maximum FRMPayload sizes (RP002-1.0.3 §2.4.6).
EU868_DATA_RATES: tuple[DataRate, ...] = (
    DataRate(index=0, sf=12, bandwidth_khz=125, max_payload=51, max_payload_no_repeater=51),
    DataRate(index=1, sf=11, bandwidth_khz=125, max_payload=51, max_payload_no_repeater=51),
    DataRate(index=2, sf=10, bandwidth_khz=125, max_payload=51, max_payload_no_repeater=51),
    DataRate(index=3, sf=9, bandwidth_khz=125, max_payload=115, max_payload_no_repeater=115),
    DataRate(index=4, sf=8, bandwidth_khz=125, max_payload=222, max_payload_no_repeater=242),
    DataRate(index=5, sf=7, bandwidth_khz=125, max_payload=222, max_payload_no_repeater=242),
    DataRate(index=6, sf=7, bandwidth_khz=250, max_payload=222, max_payload_no_repeater=242),
)


def _require_int(value: object, field: str, low: int, high: int) -> int:
    # bool is an int subclass; True as a spreading factor is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"must be an integer, got {value!r}", field=field)
    if not low <= value <= high:
        raise EncodeError(f"{value} is outside {low}..{high}", field=field)
    return value


def data_rate(index: int) -> DataRate:
    """Return the EU868 data rate with this DR index.

    Args:
        index: 0..6.

    Returns:
        The :class:`DataRate` entry.

    Raises:
        EncodeError: (field ``dr``) for an index outside 0..6.
    """
    _require_int(index, "dr", 0, len(EU868_DATA_RATES) - 1)
    return EU868_DATA_RATES[index]


def data_rate_for(sf: int, bandwidth_khz: int = 125) -> DataRate | None:
    """Return the EU868 data rate using this modulation, or None if EU868 has none.

    Args:
        sf: spreading factor.
        bandwidth_khz: bandwidth in kHz.

    Returns:
        The matching :class:`DataRate`, or None (for example SF12 at 250 kHz).
    """
    for rate in EU868_DATA_RATES:
        if rate.sf == sf and rate.bandwidth_khz == bandwidth_khz:
            return rate
    return None


def max_payload(dr: int, *, repeater_compatible: bool = True) -> int:
    """Return the largest FRMPayload (without FOpts) allowed at an EU868 data rate.

    Args:
        dr: data-rate index 0..6.
        repeater_compatible: use the repeater-compatible limit (the default, and what networks
            assume); False gives the larger limit of RP002-1.0.3 §2.4.6.

    Returns:
        The limit in bytes. Note that KPN is reported to accept only :data:`KPN_MAX_PAYLOAD`.

    Raises:
        EncodeError: (field ``dr``) for an index outside 0..6.
    """
    rate = data_rate(dr)
    return rate.max_payload if repeater_compatible else rate.max_payload_no_repeater


def symbol_time_us(sf: int, bandwidth_khz: int = 125) -> int:
    """Return the duration of one LoRa symbol, 2^SF / BW, in whole microseconds.

    Every supported combination is exact: 1000 / BW is 8, 4 or 2 µs per chip.

    Args:
        sf: spreading factor 7..12.
        bandwidth_khz: 125, 250 or 500.

    Returns:
        Symbol time in µs (1024 for SF7 at 125 kHz, 32768 for SF12 at 125 kHz).

    Raises:
        EncodeError: (field ``sf`` or ``bandwidth_khz``) for an unsupported value.
    """
    _require_int(sf, "sf", 7, 12)
    _check_bandwidth(bandwidth_khz)
    return (1 << sf) * 1000 // bandwidth_khz


def _check_bandwidth(bandwidth_khz: int) -> None:
    if isinstance(bandwidth_khz, bool) or bandwidth_khz not in BANDWIDTHS_KHZ:
        allowed = ", ".join(str(bw) for bw in BANDWIDTHS_KHZ)
        raise EncodeError(f"{bandwidth_khz!r} kHz is not one of {allowed}", field="bandwidth_khz")


def low_data_rate_optimize_default(sf: int, bandwidth_khz: int = 125) -> bool:
    """Say whether low-data-rate optimisation (DE) is on by default for this modulation.

    The rule is the radio's: DE is on when a symbol lasts more than 16 ms. For EU868 that is
    SF11 and SF12 at 125 kHz (DR0, DR1); it is also true of SF12 at 250 kHz, which LoRaWAN
    EU868 does not use but other stacks (LoRaMac-node) treat the same way.

    Args:
        sf: spreading factor 7..12.
        bandwidth_khz: 125, 250 or 500.

    Returns:
        True when DE should be set.

    Raises:
        EncodeError: for an unsupported spreading factor or bandwidth.
    """
    return symbol_time_us(sf, bandwidth_khz) > _LDRO_SYMBOL_THRESHOLD_US


@dataclass(frozen=True, slots=True)
class _Params:
    sf: int
    bandwidth_khz: int
    coding_rate: int
    preamble_symbols: int
    phy_bytes: int
    crc: bool
    implicit_header: bool
    low_data_rate_optimize: bool


def _validate(
    payload_size: int,
    sf: int,
    bandwidth_khz: int,
    coding_rate: int,
    preamble_symbols: int,
    header_overhead: int,
    crc: bool,
    implicit_header: bool,
    low_data_rate_optimize: bool | None,
) -> _Params:
    _require_int(sf, "sf", 7, 12)
    _check_bandwidth(bandwidth_khz)
    _require_int(coding_rate, "coding_rate", 1, 4)
    # The SX1276 preamble register is 16 bits and the radio needs at least 6 symbols.
    _require_int(preamble_symbols, "preamble_symbols", 6, 0xFFFF)
    _require_int(payload_size, "payload_size", 0, MAX_PHY_PAYLOAD)
    _require_int(header_overhead, "header_overhead", 0, MAX_PHY_PAYLOAD)
    phy_bytes = payload_size + header_overhead
    if phy_bytes > MAX_PHY_PAYLOAD:
        raise PayloadTooLargeError(field="payload_size", size=phy_bytes, limit=MAX_PHY_PAYLOAD)
    for name, flag in (("crc", crc), ("implicit_header", implicit_header)):
        if not isinstance(flag, bool):
            raise EncodeError(f"must be a bool, got {flag!r}", field=name)
    if low_data_rate_optimize is None:
        de = low_data_rate_optimize_default(sf, bandwidth_khz)
    elif isinstance(low_data_rate_optimize, bool):
        de = low_data_rate_optimize
    else:
        raise EncodeError(
            f"must be a bool or None, got {low_data_rate_optimize!r}",
            field="low_data_rate_optimize",
        )
    return _Params(
        sf=sf,
        bandwidth_khz=bandwidth_khz,
        coding_rate=coding_rate,
        preamble_symbols=preamble_symbols,
        phy_bytes=phy_bytes,
        crc=crc,
        implicit_header=implicit_header,
        low_data_rate_optimize=de,
    )


def time_on_air_ms(
    payload_size: int,
    *,
    sf: int,
    bandwidth_khz: int = 125,
    coding_rate: int = 1,
    preamble_symbols: int = 8,
    header_overhead: int = LORAWAN_FRAME_OVERHEAD,
    crc: bool = True,
    implicit_header: bool = False,
    low_data_rate_optimize: bool | None = None,
) -> float:
    """Return the time on air of one LoRa packet in milliseconds (floating point).

    The SX1276 datasheet formula, with PL = payload_size + header_overhead::

        T_sym     = 2^SF / BW
        T_pre     = (n_preamble + 4.25) · T_sym
        n_payload = 8 + max(ceil((8·PL − 4·SF + 28 + 16·CRC − 20·IH) / (4·(SF − 2·DE)))
                            · (CR + 4), 0)
        T         = T_pre + n_payload · T_sym

    The defaults describe a LoRaWAN EU868 uplink: CR 4/5, 8 preamble symbols, explicit header,
    CRC on, 13 bytes of frame overhead without FOpts.

    Args:
        payload_size: FRMPayload (application) bytes, 0..255.
        sf: spreading factor 7..12.
        bandwidth_khz: 125, 250 or 500.
        coding_rate: 1..4 for 4/5..4/8.
        preamble_symbols: programmed preamble length, 6..65535 (LoRaWAN: 8).
        header_overhead: bytes the MAC adds around the payload; 13 for a LoRaWAN frame
            without FOpts. The caller adds FOpts bytes. Pass 0 to give a PHY payload size
            directly as ``payload_size``.
        crc: payload CRC present (on for uplinks, off for LoRaWAN downlinks).
        implicit_header: implicit-header mode (never used by LoRaWAN).
        low_data_rate_optimize: DE; None picks the radio's rule
            (:func:`low_data_rate_optimize_default`).

    Returns:
        Time on air in ms, for example 46.336 for a 13-byte PHY payload at SF7/125 kHz.

    Raises:
        EncodeError: naming the field for a value out of range or of the wrong type.
        PayloadTooLargeError: when payload_size + header_overhead exceeds 255 bytes.
    """
    p = _validate(
        payload_size,
        sf,
        bandwidth_khz,
        coding_rate,
        preamble_symbols,
        header_overhead,
        crc,
        implicit_header,
        low_data_rate_optimize,
    )
    t_sym_ms = 2.0**p.sf / p.bandwidth_khz
    t_preamble = (p.preamble_symbols + 4.25) * t_sym_ms
    numerator = 8 * p.phy_bytes - 4 * p.sf + 28 + 16 * int(p.crc) - 20 * int(p.implicit_header)
    denominator = 4 * (p.sf - 2 * int(p.low_data_rate_optimize))
    n_payload = 8 + max(math.ceil(numerator / denominator) * (p.coding_rate + 4), 0)
    return t_preamble + n_payload * t_sym_ms


def time_on_air_us(
    payload_size: int,
    *,
    sf: int,
    bandwidth_khz: int = 125,
    coding_rate: int = 1,
    preamble_symbols: int = 8,
    header_overhead: int = LORAWAN_FRAME_OVERHEAD,
    crc: bool = True,
    implicit_header: bool = False,
    low_data_rate_optimize: bool | None = None,
) -> int:
    """Return the time on air of one LoRa packet in whole microseconds, integers only.

    This is the reference for the device's C++ core, which has no floating point. Port it
    line by line. ``num`` is signed (``int32_t``); everything else fits ``uint32_t`` but not
    ``int32_t``: the largest result, 255 bytes at CR 4/8 without DE behind a 65535-symbol
    preamble at SF12/125 kHz, is 2 161 221 632 µs. A LoRaWAN uplink (CR 4/5, 8-symbol
    preamble) stays below 10^7::

        t_sym_us  = (1 << sf) * 1000 / bw_khz          // exact: 8<<sf, 4<<sf, 2<<sf µs
        de        = low_data_rate_optimize              // default: t_sym_us > 16000
        pl        = payload_size + header_overhead      // PHY payload bytes, <= 255
        num       = 8*pl - 4*sf + 28 + 16*crc - 20*ih   // signed: may be <= 0
        den       = 4 * (sf - 2*de)
        blocks    = num > 0 ? (num + den - 1) / den : 0 // ceil, clamped at 0
        n_payload = 8 + blocks * (cr + 4)
        quarters  = 4*preamble + 17 + 4*n_payload       // (preamble + 4.25 + n_payload) * 4
        airtime_us = quarters * (t_sym_us / 4)          // t_sym_us is a multiple of 4

    The result is exact, so it equals ``time_on_air_ms(...) * 1000`` up to float rounding.

    Args:
        payload_size: FRMPayload (application) bytes, 0..255.
        sf: spreading factor 7..12.
        bandwidth_khz: 125, 250 or 500.
        coding_rate: 1..4 for 4/5..4/8.
        preamble_symbols: programmed preamble length, 6..65535 (LoRaWAN: 8).
        header_overhead: LoRaWAN frame overhead, 13 without FOpts; 0 to pass PHY bytes.
        crc: payload CRC present.
        implicit_header: implicit-header mode.
        low_data_rate_optimize: DE; None picks the radio's rule.

    Returns:
        Time on air in µs, for example 46336 for a 13-byte PHY payload at SF7/125 kHz.

    Raises:
        EncodeError: naming the field for a value out of range or of the wrong type.
        PayloadTooLargeError: when payload_size + header_overhead exceeds 255 bytes.
    """
    p = _validate(
        payload_size,
        sf,
        bandwidth_khz,
        coding_rate,
        preamble_symbols,
        header_overhead,
        crc,
        implicit_header,
        low_data_rate_optimize,
    )
    t_sym_us = (1 << p.sf) * 1000 // p.bandwidth_khz
    numerator = 8 * p.phy_bytes - 4 * p.sf + 28 + 16 * int(p.crc) - 20 * int(p.implicit_header)
    denominator = 4 * (p.sf - 2 * int(p.low_data_rate_optimize))
    # Python's // floors toward -inf where C truncates toward 0; the explicit branch keeps the
    # two languages identical.
    blocks = (numerator + denominator - 1) // denominator if numerator > 0 else 0
    n_payload = 8 + blocks * (p.coding_rate + 4)
    quarter_symbols = 4 * p.preamble_symbols + 17 + 4 * n_payload
    return quarter_symbols * (t_sym_us // 4)
