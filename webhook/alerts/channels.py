"""Where alerts go: an MQTT broker, signed webhooks, e-mail. Each ``send`` delivers one alert
or raises; retrying is the dispatcher's business, and so is the alert id that makes a repeat
recognisable (the MQTT payload's ``id``, the ``webhook-id`` header, the e-mail's Message-ID).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import smtplib
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

import aiomqtt
import httpx
import orjson

from .rules import EmailChannel, MqttChannel, WebhookChannel

__all__ = [
    "AlertMessage",
    "Channel",
    "EmailSender",
    "MqttSender",
    "WebhookSender",
    "email_text",
    "sign",
]


class AlertMessage:
    """An alert as every channel shows it."""

    def __init__(self, row: Any) -> None:
        self.id: str = row.alert_id
        self.rule: str = row.rule
        self.device: str = row.device
        self.status: str = row.status
        self.severity: str = row.severity
        created: datetime = row.created_at
        self.created_at = created.astimezone(UTC)
        self.delivery_id: int | None = row.delivery_id
        self.summary: str = row.summary
        self.details: dict[str, Any] = orjson.loads(row.details) if row.details else {}

    def data(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "device": self.device,
            "status": self.status,
            "severity": self.severity,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "delivery_id": self.delivery_id,
            "summary": self.summary,
            "details": self.details,
        }

    def envelope(self) -> dict[str, Any]:
        """The Standard Webhooks payload shape: type, timestamp, data."""
        return {
            "type": f"alert.{self.status}",
            "timestamp": self.data()["created_at"],
            "data": self.data(),
        }


class Channel(Protocol):
    name: str

    async def prepare(self, alerts: Sequence[AlertMessage]) -> None:
        """Look up, once for a round, what sending ``alerts`` will need."""
        ...

    async def send(self, alert: AlertMessage) -> None:
        """Deliver ``alert``; raise on any failure."""
        ...

    async def close(self) -> None: ...


def _topic_part(text: str) -> str:
    # Wildcards and separators cannot be part of one topic level.
    return text.replace("/", "_").replace("+", "_").replace("#", "_")


StatesOf = Callable[[Sequence[str]], Awaitable[dict[str, list[Any]]]]


class MqttSender:
    """Publishes alerts with QoS 1 over one kept connection (reopened after a failure).

    Args:
        config: the ``[alerts.mqtt]`` table.
        states_of: the current rule states of devices (rule, firing, changed_at rows), for
            the retained per-device state message.
    """

    name = "mqtt"

    def __init__(self, config: MqttChannel, states_of: StatesOf) -> None:
        self.config = config
        self._states_of = states_of
        self._states: dict[str, list[Any]] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            config = self.config
            stack = contextlib.AsyncExitStack()
            client = aiomqtt.Client(
                config.host,
                config.port,
                username=config.username,
                password=config.password.get_secret_value() if config.password else None,
                identifier=config.client_id,
                tls_params=aiomqtt.TLSParameters() if config.tls else None,
                timeout=config.timeout_s,
            )
            await stack.enter_async_context(client)
            self._stack, self._client = stack, client
        return self._client

    async def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        """Publish one message (waiting for the broker's PUBACK at QoS 1)."""
        async with self._lock:
            try:
                client = await self._connected()
                async with asyncio.timeout(self.config.timeout_s):
                    await client.publish(topic, payload, qos=qos, retain=retain)
            except BaseException:
                await self.close()
                raise

    async def send(self, alert: AlertMessage) -> None:
        prefix = self.config.topic_prefix
        device = _topic_part(alert.device)
        await self.publish(
            f"{prefix}/alerts/{device}/{alert.severity}",
            orjson.dumps(alert.data()),
            qos=1,
            retain=False,
        )
        states = self._states.get(alert.device)
        if states is None:
            states = (await self._states_of([alert.device]))[alert.device]
        state = {
            "device": alert.device,
            "firing": [s.rule for s in states if s.firing],
            "rules": {
                s.rule: {
                    "firing": bool(s.firing),
                    "since": s.changed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                }
                for s in states
            },
            "last_alert": alert.data(),
        }
        await self.publish(f"{prefix}/state/{device}", orjson.dumps(state), qos=1, retain=True)

    async def prepare(self, alerts: Sequence[AlertMessage]) -> None:
        self._states = await self._states_of(sorted({alert.device for alert in alerts}))

    async def close(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()


def sign(message_id: str, timestamp: int, body: bytes, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` header: ``v1,<base64 HMAC-SHA256>`` per secret, space-separated.

    What is signed is ``<id>.<timestamp>.<body>``, keyed by the base64 part of ``whsec_...``.
    """
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


class WebhookSender:
    """POSTs each alert as JSON with Standard Webhooks headers; any 2xx is delivered."""

    def __init__(self, config: WebhookChannel) -> None:
        self.config = config
        self.name = config.name
        self._client = httpx.AsyncClient(timeout=config.timeout_s, follow_redirects=False)
        self._secrets = [s.get_secret_value() for s in config.secrets]

    async def prepare(self, alerts: Sequence[AlertMessage]) -> None:
        return None

    async def send(self, alert: AlertMessage) -> None:
        body = orjson.dumps(alert.envelope())
        timestamp = int(time.time())
        response = await self._client.post(
            self.config.url,
            content=body,
            headers={
                "content-type": "application/json",
                "user-agent": "lora-emotion-alerts",
                "webhook-id": alert.id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(alert.id, timestamp, body, self._secrets),
            },
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code} from the webhook")

    async def close(self) -> None:
        await self._client.aclose()


def email_text(alert: AlertMessage) -> tuple[str, str]:
    """Subject and plain-text body of the e-mail for ``alert``."""
    when = alert.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if alert.status == "firing":
        subject = f"[{alert.severity.upper()}] {alert.rule}: {alert.device}"
        headline = f"Alert '{alert.rule}' ({alert.severity}) fired for device {alert.device}."
    else:
        subject = f"[RESOLVED] {alert.rule}: {alert.device}"
        headline = f"Alert '{alert.rule}' for device {alert.device} is resolved."
    lines = [
        headline,
        "",
        f"What happened: {alert.summary}",
        f"When:          {when}",
        f"Device:        {alert.device}",
        f"Rule:          {alert.rule} ({alert.details.get('kind', 'rule')}), severity "
        f"{alert.severity}",
    ]
    if alert.delivery_id is not None:
        lines.append(
            f"Delivery:      {alert.delivery_id} (the raw delivery: GET /deliveries/"
            f"{alert.delivery_id} on the webhook service)"
        )
    lines += [
        f"Alert id:      {alert.id}",
        "",
        "This message was sent by lora-emotion because an alert rule in its configuration "
        "names this address. The same alert id in a second message means it was sent again "
        "after a failure, not that it happened twice.",
    ]
    return subject, "\n".join(lines) + "\n"


class EmailSender:
    """Mails each alert over SMTP (STARTTLS, implicit TLS or plain, with optional login)."""

    name = "email"

    def __init__(self, config: EmailChannel) -> None:
        self.config = config

    def message(self, alert: AlertMessage) -> EmailMessage:
        subject, body = email_text(alert)
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.to)
        message["Date"] = format_datetime(alert.created_at)
        domain = self.config.sender.rpartition("@")[2] or "lora-emotion"
        message["Message-ID"] = f"<{alert.id}@{domain}>" if alert.id else make_msgid()
        message["X-Lora-Emotion-Alert-Id"] = alert.id
        message.set_content(body)
        return message

    async def prepare(self, alerts: Sequence[AlertMessage]) -> None:
        return None

    def _send(self, message: EmailMessage) -> None:
        config = self.config
        context = ssl.create_default_context(cafile=config.ca_file)
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=context)
            if config.username is not None:
                password = config.password.get_secret_value() if config.password else ""
                smtp.login(config.username, password)
            smtp.send_message(message)

    async def send(self, alert: AlertMessage) -> None:
        # smtplib blocks; a thread keeps the event loop (and ingest) free meanwhile.
        await asyncio.to_thread(self._send, self.message(alert))

    async def close(self) -> None:
        return None
