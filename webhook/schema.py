"""The tables at the newest schema version, as SQLAlchemy Core objects for queries.

Why three tables: ``deliveries`` keeps every acknowledged delivery byte for byte (the audit
trail, and the place a payload that failed to decode is kept with its error); ``readings``
holds one row per resolved SenML record, keyed by time so that it can become a TimescaleDB
hypertable; ``devices`` lists every device once, with the first time it was heard of (its
latest emotion and last-seen time come from ``readings`` through the (device, time desc)
index, so no row is updated on every delivery). The migrations in ``migrations.py`` create these;
a test checks that a migrated database matches these definitions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

__all__ = [
    "Id",
    "UTCDateTime",
    "alert_deliveries",
    "alert_state",
    "alerts",
    "deliveries",
    "devices",
    "metadata",
    "readings",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps in UTC: ``timestamptz`` on PostgreSQL, naive UTC text on SQLite.

    SQLite keeps ``YYYY-MM-DD HH:MM:SS.ffffff``, which sorts and compares in time order as long
    as every value is UTC, so the conversion happens here and nowhere else.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        elif value.utcoffset():
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: 64-bit keys on PostgreSQL; SQLite autoincrements only an ``INTEGER PRIMARY KEY``.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("urn", Text, primary_key=True),
    Column("dev_eui", String(16)),
    Column("first_seen", UTCDateTime, nullable=False),
)

deliveries = Table(
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
    # Schema version 4: who delivered it, and what that network said beside the payload.
    Column("network", String(16), nullable=False, server_default="kpn"),
    Column("network_metadata", Text),
    UniqueConstraint("dedup_key", name="uq_deliveries_dedup_key"),
    Index("ix_deliveries_device_id", "device", "id"),
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

# Alerts (migration 5): each alert once, its deliveries to each channel (the outbox the
# dispatchers work from), and each rule's state per device.
alerts = Table(
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

alert_deliveries = Table(
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
Index(
    "ix_alert_deliveries_due",
    alert_deliveries.c.channel,
    alert_deliveries.c.next_attempt_at,
    postgresql_where=alert_deliveries.c.delivered_at.is_(None),
    sqlite_where=alert_deliveries.c.delivered_at.is_(None),
)

alert_state = Table(
    "alert_state",
    metadata,
    Column("device", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("firing", Boolean, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("last_fired_at", UTCDateTime),
    PrimaryKeyConstraint("device", "rule", name="pk_alert_state"),
)
