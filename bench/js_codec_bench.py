"""Time of decodeUplink in the JavaScript codec under node, beside Python's decode_uplink.

One command: ``python bench/js_codec_bench.py`` (writes docs/bench-js-codec.md; ``--quick`` for
a short run). Needs node and codecs/js as committed (no npm packages). Rounds alternate: a
Python round times every case in this process, then a node process (started outside the
timing, warmed up inside) times the same cases in the source and the console build. Medians
over the rounds, and their ratio to Python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path

from lora_emotion import thingsml
from lora_emotion.labels import FER2013, parse_label_sets
from lora_emotion.messages import (
    Batch,
    BatchEntry,
    Distribution,
    Message,
    Summary,
    decode,
    encode,
    port_of,
)
from lora_emotion.uplink import decode_uplink

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "bench-js-codec.md"
ROUND_SCRIPT = ROOT / "bench" / "js_codec_bench.js"
BUILDS = {
    "source": ROOT / "codecs" / "js" / "lora-emotion-codec.js",
    "console": ROOT / "codecs" / "js" / "lora-emotion-codec.console.js",
}
# (name, FPort, payload hex), from docs/payload-format.md and tests/vectors/messages.json.
CASES = [
    ("reading (port 16, 2 B)", 16, "0186"),
    ("distribution, 7 classes (port 17, 4 B)", 17, "0B86E88E"),
    ("3 faces (port 18, 3 B)", 18, "043F21"),
    ("summary, 60 s window (port 19, 7 B)", 19, "9B8794D4A81798"),
    ("vitals + reading (port 36, 4 B)", 36, "1857BBB1"),
    ("status (port 2, 16 B)", 2, "0028B7B42002D0001202CB8AE3FC681D"),
    ("batch of readings (port 21, 9 B)", 21, "0000756B6EC91CFD48"),
    ("2021 demo ThingsML (port 1, 18 B)", 1, "81A20067656D6F74696F6E03656861707079"),
]


def python_round(loops: int) -> dict[str, dict[str, float]]:
    """µs per call: the message alone, decode_uplink's records, and those as JSON objects."""
    result: dict[str, dict[str, float]] = {"message": {}, "python": {}, "python json": {}}
    for name, fport, payload_hex in CASES:
        payload = bytes.fromhex(payload_hex)
        message: Callable[[], object] = (
            partial(thingsml.decode, payload)
            if fport == 1
            else partial(decode, payload, fport=fport)
        )
        for _ in range(loops // 10):  # warm the per-set memo and caches
            decode_uplink(payload, fport=fport)
        start = time.perf_counter()
        for _ in range(loops):
            message()
        first = time.perf_counter()
        for _ in range(loops):
            decode_uplink(payload, fport=fport)
        second = time.perf_counter()
        for _ in range(loops):
            [record.to_json_dict() for record in decode_uplink(payload, fport=fport)]
        third = time.perf_counter()
        result["message"][name] = (first - start) * 1e6 / loops
        result["python"][name] = (second - first) * 1e6 / loops
        result["python json"][name] = (third - second) * 1e6 / loops
    return result


def node_round(node: str, build: Path, loops: int) -> dict[str, float]:
    cases = [
        {"name": name, "fport": fport, "bytes": list(bytes.fromhex(h))} for name, fport, h in CASES
    ]
    out = subprocess.run(
        [node, str(ROUND_SCRIPT), str(build), json.dumps(cases), str(loops)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    answer: dict[str, float] = json.loads(out)
    return answer


#: A user set as large as the format allows, for the slowest decodes (bigger integers).
WIDE_SETS = {
    "label_sets": [{"id": 9, "name": "wide64", "labels": [f"c{i:02d}" for i in range(64)]}]
}
COLD_SNIPPET = """
const codec = require(process.argv[1]);
const input = JSON.parse(process.argv[2]);
const start = process.hrtime.bigint();
const result = codec.decodeUplink(input);
const took = Number(process.hrtime.bigint() - start) / 1000;
if (!result.data) { throw new Error(JSON.stringify(result)); }
process.stdout.write(String(took));
"""


def heavy_cases() -> list[tuple[str, int, str]]:
    """The most work per uplink: 64-class summaries and distributions, a long FER-2013 window."""
    registry = parse_label_sets(WIDE_SETS)
    wide = registry.sets[9]
    minute = [0] * 64
    for i in range(60):
        minute[(i * 7) % 64] += 1
    hour = [3600 // 7] * 7
    messages: list[tuple[str, Message]] = [
        (
            "summary, FER-2013, 3600 readings",
            Summary(label_set=FER2013, window_s=3600, counts=tuple(hour), mean_confidence=0.7),
        ),
        (
            "summary, 64 classes, 60 readings",
            Summary(label_set=wide, window_s=60, counts=tuple(minute), mean_confidence=0.5),
        ),
        (
            "batch of 2 distributions, 64 classes",
            Batch(
                label_set=wide,
                entries=tuple(
                    BatchEntry(
                        age_s=age,
                        message=Distribution(label_set=wide, probabilities=(1 / 64,) * 64),
                    )
                    for age in (0, 60)
                ),
            ),
        ),
    ]
    return [(name, port_of(m), encode(m).hex().upper()) for name, m in messages]


def cold_call(node: str, build: Path, fport: int, payload_hex: str) -> float:
    """µs of the first decodeUplink in a fresh node without its JIT (an interpreter, as in
    TTN's formatter runtime), after loading the codec."""
    request = {
        "bytes": list(bytes.fromhex(payload_hex)),
        "fPort": fport,
        "variables": {"labelSets": json.dumps(WIDE_SETS)},
    }
    out = subprocess.run(
        [node, "--jitless", "-e", COLD_SNIPPET, str(build), json.dumps(request)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return float(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and loops (smoke run)")
    parser.add_argument("--output", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    node = shutil.which("node")
    if node is None:
        print("node is needed for this benchmark", file=sys.stderr)
        return 1
    rounds, loops = (3, 1000) if args.quick else (9, 5000)
    load_before = os.getloadavg()[0]
    timings: dict[str, dict[str, list[float]]] = {
        "message": {},
        "python": {},
        "python json": {},
        **{b: {} for b in BUILDS},
    }
    for _ in range(rounds):
        sides = list(python_round(loops).items())
        sides += [(build, node_round(node, path, loops)) for build, path in BUILDS.items()]
        for side, numbers in sides:
            for name, value in numbers.items():
                timings[side].setdefault(name, []).append(value)
    cold_cases = [CASES[0], CASES[3], *heavy_cases()]
    cold: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, fport, payload_hex in cold_cases:
            cold.setdefault(name, []).append(cold_call(node, BUILDS["source"], fport, payload_hex))
    node_version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    report = [
        "# JavaScript codec benchmark",
        "",
        "Written by `python bench/js_codec_bench.py`; do not edit by hand.",
        f"Python {platform.python_version()} and node {node_version} on {platform.machine()}, "
        f"{date.today().isoformat()}; {rounds} interleaved rounds of {loops} calls per case, "
        f"medians. Load average {load_before:.1f} before and {os.getloadavg()[0]:.1f} after "
        "the run (2 cores): on a busy machine both languages slow down; read the ratios.",
        "",
        "Python columns: `lora_emotion.messages.decode` (the message object; "
        "`thingsml.decode` on port 1), `lora_emotion.uplink.decode_uplink` (the SenML records, "
        "frozen `Record` objects), and decode_uplink with each record turned into the JSON "
        "object (`to_json_dict`) that the JavaScript `decodeUplink` returns under "
        "`data.records`. JavaScript is `codecs/js` under node: the readable source and the "
        "minified console build, each `decodeUplink` call giving the records as plain "
        "objects. Python interns the readings it has decoded before (the steady state of a "
        "receiver); the JavaScript codec decodes every call afresh. The ratio is JS (source) "
        "to Python decode_uplink.",
        "",
        "| uplink | Python message µs | Python decode_uplink µs | + JSON objects µs "
        "| JS µs (source) | JS µs (console build) | JS / decode_uplink |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, _, _ in CASES:
        message = statistics.median(timings["message"][name])
        python = statistics.median(timings["python"][name])
        objects = statistics.median(timings["python json"][name])
        source = statistics.median(timings["source"][name])
        console = statistics.median(timings["console"][name])
        report.append(
            f"| {name} | {message:.2f} | {python:.2f} | {objects:.2f} | {source:.2f} "
            f"| {console:.2f} | {source / python:.2f}× |"
        )
    report += [
        "",
        "## First call without a JIT",
        "",
        "The Things Stack runs formatters in an ECMAScript 5.1 interpreter, where the first "
        "call is all there is. Here each call is the first `decodeUplink` in a fresh "
        "`node --jitless` (V8's interpreter only) after the source build is loaded; medians "
        f"over {rounds} processes. The slowest uplinks are those with the largest integers: "
        "summaries and distributions of a 64-class user set (up to 408-bit values).",
        "",
        "| uplink | bytes | first call µs (node --jitless) |",
        "|---|---|---|",
    ]
    for name, _, payload_hex in cold_cases:
        report.append(f"| {name} | {len(payload_hex) // 2} | {statistics.median(cold[name]):.0f} |")
    report.append("")
    args.output.write_text("\n".join(report), encoding="utf-8")
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
