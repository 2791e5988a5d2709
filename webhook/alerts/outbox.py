"""The alert tables: rules evaluated inside the delivery's transaction, and the outbox that the
dispatchers claim deliveries from.

Why the evaluation reads its state from the database inside the transaction: with several
workers (and hosts) a device's deliveries land in different processes, so no process's memory
knows a device's last readings or whether a rule already fires for it. Each transaction that
inserted readings of a device takes that device's advisory lock (PostgreSQL; SQLite's writer
holds the whole database), then reads the device's newest emotions and rule states, so two
transactions for one device evaluate one after the other and the second sees the first's
readings and alert. The locks are taken after the deliveries are inserted and in one order
(sorted keys), and a transaction holding one waits for nothing but other such locks, so they
add no deadlock: a transaction waiting on another's unique key holds no device lock yet.

Why three round trips and no pipeline: on PostgreSQL ``BEGIN``, the locks and the reads of the
devices' emotions and rule states go as one simple query of three statements (each statement
takes its own snapshot, so the reads see whatever the previous holder of a lock committed),
then the unchanged batch statement, then the alert rows with ``COMMIT`` as one more simple
query. The reads do not see the batch's own readings; those are added from the batch in
Python. psycopg's pipeline mode did it in two round trips but cost about 250 µs of client CPU
per batch in its communication loop (profiled), more than the round trips it saved.

Settled devices: most deliveries change no rule's state (a device that stays calm, or stays
angry while its alert already fires), and for those the three round trips, the device lock and
the read of its emotions cost more than storing the delivery (measured: 20 rules took ingest on
PostgreSQL from about 6,200 to 3,900 deliveries a second). So every evaluation also writes the
device's summary (``alert_summary``, see ``Evaluator.summary``), and a batch first goes as the
one statement of a batch without rules, in which each delivery of a watched device is stored
only if its device's summary is the one its new emotions leave unchanged
(``Evaluator.passage``). The others, and those that bring window summaries or status messages
that rules look at, are then evaluated as above, in a transaction of their own. The statement
takes the summaries' row locks (``FOR SHARE``, in device order) and the evaluating transaction
takes them ``FOR UPDATE`` right after the device locks and before it reads, so a delivery
either commits before an evaluation reads (which then counts it) or waits for it and checks
the summary it wrote. A device without a summary row is evaluated, which writes the row; the
silence check deletes the rows of the devices it changes.

Why an outbox row per alert and channel with a lease: a dispatcher claims due rows
(``FOR UPDATE SKIP LOCKED``, so two workers never claim the same row) by setting a lease, sends
without holding a transaction open, then marks the row delivered or due again later. A worker
killed mid-send leaves a lease that runs out, and another worker sends again: at least once,
under the same alert id.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql
from sqlalchemy import Engine, Row, and_, delete, func, or_, select, text, tuple_, update

from lora_emotion.networks.kpn import EMOTION_NAME

from ..schema import alert_deliveries, alert_state, alert_summary, alerts, deliveries, devices
from ..storage import DELIVERY_NAMES, NewDelivery
from . import metrics
from .engine import (
    CONFIDENCE_NAME,
    Emotion,
    Evaluator,
    NewAlert,
    NewReading,
    RuleState,
    StateChange,
    new_readings,
)

__all__ = ["AlertHook", "Claimed", "claim", "deliveries_of", "device_states", "list_alerts"]

_DELIVERY_DEVICE = DELIVERY_NAMES.index("device")
_RESTLESS_MOST = 32
_RESTLESS_LIMIT = 100_000
#: The first key of the two-key advisory locks on devices (the migration lock uses one key).
DEVICE_LOCK_CLASS = 0x1E0A


def _lock_key(device: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(device.encode(), digest_size=4).digest(), "big", signed=True
    )


def _sqlite_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _from_sqlite(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# BEGIN, then the device locks and the devices' context from the function migration 5 made.
_PG_PREPARE = """
BEGIN;
SELECT * FROM lora_emotion_alert_context({devices}::text[], {depth}, {keys}::int4[])
"""
_PG_WRITE_TEMPLATE = """
WITH new_alerts AS (
    INSERT INTO alerts (alert_id, rule, device, status, severity, created_at, delivery_id,
                        summary, details)
    SELECT a.alert_id, a.rule, a.device, a.status, a.severity, a.created_at, a.delivery_id,
           a.summary, a.details
    FROM jsonb_to_recordset({alerts}::jsonb) AS a(alert_id varchar, rule text, device text,
        status varchar, severity varchar, created_at timestamptz, delivery_id int8,
        summary text, details text)
    ON CONFLICT (alert_id) DO NOTHING
    RETURNING id, alert_id
), outbox AS (
    INSERT INTO alert_deliveries (alert_pk, channel, attempts, next_attempt_at)
    SELECT n.id, c.channel, 0, {now} FROM new_alerts n
    JOIN jsonb_to_recordset({channels}::jsonb) AS c(alert_id varchar, channel text)
        USING (alert_id)
), states AS (
    INSERT INTO alert_state (device, rule, firing, changed_at, last_fired_at)
    SELECT s.device, s.rule, s.firing, s.changed_at, s.last_fired_at
    FROM jsonb_to_recordset({states}::jsonb) AS s(device text, rule text, firing bool,
        changed_at timestamptz, last_fired_at timestamptz)
    ON CONFLICT (device, rule) DO UPDATE SET firing = excluded.firing,
        changed_at = excluded.changed_at, last_fired_at = excluded.last_fired_at
), summaries AS (
    INSERT INTO alert_summary (device, summary)
    SELECT m.device, m.summary
    FROM jsonb_to_recordset({summaries}::jsonb) AS m(device text, summary text)
    ORDER BY m.device
    ON CONFLICT (device) DO UPDATE SET summary = excluded.summary
)
SELECT count(*) FROM new_alerts
"""
_PG_WRITE = _PG_WRITE_TEMPLATE.format(
    alerts="%(alerts)s",
    channels="%(channels)s",
    states="%(states)s",
    summaries="%(summaries)s",
    now="%(now)s",
)


def _write_parameters(
    found: Sequence[NewAlert],
    changes: Sequence[StateChange],
    now: datetime,
    summaries: dict[str, str] | None = None,
) -> dict[str, Any]:
    rows = [
        {
            "alert_id": a.alert_id,
            "rule": a.rule,
            "device": a.device,
            "status": a.status,
            "severity": a.severity,
            "created_at": a.created_at,
            "delivery_id": a.delivery_id,
            "summary": a.summary,
            "details": orjson.dumps(a.details).decode(),
        }
        for a in found
    ]
    channels = [{"alert_id": a.alert_id, "channel": c} for a in found for c in a.channels]
    states = [
        {
            "device": c.device,
            "rule": c.rule,
            "firing": c.firing,
            "changed_at": c.changed_at,
            "last_fired_at": c.last_fired_at,
        }
        for c in changes
    ]
    return {
        "alerts": orjson.dumps(rows).decode(),
        "channels": orjson.dumps(channels).decode(),
        "states": orjson.dumps(states).decode(),
        "summaries": orjson.dumps(
            [{"device": d, "summary": m} for d, m in sorted((summaries or {}).items())]
        ).decode(),
        "now": now,
    }


def _context(
    rows: Sequence[tuple[str, str, str, str | None]],
) -> tuple[dict[str, list[Emotion]], dict[str, dict[str, RuleState]], dict[str, str | None]]:
    """Emotions (newest first, with their confidence), rule states and summaries by device,
    from the rows of ``lora_emotion_alert_context``: (device, readings JSON, states JSON,
    summary)."""
    emotions: dict[str, list[Emotion]] = {}
    states: dict[str, dict[str, RuleState]] = {}
    summaries: dict[str, str | None] = {}
    for device, readings_json, states_json, summary in rows:
        summaries[device] = summary
        found = orjson.loads(readings_json)
        if found:
            confidence = {(t, d): v for t, d, name, v, _ in found if name != EMOTION_NAME}
            emotions[device] = [
                Emotion(t, d, label or "none", confidence.get((t, d)))
                for t, d, name, _, label in found
                if name == EMOTION_NAME
            ]
        kept = orjson.loads(states_json)
        if kept:
            states[device] = {
                rule: RuleState(firing, _from_epoch(fired))
                for rule, (firing, fired) in kept.items()
            }
    return emotions, states, summaries


def _from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _with_new(emotions: dict[str, list[Emotion]], plan: _Plan) -> dict[str, list[Emotion]]:
    """The stored emotions (newest first) with the batch's own added in time order."""
    for device, readings in plan.readings.items():
        confidence = {
            (r.delivery_id, r.time): r.value for r in readings if r.name == CONFIDENCE_NAME
        }
        new = [
            Emotion(
                r.time.timestamp(),
                r.delivery_id,
                r.string_value or "none",
                confidence.get((r.delivery_id, r.time)),
            )
            for r in readings
            if r.name == EMOTION_NAME
        ]
        if new:
            merged = emotions.get(device, []) + new
            merged.sort(key=lambda e: e.time, reverse=True)
            emotions[device] = merged
    return emotions


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a batch brings the rules: new readings by device, and when it arrived."""

    readings: dict[str, list[NewReading]]
    now: datetime


class AlertHook:
    """What the batch writers call: evaluate inside the transaction, report after commit.

    Args:
        evaluator: the rules.
        committed: called (from the writer's thread, possibly) after every commit with the
            batch's inserted deliveries and how many alerts the transaction recorded.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        committed: Callable[[Sequence[NewDelivery], dict[str, int], int], None] | None = None,
    ) -> None:
        self.evaluator = evaluator
        self.committed = committed
        #: Devices whose summary check failed lately -> how many of their next deliveries go
        #: straight to evaluation, and how many the next failure will send.
        self._restless: dict[str, int] = {}
        self._backoff: dict[str, int] = {}

    def devices(self, ordered: Sequence[NewDelivery]) -> list[str]:
        """Devices of ``ordered`` that some rule selects, sorted (the lock order)."""
        if not self.evaluator.rules:
            return []
        found = {row[1] for item in ordered for row in item.readings}
        return sorted(d for d in found if self.evaluator.rules_for(d))

    def _plan(self, ordered: Sequence[NewDelivery], inserted: dict[str, int]) -> _Plan:
        readings: dict[str, list[NewReading]] = {}
        newest = None
        for item in ordered:
            delivery_id = inserted.get(item.dedup_key)
            if delivery_id is None:
                continue
            for device, found in new_readings(delivery_id, item.dedup_key, item.readings).items():
                readings.setdefault(device, []).extend(found)
            received = item.row[3]
            newest = received if newest is None or received > newest else newest
        return _Plan(readings, newest or datetime.now(UTC))

    def _evaluate(
        self,
        plan: _Plan,
        devices: Sequence[str],
        emotions: dict[str, list[Emotion]],
        states: dict[str, dict[str, RuleState]],
    ) -> tuple[list[NewAlert], list[StateChange]]:
        found: list[NewAlert] = []
        changes: list[StateChange] = []
        for device in devices:
            readings = plan.readings.get(device)
            if not readings:
                continue
            more, changed = self.evaluator.evaluate(
                device, readings, emotions.get(device, []), states.get(device, {}), plan.now
            )
            found += more
            changes += changed
        return found, changes

    def _summaries(
        self,
        plan: _Plan,
        emotions: dict[str, list[Emotion]],
        states: dict[str, dict[str, RuleState]],
        changes: Sequence[StateChange],
        stored: dict[str, str | None],
    ) -> dict[str, str]:
        """The summaries of the evaluated devices that differ from those ``stored``."""
        after = {device: dict(states.get(device, {})) for device in plan.readings}
        for change in changes:
            if change.device in after:
                after[change.device][change.rule] = RuleState(change.firing, change.last_fired_at)
        found = {}
        for device, kept in after.items():
            if device not in stored:  # not watched
                continue
            summary = self.evaluator.summary(device, emotions.get(device, []), kept)
            if summary != stored[device]:
                found[device] = summary
        return found

    def route(
        self, ordered: Sequence[NewDelivery], watched: Sequence[str]
    ) -> tuple[dict[str, str], list[NewDelivery]]:
        """Which deliveries of ``ordered`` may be stored after a check of their device's
        summary (dedup key -> the pattern its summary must match after ``fingerprint:``), and
        which must be evaluated. A delivery is checked against the device it is from
        (``deliveries.device``); one with readings of another watched device is evaluated.

        Deliveries of devices that no rule selects are in neither: nothing to check.
        """
        evaluator = self.evaluator
        watching = set(watched)
        checks: dict[str, str] = {}
        evaluate: list[NewDelivery] = []
        for item in ordered:
            device = item.row[_DELIVERY_DEVICE]
            mine: list[tuple[Any, ...]] = []
            other = False
            for row in item.readings:
                if row[1] == device:
                    mine.append(row)
                elif row[1] in watching:
                    other = True
            if device not in watching:
                if other:
                    evaluate.append(item)
                continue
            passage = None if other else evaluator.passage(device, mine)
            if passage is None:
                evaluate.append(item)
            elif left := self._restless.get(device):
                if left > 1:
                    self._restless[device] = left - 1
                else:
                    del self._restless[device]
                evaluate.append(item)
            else:
                checks[item.dedup_key] = passage
        return checks, evaluate

    def learn(self, settled: set[str], unsettled: set[str]) -> None:
        """What the check found for these devices. A device whose deliveries keep changing
        states (a rule that fires and resolves by turns) would be checked, refused and
        evaluated every time, paying for the batch twice; after a refusal its next
        deliveries go straight to evaluation, 1, 2, 4 ... up to 32 of them, until a check
        passes. Only the cost depends on this: an evaluation is right whenever it is done."""
        for device in settled:
            self._backoff.pop(device, None)
        if len(self._backoff) > _RESTLESS_LIMIT:
            self._backoff.clear()
            self._restless.clear()
        for device in unsettled:
            skip = self._backoff.get(device, 1)
            self._restless[device] = skip
            self._backoff[device] = min(2 * skip, _RESTLESS_MOST)

    # --- PostgreSQL -------------------------------------------------------------------------

    async def write_postgres(
        self,
        connection: psycopg.AsyncConnection[Any],
        statement: str,
        parameters: dict[str, Any],
        ordered: Sequence[NewDelivery],
        devices: list[str],
    ) -> tuple[dict[str, int], int]:
        """Run the batch ``statement`` and the rules in one transaction; (inserted, alerts).

        ``connection`` is in autocommit mode; the transaction is begun and ended here.
        """
        prepare = sql.SQL(_PG_PREPARE).format(
            keys=sql.Literal(sorted({_lock_key(d) for d in devices})),
            devices=sql.Literal(devices),
            depth=sql.Literal(max(self.evaluator.depth, 1)),
        )
        try:
            cursor = await connection.execute(prepare)
            cursor.nextset()  # past BEGIN
            context = await cursor.fetchall()
            batch = await connection.execute(statement, parameters)
            inserted = {key: delivery_id for delivery_id, key in await batch.fetchall()}
            plan = self._plan(ordered, inserted)
            emotions, states, stored = _context(context)
            merged = _with_new(emotions, plan)
            found, changes = self._evaluate(plan, devices, merged, states)
            summaries = self._summaries(plan, merged, states, changes, stored)
            if found or changes or summaries:
                values = _write_parameters(found, changes, plan.now, summaries)
                write = sql.SQL(_PG_WRITE_TEMPLATE).format(
                    **{name: sql.Literal(value) for name, value in values.items()}
                )
                await connection.execute(sql.Composed([write, sql.SQL(";\nCOMMIT")]))
            else:
                await connection.execute("COMMIT")
        except BaseException:
            if not (connection.closed or connection.broken):
                with contextlib.suppress(psycopg.Error):
                    await connection.execute("ROLLBACK")
            raise
        for alert in found:
            metrics.ALERTS.labels(alert.status).inc()
        return inserted, len(found)

    # --- SQLite -----------------------------------------------------------------------------

    def write_sqlite(
        self, cursor: sqlite3.Cursor, ordered: Sequence[NewDelivery], inserted: dict[str, int]
    ) -> int:
        """Evaluate the rules inside the SQLite writer's open transaction; how many alerts."""
        devices = self.devices(ordered)
        if not devices or not inserted:
            return 0
        plan = self._plan(ordered, inserted)
        depth = max(self.evaluator.depth, 1)
        emotions: dict[str, list[Emotion]] = {}
        states: dict[str, dict[str, RuleState]] = {}
        for device in devices:
            if device not in plan.readings:
                continue
            rows = cursor.execute(_SQLITE_EMOTIONS, (device, depth)).fetchall()
            emotions[device] = [
                Emotion(_from_sqlite(time).timestamp(), delivery_id, label or "none", confidence)
                for time, delivery_id, label, confidence in rows
            ]
            states[device] = {
                rule: RuleState(bool(firing), _from_sqlite(fired) if fired else None)
                for rule, firing, fired in cursor.execute(_SQLITE_STATES, (device,)).fetchall()
            }
        found, changes = self._evaluate(plan, devices, emotions, states)
        record_sqlite(cursor, found, changes, plan.now)
        return len(found)


_SQLITE_EMOTIONS = """
SELECT r.time, r.delivery_id, r.string_value,
    (SELECT c.value FROM readings c
     WHERE c.delivery_id = r.delivery_id AND c.time = r.time AND c.device = r.device
       AND c.name = 'confidence' LIMIT 1)
FROM readings r WHERE r.device = ? AND r.name = 'emotion' ORDER BY r.time DESC LIMIT ?
"""
_SQLITE_STATES = "SELECT rule, firing, last_fired_at FROM alert_state WHERE device = ?"


def record_sqlite(
    cursor: sqlite3.Cursor, found: Sequence[NewAlert], changes: Sequence[StateChange], now: datetime
) -> None:
    """Insert ``found`` with their outbox rows and apply ``changes``, in the open transaction."""
    for alert in found:
        row = cursor.execute(
            "INSERT INTO alerts (alert_id, rule, device, status, severity, created_at, "
            "delivery_id, summary, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (alert_id) DO NOTHING RETURNING id",
            (
                alert.alert_id,
                alert.rule,
                alert.device,
                alert.status,
                alert.severity,
                _sqlite_time(alert.created_at),
                alert.delivery_id,
                alert.summary,
                orjson.dumps(alert.details).decode(),
            ),
        ).fetchone()
        if row is None:
            continue
        cursor.executemany(
            "INSERT INTO alert_deliveries (alert_pk, channel, attempts, next_attempt_at) "
            "VALUES (?, ?, 0, ?)",
            [(row[0], channel, _sqlite_time(now)) for channel in alert.channels],
        )
    cursor.executemany(
        "INSERT INTO alert_state (device, rule, firing, changed_at, last_fired_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (device, rule) DO UPDATE SET "
        "firing = excluded.firing, changed_at = excluded.changed_at, "
        "last_fired_at = excluded.last_fired_at",
        [
            (
                c.device,
                c.rule,
                c.firing,
                _sqlite_time(c.changed_at),
                _sqlite_time(c.last_fired_at) if c.last_fired_at else None,
            )
            for c in changes
        ],
    )
    for alert in found:
        metrics.ALERTS.labels(alert.status).inc()


# --- silence ----------------------------------------------------------------------------------


def _quiet_devices(
    conn: Any, cutoff: datetime, among: Sequence[str] | None = None
) -> list[Row[Any]]:
    """(urn, id, received_at) of the newest delivery of each device whose newest delivery
    arrived before ``cutoff``: one index probe per device (the (device, id) index)."""
    newest = (
        select(func.max(deliveries.c.id))
        .where(deliveries.c.device == devices.c.urn)
        .scalar_subquery()
        .label("last_id")
    )
    listed = select(devices.c.urn, newest)
    if among is not None:
        listed = listed.where(devices.c.urn.in_(list(among)))
    last = listed.subquery()
    query = (
        select(last.c.urn, deliveries.c.id, deliveries.c.received_at)
        .join_from(last, deliveries, deliveries.c.id == last.c.last_id)
        .where(deliveries.c.received_at < cutoff)
        .order_by(last.c.urn)
    )
    return list(conn.execute(query))


def _states_of(conn: Any, urns: Sequence[str]) -> dict[str, dict[str, RuleState]]:
    found: dict[str, dict[str, RuleState]] = {}
    for start in range(0, len(urns), 500):
        rows = conn.execute(
            select(
                alert_state.c.device,
                alert_state.c.rule,
                alert_state.c.firing,
                alert_state.c.last_fired_at,
            ).where(alert_state.c.device.in_(list(urns[start : start + 500])))
        )
        for row in rows:
            found.setdefault(row.device, {})[row.rule] = RuleState(
                bool(row.firing), row.last_fired_at
            )
    return found


def sweep_silence(engine: Engine, evaluator: Evaluator, now: datetime | None = None) -> int:
    """Raise silence alerts for devices quiet for longer than their rules allow; how many.

    One transaction, and cheap when nothing changes: one query finds the devices quiet for
    longer than the shortest silence rule, their states drop those already alerted, and only
    the rest are locked (as ingest locks them) and read again, so an uplink committed meanwhile
    clears a device instead. On PostgreSQL one process sweeps at a time (a try-lock; the
    others skip the round).
    """
    if not evaluator.silence_rules:
        return 0
    now = now or datetime.now(UTC)
    shortest = min(rule.after_s for rule in evaluator.silence_rules)
    cutoff = now - timedelta(seconds=shortest)
    found: list[NewAlert] = []
    changes: list[StateChange] = []

    def due(urn: str, states: dict[str, RuleState], received_at: datetime) -> bool:
        quiet = (now - received_at).total_seconds()
        for rule in evaluator.silence_rules:
            state = states.get(rule.name)
            if (
                quiet >= rule.after_s
                and not (state is not None and state.firing)
                and evaluator.settings.selects(rule, urn)
            ):
                return True
        return False

    with engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if (
            postgres
            and not conn.execute(
                text("SELECT pg_try_advisory_xact_lock(CAST(:c AS int4), 0)"),
                {"c": DEVICE_LOCK_CLASS + 1},
            ).scalar_one()
        ):
            return 0
        quiet = _quiet_devices(conn, cutoff)
        states = _states_of(conn, [row.urn for row in quiet])
        urns = [row.urn for row in quiet if due(row.urn, states.get(row.urn, {}), row.received_at)]
        if not urns:
            return 0
        if postgres:
            keys = sorted({_lock_key(u) for u in urns})
            conn.execute(
                text(
                    "SELECT count(pg_advisory_xact_lock(CAST(:c AS int4), k)) "
                    "FROM unnest(CAST(:keys AS int4[])) AS t(k)"
                ),
                {"c": DEVICE_LOCK_CLASS, "keys": keys},
            )
            # Statements after the locks see what ingest committed before releasing them.
            quiet = _quiet_devices(conn, cutoff, urns)
            states = _states_of(conn, urns)
        for row in quiet:
            for rule in evaluator.silence_rules:
                if not evaluator.settings.selects(rule, row.urn):
                    continue
                more, changed = evaluator.evaluate_silence(
                    rule,
                    row.urn,
                    row.id,
                    row.received_at,
                    states.get(row.urn, {}).get(rule.name),
                    now,
                )
                found += more
                changes += changed
        if found or changes:
            # Their summaries no longer say what a delivery changes (a silence to end): the
            # next delivery of each is evaluated, which writes the summary again.
            # Locked in device order first, as ingest locks them: a delete takes its row
            # locks in whatever order it finds the rows.
            changed_devices = sorted({c.device for c in changes})
            conn.execute(
                select(alert_summary.c.device)
                .where(alert_summary.c.device.in_(changed_devices))
                .order_by(alert_summary.c.device)
                .with_for_update()
            ).all()
            conn.execute(delete(alert_summary).where(alert_summary.c.device.in_(changed_devices)))
            if postgres:
                conn.exec_driver_sql(_PG_WRITE, _write_parameters(found, changes, now))
            else:
                driver = conn.connection.driver_connection
                assert isinstance(driver, sqlite3.Connection)
                record_sqlite(driver.cursor(), found, changes, now)
    if postgres:
        for alert in found:
            metrics.ALERTS.labels(alert.status).inc()
    return len(found)


# --- the dispatchers' side ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """An alert claimed for one channel, with the attempt this is."""

    alert: Row[Any]
    channel: str
    attempt: int


def claim(
    engine: Engine, channel: str, *, lease_s: float, limit: int = 20, now: datetime | None = None
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries of ``channel`` to this process, oldest first."""
    now = now or datetime.now(UTC)
    t = alert_deliveries
    due = (
        select(t.c.alert_pk, t.c.channel)
        .where(
            t.c.channel == channel,
            t.c.delivered_at.is_(None),
            t.c.next_attempt_at <= now,
            or_(t.c.lease_until.is_(None), t.c.lease_until < now),
        )
        .order_by(t.c.next_attempt_at, t.c.alert_pk)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with engine.begin() as conn:
        leased = conn.execute(
            update(t)
            .where(tuple_(t.c.alert_pk, t.c.channel).in_(due))
            .values(lease_until=now + timedelta(seconds=lease_s), attempts=t.c.attempts + 1)
            .returning(t.c.alert_pk, t.c.attempts)
        ).all()
        if not leased:
            return []
        attempts: dict[int, int] = {pk: count for pk, count in leased}
        rows = conn.execute(
            select(alerts).where(alerts.c.id.in_(list(attempts))).order_by(alerts.c.id)
        ).all()
    return [Claimed(row, channel, attempts[row.id]) for row in rows]


def finish(
    engine: Engine,
    alert_pk: int,
    channel: str,
    *,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Mark a claimed delivery done, or (with ``error``) due again at ``retry_at``."""
    t = alert_deliveries
    now = datetime.now(UTC)
    values: dict[str, Any] = (
        {"delivered_at": now, "lease_until": None, "last_error": None}
        if error is None
        else {"next_attempt_at": retry_at or now, "lease_until": None, "last_error": error[:500]}
    )
    with engine.begin() as conn:
        conn.execute(
            update(t).where(t.c.alert_pk == alert_pk, t.c.channel == channel).values(**values)
        )


def delivered(engine: Engine, channel: str, alert_pks: Sequence[int]) -> None:
    """Mark the claimed deliveries ``alert_pks`` of ``channel`` delivered, in one statement."""
    if not alert_pks:
        return
    t = alert_deliveries
    with engine.begin() as conn:
        conn.execute(
            update(t)
            .where(t.c.channel == channel, t.c.alert_pk.in_(list(alert_pks)))
            .values(delivered_at=datetime.now(UTC), lease_until=None, last_error=None)
        )


def pending(engine: Engine) -> dict[str, int]:
    """Undelivered alert deliveries by channel."""
    t = alert_deliveries
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.c.channel, func.count())
            .where(t.c.delivered_at.is_(None))
            .group_by(t.c.channel)
        ).all()
    return {channel: count for channel, count in rows}


def device_states(engine: Engine, urns: Sequence[str]) -> dict[str, list[Any]]:
    """Every rule state (rule, firing, changed_at) of each of ``urns``."""
    found: dict[str, list[Any]] = {urn: [] for urn in urns}
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                alert_state.c.device,
                alert_state.c.rule,
                alert_state.c.firing,
                alert_state.c.changed_at,
            )
            .where(alert_state.c.device.in_(list(urns)))
            .order_by(alert_state.c.device, alert_state.c.rule)
        )
        for row in rows:
            found[row.device].append(row)
    return found


def list_alerts(
    engine: Engine,
    *,
    device: str | None = None,
    rule: str | None = None,
    status: str | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[Row[Any]]:
    """Alerts newest first, filtered, keyset-paginated by ``before`` (an alert's ``id``)."""
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    conditions = []
    if device is not None:
        conditions.append(alerts.c.device == device)
    if rule is not None:
        conditions.append(alerts.c.rule == rule)
    if status is not None:
        conditions.append(alerts.c.status == status)
    if before is not None:
        conditions.append(alerts.c.id < before)
    if conditions:
        query = query.where(and_(*conditions))
    with engine.connect() as conn:
        return list(conn.execute(query))


def deliveries_of(engine: Engine, alert_pks: Sequence[int]) -> dict[int, list[Row[Any]]]:
    """The outbox rows of the alerts ``alert_pks``, by alert."""
    if not alert_pks:
        return {}
    t = alert_deliveries
    with engine.connect() as conn:
        rows = conn.execute(
            select(t).where(t.c.alert_pk.in_(list(alert_pks))).order_by(t.c.channel)
        ).all()
    found: dict[int, list[Row[Any]]] = {}
    for row in rows:
        found.setdefault(row.alert_pk, []).append(row)
    return found
