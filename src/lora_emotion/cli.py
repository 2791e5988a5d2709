"""The ``lora-emotion`` command line: a thin shell over the library.

Each subcommand lives in ``lora_emotion.commands.<name>`` and exposes ``register(subparsers)``;
its handler returns the process exit code. Errors of the project go to stderr with exit 1,
usage errors exit 2 (argparse), so scripts can tell them apart.

Why every command is listed whatever is installed: a command that vanishes from ``--help``
because its optional extra is missing leaves the user guessing, and one that starts and then
fails deep inside a dependency prints a traceback. Each command declares the extras it needs;
when one is missing the command is still listed, and running it prints one line naming the
``pip install`` to run, for the source this copy was installed from.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import re
import shlex
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Final, NamedTuple

from .errors import LoraEmotionError

DISTRIBUTION: Final = "lora-emotion"


class Command(NamedTuple):
    """A subcommand: its module, the one-line summary ``--help`` lists, the extras it needs."""

    name: str
    summary: str
    extras: tuple[str, ...] = ()


# Order is the order of the --help listing. The summaries are the ones the modules register;
# tests/commands/test_cli.py checks that they agree.
COMMANDS: Final = (
    Command("encode", "encode a message into a compact payload"),
    Command("decode", "decode an uplink payload into SenML"),
    Command("airtime", "time on air of an uplink per data rate"),
    Command("budget", "uplinks per day under the duty cycle and fair-use cap"),
    Command("downlink", "encode a command downlink, or queue it at The Things Stack"),
    Command(
        "frame",
        "build or open a LoRaWAN 1.0.x data frame (MIC, FRMPayload encryption)",
        ("lorawan",),
    ),
    Command("serve", "run the KPN Things webhook service", ("webhook",)),
    Command(
        "simulate",
        "drive virtual relays and post their network's deliveries to a webhook",
        ("simulate",),
    ),
    Command(
        "demo",
        "run the webhook on SQLite with simulated devices feeding it",
        ("webhook", "simulate"),
    ),
    Command("monitor", "show the relay's USB log with uplinks decoded", ("serial",)),
    Command("feed", "send readings to the relay over USB serial (framed protocol)", ("serial",)),
)

EPILOG = """\
exit status:
  0    success
  1    an error, one line on stderr saying what and where (bad input, unreadable file, a
       server that cannot start, a missing optional extra); simulate also when a delivery
       was finally discarded, feed when a line was rejected
  2    a usage error: unknown command or option, missing or malformed argument (argparse)
  130  interrupted (Ctrl-C)

Every command has --help with examples; see also README.md and docs/.
"""

_REQUIREMENT_NAME: Final = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")
_EXTRA_MARKER: Final = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normalise(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache  # read once per process: each lookup scans the installed distributions
def _declared_requirements() -> tuple[str, ...]:
    try:
        return tuple(metadata.requires(DISTRIBUTION) or ())
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        return ()


@functools.cache
def _installed(name: str) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def _requirements_of(extras: Iterable[str]) -> list[str]:
    """The distributions ``extras`` of this package pull in, following self-references."""
    declared = _declared_requirements()
    by_extra: dict[str, list[tuple[str, list[str]]]] = {}
    for line in declared:
        requirement, _, marker = line.partition(";")
        extra = _EXTRA_MARKER.search(marker)
        parsed = _REQUIREMENT_NAME.match(requirement)
        if extra is None or parsed is None:
            continue
        nested = [part.strip() for part in (parsed.group(2) or "").split(",") if part.strip()]
        by_extra.setdefault(extra.group(1), []).append((parsed.group(1), nested))
    pending = list(extras)
    seen: set[str] = set()
    names: list[str] = []
    while pending:
        wanted = pending.pop()
        if wanted in seen:
            continue
        seen.add(wanted)
        for name, nested in by_extra.get(wanted, []):
            if _normalise(name) == DISTRIBUTION:
                pending.extend(nested)
            elif name not in names:
                names.append(name)
    return names


def missing_distributions(extras: Iterable[str]) -> list[str]:
    """The distributions of ``extras`` that are not installed (empty when all are)."""
    return [name for name in _requirements_of(extras) if not _installed(name)]


def install_command(extras: Sequence[str]) -> str:
    """The ``pip install`` that adds ``extras`` to this copy, from where it was installed.

    The package is not on an index: pip records the checkout or wheel it was installed from
    (PEP 610 ``direct_url.json``), and that is what to install the extras from.
    """
    where = DISTRIBUTION
    editable = False
    try:
        direct = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        direct = None
    if direct:
        try:
            origin = json.loads(direct)
        except ValueError:
            origin = {}
        url = str(origin.get("url", ""))
        if url.startswith("file://"):
            where = url.removeprefix("file://")
            editable = bool(origin.get("dir_info", {}).get("editable"))
    target = f"{where}[{','.join(extras)}]"
    pip = f"{shlex.quote(sys.executable)} -m pip install"
    return f"{pip} {'-e ' if editable else ''}{shlex.quote(target)}"


def _missing_extra_message(command: Command, missing: Sequence[str]) -> str:
    plural = "s" if len(command.extras) > 1 else ""
    names = " and ".join(f"'{extra}'" for extra in command.extras)
    return (
        f"lora-emotion {command.name}: error: needs the {names} extra{plural} "
        f"(missing {', '.join(missing)}): {install_command(command.extras)}"
    )


def _register_unavailable(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    command: Command,
    missing: Sequence[str],
) -> None:
    """List a command whose extras are missing; any use of it prints how to install them."""
    parser = subparsers.add_parser(
        command.name,
        help=f"{command.summary} [needs: {', '.join(command.extras)}]",
        add_help=False,
        prefix_chars="\0",  # every argument, --help included, goes to the handler
    )
    parser.add_argument("ignored", nargs="*")
    parser.set_defaults(unavailable=command, missing=list(missing))


def _version() -> str:
    try:
        return f"{DISTRIBUTION} {metadata.version(DISTRIBUTION)}"
    except metadata.PackageNotFoundError:
        return f"{DISTRIBUTION} (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lora-emotion",
        description="Carry emotion readings over LoRaWAN: encode, decode, budget, serve.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        missing = missing_distributions(command.extras)
        if missing:
            _register_unavailable(subparsers, command, missing)
            continue
        try:
            module = importlib.import_module(f"lora_emotion.commands.{command.name}")
        except ModuleNotFoundError as exc:
            # Installed but not importable (a broken or partial environment): listed all the
            # same, and the handler says which module is missing.
            if exc.name is None or exc.name.split(".")[0] == "lora_emotion":
                raise
            _register_unavailable(subparsers, command, [exc.name])
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    by_name = {command.name: command for command in COMMANDS}
    unavailable: Command | None = getattr(args, "unavailable", None)
    if unavailable is not None:
        print(_missing_extra_message(unavailable, args.missing), file=sys.stderr)
        return 1
    try:
        code: int = args.handler(args)
    except LoraEmotionError as exc:
        print(f"lora-emotion {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        # An optional dependency imported only when used, missing although the extras'
        # distributions are installed (a partial environment).
        if exc.name is None or exc.name.split(".")[0] == "lora_emotion":
            raise
        command = by_name[args.command]
        if not command.extras:
            raise
        print(_missing_extra_message(command, [exc.name]), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
