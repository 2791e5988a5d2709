"""Is the webhook's second SenML resolver worth keeping? ``parse_delivery`` per delivery, both ways.

One command: ``python bench/kpn_parse_bench.py`` (writes docs/bench-kpn-parse.md; ``--quick``
for a short run). ``parse_delivery`` takes the one-pass resolver (``_plain_pack``) for a body
given as bytes, as the webhook gives it, and always the full ``decode_json`` + ``resolve`` path
for the same body given as text; everything else (payload decoding, deduplication key,
measurements) is the same code. Both run side by side on the same bodies, interleaved, so that
the shared machine's noise hits both alike; medians and ratios are reported.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lora_emotion._plain_pack import resolve_plain
from lora_emotion.aggregator import RelayConfig
from lora_emotion.fleet import Fleet, FleetConfig
from lora_emotion.labels import FER2013
from lora_emotion.messages import Mode
from lora_emotion.networks.kpn import delivery_body, parse_delivery
from lora_emotion.senml import Record, decode_json, resolve
from lora_emotion.simulator import StreamConfig

DOCS = Path(__file__).resolve().parent.parent / "docs" / "bench-kpn-parse.md"
NOW = 1_700_000_000.0
#: Below this gain on every case, one resolver is simpler than two and the second should go.
KEEP_RATIO = 1.5


def fleet_bodies(mode: Mode, count: int) -> list[bytes]:
    """Raw-payload deliveries as KPN sends them, from simulated relays (both layouts)."""
    relay = RelayConfig(
        label_set=FER2013, mode=mode, window_s=60, budget=False, status_interval_min=0
    )
    config = FleetConfig(
        devices=50,
        seed=7,
        stream=StreamConfig(label_set=FER2013),
        relay=relay,
        lorawan=False,
        epoch_s=NOW - 86_400,
    )
    bodies = []
    for delivery in Fleet(config).deliveries():
        bodies.append(delivery.body)
        if len(bodies) >= count:
            break
    return bodies


def decoded_bodies(count: int) -> list[bytes]:
    """Deliveries whose records KPN decoded itself (an emotion and its confidence)."""
    bodies = []
    for index in range(count):
        records = [
            Record(n="emotion", vs=FER2013.labels[index % len(FER2013.labels)]),
            Record(n="confidence", u="/", v=(index % 100) / 100),
        ]
        bodies.append(delivery_body(f"0004A30B{index:08X}", records, base_time=NOW - index))
    return bodies


def per_delivery_us(parse: Callable[[], None], count: int) -> float:
    start = time.perf_counter()
    parse()
    return (time.perf_counter() - start) / count * 1e6


def measure(bodies: Sequence[bytes], repeats: int) -> tuple[float, float]:
    texts = [body.decode("utf-8") for body in bodies]

    def with_plain() -> None:
        for body in bodies:
            parse_delivery(body, now=NOW)

    def full_only() -> None:
        for text in texts:
            parse_delivery(text, now=NOW)

    with_plain()  # decoded payloads are remembered per payload: both runs find them warm
    full_only()
    fast, full = [], []
    for _ in range(repeats):
        fast.append(per_delivery_us(with_plain, len(bodies)))
        full.append(per_delivery_us(full_only, len(bodies)))
    return statistics.median(fast), statistics.median(full)


def resolve_only(bodies: Sequence[bytes], repeats: int) -> tuple[float, float]:
    def fast() -> None:
        for body in bodies:
            resolve_plain(body, now=0.0)

    def full() -> None:
        for body in bodies:
            resolve(decode_json(body), now=0.0)

    a, b = [], []
    for _ in range(repeats):
        a.append(per_delivery_us(fast, len(bodies)))
        b.append(per_delivery_us(full, len(bodies)))
    return statistics.median(a), statistics.median(b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer bodies and repeats")
    parser.add_argument("--output", type=Path, default=DOCS)
    args = parser.parse_args(argv)
    count, repeats = (300, 5) if args.quick else (2000, 15)
    cases = {
        "raw payload, reading mode": fleet_bodies(Mode.READING, count),
        "raw payload, summary mode": fleet_bodies(Mode.SUMMARY, count),
        "KPN-decoded records": decoded_bodies(count),
    }
    taken = {
        name: sum(resolve_plain(b, now=0.0) is not None for b in bodies) / len(bodies)
        for name, bodies in cases.items()
    }
    rows = [
        "| deliveries | one-pass resolver takes | `parse_delivery` with it (µs) | "
        "full path only (µs) | full / with |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for name, bodies in cases.items():
        fast, full = measure(bodies, repeats)
        ratios.append(full / fast)
        rows.append(
            f"| {name} | {taken[name]:.0%} | {fast:.1f} | {full:.1f} | {full / fast:.2f}× |"
        )
    resolve_fast, resolve_full = resolve_only(cases["raw payload, reading mode"], repeats)
    report = [
        "# Parsing KPN deliveries: one-pass resolver or full path",
        "",
        "Written by `python bench/kpn_parse_bench.py`; do not edit by hand.",
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}; {len(next(iter(cases.values())))} "
        f"bodies per case, {repeats} interleaved repeats, medians per delivery.",
        "",
        "`parse_delivery` of the same bodies as bytes (the webhook's way: plain packs take the "
        "one-pass resolver of `lora_emotion/_plain_pack.py`) and as text (always "
        "`senml.decode_json` + `senml.resolve`). Payload decoding, the deduplication key and "
        "the measurements are the same code either way; decoded payloads are remembered, as "
        "in the webhook's steady state.",
        "",
        *rows,
        "",
        f"Resolution alone, reading-mode bodies: one-pass {resolve_fast:.1f} µs, "
        f"`decode_json` + `resolve` {resolve_full:.1f} µs ({resolve_full / resolve_fast:.1f}×).",
        "",
        f"The full path costs {min(ratios):.1f}–{max(ratios):.1f}× as much CPU per delivery. "
        + (
            "That is worth a second resolver on a service whose CPU per delivery is its "
            "throughput (docs/bench-webhook.md), so it is kept."
            if min(ratios) >= KEEP_RATIO
            else f"Below {KEEP_RATIO}× the second resolver is not worth keeping: remove it."
        )
        + " It imports its field names, "
        "name pattern, base fields and number and text checks from `senml`, and "
        "`tests/test_plain_pack.py` runs both paths on generated valid and invalid packs "
        "(hypothesis): the same result, or both refuse.",
        "",
    ]
    args.output.write_text("\n".join(report), encoding="utf-8")
    sys.stdout.write("\n".join(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
