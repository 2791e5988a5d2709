"""Benchmark alerting: ingest throughput with 20 rules against none, and rule hit -> MQTT publish.

Usage:
    python bench/alerts_bench.py                      # 3 rounds of 10 s, then the latency run
    python bench/alerts_bench.py --duration 5 --rounds 1 --alerts 100

Throughput: ``lora-emotion serve`` with two workers on a fresh PostgreSQL database is loaded by
``wrk`` with unique signed deliveries (the same generator and load as bench/webhook_bench.py,
1,000 devices), once with no rules and once with the 20 rules below and an MQTT channel to the
Mosquitto on 127.0.0.1:1883, interleaved over ``--rounds``; the report gives medians and the
ratio per round.

Latency: the same server with the 20 rules is warmed up until the outbox is empty, then loaded
by wrk as above while ``--alerts`` deliveries that each hit a rule are sent at 20 per second; a
subscriber on the broker notes when each alert arrives. Hit -> publish is the arrival time
minus the alert's ``created_at`` (the receive time of the delivery that caused it), on one
clock.

Writes docs/bench-alerts.md. Needs wrk, PostgreSQL on 127.0.0.1:5432 (user postgres may create
databases) and Mosquitto on 127.0.0.1:1883.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
import time
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
    Run,
    Scenario,
    Server,
    fresh_store,
    run_scenario,
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
TRIGGER_RATE = 20.0


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


def _created(url: str) -> dict[str, datetime]:
    with psycopg.connect(url) as conn:
        return {
            alert_id: created
            for alert_id, created in conn.execute(
                "SELECT alert_id, created_at FROM alerts WHERE rule = 'trigger'"
            )
        }


def latency_run(
    *, bodies: Path, warmup: Path, alerts: int, connections: int, workdir: Path
) -> dict[str, Any]:
    """Hit -> MQTT publish latencies of ``alerts`` rule hits under full ingest load."""
    prefix = f"lora-emotion-bench-{secrets.token_hex(3)}"
    arrivals: dict[str, float] = {}
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

    def on_message(client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        arrivals.setdefault(json.loads(message.payload)["id"], time.time())

    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", 1883)
    subscriber.subscribe(f"{prefix}/alerts/+/critical", qos=1)
    subscriber.loop_start()
    scenario = Scenario("postgresql-2-rules", "postgresql", 2, "", env=_alerts_env(prefix))
    with fresh_store("postgresql", workdir) as url:
        assert url is not None
        server = Server(scenario, url)
        try:
            run_wrk(server.url, warmup, duration=3, connections=connections)
            deadline = time.monotonic() + 120
            while _pending(url) and time.monotonic() < deadline:
                time.sleep(0.5)
            backlog = _pending(url)
            duration = alerts / TRIGGER_RATE + 2
            load = threading.Thread(
                target=run_wrk,
                args=(server.url, bodies),
                kwargs={"duration": duration, "connections": connections},
            )
            load.start()
            time.sleep(1.0)
            sent = 0
            with httpx.Client(base_url=server.url, timeout=10) as client:
                started = time.monotonic()
                for number in range(alerts):
                    eui = TRIGGER_DEVICES[number % len(TRIGGER_DEVICES)]
                    step = number // len(TRIGGER_DEVICES)
                    body, headers = _signed(eui, "sad" if step % 2 == 0 else "happy", 1e9 + step)
                    answer = client.post("/uplinks/kpn", content=body, headers=headers)
                    sent += answer.status_code == 200
                    time.sleep(max(0.0, started + (number + 1) / TRIGGER_RATE - time.monotonic()))
            load.join()
            time.sleep(3.0)
            created = _created(url)
        finally:
            server.stop()
    subscriber.loop_stop()
    subscriber.disconnect()
    latencies = sorted(
        arrivals[alert_id] - when.timestamp()
        for alert_id, when in created.items()
        if alert_id in arrivals
    )
    return {
        "sent": sent,
        "alerts": len(created),
        "arrived": len(latencies),
        "backlog_before": backlog,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        if latencies
        else None,
        "max_ms": 1000 * latencies[-1] if latencies else None,
    }


def _row(run: Run) -> str:
    return (
        f"| {run.round_number} | {run.scenario.label} | {run.rate:,.0f} | {run.p50_ms:.1f} | "
        f"{run.p99_ms:.1f} | {run.batch_mean or 0:.0f} | {run.cpu_server_us:.0f} | "
        f"{run.cpu_postgres_us:.0f} | {run.failed} |"
    )


def write_report(
    runs: list[Run], latency: dict[str, Any], *, command: str, duration: float, connections: int
) -> str:
    by_round: dict[int, dict[str, Run]] = {}
    for run in runs:
        by_round.setdefault(run.round_number, {})[run.scenario.key] = run
    ratios = [
        pair["postgresql-2-rules"].rate / pair["postgresql-2"].rate
        for pair in by_round.values()
        if "postgresql-2" in pair and "postgresql-2-rules" in pair
    ]
    plain = statistics.median(r.rate for r in runs if r.scenario.key == "postgresql-2")
    ruled = statistics.median(r.rate for r in runs if r.scenario.key == "postgresql-2-rules")
    ratio = statistics.median(ratios)
    lines = [
        "# Alerting benchmark",
        "",
        f"Written by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}); "
        "the machine is shared, so compare the two configurations within a round.",
        "",
        "## Ingest throughput: 20 rules against none",
        "",
        f"`lora-emotion serve --workers 2` on PostgreSQL, wrk with {connections} connections "
        f"for {duration:g} s per run, unique signed deliveries from 1,000 devices. With rules: "
        "the 20 rules of `twenty_rules()` in bench/alerts_bench.py (every kind; each selects "
        "every device but the trigger rule) and an MQTT channel to the local Mosquitto, so the "
        "dispatcher publishes the alerts the load raises while it runs.",
        "",
        "| round | configuration | deliveries/s | p50 ms | p99 ms | batch | server µs/delivery "
        "| PostgreSQL µs/delivery | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[_row(run) for run in runs],
        "",
        f"Median: {plain:,.0f}/s without rules, {ruled:,.0f}/s with 20 rules. Ratio per round: "
        + ", ".join(f"{r:.0%}" for r in ratios)
        + f"; median **{ratio:.0%}** (target: at least 90 %).",
        "",
        "## Rule hit -> MQTT publish",
        "",
        f"{latency['sent']} deliveries that each hit the trigger rule (a change to sad, "
        f"alternating with happy, 10 devices) at {TRIGGER_RATE:g}/s while wrk loads the same "
        "server at full speed; the outbox was empty before (backlog "
        f"{latency['backlog_before']}). {latency['alerts']} alerts recorded, "
        f"{latency['arrived']} arrived at the subscriber.",
        "",
        f"p50 **{_ms(latency['p50_ms'])}**, p99 **{_ms(latency['p99_ms'])}**, max "
        f"{_ms(latency['max_ms'])} (target: p99 at most 1 s).",
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
    parser.add_argument("--alerts", type=int, default=200, help="rule hits in the latency run")
    parser.add_argument("--output", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    scenarios = [
        Scenario("postgresql-2", "postgresql", 2, "no rules"),
        Scenario(
            "postgresql-2-rules",
            "postgresql",
            2,
            "20 rules, MQTT",
            env=_alerts_env(f"lora-emotion-bench-{secrets.token_hex(3)}"),
        ),
    ]
    with tempfile.TemporaryDirectory(dir=HERE, prefix=".run-") as tmp:
        workdir = Path(tmp)
        bodies, warmup = workdir / "bodies.txt", workdir / "warmup.txt"
        print("writing signed deliveries ...", file=sys.stderr)
        distinct = int(MAX_STORED_RATE * max(args.duration, args.alerts / TRIGGER_RATE + 3))
        write_bodies(bodies, distinct, offset=0)
        write_bodies(warmup, int(MAX_STORED_RATE * 3.5), offset=10_000_000)
        runs = []
        for round_number in range(1, args.rounds + 1):
            order = scenarios if round_number % 2 else scenarios[::-1]
            for scenario in order:
                run = run_scenario(
                    scenario,
                    bodies=bodies,
                    distinct=distinct,
                    warmup=warmup,
                    duration=args.duration,
                    connections=args.connections,
                    workdir=workdir,
                )
                run.round_number = round_number
                runs.append(run)
                print(f"round {round_number} {scenario.key}: {run.rate:,.0f}/s", file=sys.stderr)
        latency = latency_run(
            bodies=bodies,
            warmup=warmup,
            alerts=args.alerts,
            connections=args.connections,
            workdir=workdir,
        )
        print(f"latency: {latency}", file=sys.stderr)
    options = sys.argv[1:] if argv is None else argv
    report = write_report(
        runs,
        latency,
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
