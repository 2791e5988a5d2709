"""Benchmark alerting: ingest throughput with 20 rules against none, and rule hit -> MQTT publish.

Usage:
    python bench/alerts_bench.py                      # 3 rounds of 10 s per configuration
    python bench/alerts_bench.py --duration 5 --rounds 1

Each run starts ``lora-emotion serve --workers 2`` on a fresh PostgreSQL database, warms it up
with wrk for 8 s, waits until the alert outbox is empty, then loads it with wrk for
``--duration`` seconds (unique signed deliveries from 1,000 devices, the generator of
bench/webhook_bench.py) while 10 more devices send deliveries that each raise an alert, 5 a
second (18,000 alerts an hour: more than a fleet of 1,000 should raise). With rules, the
server has the 20 rules of ``twenty_rules()`` and an MQTT channel to the Mosquitto on
127.0.0.1:1883, and a subscriber notes when each alert arrives: rule hit -> publish is that
arrival minus the alert's ``created_at`` (the receive time of the delivery that hit the rule),
on one clock. The two configurations alternate within each round; the report gives per-round
ratios and medians.

Writes docs/bench-alerts.md. Needs wrk, PostgreSQL on 127.0.0.1:5432 (user postgres may create
databases) and Mosquitto on 127.0.0.1:1883.
"""

from __future__ import annotations

import argparse
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

    def __init__(self, url: str, prefix: str, count: int, round_number: int) -> None:
        self.url = url
        self.count = count
        self.base = 1e9 + 1e5 * round_number
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
            for number in range(self.count):
                eui = TRIGGER_DEVICES[number % len(TRIGGER_DEVICES)]
                step = number // len(TRIGGER_DEVICES)
                label = "sad" if step % 2 == 0 else "happy"
                body, headers = _signed(eui, label, self.base + step)
                answer = client.post("/uplinks/kpn", content=body, headers=headers)
                self.sent += answer.status_code == 200
                time.sleep(max(0.0, started + (number + 1) / TRIGGER_RATE - time.monotonic()))

    def stop(self) -> None:
        self.subscriber.loop_stop()
        self.subscriber.disconnect()


def run_once(
    label: str,
    rules: bool,
    round_number: int,
    *,
    bodies: Path,
    warmup: Path,
    duration: float,
    connections: int,
    workdir: Path,
) -> Run:
    """Warm up, wait until the outbox is empty, then load with wrk for ``duration`` s while
    the trigger raises alerts at ``TRIGGER_RATE``/s (sent to the server without rules too, so
    both ingest the same)."""
    prefix = f"lora-emotion-bench-{secrets.token_hex(3)}"
    env = _alerts_env(prefix) if rules else {}
    scenario = Scenario(f"postgresql-2{'-rules' if rules else ''}", "postgresql", 2, label, env=env)
    with fresh_store("postgresql", workdir) as url:
        assert url is not None
        server = Server(scenario, url)
        try:
            # Long enough for every device to reach its steady state (each k-of-5 rule has
            # seen its readings), so the measured run raises only the trigger's alerts.
            run_wrk(server.url, warmup, duration=WARMUP_S, connections=connections)
            drain_started = time.monotonic()
            drained = _pending(url)
            while _pending(url) and time.monotonic() - drain_started < 180:
                time.sleep(0.2)
            drain_s = time.monotonic() - drain_started
            trigger = Trigger(server.url, prefix, int(TRIGGER_RATE * duration), round_number)
            alerts_before = _alert_count(url)
            database = url.rsplit("/", 1)[-1]
            before = cpu_seconds(server.process.pid, database)
            paths_before = _evaluations(server.url)
            trigger.thread.start()
            result = run_wrk(server.url, bodies, duration=duration, connections=connections)
            after = cpu_seconds(server.process.pid, database)
            paths_after = _evaluations(server.url)
            trigger.thread.join()
            time.sleep(2.0)
            created = _created(url) if rules else {}
            raised = _alert_count(url) - alerts_before
            trigger.stop()
        finally:
            server.stop()
    requests = result["requests"]
    failed = sum(
        result[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    latencies = sorted(
        trigger.arrivals[alert_id] - when.timestamp()
        for alert_id, when in created.items()
        if alert_id in trigger.arrivals
    )
    return Run(
        label=label,
        rules=rules,
        round_number=round_number,
        rate=requests / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        failed=failed,
        cpu_server_us=1e6 * (after["server"] - before["server"]) / max(requests, 1),
        cpu_postgres_us=1e6 * (after["postgres"] - before["postgres"]) / max(requests, 1),
        drained=drained,
        drain_s=drain_s,
        alerts=raised,
        latencies=latencies,
        settled=paths_after.get("settled", 0.0) - paths_before.get("settled", 0.0),
        evaluated=paths_after.get("evaluated", 0.0) - paths_before.get("evaluated", 0.0),
    )


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


def write_report(runs: list[Run], *, command: str, duration: float, connections: int) -> str:
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
        "round (they run one after the other, in alternating order).",
        "",
        "## Ingest throughput: 20 rules against none",
        "",
        f"`lora-emotion serve --workers 2` on PostgreSQL, wrk with {connections} connections "
        f"for {duration:g} s per run, unique signed deliveries from 1,000 devices (the load of "
        "bench/webhook_bench.py). With rules: the 20 rules of `twenty_rules()` in "
        "bench/alerts_bench.py (every kind; all but one select every device) and an MQTT "
        "channel to the local Mosquitto. Each run is warmed up for 8 s, then waits until the "
        "outbox is empty (the warm-up makes every device fire its rules once), then is "
        f"measured while {len(TRIGGER_DEVICES)} more devices send a delivery that raises an "
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
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=HERE, prefix=".run-") as tmp:
        workdir = Path(tmp)
        bodies, warmup = workdir / "bodies.txt", workdir / "warmup.txt"
        print("writing signed deliveries ...", file=sys.stderr)
        write_bodies(bodies, int(MAX_STORED_RATE * args.duration), offset=0)
        write_bodies(warmup, int(MAX_STORED_RATE * (WARMUP_S + 0.5)), offset=10_000_000)
        runs = []
        for round_number in range(1, args.rounds + 1):
            order = [False, True] if round_number % 2 else [True, False]
            for rules in order:
                run = run_once(
                    "20 rules, MQTT" if rules else "no rules",
                    rules,
                    round_number,
                    bodies=bodies,
                    warmup=warmup,
                    duration=args.duration,
                    connections=args.connections,
                    workdir=workdir,
                )
                runs.append(run)
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
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
