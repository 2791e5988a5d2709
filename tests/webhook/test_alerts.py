"""Alerts end to end on both stores: simulated relays' deliveries drive rules, and the alerts
arrive at a subscriber on the real Mosquitto, at a webhook receiver that verifies the
signature, and at a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import secrets
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from alert_support import (
    SmtpSink,
    Subscriber,
    WebhookReceiver,
    new_whsec,
    reading_body,
    require_mosquitto,
    self_signed_certificate,
    status_body,
    wait_for,
)
from fastapi.testclient import TestClient
from lora_emotion.webhook.alerts.channels import AlertMessage, EmailSender
from lora_emotion.webhook.alerts.engine import Evaluator
from lora_emotion.webhook.alerts.outbox import sweep_silence
from lora_emotion.webhook.alerts.rules import AlertSettings, EmailChannel
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app
from lora_emotion.webhook.migrations import migrate
from lora_emotion.webhook.schema import alert_deliveries, alerts, deliveries
from lora_emotion.webhook.storage import create_store
from sqlalchemy import func, select
from webhook_support import DEVICE, NEXT_SECRET, PLUG, READ_TOKEN, SECRET, signed_headers

from lora_emotion.labels import DEFAULT_REGISTRY

T0 = 1_700_000_000.0
AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


def _settings(database_url: str, alerting: dict[str, Any]) -> Settings:
    return Settings(
        database_url=database_url,
        destinations={PLUG: [SECRET, NEXT_SECRET]},
        read_tokens=[READ_TOKEN],
        alerts=alerting,
    )


def _post(client: TestClient, body: bytes) -> None:
    response = client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    # Signed with two secrets (a rotation); the receiver knows only the new one.
    found = WebhookReceiver(new_whsec())
    yield found
    found.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(login=("alerts", "s3cret-pass"))
    yield sink
    sink.close()


def test_a_sustained_rule_reaches_mqtt_webhook_and_email_then_recovers(
    database_url: str, receiver: WebhookReceiver, smtp: SmtpSink
) -> None:
    require_mosquitto()
    prefix = f"lora-emotion-test-{secrets.token_hex(4)}"
    subscriber = Subscriber(f"{prefix}/#")
    alerting = {
        "rules": [
            {
                "name": "angry-for-a-while",
                "kind": "sustained",
                "label": "angry",
                "confidence": 0.7,
                "k": 3,
                "n": 5,
                "severity": "critical",
                "cooldown_s": 0,
            }
        ],
        "mqtt": {"port": 1883, "topic_prefix": prefix},
        "webhooks": [
            {"name": "ops", "url": receiver.url, "secrets": [new_whsec(), receiver.secret]}
        ],
        "email": {
            "host": "127.0.0.1",
            "port": smtp.port,
            "security": "none",
            "username": "alerts",
            "password": "s3cret-pass",
            "from": "alerts@example.org",
            "to": ["care-team@example.org"],
        },
    }
    try:
        with TestClient(create_app(_settings(database_url, alerting))) as client:
            # Two angry readings and a calm one: 2 of the last 3 is not yet 3 of 5.
            for offset, (label, confidence) in enumerate(
                [("angry", 0.9), ("happy", 0.8), ("angry", 0.95)]
            ):
                _post(client, reading_body(label, confidence, T0 + offset))
            assert client.get("/alerts", headers=AUTH).json()["alerts"] == []
            # Low confidence does not count.
            _post(client, reading_body("angry", 0.5, T0 + 3))
            assert client.get("/alerts", headers=AUTH).json()["alerts"] == []
            _post(client, reading_body("angry", 0.71, T0 + 4))

            page = client.get("/alerts", headers=AUTH).json()
            assert [a["status"] for a in page["alerts"]] == ["firing"]
            fired = page["alerts"][0]
            assert fired["rule"] == "angry-for-a-while" and fired["device"] == DEVICE
            assert "3 of the last 5" in fired["summary"]

            wait_for(lambda: receiver.received, what="the signed webhook")
            wait_for(lambda: smtp.messages, what="the e-mail")
            topic = f"{prefix}/alerts/{DEVICE}/critical"
            wait_for(lambda: subscriber.payloads(topic), what="the MQTT alert")

            assert receiver.ids() == [fired["id"]] and receiver.rejected == 0
            assert receiver.received[0]["payload"]["type"] == "alert.firing"
            assert subscriber.payloads(topic)[0]["id"] == fired["id"]
            mail = smtp.messages[0]
            assert mail["Subject"] == f"[CRITICAL] angry-for-a-while: {DEVICE}"
            assert fired["id"] in mail["Message-ID"]
            text = mail.get_content()
            assert "fired for device" in text and "angry at confidence ≥ 0.70" in text
            wait_for(
                lambda: all(
                    d["delivered_at"]
                    for d in client.get("/alerts", headers=AUTH).json()["alerts"][0]["deliveries"]
                ),
                what="every channel marked delivered",
            )

            # Calm again: 2 of the last 5 is below 3, so a recovery notice follows.
            for offset in range(2):
                _post(client, reading_body("neutral", 0.9, T0 + 5 + offset))
            page = client.get("/alerts", headers=AUTH).json()
            assert [a["status"] for a in page["alerts"]] == ["resolved", "firing"]
            resolved = page["alerts"][0]
            wait_for(lambda: len(receiver.received) == 2, what="the recovery webhook")
            wait_for(lambda: len(smtp.messages) == 2, what="the recovery e-mail")
            assert receiver.received[1]["payload"]["data"]["id"] == resolved["id"]
            assert smtp.messages[1]["Subject"].startswith("[RESOLVED]")

            # The device's state is retained: a subscriber arriving later gets it at once.
            late = Subscriber(f"{prefix}/state/#")
            try:
                state = wait_for(lambda: late.messages, what="the retained state")[-1]
                assert state[2] is True and state[1]["device"] == DEVICE
                assert state[1]["firing"] == [] and state[1]["last_alert"]["status"] == "resolved"
            finally:
                late.close()
    finally:
        subscriber.close()


def test_each_alert_and_its_outbox_rows_commit_with_the_delivery(database_url: str) -> None:
    alerting = {
        "rules": [
            {"name": "any-sad", "kind": "change", "to": ["sad"], "cooldown_s": 0},
            {"name": "trouble", "kind": "trouble", "battery_below": 20},
        ],
        "webhooks": [{"name": "nowhere", "url": "http://127.0.0.1:9/", "secrets": [new_whsec()]}],
    }
    with TestClient(create_app(_settings(database_url, alerting))) as client:
        _post(client, reading_body("happy", 0.9, T0))
        _post(client, reading_body("sad", 0.9, T0 + 1))
        _post(client, status_body(T0 + 2, battery_percent=12, dropped=5, label_set_id=23))
        page = client.get("/alerts", headers=AUTH).json()["alerts"]
    assert [(a["rule"], a["status"]) for a in page] == [
        ("trouble", "firing"),
        ("any-sad", "firing"),
    ]
    trouble = page[0]
    assert "battery at 12 % (below 20 %)" in trouble["summary"]
    assert "5 readings dropped" in trouble["summary"]
    assert "label set 23 is unknown" in trouble["summary"]
    assert "from happy" in page[1]["summary"]
    store = create_store(database_url)
    try:
        with store.read_engine.connect() as conn:
            # The alert names the delivery that caused it, which exists: same transaction.
            for alert in page:
                assert conn.execute(
                    select(deliveries.c.id).where(deliveries.c.id == alert["delivery_id"])
                ).scalar_one()
            assert conn.execute(select(func.count()).select_from(alert_deliveries)).scalar() == 2
    finally:
        store.dispose()


def test_silence_is_raised_by_the_check_and_cleared_by_the_next_uplink(database_url: str) -> None:
    alerting = {"rules": [{"name": "quiet", "kind": "silence", "after_s": "15m"}]}
    settings = _settings(database_url, alerting)
    with TestClient(create_app(settings)) as client:
        _post(client, reading_body("happy", 0.9, T0))
        store = create_store(database_url)
        evaluator = Evaluator(AlertSettings.model_validate(alerting), DEFAULT_REGISTRY)
        try:
            now = datetime.now(UTC)
            assert sweep_silence(store.write_engine, evaluator, now + timedelta(minutes=10)) == 0
            assert sweep_silence(store.write_engine, evaluator, now + timedelta(minutes=20)) == 1
            # Still silent, already alerted: nothing new.
            assert sweep_silence(store.write_engine, evaluator, now + timedelta(minutes=30)) == 0
        finally:
            store.dispose()
        _post(client, reading_body("happy", 0.9, T0 + 60))
        page = client.get("/alerts", headers=AUTH).json()["alerts"]
    assert [(a["rule"], a["status"]) for a in page] == [("quiet", "resolved"), ("quiet", "firing")]
    assert page[1]["delivery_id"] is None and "no delivery for 20 min" in page[1]["summary"]


def test_rules_and_channels_are_listed_read_only(database_url: str) -> None:
    alerting = {
        "tags": {"ward-3": ["0004a30b001f1234"]},
        "rules": [
            {"name": "sad-ward", "kind": "sustained", "label": "sad", "share": 0.5, "tag": "ward-3"}
        ],
        "webhooks": [{"name": "pager", "url": "http://127.0.0.1:9/", "secrets": [new_whsec()]}],
    }
    with TestClient(create_app(_settings(database_url, alerting))) as client:
        assert client.get("/alerts/rules").status_code == 401
        assert client.get("/alerts").status_code == 401
        listed = client.get("/alerts/rules", headers=AUTH).json()
        assert client.post("/alerts/rules", headers=AUTH).status_code == 405
    assert listed["tags"] == {"ward-3": [DEVICE]}
    assert listed["channels"] == [{"name": "pager", "kind": "webhook"}]
    (rule,) = listed["rules"]
    assert rule["name"] == "sad-ward" and rule["channels"] == ["pager"]
    assert rule["condition"]["share"] == 0.5 and rule["condition"]["label"] == "sad"
    assert "whsec_" not in str(listed)


def test_a_batch_of_copies_raises_one_alert(database_url: str) -> None:
    """Copies of one delivery (KPN retries) are stored once, so the rule sees it once."""
    alerting = {
        "rules": [{"name": "sad", "kind": "change", "to": ["sad"]}],
        "webhooks": [{"name": "nowhere", "url": "http://127.0.0.1:9/", "secrets": [new_whsec()]}],
    }
    body = reading_body("sad", 0.9, T0)
    with TestClient(create_app(_settings(database_url, alerting))) as client:
        for _ in range(3):
            _post(client, body)
    store = create_store(database_url)
    try:
        migrate(store.write_engine)
        with store.read_engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(alerts)).scalar() == 1
    finally:
        store.dispose()


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_email_over_tls_with_login(security: str, tmp_path: Any) -> None:
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    tls = {"starttls": context} if security == "starttls" else {"implicit_tls": context}
    sink = SmtpSink(login=("alerts", "pw-0123"), **tls)  # type: ignore[arg-type]
    try:
        sender = EmailSender(
            EmailChannel.model_validate(
                {
                    "host": "127.0.0.1",
                    "port": sink.port,
                    "security": security,
                    "username": "alerts",
                    "password": "pw-0123",
                    "from": "alerts@example.org",
                    "to": ["nurse@example.org"],
                    "ca_file": cert,
                }
            )
        )
        row = SimpleNamespace(
            alert_id="al_0123",
            rule="trouble",
            device=DEVICE,
            status="firing",
            severity="warning",
            created_at=datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC),
            delivery_id=42,
            summary="device trouble: battery at 12 % (below 20 %)",
            details='{"kind": "trouble"}',
        )
        asyncio.run(sender.send(AlertMessage(row)))
        (mail,) = sink.messages
        assert mail["To"] == "nurse@example.org" and mail["Message-ID"] == "<al_0123@example.org>"
        body = mail.get_content()
        assert "What happened: device trouble: battery at 12 % (below 20 %)" in body
        assert "When:          2026-12-06 01:02:03 UTC" in body
        assert "GET /deliveries/42" in body
    finally:
        sink.close()


def test_every_reading_is_published_to_mqtt_when_asked(database_url: str) -> None:
    require_mosquitto()
    prefix = f"lora-emotion-test-{secrets.token_hex(4)}"
    subscriber = Subscriber(f"{prefix}/readings/#")
    alerting = {"mqtt": {"topic_prefix": prefix, "publish_readings": True}}
    try:
        with TestClient(create_app(_settings(database_url, alerting))) as client:
            body = reading_body("surprise", 0.64, T0)
            _post(client, body)
            _post(client, body)  # a copy: stored once, published once
            (message,) = wait_for(lambda: subscriber.payloads(), what="the readings")
            time.sleep(0.3)
            assert len(subscriber.messages) == 1
    finally:
        subscriber.close()
    assert subscriber.messages[0][0] == f"{prefix}/readings/{DEVICE}"
    assert message["device"] == DEVICE and message["delivery_id"] >= 1
    assert {r["n"]: r.get("v", r.get("vs")) for r in message["readings"]} == {
        "emotion": "surprise",
        "confidence": 0.64,
    }
