"""Folding settled deliveries into the hourly rollups (PostgreSQL; SQLite reads readings).

Why a watermark that trails by a minute: delivery ids are taken when a batch is inserted but
become visible when it commits, and two workers' batches commit in either order. So the newest
id seen now (``pending``) is folded in only once every transaction that could hold a smaller id
has ended: a batch's statement commits or is abandoned within the writer's timeout
(``store_timeout_s``, 10 s by default), and the job waits twice that, at least ``SETTLE_S``.
Each run folds ids in (watermark, pending] by adding to the rollups, so a
delivery is counted once, and moves the watermark; ``queries.py`` adds what lies beyond it.

Why an advisory lock: any worker on any host may run the job, and one at a time does it; the
others find the lock taken and skip the run. Nothing here touches the write path.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from .queries import ROLLUP_NAME

__all__ = ["ROLLUP_LOCK_KEY", "SETTLE_S", "fold", "run_rollups"]

log = logging.getLogger("lora_emotion.webhook.dashboard")

#: Arbitrary constant naming the rollup job's advisory lock.
ROLLUP_LOCK_KEY = 0x1E0A_EB06
#: Seconds after which no commit can still add a delivery id below one seen then.
SETTLE_S = 20.0
#: Seconds between runs.
INTERVAL_S = 5.0

_FOLD_LABELS = text(
    """
INSERT INTO rollup_label_hour (hour, label, readings)
SELECT date_trunc('hour', time, 'UTC'), string_value, count(*)
FROM readings
WHERE delivery_id > :low AND delivery_id <= :high
    AND name = 'emotion' AND string_value IS NOT NULL
GROUP BY 1, 2
ON CONFLICT (hour, label) DO UPDATE SET readings = rollup_label_hour.readings + excluded.readings
"""
)
_FOLD_DEVICES = text(
    """
INSERT INTO rollup_device_hour (hour, device, readings, confidence_sum, confidence_count)
SELECT date_trunc('hour', time, 'UTC'), device,
    count(*) FILTER (WHERE name = 'emotion'),
    coalesce(sum(value) FILTER (WHERE name = 'confidence'), 0),
    count(value) FILTER (WHERE name = 'confidence')
FROM readings
WHERE delivery_id > :low AND delivery_id <= :high AND name IN ('emotion', 'confidence')
GROUP BY 1, 2
ON CONFLICT (hour, device) DO UPDATE SET
    readings = rollup_device_hour.readings + excluded.readings,
    confidence_sum = rollup_device_hour.confidence_sum + excluded.confidence_sum,
    confidence_count = rollup_device_hour.confidence_count + excluded.confidence_count
"""
)


def fold(conn: Connection, *, settle_s: float = SETTLE_S) -> int | None:
    """One run of the job in ``conn``'s transaction; the watermark afterwards, or None if
    another worker holds the job's lock."""
    if not conn.execute(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ROLLUP_LOCK_KEY}
    ).scalar():
        return None
    newest = int(conn.execute(text("SELECT coalesce(max(id), 0) FROM deliveries")).scalar_one())
    now: datetime = conn.execute(text("SELECT now()")).scalar_one()
    state = conn.execute(
        text(
            "SELECT watermark, pending, pending_at FROM rollup_state WHERE name = :name FOR UPDATE"
        ),
        {"name": ROLLUP_NAME},
    ).first()
    if state is None:
        conn.execute(
            text(
                "INSERT INTO rollup_state (name, watermark, pending, pending_at) "
                "VALUES (:name, 0, :newest, :now)"
            ),
            {"name": ROLLUP_NAME, "newest": newest, "now": now},
        )
        return 0
    watermark, pending, pending_at = int(state.watermark), int(state.pending), state.pending_at
    if (now - pending_at).total_seconds() < settle_s:
        return watermark
    if pending > watermark:
        bounds = {"low": watermark, "high": pending}
        conn.execute(_FOLD_LABELS, bounds)
        conn.execute(_FOLD_DEVICES, bounds)
    conn.execute(
        text(
            "UPDATE rollup_state SET watermark = :pending, pending = :newest, pending_at = :now "
            "WHERE name = :name"
        ),
        {"pending": max(pending, watermark), "newest": newest, "now": now, "name": ROLLUP_NAME},
    )
    return max(pending, watermark)


def _fold_once(engine: Engine, settle_s: float) -> int | None:
    with engine.begin() as conn:
        return fold(conn, settle_s=settle_s)


async def run_rollups(
    engine: Engine, *, settle_s: float = SETTLE_S, interval_s: float = INTERVAL_S
) -> None:
    """Run :func:`fold` every ``interval_s`` until cancelled; failures are logged and retried."""
    while True:
        try:
            await asyncio.to_thread(_fold_once, engine, settle_s)
        except Exception as exc:  # the next run retries; the dashboard reads readings meanwhile
            log.warning("rollup run failed: %s", exc, extra={"event": "rollup_failed"})
        await asyncio.sleep(interval_s)
