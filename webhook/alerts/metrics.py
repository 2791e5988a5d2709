"""Prometheus metrics of alerting (rendered by ``/metrics`` with the service's own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

__all__ = ["ALERTS", "ALERT_DELIVERIES", "ALERT_PENDING", "EVALUATIONS", "READINGS_PUBLISHED"]

ALERTS = Counter(
    "lora_emotion_alerts",
    "Alerts recorded (in the transaction of the delivery or silence check that raised them).",
    ["status"],
)
EVALUATIONS = Counter(
    "lora_emotion_alert_evaluations",
    "Deliveries of devices that rules select, by path: settled (the device's summary showed "
    "that no rule's state could change) or evaluated (the rules ran in the transaction).",
    ["path"],
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
