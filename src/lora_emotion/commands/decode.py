"""``lora-emotion decode PAYLOAD --port N``: an uplink payload (hex or base64) as SenML.

With ``--network ttn|chirpstack|kpn FILE`` it decodes a saved webhook body instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from ..errors import DecodeError
from ..senml import Record, encode_cbor, encode_json
from ..uplink import decode_uplink
from ._common import add_label_options, registry_from
from ._payload import payload_from_text
from .network_body import NETWORK_CHOICES, read_body, records_of_body

EPILOG = """examples:
  lora-emotion decode 0186 --port 16
  lora-emotion decode AYY= --port 16                 # base64, as TTN and ChirpStack show it
  lora-emotion decode 81A20067656D6F74696F6E03656861707079 --port 1
  lora-emotion decode 0B86E88E --port 17 --dev-eui 0004A30B001C2ABC --time now
  lora-emotion decode 0B86E88E --port 17 --format cbor
  lora-emotion decode --network ttn uplink.json
  lora-emotion decode --network chirpstack - < up-event.json

PAYLOAD is hex when it is an even number of hex digits (spaces, colons and 0x are
ignored), otherwise base64 (standard or URL-safe alphabet, padding optional). Base64 that
is also valid hex, such as ABCD, is read as hex: pass --base64 to mean base64.
With --network, PAYLOAD is a file holding a saved webhook body (- for standard input).
"""


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DecodeError(f"{text!r} is not seconds since 1970 or 'now'", field="--time") from None


def run(args: argparse.Namespace) -> int:
    if args.network is not None:
        return _run_network(args)
    if args.port is None:
        raise DecodeError("required with PAYLOAD (the uplink's FPort)", field="--port")
    payload, also_base64 = payload_from_text(args.payload, args.encoding)
    try:
        records = decode_uplink(payload, fport=args.port, registry=registry_from(args))
    except DecodeError as exc:
        if not also_base64:
            raise
        hint = f"{exc.reason} (PAYLOAD was read as hex; if it is base64, pass --base64)"
        raise DecodeError(hint, field=exc.field, offset=exc.offset) from exc
    if records and (args.dev_eui or args.time is not None):
        records[0] = dataclasses.replace(
            records[0],
            bn=f"urn:dev:DEVEUI:{args.dev_eui.upper()}:" if args.dev_eui else None,
            bt=None
            if args.time is None
            else (time.time() if args.time == "now" else _seconds(args.time)),
        )
    _write(records, args.format)
    return 0


def _write(records: list[Record], output_format: str) -> None:
    if output_format == "cbor":
        sys.stdout.write(encode_cbor(records).hex().upper() + "\n")
    else:
        sys.stdout.write(encode_json(records) + "\n")


def _run_network(args: argparse.Namespace) -> int:
    records, description = records_of_body(
        args.network, read_body(args.payload), registry=registry_from(args)
    )
    print(description, file=sys.stderr)
    _write(records, args.format)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "decode",
        help="decode an uplink payload into SenML",
        description="Decode an uplink payload (compact message, status or ThingsML) received "
        "on FPort N and print it as a SenML pack, as KPN Things would deliver it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "payload",
        metavar="PAYLOAD",
        help="the FRMPayload in hex or base64 (rule below); with --network: FILE, - for stdin",
    )
    encoding = parser.add_mutually_exclusive_group()
    encoding.add_argument(
        "--base64",
        dest="encoding",
        action="store_const",
        const="base64",
        default="auto",
        help="PAYLOAD is base64 (TTN's frm_payload, ChirpStack's data)",
    )
    encoding.add_argument(
        "--hex", dest="encoding", action="store_const", const="hex", help="PAYLOAD is hex"
    )
    parser.add_argument("--port", type=int, help="the uplink's FPort (required with PAYLOAD)")
    parser.add_argument(
        "--network",
        choices=NETWORK_CHOICES,
        help="decode FILE, a saved webhook body of this network, as the webhook would store it",
    )
    parser.add_argument("--dev-eui", help="16 hex digits; adds bn urn:dev:DEVEUI:<EUI>:")
    parser.add_argument("--time", help="base time (seconds since 1970, or 'now')")
    parser.add_argument(
        "--format",
        choices=("json", "cbor"),
        default="json",
        help="SenML JSON (default) or SenML CBOR as hex",
    )
    add_label_options(parser)
    parser.set_defaults(handler=run)
