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
    "MAX_PLUG_UUID_LENGTH",
    "Id",
    "UTCDateTime",
    "alert_deliveries",
    "alert_state",
    "alert_summary",
    "alerts",
    "deliveries",
    "devices",
    "metadata",
    "readings",
    "rollup_device_day",
    "rollup_device_hour",
    "rollup_device_latest",
    "rollup_label_hour",
    "rollup_state",
]

#: A Things-Plug-UUID is 36 characters; the store keeps up to this many of a destination name.
MAX_PLUG_UUID_LENGTH = 128


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

# What a device's rule states say about its next readings (migration 9; webhook/alerts/
# outbox.py, "settled devices").
alert_summary = Table(
    "alert_summary",
    metadata,
    Column("device", Text, primary_key=True),
    Column("summary", Text, nullable=False),
)

# The dashboard's rows (migration 6; why in docs/dashboard.md, "Indexes and rollups").
_EMOTION_ROWS = readings.c.name.in_(["emotion", "confidence"])
Index(
    "ix_readings_emotion",
    readings.c.device,
    readings.c.time,
    postgresql_include=["name", "string_value", "value", "delivery_id"],
    postgresql_where=_EMOTION_ROWS,
    sqlite_where=_EMOTION_ROWS,
)
_SUMMARY_ROWS = readings.c.name.like("count:%")
Index(
    "ix_readings_summary",
    readings.c.device,
    readings.c.time,
    postgresql_include=["name", "value"],
    postgresql_where=_SUMMARY_ROWS,
    sqlite_where=_SUMMARY_ROWS,
)
_STATUS_ROWS = readings.c.name == "firmwareVersion"
Index(
    "ix_readings_status",
    readings.c.device,
    readings.c.time,
    postgresql_where=_STATUS_ROWS,
    sqlite_where=_STATUS_ROWS,
)

#: Emotion readings and confidence per device and hour, of deliveries up to the watermark.
rollup_device_hour = Table(
    "rollup_device_hour",
    metadata,
    Column("device", Text, nullable=False),
    Column("hour", UTCDateTime, nullable=False),
    Column("readings", Integer, nullable=False),
    Column("confidence_sum", Float, nullable=False),
    Column("confidence_count", Integer, nullable=False),
    PrimaryKeyConstraint("hour", "device", name="pk_rollup_device_hour"),
)

#: Each device's last 24 hours of ``rollup_device_hour`` (migration 7), kept by the rollup job:
#: from hour ``first_hour`` (seconds since the epoch / 3600), 24 emotion-reading counts and 24
#: mean confidences (null where none), each a JSON array.
rollup_device_day = Table(
    "rollup_device_day",
    metadata,
    Column("device", Text, primary_key=True),
    Column("first_hour", BigInteger, nullable=False),
    Column("readings", Text, nullable=False),
    Column("confidence", Text, nullable=False),
)

#: What the fleet page shows of each device, of the deliveries the ``rollup_state`` row
#: ``latest`` names (migration 8), kept by the rollup job: its newest delivery by id (the last
#: uplink), and its newest emotion, confidence and status-marker readings by time.
rollup_device_latest = Table(
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
)

#: Emotion readings per label and hour over the whole fleet, up to the watermark.
rollup_label_hour = Table(
    "rollup_label_hour",
    metadata,
    Column("hour", UTCDateTime, nullable=False),
    Column("label", Text, nullable=False),
    Column("readings", Integer, nullable=False),
    PrimaryKeyConstraint("hour", "label", name="pk_rollup_label_hour"),
)

#: Which deliveries the rollups hold. Row ``hourly``: ids up to ``watermark``; ``pending`` is
#: the newest id seen at ``pending_at``, folded in once no commit below it can still be in
#: flight. Row ``latest`` (``rollup_device_latest``): ids up to ``watermark`` but those in
#: ``gaps`` (a JSON array, migration 8), folded at ``pending_at``; ``pending`` is ``watermark``.
rollup_state = Table(
    "rollup_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("watermark", Id, nullable=False),
    Column("pending", Id, nullable=False),
    Column("pending_at", UTCDateTime, nullable=False),
    Column("gaps", Text),
)
