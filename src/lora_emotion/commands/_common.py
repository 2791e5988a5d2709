"""Argument helpers shared by the codec subcommands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DecodeError, EncodeError
from ..labels import DEFAULT_REGISTRY, LabelRegistry, parse_label_sets


def add_label_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--labels-file",
        type=Path,
        metavar="FILE",
        help='JSON file declaring user label sets: {"label_sets": [{"id": 6, "name": ..., '
        '"labels": [...]}]}',
    )


def registry_from(args: argparse.Namespace) -> LabelRegistry:
    """The built-in label sets plus those of ``--labels-file``.

    Raises:
        EncodeError: the file is unreadable, not JSON, or declares an invalid set.
    """
    path: Path | None = args.labels_file
    if path is None:
        return DEFAULT_REGISTRY
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EncodeError(f"cannot read {path}: {exc.strerror}", field="--labels-file") from exc
    except ValueError as exc:
        raise EncodeError(f"{path} is not JSON: {exc}", field="--labels-file") from exc
    return parse_label_sets(document)


def parse_hex(text: str, *, field: str = "HEX") -> bytes:
    """Bytes from hex, tolerating spaces, colons and a 0x prefix.

    Raises:
        DecodeError: not hex.
    """
    cleaned = text.strip().removeprefix("0x").replace(" ", "").replace(":", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise DecodeError(f"{text!r} is not hexadecimal", field=field) from None
