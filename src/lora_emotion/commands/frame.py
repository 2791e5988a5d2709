"""``lora-emotion frame``: build and open LoRaWAN 1.0.x data frames from the shell.

Session keys are never printed, not even in error messages: argparse echoes a rejected value
unless the type converter raises ``ArgumentTypeError`` with its own text, so every converter
here does exactly that, and a key from the environment is rejected by name, never by value.

Each key comes from its flag (``--nwkskey``, ``--appskey``) or, when the flag is absent, from
``$LORA_EMOTION_NWKSKEY`` / ``$LORA_EMOTION_APPSKEY``. The environment is the recommended way:
a command line lands in shell history and is readable by every local user through ``ps`` and
``/proc/<pid>/cmdline``, whereas a process's environment is readable only by its owner and root.
The flag still wins, so a one-off override needs no ``unset``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any, NamedTuple

from ..lorawan import (
    DataFrame,
    MType,
    build_frame,
    decrypt_payload,
    open_frame,
    parse_frame,
    verify_mic,
)

NWKSKEY_ENV = "LORA_EMOTION_NWKSKEY"
APPSKEY_ENV = "LORA_EMOTION_APPSKEY"

# The keys shown are the public example of the lora-packet README, harmless in shell history;
# real ones are better sourced from a file, which keeps them out of history as well as ps.
_KEYS_FROM_ENVIRONMENT = f"""\
  # the session keys, from the environment (--nwkskey/--appskey also work, and win,
  # but leave the keys in shell history and in ps for every local user to see)
  export {NWKSKEY_ENV}=44024241ED4CE9A68C6A8BC055233FD3
  export {APPSKEY_ENV}=EC925802AE430CA77FD3DD73CB2CC588

  # real keys: put the two export lines in a file only you can read, and source it
  . ~/.config/lora-emotion/session-keys
"""

DECODE_EPILOG = f"""\
examples:
{_KEYS_FROM_ENVIRONMENT}
  # the first frame of a session (counter below 65536)
  lora-emotion frame decode 40F17DBE4900020001954378762B11FF0D

  # a device that has sent more than 65535 frames: say where its counter was
  lora-emotion frame decode HEX --last-fcnt 70000

  # or give the high 16 bits of the counter directly, and print JSON
  lora-emotion frame decode HEX --fcnt-msb 1 --json
"""

ENCODE_EPILOG = f"""\
examples:
{_KEYS_FROM_ENVIRONMENT}
  lora-emotion frame encode --devaddr 49BE7DF1 --fcnt 2 --fport 1 --payload 74657374

  # a confirmed downlink with a MAC command piggy-backed in FOpts
  lora-emotion frame encode --downlink --confirmed --devaddr 260B1234 --fcnt 70000 \\
      --fopts 02 --fport 7 --payload 01 --json
"""

FRAME_EPILOG = f"""\
examples:
  export {NWKSKEY_ENV}=44024241ED4CE9A68C6A8BC055233FD3
  export {APPSKEY_ENV}=EC925802AE430CA77FD3DD73CB2CC588
  lora-emotion frame encode --devaddr 49BE7DF1 --fcnt 2 --fport 1 --payload 74657374
  lora-emotion frame decode 40F17DBE4900020001954378762B11FF0D

the session keys come from ${NWKSKEY_ENV} and ${APPSKEY_ENV}, or from
--nwkskey/--appskey (which win, but show the keys in shell history and ps)

see 'lora-emotion frame decode --help' and 'lora-emotion frame encode --help'
"""

_MTYPE_NAMES = {
    MType.UNCONFIRMED_UP: "unconfirmed data up",
    MType.UNCONFIRMED_DOWN: "unconfirmed data down",
    MType.CONFIRMED_UP: "confirmed data up",
    MType.CONFIRMED_DOWN: "confirmed data down",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``frame`` with its ``decode`` and ``encode`` subcommands."""
    parser = subparsers.add_parser(
        "frame",
        help="build or open a LoRaWAN 1.0.x data frame (MIC, FRMPayload encryption)",
        description="Build or open LoRaWAN 1.0.x data frames with ABP session keys.",
        epilog=FRAME_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="frame_command", metavar="ACTION", required=True)

    decode = actions.add_parser(
        "decode",
        help="parse a PHYPayload, check its MIC and decrypt its FRMPayload",
        description=(
            "Parse a PHYPayload, verify its MIC with the NwkSKey and decrypt the FRMPayload\n"
            "(AppSKey for FPort > 0, NwkSKey for FPort 0). Only the low 16 bits of the frame\n"
            "counter travel on air; without --fcnt-msb or --last-fcnt the high 16 bits are\n"
            "taken as 0."
        ),
        epilog=DECODE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    decode.add_argument("phy", metavar="HEX", type=_phy_hex, help="the PHYPayload in hex")
    _add_key_arguments(decode, _decode)
    counter = decode.add_mutually_exclusive_group()
    counter.add_argument(
        "--fcnt-msb",
        metavar="N",
        type=_uint(0xFFFF),
        help="the high 16 bits of the 32-bit frame counter",
    )
    counter.add_argument(
        "--last-fcnt",
        metavar="N",
        type=_uint(0xFFFF_FFFF),
        help="the last 32-bit counter seen from this device; the new one is inferred from it",
    )
    decode.add_argument("--json", action="store_true", help="print one JSON object")

    encode = actions.add_parser(
        "encode",
        help="build a PHYPayload: encrypt the FRMPayload and add the MIC",
        description=(
            "Build a LoRaWAN 1.0.x data frame: encrypt the FRMPayload, compute the MIC and\n"
            "print the PHYPayload in hex. Without --fport and --payload the frame carries\n"
            "only its header (and FOpts)."
        ),
        epilog=ENCODE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    encode.add_argument(
        "--devaddr",
        metavar="HEX",
        required=True,
        type=_dev_addr,
        help="the DevAddr, 8 hex digits as usually written (big-endian), e.g. 260B1234",
    )
    encode.add_argument(
        "--fcnt",
        metavar="N",
        required=True,
        type=_uint(0xFFFF_FFFF),
        help="the full 32-bit frame counter (its low 16 bits go on air)",
    )
    encode.add_argument("--fport", metavar="N", type=_uint(255), help="the port (0: MAC commands)")
    encode.add_argument(
        "--payload",
        metavar="HEX",
        type=_hex,
        default=b"",
        help="the plaintext FRMPayload in hex (default: empty)",
    )
    encode.add_argument(
        "--fopts",
        metavar="HEX",
        type=_hex,
        default=b"",
        help="MAC commands piggy-backed in FOpts, in hex (at most 15 bytes)",
    )
    _add_key_arguments(encode, _encode)
    encode.add_argument("--confirmed", action="store_true", help="a confirmed data frame")
    encode.add_argument("--downlink", action="store_true", help="a downlink (default: uplink)")
    encode.add_argument("--adr", action="store_true", help="set FCtrl.ADR")
    encode.add_argument("--adr-ack-req", action="store_true", help="set FCtrl.ADRACKReq")
    encode.add_argument("--ack", action="store_true", help="set FCtrl.ACK")
    encode.add_argument(
        "--fpending", action="store_true", help="set FCtrl bit 4 (FPending down, ClassB up)"
    )
    encode.add_argument("--json", action="store_true", help="print one JSON object")


class _SessionKey(NamedTuple):
    dest: str
    flag: str
    env: str
    whose: str


_SESSION_KEYS = (
    _SessionKey("nwkskey", "--nwkskey", NWKSKEY_ENV, "network"),
    _SessionKey("appskey", "--appskey", APPSKEY_ENV, "application"),
)


def _add_key_arguments(
    parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]
) -> None:
    """Add the key flags, and make ``handler`` run with both keys resolved."""
    for key in _SESSION_KEYS:
        parser.add_argument(
            key.flag,
            metavar="HEX",
            type=_key,
            help=f"the {key.whose} session key, 32 hex digits (default: ${key.env}, which keeps"
            " it out of shell history and ps; never printed)",
        )

    # The environment is read only once parsing is done, so that a flag given on the
    # command line wins without the variable being looked at, even when it is malformed.
    def run(args: argparse.Namespace) -> int:
        for key in _SESSION_KEYS:
            if getattr(args, key.dest) is None:
                setattr(args, key.dest, _key_from_environment(parser, key))
        return handler(args)

    parser.set_defaults(handler=run)


def _key_from_environment(parser: argparse.ArgumentParser, key: _SessionKey) -> bytes:
    """The key in its variable; else a usage error (exit 2) naming flag and variable."""
    # An empty variable counts as unset: `export VAR=$TYPO` leaves one behind.
    text = os.environ.get(key.env)
    if not text:
        parser.error(
            f"the {key.whose} session key is missing: set {key.env} or give {key.flag} HEX"
        )
    try:
        return _key(text)
    except argparse.ArgumentTypeError as exc:
        # _key's message never contains the value; this one must not either.
        parser.error(f"environment variable {key.env}: {exc}")


def _decode(args: argparse.Namespace) -> int:
    keys = {"nwk_s_key": args.nwkskey, "app_s_key": args.appskey}
    parsed = parse_frame(args.phy)
    if args.fcnt_msb is not None:
        fcnt = args.fcnt_msb << 16 | parsed.fcnt16
        verify_mic(parsed, nwk_s_key=args.nwkskey, fcnt_full=fcnt)
        frame = DataFrame(
            mtype=parsed.mtype,
            dev_addr=parsed.dev_addr,
            fcnt=fcnt,
            adr=parsed.adr,
            adr_ack_req=parsed.adr_ack_req,
            ack=parsed.ack,
            fpending=parsed.fpending,
            fopts=parsed.fopts,
            fport=parsed.fport,
            frm_payload=decrypt_payload(parsed, fcnt_full=fcnt, **keys),
            mic=parsed.mic,
        )
    else:
        frame = open_frame(args.phy, last_fcnt=args.last_fcnt, **keys)
    report = _describe(frame)
    report["mic_ok"] = True  # open_frame / verify_mic raised otherwise
    if args.json:
        print(json.dumps(report))
    else:
        _print_table(report)
    return 0


def _encode(args: argparse.Namespace) -> int:
    if args.downlink:
        mtype = MType.CONFIRMED_DOWN if args.confirmed else MType.UNCONFIRMED_DOWN
    else:
        mtype = MType.CONFIRMED_UP if args.confirmed else MType.UNCONFIRMED_UP
    frame = DataFrame(
        mtype=mtype,
        dev_addr=args.devaddr,
        fcnt=args.fcnt,
        adr=args.adr,
        adr_ack_req=args.adr_ack_req,
        ack=args.ack,
        fpending=args.fpending,
        fopts=args.fopts,
        fport=args.fport,
        frm_payload=args.payload,
    )
    phy = build_frame(frame, nwk_s_key=args.nwkskey, app_s_key=args.appskey)
    if args.json:
        report = _describe(frame)
        report["mic"] = phy[-4:].hex()
        report["phy"] = phy.hex()
        report["size"] = len(phy)
        print(json.dumps(report))
    else:
        print(phy.hex())
    return 0


def _describe(frame: DataFrame) -> dict[str, Any]:
    return {
        "mtype": frame.mtype.name,
        "uplink": frame.uplink,
        "confirmed": frame.mtype.confirmed,
        "dev_addr": f"{frame.dev_addr:08X}",
        "adr": frame.adr,
        "adr_ack_req": frame.adr_ack_req,
        "ack": frame.ack,
        "fpending": frame.fpending,
        "fcnt": frame.fcnt,
        "fcnt16": frame.fcnt & 0xFFFF,
        "fopts": frame.fopts.hex(),
        "fport": frame.fport,
        "frm_payload": frame.frm_payload.hex(),
        "mic": frame.mic.hex() if frame.mic is not None else None,
    }


def _print_table(report: dict[str, Any]) -> None:
    flags = " ".join(
        name
        for name, key in (
            ("ADR", "adr"),
            ("ADRACKReq", "adr_ack_req"),
            ("ACK", "ack"),
            ("ClassB" if report["uplink"] else "FPending", "fpending"),
        )
        if report[key]
    )
    rows = [
        ("MType", _MTYPE_NAMES[MType[report["mtype"]]]),
        ("DevAddr", report["dev_addr"]),
        ("FCtrl", flags or "-"),
        ("FCnt", f"{report['fcnt']} (on air {report['fcnt16']:#06x})"),
        ("FOpts", report["fopts"] or "-"),
        ("FPort", "-" if report["fport"] is None else str(report["fport"])),
        ("MIC", f"{report['mic']} ok"),
        ("FRMPayload", report["frm_payload"] or "-"),
    ]
    for name, value in rows:
        print(f"{name:<11}{value}")


def _parse_hex(text: str) -> bytes | None:
    cleaned = "".join(text.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        return None


# argparse prefixes these messages with "argument --option: ".


def _key(text: str) -> bytes:
    value = _parse_hex(text)
    if value is None or len(value) != 16:
        # The rejected text is deliberately left out: it may be a real key with a typo.
        raise argparse.ArgumentTypeError("must be 32 hex digits (a 16-byte AES-128 key)")
    return value


def _hex(text: str) -> bytes:
    value = _parse_hex(text)
    if value is None:
        raise argparse.ArgumentTypeError("must be hex digits, two per byte")
    return value


def _phy_hex(text: str) -> bytes:
    value = _parse_hex(text)
    if value is None:
        raise argparse.ArgumentTypeError("the frame must be hex digits, two per byte")
    return value


def _dev_addr(text: str) -> int:
    value = _parse_hex(text)
    if value is None or len(value) != 4:
        raise argparse.ArgumentTypeError("must be 8 hex digits")
    return int.from_bytes(value, "big")


def _uint(limit: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            value = -1
        if not 0 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be an integer 0..{limit}")
        return value

    return convert
