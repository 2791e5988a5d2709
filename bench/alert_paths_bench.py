"""Benchmark the alert paths in process: CPU per delivery of the batch writer, with and without
rules, when devices keep their states and when every delivery changes one.

Usage:
    python bench/alert_paths_bench.py                       # this tree
    python bench/alert_paths_bench.py --baseline b572b60    # and a revision beside it

Batches of 16 deliveries go through ``PostgresBatchWriter`` against the real PostgreSQL on
127.0.0.1:5432 (a fresh database per code tree), one batch at a time. Three loads, one after
the other in each round: no rules; the 20 rules of ``twenty_rules()`` with every device
keeping its emotion (the load of bench/webhook_bench.py, after a warm-up that gives every
device its state); the same rules with every device's emotion changing on every reading (the
same generator over 999 devices, with a writer of its own). Measured: this process's CPU
(the client) and the CPU of the PostgreSQL backends serving the database, per delivery. No
HTTP, no workers: what the rules cost on the write path alone, apart from the machine's noise
at the level of whole servers.

Writes docs/bench-alert-paths.md. With ``--baseline REVISION`` the same measurement runs on
that revision's code too (``git archive`` of it, imported instead of this tree), interleaved
round by round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = ROOT / "docs" / "bench-alert-paths.md"
sys.path.insert(0, str(HERE))
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LOADS = ("no rules", "20 rules, settled", "20 rules, every delivery changes a state")
BATCH = 16
PER_LOAD = 3200


def _deliveries(count: int, offset: int, devices: int) -> list[Any]:
    import webhook_bench
    from lora_emotion.webhook.storage import new_delivery

    from lora_emotion.networks.kpn import parse_delivery

    webhook_bench.DEVICES = devices
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bodies.txt"
        webhook_bench.write_bodies(path, count, offset=offset)
        lines = path.read_text(encoding="ascii").splitlines()
    now = time.time()
    return [
        new_delivery(
            parse_delivery(body.encode(), now=now),
            plug_uuid="bench",
            received_at=now,
            headers="{}",
            body=body.encode(),
        )
        for body in (line.split("\t", 1)[1] for line in lines)
    ]


def _backend_cpu(database: str) -> float:
    """CPU seconds of the PostgreSQL backends connected to ``database``."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as command:
                if f" {database} ".encode() not in command.read():
                    continue
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def _measure_rounds(rounds: int) -> dict[str, list[tuple[float, float]]]:
    """Per load, (client, PostgreSQL) µs per delivery of each round, on the importable code."""
    import psycopg
    from alerts_bench import twenty_rules
    from lora_emotion.webhook.alerts.engine import Evaluator
    from lora_emotion.webhook.alerts.outbox import AlertHook
    from lora_emotion.webhook.alerts.rules import AlertSettings
    from lora_emotion.webhook.commits import PostgresBatchWriter
    from lora_emotion.webhook.migrations import migrate
    from lora_emotion.webhook.storage import create_store

    from lora_emotion.labels import DEFAULT_REGISTRY

    database = f"lora_emotion_paths_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    try:
        store = create_store(url)
        migrate(store.write_engine)
        store.dispose()
        settings = AlertSettings.model_validate(twenty_rules("bench"))

        def hook() -> AlertHook:
            return AlertHook(Evaluator(settings, DEFAULT_REGISTRY))

        writers = {
            LOADS[0]: PostgresBatchWriter(url),
            LOADS[1]: PostgresBatchWriter(url, alerts=hook()),
            LOADS[2]: PostgresBatchWriter(url, alerts=hook()),
        }
        # Eight readings a device: its k-of-5 rules fire at the third, and a device whose
        # check was refused skips the check for its next few deliveries (outbox.py).
        warm = _deliveries(8 * 1000, 50_000_000, 1000)
        for start in range(0, len(warm), BATCH):
            await writers[LOADS[1]].write(warm[start : start + BATCH])
        found: dict[str, list[tuple[float, float]]] = {load: [] for load in LOADS}
        for number in range(rounds):
            for index, load in enumerate(LOADS):
                devices = 999 if index == 2 else 1000
                items = _deliveries(PER_LOAD, 1_000_000 * (3 * number + index) + 1, devices)
                client, server = time.process_time(), _backend_cpu(database)
                for start in range(0, len(items), BATCH):
                    await writers[load].write(items[start : start + BATCH])
                client = time.process_time() - client
                server = _backend_cpu(database) - server
                found[load].append((1e6 * client / len(items), 1e6 * server / len(items)))
        for writer in writers.values():
            await writer.close()
        return found
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _child(rounds: int, pythonpath: Path | None) -> dict[str, list[tuple[float, float]]]:
    """One round set in a process of its own (``pythonpath`` first on its import path)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [sys.executable, __file__, "--measure", str(rounds)]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    result: dict[str, list[tuple[float, float]]] = json.loads(output.strip().splitlines()[-1])
    return result


def _cell(values: list[tuple[float, float]]) -> str:
    client = statistics.median(c for c, _ in values)
    server = statistics.median(s for _, s in values)
    return f"{client:.0f} + {server:.0f} µs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=4, help="rounds per code tree")
    parser.add_argument("--baseline", help="a revision to measure beside this tree")
    parser.add_argument("--output", type=Path, default=REPORT)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure is not None:
        print(json.dumps(asyncio.run(_measure_rounds(args.measure))))
        return 0
    from webhook_bench import baseline_tree

    trees: dict[str, Path | None] = {"this tree": None}
    with tempfile.TemporaryDirectory(dir=HERE, prefix=".run-") as tmp:
        if args.baseline:
            trees[args.baseline] = baseline_tree(args.baseline, Path(tmp))
        results: dict[str, dict[str, list[tuple[float, float]]]] = {
            name: {load: [] for load in LOADS} for name in trees
        }
        for number in range(args.rounds):
            for name, tree in trees.items():
                print(f"round {number + 1}: {name}", file=sys.stderr)
                for load, values in _child(1, tree).items():
                    results[name][load] += [tuple(v) for v in values]  # type: ignore[misc]
    options = sys.argv[1:] if argv is None else argv
    lines = [
        "# Alert paths benchmark (in process)",
        "",
        f"Written by `{' '.join(['python bench/alert_paths_bench.py', *options])}` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC ({platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}).",
        "",
        f"Batches of {BATCH} deliveries through `PostgresBatchWriter` against the real "
        f"PostgreSQL, {PER_LOAD:,} deliveries per load and round, {args.rounds} rounds (each "
        "tree's round in a process of its own, the trees interleaved). Client (this process) "
        "+ PostgreSQL (the database's backends) CPU per delivery, medians over the rounds. See "
        "the module docstring of bench/alert_paths_bench.py for the loads.",
        "",
        "| code | " + " | ".join(LOADS) + " |",
        "|---" * (len(LOADS) + 1) + "|",
        *[
            f"| {name} | " + " | ".join(_cell(results[name][load]) for load in LOADS) + " |"
            for name in trees
        ],
        "",
        "Per round (client, PostgreSQL µs):",
        "",
        *[
            f"- {name}, {load}: " + ", ".join(f"{c:.0f}/{s:.0f}" for c, s in results[name][load])
            for name in trees
            for load in LOADS
        ],
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
