"""Alerting in one worker process: the hook the batch writer evaluates rules with, one
dispatcher task per channel working from the outbox, the silence check, and the optional
publishing of every reading to MQTT.

Why a task per channel: each claims only its own channel's rows, so a broker that is down
makes the MQTT task back off while webhooks and e-mail go on; and none of them runs on the
ingest path, which only writes rows and sets an event.

Why every worker dispatches: the outbox is in the database, so whichever process claims a row
sends it (``claim`` leases rows with ``SKIP LOCKED``). The worker that committed an alert wakes
its own dispatcher at once; the others find due rows by polling every ``poll_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lora_emotion.labels import LabelRegistry

from ..storage import NewDelivery, Store
from . import metrics, outbox
from .channels import AlertMessage, Channel, EmailSender, MqttSender, WebhookSender
from .engine import Evaluator
from .outbox import AlertHook
from .rules import AlertSettings

__all__ = ["AlertService"]

log = logging.getLogger("lora_emotion.webhook.alerts")

#: Readings waiting for the MQTT publisher; past this they are dropped (and counted).
READINGS_QUEUE = 10_000
_PENDING_EVERY_S = 5.0
# Positions in a NewDelivery reading tuple (READING_COLUMNS without delivery_id).
_R_DEVICE, _R_TIME, _R_NAME, _R_UNIT, _R_VALUE, _R_STRING, _R_BOOL = 1, 2, 3, 4, 5, 6, 7


def retry_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds before attempt ``attempt + 1``: doubling from ``base_s``, capped, with jitter
    so that a fleet of failed deliveries does not retry in one burst."""
    delay: float = min(base_s * 2.0 ** max(attempt - 1, 0), max_s)
    return delay * random.uniform(0.8, 1.0)


class AlertService:
    """Alerting for one process; ``start`` on the event loop, ``close`` at shutdown.

    Args:
        settings: the ``[alerts]`` table.
        registry: the label sets (label-set mismatches are judged against them).
        store: the service's store.
    """

    def __init__(self, settings: AlertSettings, registry: LabelRegistry, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.evaluator = Evaluator(settings, registry)
        self.hook = AlertHook(self.evaluator, committed=self._committed)
        self.channels: list[Channel] = []
        if settings.mqtt is not None:
            self.channels.append(MqttSender(settings.mqtt, self._states_of))
        self.channels += [WebhookSender(hook) for hook in settings.webhooks]
        if settings.email is not None:
            self.channels.append(EmailSender(settings.email))
        self._events = {channel.name: asyncio.Event() for channel in self.channels}
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._readings: asyncio.Queue[tuple[str, bytes]] | None = None
        self._publisher: MqttSender | None = None

    @property
    def needed(self) -> bool:
        """Whether there is anything to do: rules, or readings to publish."""
        mqtt = self.settings.mqtt
        return bool(self.settings.rules) or (mqtt is not None and mqtt.publish_readings)

    def start(self) -> None:
        """Start the dispatchers, the silence check and the readings publisher."""
        self._loop = asyncio.get_running_loop()
        for channel in self.channels:
            self._spawn(self._dispatch(channel), f"alerts-{channel.name}")
        if self.evaluator.silence_rules:
            self._spawn(self._silence(), "alerts-silence")
        if self.channels:
            self._spawn(self._pending(), "alerts-pending")
        mqtt = self.settings.mqtt
        if mqtt is not None and mqtt.publish_readings:
            self._readings = asyncio.Queue(READINGS_QUEUE)
            self._publisher = MqttSender(mqtt, self._states_of)
            self._spawn(self._publish_readings(self._publisher), "alerts-readings")

    def _spawn(self, coroutine: Any, name: str) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop the tasks and close the channels; undelivered alerts stay in the outbox."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for channel in self.channels:
            await channel.close()
        if self._publisher is not None:
            await self._publisher.close()

    # --- called by the batch writer ---------------------------------------------------------

    def _committed(
        self, ordered: Sequence[NewDelivery], inserted: dict[str, int], alerts: int
    ) -> None:
        """After a commit (from the writer's thread on SQLite): wake the dispatchers, queue
        the readings for MQTT."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if alerts:
            loop.call_soon_threadsafe(self.wake)
        if self._readings is not None and inserted:
            messages = _reading_messages(ordered, inserted, self.settings)
            if messages:
                loop.call_soon_threadsafe(self._offer, messages)

    def wake(self) -> None:
        """Make every dispatcher look at the outbox now."""
        for event in self._events.values():
            event.set()

    def _offer(self, messages: list[tuple[str, bytes]]) -> None:
        assert self._readings is not None
        for message in messages:
            try:
                self._readings.put_nowait(message)
            except asyncio.QueueFull:
                metrics.READINGS_PUBLISHED.labels("dropped").inc()

    # --- tasks --------------------------------------------------------------------------------

    async def _states_of(self, urns: Sequence[str]) -> dict[str, list[Any]]:
        return await asyncio.to_thread(outbox.device_states, self.store.read_engine, urns)

    async def _dispatch(self, channel: Channel) -> None:
        settings = self.settings
        event = self._events[channel.name]
        engine = self.store.write_engine
        while True:
            event.clear()
            try:
                claimed = await asyncio.to_thread(
                    outbox.claim, engine, channel.name, lease_s=settings.lease_s, limit=50
                )
            except Exception as exc:
                log.error(
                    "cannot read the alert outbox: %s",
                    exc,
                    extra={"event": "outbox_unavailable", "channel": channel.name},
                )
                await asyncio.sleep(settings.poll_s * 4)
                continue
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), settings.poll_s)
                continue
            messages = [AlertMessage(item.alert) for item in claimed]
            done: list[int] = []
            failure: str | None = None
            retry_at = datetime.now(UTC)
            try:
                await channel.prepare(messages)
            except Exception as exc:
                failure = f"{type(exc).__name__}: {exc}"[:300]
                retry_at += timedelta(seconds=settings.poll_s * 4)
            for item, message in zip(claimed, messages, strict=True):
                if failure is None:
                    try:
                        await channel.send(message)
                    except Exception as exc:
                        failure = f"{type(exc).__name__}: {exc}"[:300]
                        delay = retry_delay(
                            item.attempt, settings.retry_base_s, settings.retry_max_s
                        )
                        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
                        metrics.ALERT_DELIVERIES.labels(channel.name, "failed").inc()
                        log.warning(
                            "alert delivery failed; retrying in %.1f s",
                            delay,
                            extra={
                                "event": "alert_delivery_failed",
                                "channel": channel.name,
                                "alert_id": message.id,
                                "attempt": item.attempt,
                                "error": failure,
                            },
                        )
                    else:
                        metrics.ALERT_DELIVERIES.labels(channel.name, "delivered").inc()
                        log.info(
                            "alert delivered",
                            extra={
                                "event": "alert_delivered",
                                "channel": channel.name,
                                "alert_id": message.id,
                                "attempt": item.attempt,
                            },
                        )
                        done.append(item.alert.id)
                        continue
                # The channel failed on this or an earlier alert of the round: the rest wait
                # for the same retry rather than each waiting out a timeout now.
                await self._finish(item, failure, retry_at)
            if done:
                await self._delivered(channel.name, done)

    async def _delivered(self, channel: str, alert_pks: list[int]) -> None:
        while True:
            try:
                await asyncio.to_thread(
                    outbox.delivered, self.store.write_engine, channel, alert_pks
                )
                return
            except Exception as exc:
                # The leases cover us meanwhile; if they run out these alerts are sent again
                # (at least once), never lost.
                log.error(
                    "cannot record alert deliveries: %s",
                    exc,
                    extra={"event": "outbox_unavailable", "channel": channel},
                )
                await asyncio.sleep(self.settings.poll_s * 4)

    async def _finish(
        self, item: outbox.Claimed, error: str | None, retry_at: datetime | None
    ) -> None:
        while True:
            try:
                await asyncio.to_thread(
                    outbox.finish,
                    self.store.write_engine,
                    item.alert.id,
                    item.channel,
                    error=error,
                    retry_at=retry_at,
                )
                return
            except Exception as exc:
                # The lease covers us meanwhile; if it runs out the alert is sent again
                # (at least once), never lost.
                log.error(
                    "cannot record an alert delivery: %s",
                    exc,
                    extra={"event": "outbox_unavailable", "channel": item.channel},
                )
                await asyncio.sleep(self.settings.poll_s * 4)

    async def _silence(self) -> None:
        while True:
            await asyncio.sleep(self.settings.silence_check_s)
            try:
                raised = await asyncio.to_thread(
                    outbox.sweep_silence, self.store.write_engine, self.evaluator
                )
            except Exception as exc:
                log.error("silence check failed: %s", exc, extra={"event": "silence_failed"})
                continue
            if raised:
                self.wake()

    async def _pending(self) -> None:
        while True:
            try:
                counts = await asyncio.to_thread(outbox.pending, self.store.read_engine)
            except Exception:
                counts = None
            if counts is not None:
                for channel in self.channels:
                    metrics.ALERT_PENDING.labels(channel.name).set(counts.get(channel.name, 0))
            await asyncio.sleep(_PENDING_EVERY_S)

    async def _publish_readings(self, publisher: MqttSender) -> None:
        assert self._readings is not None
        while True:
            topic, payload = await self._readings.get()
            try:
                await publisher.publish(topic, payload, qos=0, retain=False)
            except Exception as exc:
                metrics.READINGS_PUBLISHED.labels("failed").inc()
                log.warning(
                    "readings not published to MQTT: %s",
                    exc,
                    extra={"event": "readings_publish_failed"},
                )
                await asyncio.sleep(1.0)
            else:
                metrics.READINGS_PUBLISHED.labels("published").inc()


def _reading_messages(
    ordered: Sequence[NewDelivery], inserted: dict[str, int], settings: AlertSettings
) -> list[tuple[str, bytes]]:
    """(topic, JSON) per inserted delivery and device: its decoded readings."""
    assert settings.mqtt is not None
    prefix = settings.mqtt.topic_prefix
    messages = []
    for item in ordered:
        delivery_id = inserted.get(item.dedup_key)
        if delivery_id is None or not item.readings:
            continue
        by_device: dict[str, list[dict[str, Any]]] = {}
        for row in item.readings:
            record: dict[str, Any] = {"n": row[_R_NAME], "t": row[_R_TIME]}
            for key, position in (
                ("u", _R_UNIT),
                ("v", _R_VALUE),
                ("vs", _R_STRING),
                ("vb", _R_BOOL),
            ):
                if row[position] is not None:
                    record[key] = row[position]
            by_device.setdefault(row[_R_DEVICE], []).append(record)
        for device, records in by_device.items():
            topic = f"{prefix}/readings/{device.replace('/', '_')}"
            payload = {"device": device, "delivery_id": delivery_id, "readings": records}
            messages.append((topic, orjson.dumps(payload)))
    return messages
