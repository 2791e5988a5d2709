"""Settled devices (webhook/alerts/outbox.py): on PostgreSQL a delivery whose device's summary
shows that no rule's state can change is stored without evaluating the rules. These tests hold
that shortcut to what evaluating every delivery does (SQLite evaluates every one), and check
that it is taken, and exact under two workers at once."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from alert_support import reading_body
from conftest import reset_postgres
from fastapi.testclient import TestClient
from lora_emotion.webhook import ingest
from lora_emotion.webhook.alerts.engine import Emotion, Evaluator, RuleState
from lora_emotion.webhook.alerts.outbox import AlertHook, sweep_silence
from lora_emotion.webhook.alerts.rules import AlertSettings
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app
from lora_emotion.webhook.schema import alert_state, alert_summary, alerts, deliveries, readings
from lora_emotion.webhook.storage import create_store, new_delivery
from prometheus_client import REGISTRY
from sqlalchemy import select
from webhook_support import PLUG, READ_TOKEN, SECRET, ServerProcess, payload_body, signed_headers

from lora_emotion.labels import DEFAULT_REGISTRY, FER2013
from lora_emotion.messages import Status, Summary, encode, port_of
from lora_emotion.networks.kpn import parse_delivery

T0 = 1_700_000_000.0
DEVICES = ["0004A30B00AA0001", "0004A30B00AA0002", "0004A30B00AA0003"]
RULES: dict[str, Any] = {
    "rules": [
        {"name": "sad-often", "kind": "sustained", "label": "sad", "k": 3, "n": 5,
         "confidence": 0.4, "cooldown_s": 0},
        # A firing held back by the cooldown leaves the device's summary saying so ('x'),
        # which no delivery passes: the alert comes with the first delivery after the
        # cooldown, whatever it brings (see _cooldown_script).
        {"name": "angry-twice", "kind": "sustained", "label": "angry", "k": 2, "n": 3,
         "cooldown_s": 600},
        {"name": "to-fear-or-angry", "kind": "change", "to": ["fear", "angry"],
         "confidence": 0.5, "cooldown_s": 0},
        {"name": "happy-share", "kind": "sustained", "label": "happy", "share": 0.5,
         "cooldown_s": 0},
        {"name": "battery", "kind": "trouble", "battery_below": 20, "cooldown_s": 0},
        {"name": "quiet", "kind": "silence", "after_s": "1h", "cooldown_s": 0},
    ]
}  # fmt: skip
LABELS = ["sad", "sad", "sad", "happy", "happy", "angry", "fear", "neutral", None]


def _summary_body(rng: random.Random, base_time: float, dev_eui: str) -> bytes:
    counts = [rng.randrange(0, 3) for _ in FER2013.labels]
    counts[FER2013.labels.index("happy")] = rng.randrange(0, 20)
    message = Summary(
        label_set=FER2013,
        window_s=60,
        counts=tuple(counts),
        mean_confidence=0.8 if any(counts) else None,
    )
    return payload_body(
        encode(message).hex(), port_of(message), base_time=base_time, dev_eui=dev_eui
    )


def _script(seed: int, count: int) -> list[bytes]:
    """Deliveries of three devices: mostly emotion readings, some window summaries and status
    messages, a few arriving late (older than the device's newest reading)."""
    rng = random.Random(seed)
    bodies = []
    for step in range(count):
        device = rng.choice(DEVICES)
        time = T0 + step - (30 if rng.random() < 0.05 else 0)
        kind = rng.random()
        if kind < 0.08:
            bodies.append(_summary_body(rng, time, device))
        elif kind < 0.14:
            status = Status(firmware=(1, 2, 3), battery_percent=rng.choice([10, 80]))
            bodies.append(
                payload_body(encode(status).hex(), port_of(status), base_time=time, dev_eui=device)
            )
        else:
            label = rng.choice(LABELS)
            confidence = rng.choice([0.3, 0.6, 0.9]) if label else None
            bodies.append(reading_body(label, confidence, time, dev_eui=device))
    return bodies


def _alerts_by_position(database_url: str) -> list[tuple[str, str, str, int | None]]:
    """(rule, device, status, position of the causing delivery) of every alert, in order."""
    store = create_store(database_url)
    try:
        with store.read_engine.connect() as conn:
            ids = list(conn.execute(select(deliveries.c.id).order_by(deliveries.c.id)).scalars())
            position = {delivery_id: index for index, delivery_id in enumerate(ids)}
            rows = conn.execute(
                select(
                    alerts.c.rule, alerts.c.device, alerts.c.status, alerts.c.delivery_id
                ).order_by(alerts.c.id)
            ).all()
    finally:
        store.dispose()
    return [
        (rule, device, status, None if cause is None else position[cause])
        for rule, device, status, cause in rows
    ]


def _run(
    database_url: str, bodies: list[bytes], monkeypatch: pytest.MonkeyPatch, silence: bool
) -> list[tuple[str, str, str, int | None]]:
    """Post ``bodies`` one by one, received a minute apart (the service's clock is the
    test's), with (``silence``) a silence check halfway; the alerts raised."""
    received = [time.time()]
    monkeypatch.setattr(
        ingest, "time", SimpleNamespace(time=lambda: received[0], perf_counter=time.perf_counter)
    )
    settings = Settings(
        database_url=database_url,
        destinations={PLUG: [SECRET]},
        read_tokens=[READ_TOKEN],
        alerts=RULES,
    )
    evaluator = Evaluator(AlertSettings.model_validate(RULES), DEFAULT_REGISTRY)
    with TestClient(create_app(settings)) as client:
        for index, body in enumerate(bodies):
            received[0] += 60
            if silence and index == len(bodies) // 2:
                # Two hours pass in silence: the silence check alerts, and the next delivery
                # of each device must be evaluated to end it.
                received[0] += 7200
                store = create_store(database_url)
                try:
                    now = datetime.fromtimestamp(received[0], UTC)
                    assert sweep_silence(store.write_engine, evaluator, now) == len(DEVICES)
                finally:
                    store.dispose()
            answer = client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
            assert answer.status_code == 200, answer.text
    return _alerts_by_position(database_url)


def _settled_count() -> float:
    value = REGISTRY.get_sample_value("lora_emotion_alert_evaluations_total", {"path": "settled"})
    return value or 0.0


def _cooldown_script() -> list[bytes]:
    """A firing held back by the cooldown, then a delivery after it that does not match."""
    one, other = DEVICES[0], DEVICES[1]
    labels = ["angry", "angry", "neutral", "neutral", "angry", "angry"]
    # Confidence 0.3: below what to-fear-or-angry asks, so only angry-twice holds.
    bodies = [reading_body(label, 0.3, T0 + i, dev_eui=one) for i, label in enumerate(labels)]
    # Ten minutes of another device's deliveries: the cooldown runs out.
    bodies += [reading_body("neutral", 0.9, T0 + 10 + i, dev_eui=other) for i in range(10)]
    return [*bodies, reading_body("neutral", 0.3, T0 + 30, dev_eui=one)]


@pytest.mark.parametrize("script", ["random", "cooldown"])
def test_settled_deliveries_raise_the_alerts_that_evaluating_each_raises(
    script: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = _script(seed=7, count=400) if script == "random" else _cooldown_script()
    silence = script == "random"
    expected = _run(f"sqlite:///{tmp_path / 'every.sqlite3'}", bodies, monkeypatch, silence)
    reset_postgres(postgres_url)
    settled_before = _settled_count()
    found = _run(postgres_url, bodies, monkeypatch, silence)
    settled = _settled_count() - settled_before

    assert found == expected
    if script == "cooldown":
        # Fired, resolved, held back, then raised by the last delivery (a neutral reading).
        mine = [(rule, status, cause) for rule, device, status, cause in expected
                if rule == "angry-twice"]  # fmt: skip
        assert mine == [
            ("angry-twice", "firing", 1),
            ("angry-twice", "resolved", 3),
            ("angry-twice", "firing", len(bodies) - 1),
        ]
        return
    assert {status for _, _, status, _ in expected} == {"firing", "resolved"}
    assert {rule for rule, _, _, _ in expected} == {r["name"] for r in RULES["rules"]}
    # The shortcut was taken, for many deliveries: those of a device whose rules stay put
    # (this script changes states often, so its devices are often sent to evaluation).
    assert settled > len(bodies) / 8, (settled, len(bodies))


def _holds(window: list[Emotion], label: str, k: int) -> bool:
    return sum(1 for e in window if e.label == label) >= k


def _check_agreement(database_url: str, evaluator: Evaluator) -> None:
    """Each device's rule states and summary are what its stored readings say, and each
    rule's alerts alternate firing and resolved."""
    store = create_store(database_url)
    try:
        with store.read_engine.connect() as conn:
            history = conn.execute(
                select(alerts.c.device, alerts.c.rule, alerts.c.status).order_by(alerts.c.id)
            ).all()
            states = {
                (row.device, row.rule): row.firing for row in conn.execute(select(alert_state))
            }
            summaries = dict(
                conn.execute(select(alert_summary.c.device, alert_summary.c.summary)).all()
            )
            emotions: dict[str, list[Emotion]] = {}
            for device, time_, delivery_id, label in conn.execute(
                select(readings.c.device, readings.c.time, readings.c.delivery_id,
                       readings.c.string_value)
                .where(readings.c.name == "emotion")
                .order_by(readings.c.time.desc())
            ):  # fmt: skip
                emotions.setdefault(device, []).append(
                    Emotion(time_.timestamp(), delivery_id, label, 0.9)
                )
    finally:
        store.dispose()
    for (device, rule), group in itertools.groupby(
        sorted(history, key=lambda a: (a.device, a.rule)), key=lambda a: (a.device, a.rule)
    ):
        statuses = [a.status for a in group]
        assert statuses[0] == "firing", (device, rule, statuses)
        assert all(a != b for a, b in itertools.pairwise(statuses)), (device, rule, statuses)
    for device, newest in emotions.items():
        sad_often = sum(1 for e in newest[:3] if e.label == "sad") >= 2
        assert states.get((device, "sad-2-of-3"), False) == sad_often, device
        assert states.get((device, "to-sad"), False) == (newest[0].label == "sad"), device
        kept = {
            rule: RuleState(firing, None) for (d, rule), firing in states.items() if d == device
        }
        assert summaries[device] == evaluator.summary(device, newest, kept), device


def test_two_workers_leave_every_state_as_the_stored_readings_say(postgres_url: str) -> None:
    """Bursts of deliveries of two devices through two workers at once. After each burst
    every state agrees with the device's stored readings: a delivery stored without an
    evaluation while another worker evaluated its device, and not counted by it, would leave
    a state behind."""
    reset_postgres(postgres_url)
    alerting = {
        "rules": [
            {"name": "sad-2-of-3", "kind": "sustained", "label": "sad", "k": 2, "n": 3,
             "cooldown_s": 0},
            {"name": "to-sad", "kind": "change", "to": ["sad"], "cooldown_s": 0},
        ]
    }  # fmt: skip
    evaluator = Evaluator(AlertSettings.model_validate(alerting), DEFAULT_REGISTRY)
    rng = random.Random(3)
    devices = DEVICES[:2]

    async def burst(client: httpx.AsyncClient, start: int) -> set[int]:
        # Mostly sad, so that most deliveries are settled and some are evaluated meanwhile.
        bodies = [
            reading_body(
                "happy" if rng.random() < 0.25 else "sad",
                0.9,
                T0 + start + step,
                dev_eui=rng.choice(devices),
            )
            for step in range(40)
        ]

        async def post(body: bytes) -> int:
            answer = await client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
            return answer.status_code

        return set(await asyncio.gather(*(post(b) for b in bodies)))

    async def bursts(url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            for round_ in range(12):
                assert await burst(client, round_ * 100) == {200}
                _check_agreement(postgres_url, evaluator)

    with ServerProcess(
        postgres_url, workers=2, env={"LORA_EMOTION_ALERTS": json.dumps(alerting)}
    ) as server:
        asyncio.run(bursts(server.url))
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    for path in ("settled", "evaluated"):
        found = re.search(
            rf'^lora_emotion_alert_evaluations_total\{{path="{path}"\}} (\S+)$',
            metrics,
            re.MULTILINE,
        )
        assert found is not None and float(found.group(1)) > 0, f"no delivery was {path}"


def test_a_delivery_checked_during_an_evaluation_waits_for_its_summary(
    postgres_url: str,
) -> None:
    """The check of a summary waits while an evaluation of the device holds it, then reads
    the summary that evaluation wrote: here one that no delivery passes, so the delivery is
    evaluated (and writes the true summary back)."""
    reset_postgres(postgres_url)
    alerting = {"rules": [{"name": "to-sad", "kind": "change", "to": ["sad"]}]}
    settings = Settings(
        database_url=postgres_url,
        destinations={PLUG: [SECRET]},
        read_tokens=[READ_TOKEN],
        alerts=alerting,
    )
    device = "urn:dev:DEVEUI:" + DEVICES[0]
    conninfo = postgres_url.replace("postgresql+psycopg://", "postgresql://")

    def post(client: TestClient, step: int) -> int:
        body = reading_body("happy", 0.9, T0 + step, dev_eui=DEVICES[0])
        return client.post("/uplinks/kpn", content=body, headers=signed_headers(body)).status_code

    def summary() -> str:
        with psycopg.connect(conninfo) as conn:
            row = conn.execute(
                "SELECT summary FROM alert_summary WHERE device = %s", (device,)
            ).fetchone()
            assert row is not None
            return str(row[0])

    with TestClient(create_app(settings)) as client:
        # The first is checked, refused (no summary yet) and evaluated, which writes the
        # summary; the second goes straight to evaluation (after a refusal); the third is
        # settled.
        assert post(client, 0) == 200
        assert post(client, 1) == 200
        settled = summary()
        before = _settled_count()
        assert post(client, 2) == 200
        assert _settled_count() == before + 1
        with psycopg.connect(conninfo) as evaluation, ThreadPoolExecutor(1) as pool:
            # What an evaluating transaction does first: the device's locks.
            evaluation.execute(
                "SELECT count(*) FROM lora_emotion_alert_context(%s, 2, %s)",
                ([device], [0]),
            )
            waiting = pool.submit(post, client, 3)
            with pytest.raises(FutureTimeout):
                waiting.result(timeout=1.0)
            evaluation.execute(
                "UPDATE alert_summary SET summary = 'held' WHERE device = %s", (device,)
            )
            evaluation.commit()
            assert waiting.result(timeout=30) == 200
        assert _settled_count() == before + 1  # the fourth delivery was evaluated
        assert summary() == settled


def test_a_device_whose_checks_fail_goes_straight_to_evaluation_for_a_while() -> None:
    """After a refused check a device's next deliveries skip the check, 1, then 2, 4 ... of
    them, until a check passes again: a device that keeps changing states is not paid for
    twice on every delivery."""
    alerting = {"rules": [{"name": "to-sad", "kind": "change", "to": ["sad"]}]}
    hook = AlertHook(Evaluator(AlertSettings.model_validate(alerting), DEFAULT_REGISTRY))
    device = "urn:dev:DEVEUI:" + DEVICES[0]
    steps = itertools.count()

    def routed() -> str:
        body = reading_body("sad", 0.9, T0 + next(steps), dev_eui=DEVICES[0])
        item = new_delivery(
            parse_delivery(body, now=T0), plug_uuid=PLUG, received_at=T0, headers="{}", body=body
        )
        checks, evaluate = hook.route([item], [device])
        assert (item.dedup_key in checks) != (item in evaluate)
        return "checked" if checks else "evaluated"

    assert routed() == "checked"
    hook.learn(set(), {device})
    assert [routed() for _ in range(2)] == ["evaluated", "checked"]
    hook.learn(set(), {device})
    assert [routed() for _ in range(3)] == ["evaluated", "evaluated", "checked"]
    hook.learn(set(), {device})
    assert [routed() for _ in range(5)] == ["evaluated"] * 4 + ["checked"]
    hook.learn({device}, set())  # a check passed: back to one
    hook.learn(set(), {device})
    assert [routed() for _ in range(2)] == ["evaluated", "checked"]
