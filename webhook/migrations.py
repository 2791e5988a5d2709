"""Versioned schema migrations, applied in place at start-up, safe with several workers.

Why a small runner instead of Alembic: the schema is three tables on two dialects, the steps
are written by hand either way (autogenerate is not wanted for a store that must never lose
data), and Alembic's script directory (``env.py`` plus ``versions/``) would have to ship as
package data of the mapped ``webhook`` package. What a runner must get right is small and
tested here: each step runs in one transaction together with its row in ``schema_version``
(both SQLite and PostgreSQL have transactional DDL), and concurrent starters are serialised by
a lock taken before the version is read (a PostgreSQL advisory lock; on SQLite the writer
engine's ``BEGIN IMMEDIATE``), so two workers never apply the same step.

Each step carries its own table definitions as they were at that version, so later changes to
``schema.py`` never change what an old step does. Add a step by appending to ``MIGRATIONS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)

from .schema import Id, UTCDateTime

__all__ = ["MIGRATIONS", "Migration", "SchemaVersionError", "current_version", "migrate"]

#: Arbitrary constant naming this application's advisory lock on PostgreSQL.
ADVISORY_LOCK_KEY = 0x1E0A_EB00

_version_metadata = MetaData()
schema_version = Table(
    "schema_version",
    _version_metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", UTCDateTime, nullable=False),
)


class SchemaVersionError(RuntimeError):
    """The database was migrated by a newer version of this service."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: ``upgrade`` runs inside the transaction that records ``version``."""

    version: int
    description: str
    upgrade: Callable[[Connection], None]


def _initial_tables(conn: Connection) -> None:
    metadata = MetaData()
    Table(
        "devices",
        metadata,
        Column("urn", Text, primary_key=True),
        Column("dev_eui", String(16)),
        Column("first_seen", UTCDateTime, nullable=False),
    )
    Table(
        "deliveries",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("dedup_key", String(64), nullable=False),
        Column("plug_uuid", Text, nullable=False),
        Column("device", Text, nullable=False),
        Column("received_at", UTCDateTime, nullable=False),
        Column("event_time", UTCDateTime),
        Column("kind", String(16), nullable=False),
        Column("decode_status", String(8), nullable=False),
        Column("decode_error", Text),
        Column("fport", Integer),
        Column("payload", LargeBinary),
        Column("reading_count", Integer, nullable=False),
        Column("headers", Text, nullable=False),
        Column("body", LargeBinary, nullable=False),
        UniqueConstraint("dedup_key", name="uq_deliveries_dedup_key"),
    )
    readings = Table(
        "readings",
        metadata,
        # No foreign key: the check costs a lookup per reading row (about half of PostgreSQL's
        # time per delivery, measured), and readings are only ever inserted in the transaction
        # that inserted their delivery, with the id it returned.
        Column("delivery_id", Id, nullable=False),
        Column("seq", Integer, nullable=False),
        Column("device", Text, nullable=False),
        Column("time", UTCDateTime, nullable=False),
        Column("name", Text, nullable=False),
        Column("unit", Text),
        Column("value", Float),
        Column("string_value", Text),
        Column("bool_value", Boolean),
        Column("data_value", LargeBinary),
        Column("sum_value", Float),
        Column("origin", String(8), nullable=False),
        Column("extra", Text),
        PrimaryKeyConstraint("delivery_id", "seq", "time", name="pk_readings"),
    )
    Index("ix_readings_device_time", readings.c.device, readings.c.time.desc())
    metadata.create_all(conn)


def _deliveries_by_device(conn: Connection) -> None:
    table = Table("deliveries", MetaData(), Column("device", Text), Column("id", Id))
    Index("ix_deliveries_device_id", table.c.device, table.c.id).create(conn)


def _alerts(conn: Connection) -> None:
    metadata = MetaData()
    Table(
        "alerts",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("alert_id", String(64), nullable=False),
        Column("rule", Text, nullable=False),
        Column("device", Text, nullable=False),
        Column("status", String(16), nullable=False),
        Column("severity", String(16), nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("delivery_id", Id),
        Column("summary", Text, nullable=False),
        Column("details", Text, nullable=False),
        UniqueConstraint("alert_id", name="uq_alerts_alert_id"),
        Index("ix_alerts_device_id", "device", "id"),
    )
    outbox = Table(
        "alert_deliveries",
        metadata,
        Column("alert_pk", Id, nullable=False),
        Column("channel", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", UTCDateTime, nullable=False),
        Column("lease_until", UTCDateTime),
        Column("delivered_at", UTCDateTime),
        Column("last_error", Text),
        PrimaryKeyConstraint("alert_pk", "channel", name="pk_alert_deliveries"),
    )
    # Partial: the dispatchers look only for what is still to deliver.
    Index(
        "ix_alert_deliveries_due",
        outbox.c.channel,
        outbox.c.next_attempt_at,
        postgresql_where=outbox.c.delivered_at.is_(None),
        sqlite_where=outbox.c.delivered_at.is_(None),
    )
    Table(
        "alert_state",
        metadata,
        Column("device", Text, nullable=False),
        Column("rule", Text, nullable=False),
        Column("firing", Boolean, nullable=False),
        Column("changed_at", UTCDateTime, nullable=False),
        Column("last_fired_at", UTCDateTime),
        PrimaryKeyConstraint("device", "rule", name="pk_alert_state"),
    )
    metadata.create_all(conn)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_ALERT_CONTEXT_FUNCTION)


# What a transaction that inserted readings needs to evaluate alert rules (webhook/alerts/
# outbox.py): lock the devices (key class 7690), then read their newest emotion and confidence
# readings and their rule states. A function because each statement of a VOLATILE function
# takes its own snapshot, so the reads see what the previous holder of a lock committed, all in
# one call; and its plans are kept per connection instead of planned for every batch.
_ALERT_CONTEXT_FUNCTION = """
CREATE FUNCTION lora_emotion_alert_context(watched text[], depth int4, lock_keys int4[])
RETURNS TABLE (out_device text, out_readings text, out_states text)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(7690, t.k) FROM unnest(lock_keys) AS t(k);
    -- One row per device with JSON text: a client parses that much faster than rows.
    RETURN QUERY
        SELECT d.device,
            (SELECT coalesce(json_agg(json_build_array(extract(epoch FROM x.time),
                                                       x.delivery_id, x.name, x.value,
                                                       x.string_value)), '[]')::text
             FROM (SELECT r.time, r.delivery_id, r.name, r.value, r.string_value
                   FROM readings AS r
                   WHERE r.device = d.device AND r.name IN ('emotion', 'confidence')
                   ORDER BY r.time DESC LIMIT 2 * depth) AS x),
            (SELECT coalesce(json_object_agg(s.rule, json_build_array(
                                 s.firing, extract(epoch FROM s.last_fired_at))), '{}')::text
             FROM alert_state AS s WHERE s.device = d.device)
        FROM unnest(watched) AS d(device);
END
$fn$
"""


_DEVEUI_PREFIX = "urn:dev:DEVEUI:"
_EUI = re.compile(r"[0-9A-Fa-f]{16}")


def _upper_case_deveuis(conn: Connection) -> None:
    """Spell every DevEUI URN as ingest does since this version: ``urn:dev:DEVEUI:`` and the
    EUI upper-case (the read routes upper-case the EUI they are given, so a device stored in
    lower case could be listed but never read).

    Driven by ``devices``, which holds every device any stored delivery or reading names, so
    deliveries and readings are updated through their device indexes, never scanned whole.
    A device stored under both spellings becomes one device: its deliveries and readings are
    all kept under the upper-case URN, and it keeps the earlier first-seen time. (Deliveries
    do not collide: their keys were computed from what was sent, so both copies stay; had
    they been one uplink, it was already stored twice before this step.)
    """
    metadata = MetaData()
    devices = Table(
        "devices",
        metadata,
        Column("urn", Text),
        Column("dev_eui", String(16)),
        Column("first_seen", UTCDateTime),
    )
    deliveries = Table("deliveries", metadata, Column("device", Text))
    readings = Table("readings", metadata, Column("device", Text))
    prefix = len(_DEVEUI_PREFIX)
    candidates = conn.execute(
        select(devices).where(
            func.lower(func.substr(devices.c.urn, 1, prefix)) == _DEVEUI_PREFIX.lower(),
            func.length(devices.c.urn) == prefix + 16,
        )
    ).all()
    for row in candidates:
        eui = row.urn[prefix:]
        canonical = _DEVEUI_PREFIX + eui.upper()
        if row.urn == canonical or not _EUI.fullmatch(eui):
            continue
        for table in (deliveries, readings):
            conn.execute(update(table).where(table.c.device == row.urn).values(device=canonical))
        kept = conn.execute(select(devices.c.first_seen).where(devices.c.urn == canonical)).scalar()
        if kept is None:
            conn.execute(
                update(devices)
                .where(devices.c.urn == row.urn)
                .values(urn=canonical, dev_eui=eui.upper())
            )
            continue
        conn.execute(
            update(devices)
            .where(devices.c.urn == canonical)
            .values(first_seen=min(kept, row.first_seen), dev_eui=eui.upper())
        )
        conn.execute(delete(devices).where(devices.c.urn == row.urn))


def _delivery_networks(conn: Connection) -> None:
    # Existing rows are KPN's: the only network before this version. Both dialects take this
    # spelling, and neither rewrites the table for a column with a constant default.
    conn.execute(
        text("ALTER TABLE deliveries ADD COLUMN network VARCHAR(16) NOT NULL DEFAULT 'kpn'")
    )
    conn.execute(text("ALTER TABLE deliveries ADD COLUMN network_metadata TEXT"))


def _dashboard_indexes_and_rollups(conn: Connection) -> None:
    # Why (docs/dashboard.md, "Indexes and rollups"): the dashboard reads a device's emotion
    # and confidence rows over a range, its newest status, and counts per hour. The partial
    # indexes hold only those rows, so a 30-day timeline reads about a thousandth of the
    # table's index and, with the values included (PostgreSQL), never visits the heap. Counts
    # per hour over 30 days would aggregate every reading, so a job folds settled deliveries
    # into two small rollups (webhook/dashboard/rollup.py); the write path is unchanged.
    metadata = MetaData()
    readings = Table(
        "readings",
        metadata,
        Column("delivery_id", Id),
        Column("device", Text),
        Column("time", UTCDateTime),
        Column("name", Text),
        Column("string_value", Text),
        Column("value", Float),
    )
    emotion_rows = readings.c.name.in_(["emotion", "confidence"])
    Index(
        "ix_readings_emotion",
        readings.c.device,
        readings.c.time,
        postgresql_include=["name", "string_value", "value", "delivery_id"],
        postgresql_where=emotion_rows,
        sqlite_where=emotion_rows,
    )
    summary_rows = readings.c.name.like("count:%")
    Index(
        "ix_readings_summary",
        readings.c.device,
        readings.c.time,
        postgresql_include=["name", "value"],
        postgresql_where=summary_rows,
        sqlite_where=summary_rows,
    )
    status_rows = readings.c.name == "firmwareVersion"
    Index(
        "ix_readings_status",
        readings.c.device,
        readings.c.time,
        postgresql_where=status_rows,
        sqlite_where=status_rows,
    )
    Table(
        "rollup_device_hour",
        metadata,
        Column("device", Text, nullable=False),
        Column("hour", UTCDateTime, nullable=False),
        Column("readings", Integer, nullable=False),
        Column("confidence_sum", Float, nullable=False),
        Column("confidence_count", Integer, nullable=False),
        PrimaryKeyConstraint("hour", "device", name="pk_rollup_device_hour"),
    )
    Table(
        "rollup_label_hour",
        metadata,
        Column("hour", UTCDateTime, nullable=False),
        Column("label", Text, nullable=False),
        Column("readings", Integer, nullable=False),
        PrimaryKeyConstraint("hour", "label", name="pk_rollup_label_hour"),
    )
    Table(
        "rollup_state",
        metadata,
        Column("name", Text, primary_key=True),
        Column("watermark", Id, nullable=False),
        Column("pending", Id, nullable=False),
        Column("pending_at", UTCDateTime, nullable=False),
    )
    # Only the indexes' own columns are defined above; create_all would create a table.
    for table in metadata.sorted_tables:
        if table.name == "readings":
            for index in table.indexes:
                index.create(conn)
        else:
            table.create(conn)


def _device_day_rollup(conn: Connection) -> None:
    # Why (docs/dashboard.md, "Indexes and rollups"): the fleet page's 24 hourly bars per device
    # were 24,000 rollup rows turned into 1,000 series on every page load. The rollup job now
    # keeps each device's window as one row (its series as JSON text, which both dialects
    # store and the page parses in microseconds); the write path is unchanged.
    metadata = MetaData()
    day = Table(
        "rollup_device_day",
        metadata,
        Column("device", Text, primary_key=True),
        Column("first_hour", BigInteger, nullable=False),
        Column("readings", Text, nullable=False),
        Column("confidence", Text, nullable=False),
    )
    day.create(conn)
    if conn.dialect.name == "postgresql":
        # A database the job already folded into gets its windows now, so the page can rely on
        # the table from this version on; the job keeps it from here (dashboard/rollup.py).
        conn.execute(
            text(
                """
INSERT INTO rollup_device_day (device, first_hour, readings, confidence)
SELECT d.urn, f.first,
    array_to_json(array_agg(coalesce(r.readings, 0) ORDER BY s.slot))::text,
    array_to_json(array_agg(r.confidence_sum / nullif(r.confidence_count, 0) ORDER BY s.slot))::text
FROM devices AS d
CROSS JOIN (SELECT floor(extract(epoch FROM now()) / 3600)::bigint - 23 AS first) AS f
CROSS JOIN generate_series(0, 23) AS s (slot)
LEFT JOIN rollup_device_hour AS r
    ON r.hour = to_timestamp((f.first + s.slot) * 3600) AND r.device = d.urn
GROUP BY d.urn, f.first
"""
            )
        )


def _device_latest_rollup(conn: Connection) -> None:
    # Why (docs/dashboard.md, "Indexes and rollups"): the fleet page probed three indexes per
    # device for its newest delivery, emotion and confidence, and status, most of its time. The
    # rollup job now keeps them per device (its ``latest`` row of ``rollup_state`` says up to
    # which delivery, and ``gaps`` which ids below that it has not seen committed yet), and the
    # page reads only the deliveries past that. No backfill: the job fills the table on its
    # next run, and until then the page probes as before. The write path is unchanged.
    metadata = MetaData()
    Table(
        "rollup_device_latest",
        metadata,
        Column("device", Text, primary_key=True),
        Column("last_delivery_id", Id, nullable=False),
        Column("last_seen", UTCDateTime, nullable=False),
        Column("emotion", Text),
        Column("emotion_time", UTCDateTime),
        Column("confidence", Float),
        Column("confidence_time", UTCDateTime),
        Column("status_delivery", Id),
        Column("status_time", UTCDateTime),
    ).create(conn)
    conn.execute(text("ALTER TABLE rollup_state ADD COLUMN gaps TEXT"))


def _alert_summaries(conn: Connection) -> None:
    # Why (webhook/alerts/outbox.py, "settled devices"): most deliveries change no rule's
    # state, and a delivery can tell so from one short row per device, written by the
    # transactions that do evaluate, without the device's lock, its readings or its states.
    # No backfill: a device without a row is evaluated, which writes its row.
    metadata = MetaData()
    Table(
        "alert_summary",
        metadata,
        Column("device", Text, primary_key=True),
        Column("summary", Text, nullable=False),
    ).create(conn)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("DROP FUNCTION lora_emotion_alert_context(text[], int4, int4[])")
        conn.exec_driver_sql(_ALERT_CONTEXT_FUNCTION_9)


# Migration 5's function, and then, after the advisory locks, the row locks of the devices'
# summaries (``FOR UPDATE``: a delivery checking a summary waits until this transaction has
# written the new one) and the summaries themselves.
_ALERT_CONTEXT_FUNCTION_9 = """
CREATE FUNCTION lora_emotion_alert_context(watched text[], depth int4, lock_keys int4[])
RETURNS TABLE (out_device text, out_readings text, out_states text, out_summary text)
LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM pg_advisory_xact_lock(7690, t.k) FROM unnest(lock_keys) AS t(k);
    PERFORM 1 FROM (SELECT s.device FROM alert_summary AS s WHERE s.device = ANY(watched)
                    ORDER BY s.device FOR UPDATE) AS locked;
    RETURN QUERY
        SELECT d.device,
            (SELECT coalesce(json_agg(json_build_array(extract(epoch FROM x.time),
                                                       x.delivery_id, x.name, x.value,
                                                       x.string_value)), '[]')::text
             FROM (SELECT r.time, r.delivery_id, r.name, r.value, r.string_value
                   FROM readings AS r
                   WHERE r.device = d.device AND r.name IN ('emotion', 'confidence')
                   ORDER BY r.time DESC LIMIT 2 * depth) AS x),
            (SELECT coalesce(json_object_agg(s.rule, json_build_array(
                                 s.firing, extract(epoch FROM s.last_fired_at))), '{}')::text
             FROM alert_state AS s WHERE s.device = d.device),
            (SELECT m.summary FROM alert_summary AS m WHERE m.device = d.device)
        FROM unnest(watched) AS d(device);
END
$fn$
"""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "devices, deliveries and readings", _initial_tables),
    Migration(2, "index deliveries by device for the audit API", _deliveries_by_device),
    Migration(3, "DevEUI URNs upper-case, as ingest spells them", _upper_case_deveuis),
    Migration(4, "deliveries name their network and keep its metadata", _delivery_networks),
    Migration(5, "alerts, their outbox and rule states", _alerts),
    Migration(6, "dashboard: partial indexes and hourly rollups", _dashboard_indexes_and_rollups),
    Migration(7, "dashboard: each device's last 24 hours as one rollup row", _device_day_rollup),
    Migration(8, "dashboard: each device's newest uplink, emotion, status", _device_latest_rollup),
    Migration(
        9,
        "alerts: each device's rule summary, for deliveries that change nothing",
        _alert_summaries,
    ),
)


def current_version(conn: Connection) -> int:
    """The schema version of the database behind ``conn``; 0 for an empty database."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    return int(
        conn.execute(select(func.coalesce(func.max(schema_version.c.version), 0))).scalar_one()
    )


def migrate(
    engine: Engine, *, target: int | None = None, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Bring the database up to ``target`` (default: the newest step), in place.

    Args:
        engine: an engine whose transactions take the write lock at ``BEGIN`` on SQLite.
        target: stop after this version.
        migrations: the steps, in ascending version order.

    Returns:
        The version the database is at afterwards.

    Raises:
        SchemaVersionError: the database is at a version newer than the newest step known.
    """
    newest = migrations[-1].version if migrations else 0
    target = newest if target is None else target
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > newest:
            raise SchemaVersionError(
                f"the database is at schema version {version}, newer than this service "
                f"({newest}); upgrade the service instead"
            )
        for step in migrations:
            if version < step.version <= target:
                step.upgrade(conn)
                conn.execute(
                    insert(schema_version).values(
                        version=step.version,
                        description=step.description,
                        applied_at=datetime.now(UTC),
                    )
                )
                version = step.version
    return version
