"""``lora-emotion simulate``: virtual relays posting their network's deliveries to a webhook."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Iterator

from ..aggregator import RelayConfig
from ..errors import LoraEmotionError
from ..fleet import (
    DEFAULT_PLUG_UUID,
    DEFAULT_SECRET,
    DEFAULT_TOKEN,
    Delivery,
    Fleet,
    FleetConfig,
)
from ..messages import Mode
from ..networks import Network
from ..simulate_run import (
    RetryPolicy,
    RunLimits,
    RunStats,
    check_loopback,
    prebuild,
    run_deliveries,
)
from ..simulator import StreamConfig
from ._common import add_label_options, registry_from

DEFAULT_URL = "http://127.0.0.1:8000/uplinks/kpn"
#: Where each network posts on a local webhook (ChirpStack names the event in the query).
DEFAULT_URLS = {
    "kpn": DEFAULT_URL,
    "ttn": "http://127.0.0.1:8000/uplinks/ttn",
    "chirpstack": "http://127.0.0.1:8000/uplinks/chirpstack?event=up",
}
SECRET_ENV = "LORA_EMOTION_SIMULATE_SECRET"
TOKEN_ENV = "LORA_EMOTION_SIMULATE_TOKEN"

EPILOG = f"""\
what is simulated:
  each device runs an emotion model (sticky moods, an imperfect classifier, faces coming and
  going, heart rate and skin conductance) into the relay's rules (windows, the 1 % duty cycle,
  the daily airtime cap and pacing), encodes each uplink, wraps it in a LoRaWAN frame that the
  simulated network opens again, and posts it as KPN Things would: SenML with a signed
  Things-Message-Token, both layouts, up to three attempts with growing timeouts.

examples:
  # start a webhook first:  lora-emotion serve
  lora-emotion simulate                                   # 3 devices, 60x faster clock
  lora-emotion simulate --devices 20 --mode reading --count 500 --duration 120
  lora-emotion simulate --speed 1 --duration 600          # real time, for a dashboard

  # load generation for a benchmark: prebuilt bodies, no budget, as fast as possible,
  # over the minimal keep-alive client (raw) for http:// URLs
  lora-emotion simulate --load --devices 200 --count 20000 --concurrency 32 --json

  # see what would be sent, without a server
  lora-emotion simulate --dry-run --count 5

  # as The Things Stack or ChirpStack would post (bearer token of the application)
  lora-emotion simulate --network ttn --application my-app --token "$TOKEN"
  lora-emotion simulate --network chirpstack

The shared secret comes from --secret, else ${SECRET_ENV}, else the demo secret the
webhook accepts only in dev; the TTN/ChirpStack token from --token, else ${TOKEN_ENV}, else
the demo token. The exit code is 1 when any delivery was finally discarded.
"""


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def _speed(text: str) -> float | None:
    if text.lower() in ("max", "inf", "flood"):
        return None
    return _positive_float(text)


def _seconds_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 <= v < float("inf") for v in values):
        raise argparse.ArgumentTypeError("must be comma-separated seconds, e.g. 5,10,20")
    return values


def add_fleet_options(parser: argparse.ArgumentParser) -> None:
    """The options that describe the fleet (shared with ``demo``)."""
    group = parser.add_argument_group("devices")
    group.add_argument("--devices", type=int, default=3, help="virtual relays (default 3)")
    group.add_argument("--seed", type=int, default=0, help="seeds every model and key")
    group.add_argument(
        "--label-set", default="fer2013", metavar="NAME", help="label set (default fer2013)"
    )
    add_label_options(group)  # type: ignore[arg-type]
    group.add_argument(
        "--mode",
        choices=[m.name.lower() for m in Mode],
        default="summary",
        help="what each window becomes (default summary)",
    )
    group.add_argument(
        "--window", type=int, default=60, metavar="S", help="window length in s (default 60)"
    )
    group.add_argument(
        "--sf",
        type=int,
        default=7,
        choices=range(7, 13),
        metavar="7..12",
        help="spreading factor at 125 kHz, i.e. DR5..DR0 (default 7)",
    )
    group.add_argument(
        "--daily-budget", type=int, default=30, metavar="S", help="daily airtime cap (30 s)"
    )
    group.add_argument(
        "--status-interval",
        type=int,
        default=360,
        metavar="MIN",
        help="minutes between status messages (default 360; 0: only after joining)",
    )
    group.add_argument(
        "--no-budget",
        action="store_true",
        help="ignore duty cycle and daily cap (load generation; no real device can)",
    )
    group.add_argument("--no-lorawan", action="store_true", help="skip the LoRaWAN frames")
    group.add_argument(
        "--layout",
        choices=["legacy", "merged", "alternate"],
        default="alternate",
        help="SenML layout of the deliveries (default: alternate between both)",
    )
    group.add_argument("--plug-uuid", default=DEFAULT_PLUG_UUID, help="Things-Plug-UUID header")
    group.add_argument("--secret", help=f"shared secret (default: ${SECRET_ENV} or the demo one)")


def fleet_config(args: argparse.Namespace, *, epoch_s: float) -> FleetConfig:
    """The fleet the options describe.

    Raises:
        EncodeError: an unknown label set or an out-of-range setting.
    """
    label_set = registry_from(args).by_name(args.label_set)
    relay = RelayConfig(
        label_set=label_set,
        mode=Mode[args.mode.upper()],
        window_s=args.window,
        data_rate=12 - args.sf,
        daily_budget_s=args.daily_budget,
        budget=not args.no_budget,
        status_interval_min=args.status_interval,
    )
    secret = args.secret or os.environ.get(SECRET_ENV) or DEFAULT_SECRET
    network: Network = getattr(args, "network", "kpn")
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or DEFAULT_TOKEN
    return FleetConfig(
        network=network,
        token=token,
        application=getattr(args, "application", None),
        devices=args.devices,
        seed=args.seed,
        stream=StreamConfig(label_set=label_set),
        relay=relay,
        lorawan=not args.no_lorawan,
        layout=args.layout,
        plug_uuid=args.plug_uuid,
        secret=secret,
        epoch_s=epoch_s,
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` subcommand."""
    parser = subparsers.add_parser(
        "simulate",
        help="drive virtual relays and post their network's deliveries to a webhook",
        description="Drive N virtual relays and post their deliveries to a webhook as KPN "
        "Things (signed SenML), The Things Stack (uplink messages) or ChirpStack (up events) "
        "would, retrying as KPN does; report sent, acknowledged, retried, failed, rate and "
        "latency percentiles.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--url", help="the webhook's endpoint (default: the network's on 127.0.0.1:8000)"
    )
    add_fleet_options(parser)
    network = parser.add_argument_group("network")
    network.add_argument(
        "--network",
        choices=list(DEFAULT_URLS),
        default="kpn",
        help="post as KPN Things (default), The Things Stack or ChirpStack",
    )
    network.add_argument(
        "--application", help="TTN application id / ChirpStack application UUID (demo ones)"
    )
    network.add_argument(
        "--token", help=f"TTN/ChirpStack bearer token (default: ${TOKEN_ENV} or the demo one)"
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--count", type=int, default=100, metavar="N", help="deliveries to send (default 100)"
    )
    run.add_argument(
        "--duration",
        type=_positive_float,
        default=60.0,
        metavar="S",
        help="stop starting deliveries after S wall seconds (default 60)",
    )
    run.add_argument(
        "--speed",
        type=_speed,
        default=60.0,
        metavar="X",
        help="virtual seconds per second (default 60); 'max' sends as fast as possible",
    )
    run.add_argument("--rate", type=_positive_float, metavar="R", help="cap at R deliveries/s")
    run.add_argument("--concurrency", type=int, default=8, help="parallel senders (default 8)")
    run.add_argument(
        "--client",
        choices=["httpx", "raw"],
        help="HTTP client: httpx (default), or with --load for an http:// URL a minimal "
        "keep-alive client that costs the load generator less CPU (the default there)",
    )
    run.add_argument(
        "--prebuild",
        action="store_true",
        help="build every delivery before the clock starts (implied by --speed max)",
    )
    run.add_argument(
        "--load",
        action="store_true",
        help="load-generator preset: --no-budget --mode reading --window 1 "
        "--status-interval 0 --speed max",
    )
    run.add_argument(
        "--timeouts",
        type=_seconds_list,
        default=(5.0, 10.0, 20.0),
        metavar="S,S,S",
        help="timeout of each attempt; their number is the number of attempts (5,10,20)",
    )
    run.add_argument(
        "--pauses", type=_seconds_list, default=(1.0, 2.0), metavar="S,S", help="before retries"
    )
    run.add_argument(
        "--epoch", type=float, metavar="UNIX_S", help="Unix time of virtual time 0 (see docs)"
    )
    run.add_argument("--allow-remote", action="store_true", help="allow a non-loopback URL")
    run.add_argument("--dry-run", action="store_true", help="print deliveries, send nothing")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress line on stderr")
    parser.set_defaults(handler=handle, usage_error=parser.error)


def apply_load_preset(args: argparse.Namespace) -> None:
    if args.load:
        args.no_budget = True
        args.mode = "reading"
        args.window = 1
        args.status_interval = 0
        args.speed = None


def epoch_for(args: argparse.Namespace, now: float) -> float:
    """Virtual time 0 in Unix seconds, so that the run's readings end about now.

    A run at ``speed`` covers ``duration x speed`` virtual seconds in ``duration`` wall
    seconds; starting that far back (less the duration itself) makes the last base time meet
    the wall clock, and at speed 1 the readings are live. Without a clock (``max``) the span
    is estimated from one uplink per window per device.
    """
    if args.epoch is not None:
        return float(args.epoch)
    if args.speed is None:
        per_device: float = args.count / max(args.devices, 1)
        return now - per_device * float(args.window)
    duration = float(args.duration)
    return now - duration * float(args.speed) + duration


def progress_printer(quiet: bool) -> Callable[[RunStats, float], None] | None:
    """A progress callback: one updating line on a terminal, a line per 5 s otherwise."""
    if quiet:
        return None
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(stats: RunStats, now: float) -> None:
        if tty:
            print("\r" + stats.progress_line(now).ljust(79), end="", file=sys.stderr, flush=True)
        elif now - last[0] >= 5.0:
            last[0] = now
            print(stats.progress_line(now), file=sys.stderr, flush=True)

    return show


def _dry_run(deliveries: Iterator[Delivery], count: int) -> int:
    for _, delivery in zip(range(count), deliveries, strict=False):
        print(
            json.dumps(
                {
                    "t_ms": delivery.t_ms,
                    "device": delivery.device,
                    "dev_eui": delivery.dev_eui,
                    "fcnt": delivery.fcnt,
                    "message": type(delivery.uplink.message).__name__,
                    "fport": delivery.uplink.fport,
                    "payload": delivery.uplink.payload.hex(),
                    "phy": None if delivery.phy is None else delivery.phy.hex(),
                    "headers": delivery.headers,
                    "body": delivery.body.decode("utf-8"),
                }
            )
        )
    return 0


def handle(args: argparse.Namespace) -> int:
    """Run the simulation (or print it with --dry-run) and report."""
    apply_load_preset(args)
    args.url = args.url or DEFAULT_URLS[args.network]
    if args.count < 1 or args.devices < 1:
        raise LoraEmotionError("--count and --devices must be at least 1")
    now = time.time()
    fleet = Fleet(fleet_config(args, epoch_s=epoch_for(args, now)))
    if args.dry_run:
        return _dry_run(fleet.deliveries(), args.count)
    check_loopback(args.url, allow_remote=args.allow_remote)
    client = args.client
    if client is None:
        client = "raw" if args.load and args.url.startswith("http://") else "httpx"
    elif client == "raw" and not (args.load and args.url.startswith("http://")):
        args.usage_error("--client raw is for --load with an http:// URL only")
    deliveries: Iterator[Delivery] | list[Delivery] = fleet.deliveries()
    if args.prebuild or args.speed is None:
        started = time.perf_counter()
        deliveries = prebuild(fleet.deliveries(), args.count)
        if not args.quiet:
            built = time.perf_counter() - started
            print(f"built {len(deliveries)} deliveries in {built:.2f} s", file=sys.stderr)
    limits = RunLimits(count=args.count, duration_s=args.duration, speed=args.speed, rate=args.rate)
    retry = RetryPolicy(timeouts_s=args.timeouts, pauses_s=args.pauses)
    stats = asyncio.run(
        run_deliveries(
            deliveries,
            url=args.url,
            limits=limits,
            retry=retry,
            concurrency=args.concurrency,
            client=client,
            progress=progress_printer(args.quiet),
        )
    )
    if not args.quiet and sys.stderr.isatty():
        print(file=sys.stderr)
    summary = stats.summary()
    if args.json:
        summary["config"] = {
            "url": args.url,
            "network": args.network,
            "devices": args.devices,
            "mode": args.mode,
            "window_s": args.window,
            "sf": args.sf,
            "budget": not args.no_budget,
            "lorawan": not args.no_lorawan,
            "layout": args.layout,
            "speed": args.speed,
            "rate": args.rate,
            "concurrency": args.concurrency,
            "client": client,
        }
        print(json.dumps(summary))
    else:
        print(
            f"{args.devices} device(s), {args.mode} mode, {args.window}-s windows, SF{args.sf}"
            f"{'' if not args.no_budget else ', no budget'} -> {args.url} ({client} client)"
        )
        print(stats.text())
    return 1 if stats.failed else 0
