"""``lora-emotion downlink encode|send``: a command downlink to the relay, or queued at TTS."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys

from .. import downlink as dl
from ..errors import EncodeError, LoraEmotionError
from ..messages import Mode
from ..networks.ttn import downlink_request
from ._common import add_label_options, registry_from

API_KEY_ENV = "LORA_EMOTION_TTN_API_KEY"
#: The relay listens for commands on this FPort (docs/downlink.md).
COMMAND_PORT = 3

EPILOG = f"""\
examples:
  lora-emotion downlink encode --seq 7 --mode vitals --label-set physio3
  # queue it at The Things Stack: the URL is the X-Downlink-Push header of the device's
  # webhook messages (kept with each delivery: GET /deliveries), the key an API key with
  # the right to write downlinks
  export {API_KEY_ENV}=NNSXS....
  lora-emotion downlink send --seq 7 --send-status \\
    --queue-url https://eu1.cloud.thethings.network/api/v3/as/applications/my-app/webhooks/lora-emotion/devices/relay-7/down/push

KPN Things and ChirpStack: schedule the hex that `encode` prints on FPort {COMMAND_PORT} in their
consoles (ChirpStack's queue takes base64, which --format base64 prints).
"""


class DownlinkSendError(LoraEmotionError):
    """The Things Stack did not queue the downlink."""


def _downlink(args: argparse.Namespace) -> dl.Downlink:
    commands: list[dl.Command] = []
    if args.window is not None:
        commands.append(dl.SetWindow(window_s=args.window))
    if args.mode is not None:
        commands.append(dl.SetMode(mode=Mode[args.mode.upper()]))
    if args.daily_budget is not None:
        commands.append(dl.SetDailyBudget(budget_s=args.daily_budget))
    if args.label_set is not None:
        commands.append(dl.SetLabelSet.of(registry_from(args).by_name(args.label_set)))
    if args.status_interval is not None:
        commands.append(dl.SetStatusInterval(interval_min=args.status_interval))
    if args.send_status:
        commands.append(dl.SendStatus())
    if not commands:
        raise EncodeError(
            "no command: give at least one of --window, --mode, --daily-budget, --label-set, "
            "--status-interval, --send-status",
            field="commands",
        )
    return dl.Downlink(seq=args.seq, commands=tuple(commands))


def _encode(args: argparse.Namespace) -> int:
    payload = dl.encode(_downlink(args))
    if args.format == "base64":
        print(base64.b64encode(payload).decode("ascii"))
    elif args.format == "json":
        print(json.dumps({"fport": COMMAND_PORT, "hex": payload.hex().upper()}))
    else:
        print(f"{payload.hex().upper()}  port {COMMAND_PORT}  {len(payload)} B")
    return 0


def _send(args: argparse.Namespace) -> int:
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or ""
    request = downlink_request(
        args.queue_url,
        api_key,
        dl.encode(_downlink(args)),
        fport=COMMAND_PORT,
        priority=args.priority,
        confirmed=args.confirmed,
    )
    if args.dry_run:
        print(request.body.decode("utf-8"))
        return 0
    try:
        import httpx
    except ModuleNotFoundError:
        raise DownlinkSendError(
            "sending needs httpx: pip install 'lora-emotion[simulate]'"
        ) from None
    try:
        answer = httpx.post(
            request.url, content=request.body, headers=request.headers, timeout=args.timeout
        )
    except httpx.HTTPError as exc:
        raise DownlinkSendError(f"{request.url}: {type(exc).__name__}: {exc}") from None
    if answer.status_code >= 300:
        raise DownlinkSendError(
            f"The Things Stack answered {answer.status_code}: {answer.text[:300]}"
        )
    print(f"queued: {request.body.decode('utf-8')}", file=sys.stderr)
    return 0


def _command_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seq", type=int, required=True, help="sequence number 0..255")
    parser.add_argument("--window", type=int, metavar="S", help="aggregation window, seconds")
    parser.add_argument("--mode", choices=[m.name.lower() for m in Mode], help="window mode")
    parser.add_argument("--daily-budget", type=int, metavar="S", help="airtime cap, s/day")
    parser.add_argument("--label-set", metavar="NAME", help="switch to this label set")
    parser.add_argument(
        "--status-interval", type=int, metavar="MIN", help="minutes between status messages"
    )
    parser.add_argument(
        "--send-status", action="store_true", help="send a status at the next opportunity"
    )
    add_label_options(parser)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "downlink",
        help="encode a command downlink, or queue it at The Things Stack",
        description="Encode a command downlink for the relay (FPort 3, docs/downlink.md), or "
        "queue it at The Things Stack through the device's webhook downlink URL.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    encode = actions.add_parser("encode", help="print the payload (hex, base64 or JSON)")
    _command_options(encode)
    encode.add_argument("--format", choices=("text", "base64", "json"), default="text")
    encode.set_defaults(handler=_encode)
    send = actions.add_parser("send", help="queue the downlink at The Things Stack")
    _command_options(send)
    send.add_argument(
        "--queue-url", required=True, help="the device's X-Downlink-Push (or -Replace) URL"
    )
    send.add_argument("--api-key", help=f"API key (default: ${API_KEY_ENV})")
    send.add_argument("--priority", default="NORMAL", help="TTS downlink priority (NORMAL)")
    send.add_argument("--confirmed", action="store_true", help="a confirmed downlink")
    send.add_argument("--timeout", type=float, default=10.0, help="seconds (10)")
    send.add_argument("--dry-run", action="store_true", help="print the body, send nothing")
    send.set_defaults(handler=_send)
