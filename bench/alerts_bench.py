"""Benchmark alerting: ingest throughput with 20 rules against none, and rule hit -> MQTT publish.

Usage:
    python bench/alerts_bench.py                      # 3 rounds of 10 s per configuration
    python bench/alerts_bench.py --duration 5 --rounds 1

Each round starts two ``lora-emotion serve --workers 2``, one without rules and one with the
20 rules of ``twenty_rules()`` and an MQTT channel to the Mosquitto on 127.0.0.1:1883, each on
a fresh PostgreSQL database; warms each up with wrk for 8 s and waits until its alert outbox
is empty; then loads them in turn, window by window (A B B A, ``--windows`` per configuration,
``--duration`` seconds in all per configuration), with unique signed deliveries from 1,000
devices (the generator of bench/webhook_bench.py), while 10 more devices send deliveries that
each raise an alert, 5 a second (18,000 alerts an hour: more than a fleet of 1,000 should
raise). Alternating short windows on servers that are both up makes what else the shared
machine does weigh on both alike. A subscriber notes when each alert arrives: rule hit ->
publish is that arrival minus the alert's ``created_at`` (the receive time of the delivery that
hit the rule), on one clock. The report gives per-round ratios and medians.

Writes docs/bench-alerts.md. Needs wrk, PostgreSQL on 127.0.0.1:5432 (user postgres may create
databases) and Mosquitto on 127.0.0.1:1883.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhook_bench import (
    MAX_STORED_RATE,
    PLUG,
    SECRET,
    Scenario,
    Server,
    cpu_seconds,
    fresh_store,
    run_wrk,
    write_bodies,
)

from lora_emotion.labels import FER2013
from lora_emotion.messages import Reading, encode, port_of
from lora_emotion.networks.kpn import delivery_body, message_token, raw_payload_records

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = ROOT / "docs" / "bench-alerts.md"
TRIGGER_DEVICES = [f"0004A30BFF{index:06X}" for index in range(10)]
TRIGGER_RATE = 5.0
WARMUP_S = 8.0


def twenty_rules(prefix: str) -> dict[str, Any]:
    """The ``[alerts]`` table of the benchmark: 20 rules of every kind, one MQTT channel."""
    labels = FER2013.labels
    rules: list[dict[str, Any]] = [
        {
            "name": "trigger",
            "kind": "change",
            "to": ["sad"],
            "tag": "trigger",
            "cooldown_s": 0,
            "severity": "critical",
        }
    ]
    rules += [
        {
            "name": f"sustained-{label}",
            "kind": "sustained",
            "label": label,
            "k": 3,
            "n": 5,
            "confidence": 0.3,
        }
        for label in labels
    ]
    rules += [
        {"name": "angry-share", "kind": "sustained", "label": "angry", "share": 0.5},
        {"name": "to-angry", "kind": "change", "to": ["angry"]},
        {"name": "to-fear", "kind": "change", "to": ["fear"]},
        {"name": "to-sad-or-angry", "kind": "change", "to": ["sad", "angry"]},
        {"name": "to-surprise", "kind": "change", "to": ["surprise"], "confidence": 0.5},
        {
            "name": "low-battery",
            "kind": "trouble",
            "dropped_above": None,
            "label_set_mismatch": False,
        },
        {"name": "dropping", "kind": "trouble", "battery_below": None},
        {"name": "any-trouble", "kind": "trouble"},
        {"name": "quiet-1h", "kind": "silence", "after_s": "1h"},
        {"name": "quiet-1d", "kind": "silence", "after_s": "1d", "severity": "critical"},
        {"name": "quiet-ward", "kind": "silence", "after_s": "2h", "tag": "trigger"},
        {"name": "sad-share", "kind": "sustained", "label": "sad", "share": 0.4},
    ]
    assert len(rules) == 20, len(rules)
    return {
        "rules": rules,
        "tags": {"trigger": TRIGGER_DEVICES},
        "mqtt": {"topic_prefix": prefix},
        "silence_check_s": 10,
    }


def _alerts_env(prefix: str) -> dict[str, str]:
    return {"LORA_EMOTION_ALERTS": json.dumps(twenty_rules(prefix))}


def _signed(eui: str, label: str, base_time: float) -> tuple[bytes, dict[str, str]]:
    message = Reading(label_set=FER2013, label=label, confidence=0.9)
    records = raw_payload_records(encode(message), port_of(message))
    body = delivery_body(eui, records, base_time=base_time)
    headers = {
        "Content-Type": "application/json",
        "Things-Plug-UUID": PLUG,
        "Things-Message-Token": message_token(body, SECRET),
    }
    return body, headers


def _pending(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM alert_deliveries WHERE delivered_at IS NULL"
        ).fetchone()
        assert row is not None
        return int(row[0])


def _alert_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM alerts").fetchone()
        assert row is not None
        return int(row[0])


def _created(url: str) -> dict[str, datetime]:
    with psycopg.connect(url) as conn:
        return {
            alert_id: created
            for alert_id, created in conn.execute(
                "SELECT alert_id, created_at FROM alerts WHERE rule = 'trigger'"
            )
        }


@dataclass
class Run:
    """One server under load: its ingest rate, and the alerts the trigger raised meanwhile."""

    label: str
    rules: bool
    round_number: int
    rate: float
    p50_ms: float
    p99_ms: float
    failed: int
    cpu_server_us: float
    cpu_postgres_us: float
    drained: int
    drain_s: float
    alerts: int = 0
    latencies: list[float] = field(default_factory=list)
    #: Deliveries of watched devices stored after a summary check, and evaluated, while wrk ran.
    settled: float = 0.0
    evaluated: float = 0.0


def _evaluations(url: str) -> dict[str, float]:
    """The service's ``lora_emotion_alert_evaluations_total`` by path."""
    text = httpx.get(url + "/metrics", timeout=5).text
    return {
        path: float(found.group(1))
        for path in ("settled", "evaluated")
        if (
            found := re.search(
                rf'^lora_emotion_alert_evaluations_total\{{path="{path}"\}} (\S+)$',
                text,
                re.MULTILINE,
            )
        )
    }


class Trigger:
    """Deliveries that each hit the trigger rule, at ``TRIGGER_RATE`` per second, while an MQTT
    subscriber notes when each alert arrives."""

    def __init__(self, url: str, prefix: str, start: int, count: int, base: float) -> None:
        self.url = url
        self.start = start
        self.count = count
        self.base = base
        self.sent = 0
        self.arrivals: dict[str, float] = {}
        self.subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.subscriber.on_message = self._arrived
        self.subscriber.connect("127.0.0.1", 1883)
        self.subscriber.subscribe(f"{prefix}/alerts/+/critical", qos=1)
        self.subscriber.loop_start()
        self.thread = threading.Thread(target=self._send)

    def _arrived(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.arrivals.setdefault(json.loads(message.payload)["id"], time.time())

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            started = time.monotonic()
            for sent in range(self.count):
                # Numbered on from the previous window's: each device alternates sad, happy.
                number = self.start + sent
                eui = TRIGGER_DEVICES[number % len(TRIGGER_DEVICES)]
                step = number // len(TRIGGER_DEVICES)
                label = "sad" if step % 2 == 0 else "happy"
                body, headers = _signed(eui, label, self.base + step)
                answer = client.post("/uplinks/kpn", content=body, headers=headers)
                self.sent += answer.status_code == 200
                time.sleep(max(0.0, started + (sent + 1) / TRIGGER_RATE - time.monotonic()))

    def stop(self) -> None:
        self.subscriber.loop_stop()
        self.subscriber.disconnect()


@dataclass
class _Side:
    """One configuration's server in a round, and what its measured windows added up to."""

    rules: bool
    url: str
    server: Server
    prefix: str
    requests: int = 0
    seconds: float = 0.0
    latency_p50: list[float] = field(default_factory=list)
    latency_p99: list[float] = field(default_factory=list)
    failed: int = 0
    cpu_server: float = 0.0
    cpu_postgres: float = 0.0
    drained: int = 0
    drain_s: float = 0.0
    alerts: int = 0
    latencies: list[float] = field(default_factory=list)
    settled: float = 0.0
    evaluated: float = 0.0
    windows: int = 0
    triggered: int = 0


def _measure(side: _Side, bodies: Path, duration: float, connections: int, base: float) -> None:
    """One window of wrk load on ``side`` while the trigger raises alerts; added to it."""
    count = int(TRIGGER_RATE * duration)
    trigger = Trigger(side.server.url, side.prefix, side.triggered, count, base)
    side.triggered += count
    side.windows += 1
    alerts_before = _alert_count(side.url)
    created_before = set(_created(side.url)) if side.rules else set()
    database = side.url.rsplit("/", 1)[-1]
    # The counters are read outside the CPU accounting: a scrape costs the server CPU too.
    paths_before = _evaluations(side.server.url) if side.rules else {}
    before = cpu_seconds(side.server.process.pid, database)
    trigger.thread.start()
    result = run_wrk(side.server.url, bodies, duration=duration, connections=connections)
    after = cpu_seconds(side.server.process.pid, database)
    paths_after = _evaluations(side.server.url) if side.rules else {}
    trigger.thread.join()
    time.sleep(2.0)
    created = _created(side.url) if side.rules else {}
    side.alerts += _alert_count(side.url) - alerts_before
    trigger.stop()
    side.requests += result["requests"]
    side.seconds += result["duration_us"] / 1e6
    side.latency_p50.append(result["p50_us"] / 1000)
    side.latency_p99.append(result["p99_us"] / 1000)
    side.failed += sum(
        result[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    side.cpu_server += after["server"] - before["server"]
    side.cpu_postgres += after["postgres"] - before["postgres"]
    side.latencies += [
        trigger.arrivals[alert_id] - when.timestamp()
        for alert_id, when in created.items()
        if alert_id not in created_before and alert_id in trigger.arrivals
    ]
    for path in ("settled", "evaluated"):
        gained = paths_after.get(path, 0.0) - paths_before.get(path, 0.0)
        setattr(side, path, getattr(side, path) + gained)


def run_round(
    round_number: int,
    *,
    bodies: list[Path],
    warmup: Path,
    duration: float,
    connections: int,
    workdir: Path,
) -> list[Run]:
    """Both configurations' servers up at once, each warmed up and its outbox drained; then
    wrk loads them in turn, window by window (A B B A ...), so that what else the machine does
    weighs on both alike. Each window sends bodies of its own (``bodies``, one file each)."""
    with contextlib.ExitStack() as stack:
        sides = []
        for rules in (False, True):
            url = stack.enter_context(fresh_store("postgresql", workdir))
            assert url is not None
            prefix = f"lora-emotion-bench-{secrets.token_hex(3)}"
            env = _alerts_env(prefix) if rules else {}
            key = f"postgresql-2{'-rules' if rules else ''}"
            server = Server(Scenario(key, "postgresql", 2, key, env=env), url)
            stack.callback(server.stop)
            sides.append(_Side(rules, url, server, prefix))
        for side in sides:
            # Long enough for every device to reach its steady state (each k-of-5 rule has
            # seen its readings), so the measured windows raise only the trigger's alerts.
            run_wrk(side.server.url, warmup, duration=WARMUP_S, connections=connections)
            started = time.monotonic()
            side.drained = _pending(side.url)
            while _pending(side.url) and time.monotonic() - started < 180:
                time.sleep(0.2)
            side.drain_s = time.monotonic() - started
        plain, ruled = sides
        first, second = (plain, ruled) if round_number % 2 else (ruled, plain)
        order = [first, second, second, first] * (len(bodies) // 2)
        window = duration / len(bodies)
        base = 1e9 + 1e6 * round_number
        for side in order:
            _measure(side, bodies[side.windows], window, connections, base)
    return [
        Run(
            label="20 rules, MQTT" if side.rules else "no rules",
            rules=side.rules,
            round_number=round_number,
            rate=side.requests / side.seconds,
            p50_ms=statistics.median(side.latency_p50),
            p99_ms=max(side.latency_p99),
            failed=side.failed,
            cpu_server_us=1e6 * side.cpu_server / max(side.requests, 1),
            cpu_postgres_us=1e6 * side.cpu_postgres / max(side.requests, 1),
            drained=side.drained,
            drain_s=side.drain_s,
            alerts=side.alerts,
            latencies=sorted(side.latencies),
            settled=side.settled,
            evaluated=side.evaluated,
        )
        for side in (first, second)
    ]


def _row(run: Run) -> str:
    watched = run.settled + run.evaluated
    settled = f"{run.settled / watched:.1%}" if run.rules and watched else "-"
    return (
        f"| {run.round_number} | {run.label} | {run.rate:,.0f} | {run.p50_ms:.1f} | "
        f"{run.p99_ms:.1f} | {run.cpu_server_us:.0f} | {run.cpu_postgres_us:.0f} | {run.failed} | "
        f"{run.alerts if run.rules else '-'} | {settled} |"
    )


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    return 1000 * values[min(len(values) - 1, int(share * len(values)))]


def write_report(
    runs: list[Run], *, command: str, duration: float, connections: int, windows: int
) -> str:
    by_round: dict[int, dict[bool, Run]] = {}
    for run in runs:
        by_round.setdefault(run.round_number, {})[run.rules] = run
    ratios = [pair[True].rate / pair[False].rate for pair in by_round.values() if len(pair) == 2]
    plain = statistics.median(r.rate for r in runs if not r.rules)
    ruled = statistics.median(r.rate for r in runs if r.rules)
    latencies = sorted(value for r in runs if r.rules for value in r.latencies)
    expected = sum(len(r.latencies) for r in runs if r.rules)
    drains = [(r.drained, r.drain_s) for r in runs if r.rules]
    lines = [
        "# Alerting benchmark",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}); "
        "the machine is shared with other work, so compare the two configurations within a "
        "round: both servers are up at once and wrk loads them in turn, window by window "
        "(A B B A), so that what else the machine does weighs on both alike.",
        "",
        "## Ingest throughput: 20 rules against none",
        "",
        f"`lora-emotion serve --workers 2` on PostgreSQL (a database each), wrk with "
        f"{connections} connections for {duration:g} s per configuration and round in "
        f"{windows} windows, unique signed deliveries from 1,000 devices (the load of "
        "bench/webhook_bench.py). With rules: the 20 rules of `twenty_rules()` in "
        "bench/alerts_bench.py (every kind; all but one select every device) and an MQTT "
        "channel to the local Mosquitto. Each server is warmed up for 8 s, then waits until "
        "the outbox is empty (the warm-up makes every device fire its rules once); each "
        f"window is measured while {len(TRIGGER_DEVICES)} more devices send a delivery that "
        "raises an "
        f"alert {TRIGGER_RATE:g} times a second (to both servers, so both ingest the same): "
        "the alerts are evaluated, recorded and published to MQTT during the measurement.",
        "",
        "| round | configuration | deliveries/s | p50 ms | p99 ms | server CPU µs/delivery "
        "| PostgreSQL CPU µs/delivery | failed | alerts raised (all rules) | settled |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[_row(run) for run in runs],
        "",
        "Settled: the share of the deliveries that rules watch which were stored after a check "
        "of their device's rule summary, without evaluating the rules (see docs/alerts.md, "
        '"Cost and speed"); the others were evaluated in a transaction of their own.',
        "",
        f"Median: {plain:,.0f}/s without rules, {ruled:,.0f}/s with 20 rules. With rules / "
        "without, per round: "
        + ", ".join(f"{r:.0%}" for r in ratios)
        + f"; median **{statistics.median(ratios):.0%}** (target: at least 90 %).",
        "",
        "The warm-up's burst (every device firing its rules at once) was published in: "
        + ", ".join(f"{count:,} outbox rows in {seconds:.1f} s" for count, seconds in drains)
        + ".",
        "",
        "## Rule hit -> MQTT publish",
        "",
        "The alerts the trigger raised in the runs with rules, under the full wrk load above: "
        "from the alert's `created_at` (the receive time of the delivery that hit the rule) to "
        f"its arrival at an MQTT subscriber: {expected} alerts.",
        "",
        f"p50 **{_ms(_percentile(latencies, 0.5))}**, p99 **{_ms(_percentile(latencies, 0.99))}**, "
        f"max {_ms(_percentile(latencies, 1.0))} (target: p99 at most 1 s).",
        "",
    ]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (fresh servers each)")
    parser.add_argument(
        "--windows",
        type=int,
        default=2,
        help="measured windows per configuration and round (even), A B B A ...",
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    if args.windows < 2 or args.windows % 2:
        parser.error("--windows must be even (A B B A)")
    with tempfile.TemporaryDirectory(dir=HERE, prefix=".run-") as tmp:
        workdir = Path(tmp)
        warmup = workdir / "warmup.txt"
        bodies = [workdir / f"bodies-{window}.txt" for window in range(args.windows)]
        print("writing signed deliveries ...", file=sys.stderr)
        for window, path in enumerate(bodies):
            count = int(MAX_STORED_RATE * args.duration / args.windows) + 1000
            write_bodies(path, count, offset=1_000_000 * window)
        write_bodies(warmup, int(MAX_STORED_RATE * (WARMUP_S + 0.5)), offset=10_000_000)
        runs = []
        for round_number in range(1, args.rounds + 1):
            pair = run_round(
                round_number,
                bodies=bodies,
                warmup=warmup,
                duration=args.duration,
                connections=args.connections,
                workdir=workdir,
            )
            runs += pair
            for run in pair:
                print(
                    f"round {round_number} {run.label}: {run.rate:,.0f}/s, "
                    f"{run.alerts} alerts, p99 {_ms(_percentile(run.latencies, 0.99))}",
                    file=sys.stderr,
                )
    options = sys.argv[1:] if argv is None else argv
    report = write_report(
        runs,
        command=" ".join(["python bench/alerts_bench.py", *options]),
        duration=args.duration,
        connections=args.connections,
        windows=args.windows,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
