"""``lora-emotion encode TYPE ...``: build a compact payload and show its port, size, airtime."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from ..airtime import time_on_air_ms
from ..errors import EncodeError
from ..labels import LabelRegistry, LabelSet
from ..messages import (
    Batch,
    BatchEntry,
    BatchItem,
    CommandStatus,
    Distribution,
    Face,
    Faces,
    Message,
    Mode,
    Reading,
    Status,
    Summary,
    Vitals,
    encode,
    port_of,
)
from ._common import add_label_options, registry_from

EPILOG = """examples:
  lora-emotion encode reading --label happy --confidence 0.87
  lora-emotion encode reading --no-face
  lora-emotion encode distribution --probs 0.02,0.01,0.03,0.87,0.04,0.02,0.01 --json
  lora-emotion encode faces --face happy:0.9 --face sad:0.4
  lora-emotion encode summary --window 60 --counts 1,0,0,40,5,0,10 --no-face 4 \\
      --mean-confidence 0.81
  lora-emotion encode vitals --label-set physio3 --heart-rate 72 --skin-conductance 3.21 \\
      --label happy --confidence 0.6
  lora-emotion encode status --firmware 1.2.3 --battery 88 --uptime 7200
  lora-emotion encode batch --reading 5:happy:0.87 --reading 65:none --reading 300:sad:0.4
"""


def _floats(text: str, field: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EncodeError(
            f"{text!r} is not a comma-separated list of numbers", field=field
        ) from None


def _ints(text: str, field: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise EncodeError(
            f"{text!r} is not a comma-separated list of integers", field=field
        ) from None


def _label_set(args: argparse.Namespace, registry: LabelRegistry) -> LabelSet:
    return registry.by_name(args.label_set)


def _reading_from(label_set: LabelSet, label: str | None, confidence: float | None) -> Reading:
    if label in (None, "none"):
        return Reading(label_set=label_set, label=None)
    return Reading(label_set=label_set, label=label, confidence=confidence)


def _build_reading(args: argparse.Namespace, label_set: LabelSet) -> Message:
    if args.no_face:
        return Reading(label_set=label_set, label=None)
    if args.label is None:
        raise EncodeError("give --label (and --confidence) or --no-face", field="--label")
    return _reading_from(label_set, args.label, args.confidence)


def _build_distribution(args: argparse.Namespace, label_set: LabelSet) -> Message:
    return Distribution(label_set=label_set, probabilities=tuple(_floats(args.probs, "--probs")))


def _build_faces(args: argparse.Namespace, label_set: LabelSet) -> Message:
    faces = []
    for position, text in enumerate(args.face or []):
        label, _, confidence = text.partition(":")
        faces.append(
            Face(
                label=label,
                confidence=_floats(confidence, f"--face[{position}]")[0] if confidence else -1.0,
            )
        )
    return Faces(label_set=label_set, faces=tuple(faces))


def _build_summary(args: argparse.Namespace, label_set: LabelSet) -> Message:
    return Summary(
        label_set=label_set,
        window_s=args.window,
        counts=tuple(_ints(args.counts, "--counts")),
        no_face=args.no_face,
        mean_confidence=args.mean_confidence,
    )


def _build_vitals(args: argparse.Namespace, label_set: LabelSet) -> Message:
    reading = None
    if args.label is not None:
        reading = _reading_from(label_set, args.label, args.confidence)
    return Vitals(
        label_set=label_set,
        heart_rate_bpm=args.heart_rate,
        skin_conductance_us=args.skin_conductance,
        reading=reading,
    )


def _build_status(args: argparse.Namespace, registry: LabelRegistry) -> Message:
    parts = _ints(args.firmware.replace(".", ","), "--firmware")
    if len(parts) != 3:
        raise EncodeError(f"{args.firmware!r} is not MAJOR.MINOR.PATCH", field="--firmware")
    label_set = registry.by_name(args.label_set)
    return Status(
        firmware=(parts[0], parts[1], parts[2]),
        battery_percent=args.battery,
        uptime_s=args.uptime,
        dropped=args.dropped,
        window_s=args.window,
        mode=Mode[args.mode.upper()],
        daily_budget_s=args.daily_budget,
        label_set_id=label_set.id,
        label_set_fingerprint=label_set.fingerprint,
        command_seq=args.command_seq,
        command_status=CommandStatus[args.command_status.upper()],
    )


def _build_batch(args: argparse.Namespace, label_set: LabelSet) -> Message:
    entries: list[BatchEntry] = []
    for option in ("reading", "distribution", "vitals"):
        for position, text in enumerate(getattr(args, option) or []):
            field = f"--{option}[{position}]"
            age_text, _, rest = text.partition(":")
            age = _ints(age_text, field)[0] if age_text else -1
            item: BatchItem
            if option == "reading":
                label, _, confidence = rest.partition(":")
                item = _reading_from(
                    label_set, label, _floats(confidence, field)[0] if confidence else None
                )
            elif option == "distribution":
                item = Distribution(label_set=label_set, probabilities=tuple(_floats(rest, field)))
            else:
                heart, _, skin = rest.partition(":")
                item = Vitals(
                    label_set=label_set,
                    heart_rate_bpm=_ints(heart, field)[0] if heart else None,
                    skin_conductance_us=_floats(skin, field)[0] if skin else None,
                )
            entries.append(BatchEntry(age_s=age, message=item))
    return Batch(label_set=label_set, entries=tuple(entries))


Builder = Callable[[argparse.Namespace, LabelSet], Message]
BUILDERS: dict[str, Builder] = {
    "reading": _build_reading,
    "distribution": _build_distribution,
    "faces": _build_faces,
    "summary": _build_summary,
    "vitals": _build_vitals,
    "batch": _build_batch,
}


def run(args: argparse.Namespace) -> int:
    registry = registry_from(args)
    if args.message_type == "status":
        message = _build_status(args, registry)
    else:
        message = BUILDERS[args.message_type](args, _label_set(args, registry))
    payload = encode(message)
    port = port_of(message)
    airtime = time_on_air_ms(len(payload), sf=args.sf)
    if args.json:
        print(
            json.dumps(
                {
                    "type": args.message_type,
                    "hex": payload.hex().upper(),
                    "port": port,
                    "size": len(payload),
                    "sf": args.sf,
                    "airtime_ms": round(airtime, 3),
                    "airtime_ms_by_sf": {
                        sf: round(time_on_air_ms(len(payload), sf=sf), 3) for sf in range(7, 13)
                    },
                }
            )
        )
    else:
        sys.stdout.write(
            f"{payload.hex().upper()}  port {port}  {len(payload)} B  "
            f"{airtime:.1f} ms at SF{args.sf}\n"
        )
    return 0


def _common(parser: argparse.ArgumentParser, *, label_set: bool = True) -> None:
    if label_set:
        parser.add_argument(
            "--label-set",
            default="fer2013",
            help="label set name (default fer2013; see --labels-file)",
        )
    add_label_options(parser)
    parser.add_argument(
        "--json", action="store_true", help="print an object with hex, port, size and airtime_ms"
    )
    parser.add_argument(
        "--sf",
        type=int,
        default=12,
        choices=range(7, 13),
        metavar="7..12",
        help="spreading factor for the airtime shown (default 12, the worst)",
    )
    parser.set_defaults(handler=run)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "encode",
        help="encode a message into a compact payload",
        description="Encode one message into a compact payload and show its FPort, size and "
        "time on air.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    types = parser.add_subparsers(dest="message_type", metavar="TYPE", required=True)

    p = types.add_parser("reading", help="one label with its confidence, or no face")
    p.add_argument("--label", help="class name, e.g. happy")
    p.add_argument("--confidence", type=float, help="0..1, carried in 1 %% steps")
    p.add_argument("--no-face", action="store_true", help="no face in the frame")
    _common(p)

    p = types.add_parser("distribution", help="the probability of every class")
    p.add_argument("--probs", required=True, help="comma-separated, in class order, sum ≈ 1")
    _common(p)

    p = types.add_parser("faces", help="several faces of one frame")
    p.add_argument(
        "--face",
        action="append",
        metavar="LABEL:CONF",
        help="one face; repeat for each (none for an empty frame)",
    )
    _common(p)

    p = types.add_parser("summary", help="per-class counts over a window")
    p.add_argument("--window", type=int, required=True, help="window length in seconds")
    p.add_argument("--counts", required=True, help="comma-separated count per class")
    p.add_argument("--no-face", type=int, default=0, help="readings without a face")
    p.add_argument(
        "--mean-confidence",
        type=float,
        help="mean confidence of the dominant class (needed when any class counted)",
    )
    _common(p)

    p = types.add_parser("vitals", help="heart rate and skin conductance, optionally a label")
    p.add_argument("--heart-rate", type=int, help="beats per minute, 0..250")
    p.add_argument("--skin-conductance", type=float, help="microsiemens, 0..100")
    p.add_argument("--label", help="class name (or none)")
    p.add_argument("--confidence", type=float, help="0..1")
    _common(p)

    p = types.add_parser("status", help="device status (port 2)")
    p.add_argument("--firmware", default="1.0.0", help="MAJOR.MINOR.PATCH")
    p.add_argument("--battery", type=int, help="battery level in percent")
    p.add_argument("--uptime", type=int, default=0, help="seconds since boot")
    p.add_argument("--dropped", type=int, default=0, help="readings dropped since boot")
    p.add_argument("--window", type=int, default=60, help="window length in seconds")
    p.add_argument("--mode", default="summary", choices=[m.name.lower() for m in Mode])
    p.add_argument("--daily-budget", type=int, default=30, help="daily airtime cap, seconds")
    p.add_argument("--command-seq", type=int, default=0)
    p.add_argument(
        "--command-status", default="none", choices=[c.name.lower() for c in CommandStatus]
    )
    _common(p)

    p = types.add_parser("batch", help="several timed entries in one uplink")
    p.add_argument(
        "--reading",
        action="append",
        metavar="AGE:LABEL[:CONF]",
        help="a reading AGE seconds before sending (LABEL none for no face)",
    )
    p.add_argument("--distribution", action="append", metavar="AGE:P1,P2,...")
    p.add_argument("--vitals", action="append", metavar="AGE:HR[:SC]")
    _common(p)
