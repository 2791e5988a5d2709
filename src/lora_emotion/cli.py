"""The ``lora-emotion`` command line: a thin shell over the library.

Each subcommand lives in ``lora_emotion.commands.<name>`` and exposes ``register(subparsers)``;
its handler returns the process exit code. Errors of the project go to stderr with exit 1,
usage errors exit 2 (argparse), so scripts can tell them apart.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .errors import LoraEmotionError

# Order is the order of the --help listing.
COMMAND_MODULES = (
    "encode",
    "decode",
    "airtime",
    "budget",
    "frame",
    "serve",
    "simulate",
    "demo",
    "monitor",
    "feed",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-emotion",
        description="Carry emotion readings over LoRaWAN: encode, decode, budget, serve.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"lora_emotion.commands.{name}")
        except ModuleNotFoundError as exc:
            # A command whose optional extra is not installed is simply not offered.
            if exc.name and exc.name.startswith("lora_emotion.commands"):
                continue
            if exc.name and not exc.name.startswith("lora_emotion"):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except LoraEmotionError as exc:
        print(f"lora-emotion {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
