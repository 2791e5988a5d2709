"""Alert rules from the configuration file, evaluated in the delivery's transaction, and the
dispatchers that deliver them from the outbox to MQTT, signed webhooks and e-mail."""

from .rules import AlertSettings
from .service import AlertService

__all__ = ["AlertService", "AlertSettings"]
