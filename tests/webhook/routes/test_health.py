"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from webhook_support import payload_body


def test_healthz_and_readyz(client: TestClient, settings: Any) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["store"] == ("sqlite" if settings.is_sqlite else "postgresql")


def _sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} missing"
    return float(match.group(1))


def test_metrics_count_outcomes_decode_errors_and_latency(client: TestClient, deliver: Any) -> None:
    before = client.get("/metrics").text
    deliver(payload_body())
    deliver(payload_body())
    deliver(payload_body("02C4", 16))
    deliver(payload_body(), secret="Wrong-Secret-0123456789-abcdefgh!")
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(name: str, labels: str = "") -> float:
        return _sample(text, name, labels) - _sample(before, name, labels)

    kpn = 'network="kpn",'
    assert delta("lora_emotion_deliveries_total", "{" + kpn + 'outcome="stored"}') == 2
    assert delta("lora_emotion_deliveries_total", "{" + kpn + 'outcome="duplicate"}') == 1
    assert delta("lora_emotion_deliveries_total", "{" + kpn + 'outcome="unauthorized"}') == 1
    assert delta("lora_emotion_decode_errors_total", '{network="kpn"}') == 1
    assert delta("lora_emotion_delivery_seconds_count", '{network="kpn"}') == 3
    assert delta("lora_emotion_commit_batch_size_count") == 3
    assert "lora_emotion_delivery_seconds_bucket" in text
