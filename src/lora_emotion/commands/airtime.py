"""``lora-emotion airtime``: time on air of one uplink, at one data rate or all of them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..airtime import (
    EU868_DATA_RATES,
    KPN_MAX_PAYLOAD,
    LORAWAN_FRAME_OVERHEAD,
    data_rate,
    data_rate_for,
    time_on_air_us,
)
from ..errors import EncodeError

EPILOG = """\
examples:
  lora-emotion airtime 2                 every EU868 data rate, DR6..DR0
  lora-emotion airtime 2 --sf 12         one spreading factor at 125 kHz
  lora-emotion airtime 45 --dr 0 --json  machine-readable
  lora-emotion airtime 2 --bw 250        SF7..SF12 at 250 kHz
  lora-emotion airtime 4 --fopts 3       with 3 bytes of piggy-backed MAC commands

SIZE is the application payload (FRMPayload); the 13-byte LoRaWAN frame overhead and any
FOpts are added. Airtime uses CR 4/5, an 8-symbol preamble, explicit header and CRC on.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``airtime`` subcommand."""
    parser = subparsers.add_parser(
        "airtime",
        help="time on air of an uplink per data rate",
        description="Print the LoRa time on air of an uplink carrying SIZE bytes of payload.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("size", metavar="SIZE", type=int, help="FRMPayload bytes")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sf", type=int, metavar="7..12", help="spreading factor")
    which.add_argument("--dr", type=int, metavar="0..6", help="EU868 data rate")
    parser.add_argument(
        "--bw",
        type=int,
        metavar="KHZ",
        help="bandwidth: 125 (default), 250 or 500; with --dr it must match the data rate",
    )
    parser.add_argument(
        "--fopts", type=int, default=0, metavar="0..15", help="FOpts bytes (default 0)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


def _row(size: int, fopts: int, sf: int, bandwidth_khz: int) -> dict[str, Any]:
    overhead = LORAWAN_FRAME_OVERHEAD + fopts
    micros = time_on_air_us(size, sf=sf, bandwidth_khz=bandwidth_khz, header_overhead=overhead)
    rate = data_rate_for(sf, bandwidth_khz)
    limit = None if rate is None else rate.max_payload - fopts
    return {
        "payload_size": size,
        "fopts": fopts,
        "phy_bytes": size + overhead,
        "sf": sf,
        "bandwidth_khz": bandwidth_khz,
        "data_rate": None if rate is None else rate.index,
        "airtime_us": micros,
        "airtime_ms": micros / 1000,
        "max_payload": limit,
        "fits": None if limit is None else size <= limit,
        "fits_kpn": size <= KPN_MAX_PAYLOAD - fopts,
    }


def _modulations(args: argparse.Namespace) -> list[tuple[int, int]]:
    if args.dr is not None:
        rate = data_rate(args.dr)
        if args.bw is not None and args.bw != rate.bandwidth_khz:
            raise EncodeError(f"{args.bw} kHz contradicts {rate.name}", field="--bw")
        return [(rate.sf, rate.bandwidth_khz)]
    if args.sf is not None:
        return [(args.sf, 125 if args.bw is None else args.bw)]
    if args.bw is None:
        return [(rate.sf, rate.bandwidth_khz) for rate in reversed(EU868_DATA_RATES)]
    return [(sf, args.bw) for sf in range(7, 13)]


def _format_single(row: dict[str, Any]) -> str:
    rate = "" if row["data_rate"] is None else f" (DR{row['data_rate']})"
    lines = [
        f"{row['payload_size']} B payload + {row['phy_bytes'] - row['payload_size']} B frame "
        f"= {row['phy_bytes']} B PHY at SF{row['sf']}/{row['bandwidth_khz']} kHz{rate}: "
        f"{row['airtime_ms']:.3f} ms"
    ]
    if row["max_payload"] is not None:
        verdict = "fits" if row["fits"] else "does NOT fit"
        lines.append(f"DR{row['data_rate']} allows {row['max_payload']} B: {verdict}")
    if not row["fits_kpn"]:
        lines.append(f"over the {KPN_MAX_PAYLOAD} B that KPN is reported to accept")
    return "\n".join(lines)


def _format_table(rows: list[dict[str, Any]]) -> str:
    first = rows[0]
    lines = [
        f"airtime of a {first['payload_size']} B payload ({first['phy_bytes']} B PHY), "
        "CR 4/5, 8-symbol preamble",
        f"{'SF/BW':<10} {'DR':<4} {'airtime ms':>11} {'max payload':>12}  fits",
    ]
    for row in rows:
        dr = "-" if row["data_rate"] is None else f"DR{row['data_rate']}"
        limit = "-" if row["max_payload"] is None else str(row["max_payload"])
        fits = "-" if row["fits"] is None else ("yes" if row["fits"] else "NO")
        lines.append(
            f"{'SF' + str(row['sf']) + '/' + str(row['bandwidth_khz']):<10} {dr:<4} "
            f"{row['airtime_ms']:>11.3f} {limit:>12}  {fits}"
        )
    if not first["fits_kpn"]:
        lines.append(f"note: over the {KPN_MAX_PAYLOAD} B that KPN is reported to accept")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the airtime; returns the exit code.

    Raises:
        EncodeError: for an out-of-range size, SF, DR, bandwidth or FOpts length.
    """
    if not 0 <= args.fopts <= 15:
        raise EncodeError(f"{args.fopts} is outside 0..15", field="--fopts")
    rows = [_row(args.size, args.fopts, sf, bw) for sf, bw in _modulations(args)]
    single = args.sf is not None or args.dr is not None
    if args.json:
        print(json.dumps(rows[0] if single else {"rows": rows}, indent=2))
    else:
        print(_format_single(rows[0]) if single else _format_table(rows))
    return 0
