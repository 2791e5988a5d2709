"""``lora-emotion budget``: how many uplinks of a message mix fit the airtime rules."""

from __future__ import annotations

import argparse
import json
import math

from ..airtime import LORAWAN_FRAME_OVERHEAD, DataRate, data_rate
from ..budget import DUTY_CYCLE, FAIR_USE_DAILY_MS, Plan, plan
from ..errors import EncodeError

EPILOG = """\
examples:
  lora-emotion budget --mix 2                            2-byte readings at SF12
  lora-emotion budget --mix reading=2:10,status=15:1     ten readings per status message
  lora-emotion budget --mix 45 --dr 0 --json
  lora-emotion budget --mix 2 --sf 7 --daily-cap none    duty cycle only

--mix is a comma-separated list of [NAME=]SIZE[:WEIGHT]: SIZE is the FRMPayload in bytes,
WEIGHT how often the kind is sent relative to the others (default 1). Airtime is charged
in whole ms, rounded up, as the device's ledger does.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``budget`` subcommand."""
    parser = subparsers.add_parser(
        "budget",
        help="uplinks per day under the duty cycle and fair-use cap",
        description="Plan how often a mix of messages can be sent, and say what limits it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--mix", required=True, metavar="NAME=SIZE:WEIGHT,...", help="the message mix"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--sf", type=int, metavar="7..12", help="spreading factor (default 12)")
    which.add_argument("--dr", type=int, metavar="0..6", help="EU868 data rate")
    parser.add_argument("--bw", type=int, metavar="KHZ", help="bandwidth (default 125)")
    parser.add_argument(
        "--daily-cap",
        default=str(FAIR_USE_DAILY_MS / 1000),
        metavar="SECONDS",
        help="airtime per 24 h, or 'none' (default 30)",
    )
    parser.add_argument(
        "--duty-cycle", type=float, default=DUTY_CYCLE, help="fraction per hour (default 0.01)"
    )
    parser.add_argument(
        "--fopts", type=int, default=0, metavar="0..15", help="FOpts bytes per uplink"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(handler=run)


def parse_mix(text: str) -> dict[str, tuple[int, float]]:
    """Parse ``reading=2:10,status=15:1`` into ``{"reading": (2, 10.0), ...}``.

    Args:
        text: comma-separated ``[NAME=]SIZE[:WEIGHT]`` items; a nameless item is named
            after its size (``2B``).

    Returns:
        The mix for :func:`lora_emotion.budget.plan`.

    Raises:
        EncodeError: (field ``--mix``) for a malformed item or a repeated name.
    """
    mix: dict[str, tuple[int, float]] = {}
    for item in text.split(","):
        item = item.strip()
        name, has_name, spec = item.partition("=")
        if not has_name:
            name, spec = "", item
        size_text, _, weight_text = spec.partition(":")
        try:
            size = int(size_text)
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            raise EncodeError(f"{item!r} is not [NAME=]SIZE[:WEIGHT]", field="--mix") from None
        name = name.strip() or f"{size}B"
        if name in mix:
            raise EncodeError(f"kind {name!r} given twice", field="--mix")
        mix[name] = (size, weight)
    return mix


def _parse_daily_cap(text: str) -> int | None:
    if text.strip().lower() in {"none", "off"}:
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise EncodeError(f"{text!r} is not a number of seconds", field="--daily-cap") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise EncodeError(f"{text!r} must be positive", field="--daily-cap")
    return round(seconds * 1000)


def format_plan(result: Plan) -> str:
    """Render a plan as the text the command prints."""
    rate = "" if result.data_rate is None else f" (DR{result.data_rate})"
    cap = (
        "no daily cap"
        if result.daily_cap_ms is None
        else f"daily cap {result.daily_cap_ms / 1000:g} s"
    )
    lines = [
        f"plan at SF{result.sf}/{result.bandwidth_khz} kHz{rate}: duty cycle "
        f"{result.duty_cycle * 100:g} % ({result.duty_cycle_budget_ms / 1000:g} s/h), {cap}",
        f"{'kind':<12} {'bytes':>5} {'weight':>7} {'airtime ms':>11} {'charged ms':>11} "
        f"{'per day':>8}",
    ]
    for k in result.kinds:
        lines.append(
            f"{k.name:<12} {k.payload_size:>5} {k.weight:>7g} {k.airtime_ms:>11.3f} "
            f"{k.charge_ms:>11} {k.per_day:>8.1f}"
        )
    lines.append(f"mean charge per uplink: {result.mean_airtime_ms:.1f} ms")
    lines.append(
        f"duty cycle allows {result.max_per_hour} uplinks/h ({result.max_per_day_duty_cycle}/day)"
    )
    if result.max_per_day_cap is not None:
        lines.append(f"daily cap allows {result.max_per_day_cap} uplinks/day")
    lines.append(f"binding constraint: {result.binding.value.replace('_', ' ')}")
    if result.min_interval_s is None:
        lines.append("=> nothing can be sent: one uplink is over the budget")
    else:
        lines.append(
            f"=> {result.uplinks_per_day} uplinks/day: space them at least "
            f"{result.min_interval_s:.1f} s ({result.min_interval_s / 60:.1f} min) apart on "
            f"average; {result.airtime_per_day_ms / 1000:.1f} s of airtime/day"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the plan; returns the exit code.

    Raises:
        EncodeError: for a malformed mix or an out-of-range setting.
    """
    if not 0 <= args.fopts <= 15:
        raise EncodeError(f"{args.fopts} is outside 0..15", field="--fopts")
    modulation: int | DataRate = data_rate(args.dr) if args.dr is not None else 12
    if args.sf is not None:
        modulation = args.sf
    result = plan(
        parse_mix(args.mix),
        sf=modulation,
        bandwidth_khz=args.bw,
        duty_cycle=args.duty_cycle,
        daily_cap_ms=_parse_daily_cap(args.daily_cap),
        header_overhead=LORAWAN_FRAME_OVERHEAD + args.fopts,
    )
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_plan(result))
    return 0
