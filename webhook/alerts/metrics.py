"""Prometheus metrics of alerting (rendered by ``/metrics`` with the service's own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["ALERTS", "ALERT_DELIVERIES", "ALERT_PENDING", "READINGS_PUBLISHED"]

ALERTS = Counter(
    "lora_emotion_alerts",
    "Alerts recorded (in the transaction of the delivery or silence check that raised them).",
    ["status"],
)
ALERT_DELIVERIES = Counter(
    "lora_emotion_alert_deliveries",
    "Attempts to deliver an alert to a channel, by outcome (delivered, failed).",
    ["channel", "outcome"],
)
ALERT_PENDING = Gauge(
    "lora_emotion_alert_pending",
    "Alert deliveries not yet delivered, by channel (read from the outbox).",
    ["channel"],
    multiprocess_mode="livemax",
)
READINGS_PUBLISHED = Counter(
    "lora_emotion_readings_published",
    "Deliveries' readings published to MQTT, by outcome (published, dropped, failed).",
    ["outcome"],
)
