"""Alerts when things go wrong: the service killed with alerts pending, channels that cannot be
reached, a rule file with a mistake."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alert_support import (
    PrivateBroker,
    SmtpSink,
    WebhookReceiver,
    new_whsec,
    reading_body,
    require_mosquitto,
    wait_for,
)
from conftest import reset_postgres
from fastapi.testclient import TestClient
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app
from lora_emotion.webhook.schema import alert_deliveries, alerts
from lora_emotion.webhook.storage import create_store
from sqlalchemy import func, select
from webhook_support import PLUG, READ_TOKEN, SECRET, ServerProcess, free_port, signed_headers

T0 = 1_700_000_000.0
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}
FAST_RETRIES = {"retry_base_s": 0.2, "retry_max_s": 1.0, "poll_s": 0.2}


def _alert_ids(database_url: str) -> tuple[list[str], int]:
    """Every alert id in the store, and how many channel deliveries are still pending."""
    store = create_store(database_url)
    try:
        with store.read_engine.connect() as conn:
            ids = list(conn.execute(select(alerts.c.alert_id)).scalars())
            pending = conn.execute(
                select(func.count())
                .select_from(alert_deliveries)
                .where(alert_deliveries.c.delivered_at.is_(None))
            ).scalar_one()
    finally:
        store.dispose()
    return ids, pending


@pytest.mark.slow
def test_kill_9_with_alerts_pending_then_each_is_delivered_once(database_url: str) -> None:
    secret = new_whsec()
    receiver = WebhookReceiver(secret)
    receiver.fail_with = 503  # the receiver is down: alerts pile up in the outbox
    alerting = {
        "rules": [{"name": "mood", "kind": "change", "to": ["sad"], "cooldown_s": 0}],
        "webhooks": [{"name": "ops", "url": receiver.url, "secrets": [secret]}],
        **FAST_RETRIES,
    }
    env = {"LORA_EMOTION_ALERTS": json.dumps(alerting)}
    devices = [f"0004A30B00{index:06X}" for index in range(8)]
    server = ServerProcess(database_url, workers=2, env=env)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            # Per device sad, happy, sad, happy, sad: five alerts (fired, resolved, ...).
            for step, label in enumerate(["sad", "happy", "sad", "happy", "sad"]):
                for eui in devices:
                    body = reading_body(label, 0.9, T0 + step, dev_eui=eui)
                    answer = client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
                    assert answer.status_code == 200, answer.text
        wait_for(lambda: receiver.attempts >= 3, what="failed delivery attempts")
    finally:
        server.kill()
    created, pending = _alert_ids(database_url)
    assert len(created) == 5 * len(devices) and pending == len(created)
    assert receiver.received == []

    receiver.fail_with = None
    with ServerProcess(database_url, workers=2, env=env):
        wait_for(lambda: len(receiver.received) >= len(created), 60, "every alert delivered")
        time.sleep(1.0)  # anything sent twice would arrive meanwhile
    receiver.close()
    delivered = receiver.ids()
    assert sorted(delivered) == sorted(created)  # every alert, none twice under one id
    assert receiver.rejected == 0
    assert _alert_ids(database_url)[1] == 0


def _metric(text: str, channel: str, outcome: str) -> float:
    pattern = (
        rf'^lora_emotion_alert_deliveries_total\{{channel="{channel}",outcome="{outcome}"\}} (\S+)$'
    )
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_unreachable_channels_are_retried_reported_and_delivered_later(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    require_mosquitto()
    secret = new_whsec()
    mqtt_port, hook_port, smtp_port = free_port(), free_port(), free_port()
    alerting = {
        "rules": [
            {"name": "sad", "kind": "change", "to": ["sad"], "severity": "info", "cooldown_s": 0}
        ],
        "mqtt": {"port": mqtt_port, "timeout_s": 1},
        "webhooks": [
            {"name": "ops", "url": f"http://127.0.0.1:{hook_port}/hook", "secrets": [secret]}
        ],
        "email": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from": "alerts@example.org",
            "to": ["ops@example.org"],
            "timeout_s": 2,
        },
        **FAST_RETRIES,
    }
    settings = Settings(
        database_url=database_url,
        destinations={PLUG: [SECRET]},
        read_tokens=[READ_TOKEN],
        alerts=alerting,
    )
    channels = ("mqtt", "ops", "email")
    with TestClient(create_app(settings)) as client:
        # Counters are per process and this process runs other tests: compare with these.
        before = client.get("/metrics").text
        for step in range(6):
            body = reading_body("sad" if step % 2 == 0 else "happy", 0.9, T0 + step)
            answer = client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
            assert answer.status_code == 200, answer.text  # ingest never waits on a channel

        def all_failed_twice() -> bool:
            text = client.get("/metrics").text
            return all(
                _metric(text, name, "failed") - _metric(before, name, "failed") >= 2
                for name in channels
            )

        wait_for(all_failed_twice, 30, "failures of every channel in /metrics")
        assert "alert delivery failed" in caplog.text

        def every_delivery_failed() -> bool:
            page = client.get("/alerts", headers=AUTH).json()["alerts"]
            assert len(page) == 6
            rows = [d for a in page for d in a["deliveries"]]
            assert len(rows) == 18 and not any(d["delivered_at"] for d in rows)
            return all(d["attempts"] >= 1 and d["last_error"] for d in rows)

        wait_for(every_delivery_failed, 30, "every delivery attempted and failed")

        # The targets come up: everything still pending is delivered, nothing was lost.
        broker = PrivateBroker(mqtt_port)
        receiver = WebhookReceiver(secret, port=hook_port)
        smtp = SmtpSink(port=smtp_port)
        try:
            wait_for(lambda: len(receiver.received) == 6, 30, "the webhooks")
            wait_for(lambda: len(smtp.messages) == 6, 30, "the e-mails")

            def delivered() -> bool:
                page = client.get("/alerts", headers=AUTH).json()["alerts"]
                return all(d["delivered_at"] for a in page for d in a["deliveries"])

            wait_for(delivered, 30, "every delivery marked delivered")
            text = client.get("/metrics").text
            for name in channels:
                assert _metric(text, name, "delivered") - _metric(before, name, "delivered") == 6
        finally:
            receiver.close()
            smtp.close()
            broker.close()


def test_an_invalid_rule_file_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "webhook.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "store.sqlite3"}"\n'
        "[[alerts.rules]]\n"
        'name = "angry-often"\n'
        'kind = "sustained"\n'
        'label = "angry"\n'
        "k = 7\n"
        "n = 5\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "lora_emotion.cli", "serve", "--config", str(config)]
    command += ["--port", str(free_port())]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "alert rule 'angry-often' (alerts.rules[0]), field 'k'" in result.stderr
    assert "k (7) is more than n (5)" in result.stderr
    assert not (tmp_path / "store.sqlite3").exists()  # refused before anything started


def test_two_workers_storing_one_device_alternate_firing_and_resolved(postgres_url: str) -> None:
    """Deliveries of one device through two workers at once: the device lock makes the rule's
    transitions strictly alternate, never two firings in a row."""
    reset_postgres(postgres_url)
    alerting = {
        "rules": [{"name": "mood", "kind": "change", "to": ["sad"], "cooldown_s": 0}],
        **FAST_RETRIES,
    }
    bodies = [reading_body("sad" if step % 3 else "happy", 0.9, T0 + step) for step in range(150)]

    async def post_all(url: str) -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            semaphore = asyncio.Semaphore(16)

            async def post(body: bytes) -> int:
                async with semaphore:
                    answer = await client.post(
                        "/uplinks/kpn", content=body, headers=signed_headers(body)
                    )
                    return answer.status_code

            return list(await asyncio.gather(*(post(b) for b in bodies)))

    with ServerProcess(
        postgres_url, workers=2, env={"LORA_EMOTION_ALERTS": json.dumps(alerting)}
    ) as server:
        assert set(asyncio.run(post_all(server.url))) == {200}
    store = create_store(postgres_url)
    try:
        with store.read_engine.connect() as conn:
            statuses = list(conn.execute(select(alerts.c.status).order_by(alerts.c.id)).scalars())
    finally:
        store.dispose()
    assert statuses, "no alert at all"
    assert statuses[0] == "firing"
    assert all(a != b for a, b in itertools.pairwise(statuses)), statuses
