"""Folding settled deliveries into the hourly rollups (PostgreSQL; SQLite reads readings).

Why a watermark that trails by a minute: delivery ids are taken when a batch is inserted but
become visible when it commits, and two workers' batches commit in either order. So the newest
id seen now (``pending``) is folded in only once every transaction that could hold a smaller id
has ended: a batch's statement commits or is abandoned within the writer's timeout
(``store_timeout_s``, 10 s by default), and the job waits twice that, at least ``SETTLE_S``.
Each run folds ids in (watermark, pending] by adding to the rollups, so a
delivery is counted once, and moves the watermark; ``queries.py`` adds what lies beyond it.

Why a row per device for its last 24 hours (``rollup_device_day``): the fleet page shows every
device's hourly bars, and assembling them from ``rollup_device_hour`` on each page load meant
24,000 rows turned into 1,000 series in Python, several times the page's budget. The run that
folds hours of a device rewrites that device's window from ``rollup_device_hour`` in the same
transaction, so the window always holds exactly what the hourly rollup holds for its hours. When
the hour moves on, the first run after rebuilds every device's window (a device nothing was
folded for since keeps an older window, which the page shifts: the hours after it are empty).

Why each device's newest facts (``rollup_device_latest``: its newest delivery, emotion,
confidence and status) without waiting for the watermark: the fleet page needs them for every
device, and probing the indexes for them per device was most of the page's time. A newest fact
is a maximum, which may take in a delivery twice, so each run folds every delivery committed by
then; what it cannot see yet is a transaction still in flight below the newest id. It records
those ids (``gaps`` of the ``latest`` state row; ids that were never used, a duplicate's or a
rolled-back batch's, look the same), takes them in once they are committed, and drops them once
the hourly watermark has passed them (nothing below it can still commit). The page reads the
table and, from ``readings`` and ``deliveries``, only the ids past its watermark and the gaps:
about a run interval of deliveries. So the job runs every second: a run that finds nothing
settled costs a few milliseconds.

Why an advisory lock: any worker on any host may run the job, and one at a time does it; the
others find the lock taken and skip the run. Nothing here touches the write path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime

import orjson
from sqlalchemy import Connection, Engine, text

from .queries import (
    HOUR,
    LATEST_JOINS,
    LATEST_MERGED,
    LATEST_NAME,
    LATEST_TAIL,
    ROLLUP_NAME,
    STATUS_MARKER,
)

__all__ = [
    "ROLLUP_LOCK_KEY",
    "SETTLE_S",
    "fold",
    "fold_latest",
    "run_rollups",
    "update_device_days",
]

log = logging.getLogger("lora_emotion.webhook.dashboard")

#: Arbitrary constant naming the rollup job's advisory lock.
ROLLUP_LOCK_KEY = 0x1E0A_EB06
#: Seconds after which no commit can still add a delivery id below one seen then.
SETTLE_S = 20.0
#: Seconds between runs: what the fleet page reads past the newest facts per device.
INTERVAL_S = 1.0

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
RETURNING device, hour
"""
)
# Each device's 24 hours from ``:first`` (seconds since the epoch / 3600) as JSON arrays: the
# readings per hour and the mean confidence (null where there is none), one PK probe per hour.
_DEVICE_DAYS = """
INSERT INTO rollup_device_day (device, first_hour, readings, confidence)
SELECT d.device, CAST(:first AS bigint),
    array_to_json(array_agg(coalesce(r.readings, 0) ORDER BY s.slot))::text,
    array_to_json(array_agg(r.confidence_sum / nullif(r.confidence_count, 0) ORDER BY s.slot))::text
FROM ({devices}) AS d (device)
CROSS JOIN generate_series(0, 23) AS s (slot)
LEFT JOIN rollup_device_hour AS r
    ON r.hour = to_timestamp((CAST(:first AS bigint) + s.slot) * 3600) AND r.device = d.device
GROUP BY d.device
ON CONFLICT (device) DO UPDATE SET
    first_hour = excluded.first_hour, readings = excluded.readings,
    confidence = excluded.confidence
"""
_SOME_DEVICE_DAYS = text(_DEVICE_DAYS.format(devices="SELECT unnest(CAST(:devices AS text[]))"))
# Every window, also of a device no longer listed (else its old window would stay the oldest).
_ALL_DEVICE_DAYS = text(
    _DEVICE_DAYS.format(
        devices="SELECT urn FROM devices UNION SELECT device FROM rollup_device_day"
    )
)


_LATEST_COLUMNS = ", ".join(LATEST_MERGED)
_LATEST_UPDATE = ", ".join(f"{column} = excluded.{column}" for column in LATEST_MERGED)
# Every device's newest facts among the deliveries up to ``:high``, which have settled (none
# below it can still commit): four index probes per device, about half a second for 1,000
# devices on 10^7 readings. For the job's first run, and a run that finds the table behind
# the hourly watermark (a worker of an older version folded without keeping it).
_LATEST_AS_OF = text(
    f"""
INSERT INTO rollup_device_latest (device, {_LATEST_COLUMNS})
SELECT d.urn, s.id, s.received_at, e.string_value, e.time, c.value, c.time,
    f.delivery_id, f.time
FROM devices AS d
CROSS JOIN LATERAL (
    SELECT id, received_at FROM deliveries
    WHERE device = d.urn AND id <= :high ORDER BY id DESC LIMIT 1
) AS s
LEFT JOIN LATERAL (
    SELECT string_value, time FROM readings
    WHERE device = d.urn AND name = 'emotion' AND delivery_id <= :high
    ORDER BY time DESC LIMIT 1
) AS e ON true
LEFT JOIN LATERAL (
    SELECT value, time FROM readings
    WHERE device = d.urn AND name = 'confidence' AND delivery_id <= :high
    ORDER BY time DESC LIMIT 1
) AS c ON true
LEFT JOIN LATERAL (
    SELECT delivery_id, time FROM readings
    WHERE device = d.urn AND name = '{STATUS_MARKER}' AND delivery_id <= :high
    ORDER BY time DESC LIMIT 1
) AS f ON true
ON CONFLICT (device) DO UPDATE SET {_LATEST_UPDATE}
"""
)
# Folds what the table does not hold yet (past ``:mark``, in ``:gaps``) into it, in the one
# snapshot of this statement, and returns the new watermark (the newest id seen) and gaps:
# the ids up to it that were not committed then, but none up to ``:settled``, which never
# will be. Most gaps are a batch in flight, folded by the next run; an id that a duplicate
# used up, or a rolled-back batch's, stays a gap until the hourly watermark passes it.
_FOLD_LATEST = text(
    f"""
WITH {LATEST_TAIL}, folded AS (
    INSERT INTO rollup_device_latest (device, {_LATEST_COLUMNS})
    SELECT s.device, {", ".join(LATEST_MERGED.values())}
    FROM seen AS s
    LEFT JOIN rollup_device_latest AS l ON l.device = s.device
    {LATEST_JOINS.format(device="s.device")}
    ON CONFLICT (device) DO UPDATE SET {_LATEST_UPDATE}
)
SELECT t.top, ARRAY(
    SELECT g.id FROM (
        SELECT generate_series(greatest(CAST(:mark AS bigint), :settled) + 1, t.top) AS id
        UNION ALL
        SELECT unnest(CAST(:gaps AS bigint[]))
    ) AS g
    WHERE g.id > :settled AND NOT EXISTS (SELECT FROM fresh WHERE fresh.id = g.id)
    ORDER BY g.id
)
FROM (SELECT greatest(CAST(:mark AS bigint), coalesce(max(id), 0)) AS top FROM fresh) AS t
"""
)


def fold_latest(conn: Connection, *, settled: int, now: datetime) -> None:
    """Bring ``rollup_device_latest`` up to every delivery committed now (the ``latest`` row
    says which), given the hourly watermark ``settled``. Nothing until that has moved: the
    table starts from the deliveries up to it, read by probes per device."""
    if not settled:
        return
    state = conn.execute(
        text("SELECT watermark, gaps FROM rollup_state WHERE name = :name"),
        {"name": LATEST_NAME},
    ).first()
    if state is None or state.watermark < settled:
        conn.execute(_LATEST_AS_OF, {"high": settled})
        mark, gaps = settled, []
    else:
        mark, gaps = int(state.watermark), orjson.loads(state.gaps or "[]")
    top, gaps = conn.execute(_FOLD_LATEST, {"mark": mark, "gaps": gaps, "settled": settled}).one()
    conn.execute(
        text(
            "INSERT INTO rollup_state (name, watermark, pending, pending_at, gaps) "
            "VALUES (:name, :top, :top, :now, :gaps) ON CONFLICT (name) DO UPDATE SET "
            "watermark = excluded.watermark, pending = excluded.pending, "
            "pending_at = excluded.pending_at, gaps = excluded.gaps"
        ),
        {"name": LATEST_NAME, "top": top, "now": now, "gaps": orjson.dumps(gaps).decode()},
    )


def update_device_days(conn: Connection, *, now: datetime, devices: Iterable[str] = ()) -> None:
    """Rewrite the 24-hour windows ending at ``now``'s hour: of every device if the hour has
    moved on since the oldest window (or there is none), else of ``devices``."""
    first = int(now.timestamp()) // HOUR - 23
    oldest = conn.execute(text("SELECT min(first_hour) FROM rollup_device_day")).scalar()
    if oldest is None or int(oldest) < first:
        conn.execute(_ALL_DEVICE_DAYS, {"first": first})
        return
    touched = sorted(set(devices))
    if touched:
        conn.execute(_SOME_DEVICE_DAYS, {"first": first, "devices": touched})


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
    if (now - pending_at).total_seconds() >= settle_s:
        first = (int(now.timestamp()) // HOUR - 23) * HOUR
        touched: set[str] = set()
        if pending > watermark:
            bounds = {"low": watermark, "high": pending}
            conn.execute(_FOLD_LABELS, bounds)
            touched = {
                device
                for device, hour in conn.execute(_FOLD_DEVICES, bounds)
                if int(hour.timestamp()) >= first
            }
        update_device_days(conn, now=now, devices=touched)
        watermark = max(pending, watermark)
        conn.execute(
            text(
                "UPDATE rollup_state SET watermark = :watermark, pending = :newest, "
                "pending_at = :now WHERE name = :name"
            ),
            {"watermark": watermark, "newest": newest, "now": now, "name": ROLLUP_NAME},
        )
    fold_latest(conn, settled=watermark, now=now)
    return watermark


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
