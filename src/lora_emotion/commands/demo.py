"""``lora-emotion demo``: the webhook on embedded SQLite with simulated relays feeding it.

One process, one event loop: uvicorn serves the real application while the simulator posts
to it over loopback HTTP, exactly as KPN Things would. The first line printed is the live
dashboard's address (with a one-click login for this run's token); then a few hours of history
are sent as fast as the webhook takes it (so there is something to look at at once), and the
relays carry on in real time, never ahead of the clock, until the duration is up or Ctrl-C.
Each run starts from an empty database unless ``--keep`` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import ipaddress
import os
import secrets
import socket
import sys
import time
import webbrowser
from pathlib import Path
from typing import Any

from ..aggregator import RelayConfig
from ..errors import LoraEmotionError
from ..fleet import DEFAULT_PLUG_UUID, Fleet, FleetConfig
from ..labels import DEFAULT_REGISTRY
from ..messages import Mode
from ..simulate_run import RunLimits, RunStats, run_deliveries
from ..simulator import StreamConfig
from .simulate import progress_printer

DEFAULT_DATABASE = Path("lora-emotion-demo.sqlite3")

EPILOG = """\
what it does:
  1. starts the webhook on 127.0.0.1 with an embedded SQLite file (emptied first unless
     --keep), a fresh KPN shared secret (known only to this process) and a fresh read token,
     for this run only; prints the dashboard's address first (opening it in a browser when
     there is one), with the token in the link's #fragment so one click logs in;
  2. backfills --backfill seconds of history from --devices simulated relays, as fast as the
     webhook acknowledges it;
  3. keeps the relays sending in real time (--speed 1) for --duration seconds, or until
     Ctrl-C; the dashboard shows each delivery as it arrives. The relays keep to the airtime
     rules of the sketch (docs/arduino.md), so each sends every minute or two on average,
     in bursts, and less once its daily airtime is spent.

examples:
  lora-emotion demo
  lora-emotion demo --devices 10 --mode reading --duration 600
  lora-emotion demo --port 8080 --database /tmp/demo.sqlite3 --keep
  lora-emotion demo --speed 10            # ten times faster than the clock (not real time)
  lora-emotion demo --duration 0          # backfill, print the summary, exit
"""


def _loopback_host(text: str) -> str:
    if text != "localhost":
        try:
            if not ipaddress.ip_address(text).is_loopback:
                raise ValueError(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                "the demo prints its credentials, so it listens on loopback only"
            ) from None
    return text


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be a number of seconds >= 0")
    return value


def _positive(text: str) -> float:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run the webhook on SQLite with simulated devices feeding it",
        description="Start the webhook on embedded SQLite, feed it from a few simulated relays "
        "over loopback HTTP, and print where to look (read API, API docs, dashboard).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", type=_loopback_host, default="127.0.0.1", help="loopback only")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any)")
    parser.add_argument(
        "--database",
        type=Path,
        default=DEFAULT_DATABASE,
        help=f"SQLite file, kept afterwards (default ./{DEFAULT_DATABASE})",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="add to the database file's existing data instead of starting it afresh",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="do not open the dashboard in a browser"
    )
    parser.add_argument("--devices", type=int, default=8, help="simulated relays (default 8)")
    parser.add_argument(
        "--mode",
        choices=[m.name.lower() for m in Mode],
        default="summary",
        help="what each window becomes (default summary)",
    )
    parser.add_argument("--label-set", default="fer2013", metavar="NAME", help="(fer2013)")
    parser.add_argument("--window", type=int, default=60, metavar="S", help="window s (60)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the models and keys")
    parser.add_argument(
        "--backfill",
        type=_non_negative,
        default=3 * 3600.0,
        metavar="S",
        help="seconds of history sent at once at start (default 10800)",
    )
    parser.add_argument(
        "--speed",
        type=_positive,
        default=1.0,
        metavar="X",
        help="live clock speed (default 1: real time)",
    )
    parser.add_argument(
        "--duration",
        type=_non_negative,
        default=3600.0,
        metavar="S",
        help="seconds to keep running after the backfill (default 3600)",
    )
    parser.add_argument("--token", help="read-API token to use instead of a random one")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(handler=handle)


def _settings(args: argparse.Namespace, secret: str, token: str) -> Any:
    config = importlib.import_module("lora_emotion.webhook.config")
    return config.Settings(
        environment="dev",
        database_url=f"sqlite:///{args.database.resolve()}",
        destinations={DEFAULT_PLUG_UUID: [secret]},
        read_tokens=[token],
        log_level="WARNING",
        log_format="text",
    )


def _where(base: str, token: str, args: argparse.Namespace, fleet: Fleet) -> str:
    first = fleet.devices[0].identity.dev_eui
    auth = f"-H 'Authorization: Bearer {token}'"
    lines = [
        f"dashboard: {base}/login#token={token}",
        f"lora-emotion demo: webhook on embedded SQLite {args.database.resolve()}",
        f"  KPN endpoint  {base}/uplinks/kpn",
        f"  read API      {base}/devices",
        f"  API docs      {base}/docs",
        f"  read token    {token}",
        f"  try           curl -s {auth} {base}/devices",
        f"                curl -s {auth} '{base}/devices/{first}/readings?order=desc&limit=20'",
    ]
    return "\n".join(lines)


def _fresh(database: Path) -> None:
    """Remove the demo's SQLite file and its journal files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)


def _open_browser(url: str) -> None:
    # Only where someone is looking: an interactive terminal with a graphical session.
    graphical = sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if sys.stdout.isatty() and graphical:
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url, new=2)


def _line(stats: RunStats) -> str:
    return (
        f"{stats.sent} sent, {stats.acknowledged} acknowledged, {stats.failed} failed, "
        f"{stats.retried} retried, {stats.rate:.0f}/s"
    )


async def _run(args: argparse.Namespace) -> int:
    import uvicorn

    webhook_main = importlib.import_module("lora_emotion.webhook.main")
    logs = importlib.import_module("lora_emotion.webhook.logs")
    if not args.keep:
        _fresh(args.database)
    secret: str = webhook_main.suggest_secret()
    token = args.token or secrets.token_urlsafe(32)
    app = webhook_main.create_app(_settings(args, secret, token))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_config=logs.logging_config("WARNING", "text"),
            access_log=False,
            lifespan="on",
        )
    )
    # Binding here turns "port in use" into a clear error (uvicorn would exit the process).
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as exc:
        listener.close()
        raise LoraEmotionError(
            f"the webhook could not start on {args.host}:{args.port}: {exc.strerror}"
        ) from exc
    port = listener.getsockname()[1]
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            with contextlib.suppress(BaseException):
                serving.result()
            raise LoraEmotionError(f"the webhook could not start on {args.host}:{port}")
        await asyncio.sleep(0.02)
    base = f"http://{args.host}:{port}"
    label_set = DEFAULT_REGISTRY.by_name(args.label_set)
    now = time.time()
    fleet = Fleet(
        FleetConfig(
            devices=args.devices,
            seed=args.seed,
            stream=StreamConfig(label_set=label_set),
            relay=RelayConfig(
                label_set=label_set, mode=Mode[args.mode.upper()], window_s=args.window
            ),
            plug_uuid=DEFAULT_PLUG_UUID,
            secret=secret,
            epoch_s=now - args.backfill,
        )
    )
    print(_where(base, token, args, fleet), flush=True)
    if not args.no_browser:
        _open_browser(f"{base}/login#token={token}")
    url = base + "/uplinks/kpn"
    backfill_ms = int(args.backfill * 1000)
    try:
        if backfill_ms:
            stats = await run_deliveries(
                fleet.deliveries(until_ms=backfill_ms),
                url=url,
                limits=RunLimits(count=1_000_000, duration_s=600, speed=None),
                concurrency=4,
            )
            print(f"backfill: {args.backfill:.0f} s of history, {_line(stats)}", flush=True)
        if args.duration > 0:
            print(
                f"live: {args.devices} relay(s) at {args.speed:g}x real time for "
                f"{args.duration:.0f} s (Ctrl-C to stop)",
                flush=True,
            )
            live = asyncio.create_task(
                run_deliveries(
                    fleet.deliveries(),
                    url=url,
                    limits=RunLimits(count=1_000_000, duration_s=args.duration, speed=args.speed),
                    concurrency=4,
                    progress=progress_printer(args.quiet),
                    progress_interval_s=1.0,
                )
            )
            done, _ = await asyncio.wait({live, serving}, return_when=asyncio.FIRST_COMPLETED)
            if live in done:
                if not args.quiet and sys.stderr.isatty():
                    print(file=sys.stderr)
                print(f"live: {_line(live.result())}", flush=True)
            else:
                live.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await live
    finally:
        server.should_exit = True
        with contextlib.suppress(BaseException):
            await serving
    print(f"stopped; the data stays in {args.database.resolve()} (lora-emotion serve reads it)")
    return 0


def handle(args: argparse.Namespace) -> int:
    """Run the demo until its duration is up or Ctrl-C."""
    if args.devices < 1 or args.window < 1:
        raise LoraEmotionError("--devices and --window must be at least 1")
    # Before anything starts: a missing extra is reported by the command line in one line.
    for module in ("lora_emotion.webhook.main", "lora_emotion.lorawan", "httpx"):
        importlib.import_module(module)
    return asyncio.run(_run(args))
