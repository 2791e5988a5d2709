"""The store: engines for SQLite or PostgreSQL, the rows a delivery becomes, and the queries.

Why two engines: the SQLite batch writer's transactions take the write lock at ``BEGIN``
(``BEGIN IMMEDIATE``), so a writer never fails halfway for want of a lock upgrade; reads use
ordinary deferred transactions and, in WAL mode, never wait for the writer. On PostgreSQL both
are plain pools (the batch writer there has an asyncio connection of its own, see
``commits.py``).

Why readings are summarised at read time: the latest emotion and last-seen time of a device
come from ``readings`` through its (device, time desc) index, a few probes per device, so the
write path never updates a per-device row that every worker would queue on.
"""

from __future__ import annotations

import base64
import json
import operator
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    and_,
    create_engine,
    event,
    or_,
    select,
)
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.pool import ConnectionPoolEntry

from lora_emotion.networks.kpn import (
    EMOTION_NAME,
    MAX_DEVICE_LENGTH,
    PAYLOAD_NAME,
    PORT_NAME,
    Delivery,
    Measurement,
)

from .errors import StoreLimitError, StoreUnavailableError
from .schema import MAX_PLUG_UUID_LENGTH, deliveries, devices, readings

__all__ = [
    "MAX_DECODE_ERROR_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PLUG_UUID_LENGTH",
    "STORE_UNAVAILABLE",
    "DeviceSummary",
    "NewDelivery",
    "ReadingKey",
    "Store",
    "WriteResult",
    "create_store",
    "device_summaries",
    "get_delivery",
    "get_device",
    "list_deliveries",
    "new_delivery",
    "ping",
    "read_readings",
    "unavailable",
]


CONFIDENCE_NAME = "confidence"

# What the store keeps, checked before a delivery reaches the writer so that a value no store
# can hold is answered 422 naming it rather than failing the batch it shares (the writer
# splits such a batch all the same, see commits.py). Device URNs: kpn.MAX_DEVICE_LENGTH.
#: Measurement names and units (the read API's name parameter takes as many).
MAX_NAME_LENGTH = 200
#: The codec's own messages are short; many undecodable payloads in one pack are cut here (the
#: raw body keeps everything).
MAX_DECODE_ERROR_LENGTH = 2_000
_TRANSPORT_NAMES = frozenset({PAYLOAD_NAME, PORT_NAME})

# Column order of the tuples in NewDelivery, with the PostgreSQL types the batch statement
# reads them as.
DELIVERY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("dedup_key", "varchar"),
    ("plug_uuid", "text"),
    ("device", "text"),
    ("received_at", "timestamptz"),
    ("event_time", "timestamptz"),
    ("kind", "varchar"),
    ("decode_status", "varchar"),
    ("decode_error", "text"),
    ("fport", "int4"),
    ("payload", "bytea"),
    ("reading_count", "int4"),
    ("headers", "text"),
    ("body", "bytea"),
    ("network", "varchar"),
    ("network_metadata", "text"),
)
READING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("delivery_id", "int8"),
    ("seq", "int4"),
    ("device", "text"),
    ("time", "timestamptz"),
    ("name", "text"),
    ("unit", "text"),
    ("value", "float8"),
    ("string_value", "text"),
    ("bool_value", "bool"),
    ("data_value", "bytea"),
    ("sum_value", "float8"),
    ("origin", "varchar"),
    ("extra", "text"),
)
DELIVERY_NAMES = tuple(name for name, _ in DELIVERY_COLUMNS)
READING_NAMES = tuple(name for name, _ in READING_COLUMNS)


def utc(seconds: float) -> datetime:
    """Seconds since the Unix epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; the raw body keeps the original for audit.
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


# --- write path -------------------------------------------------------------------------------


@dataclass(slots=True)
class NewDelivery:
    """A delivery ready to insert.

    Attributes:
        dedup_key: the unique key.
        row: the ``deliveries`` values in ``DELIVERY_COLUMNS`` order.
        readings: ``readings`` values in ``READING_COLUMNS`` order, without ``delivery_id``.
        devices: (urn, DevEUI) of every device the delivery names.
    """

    dedup_key: str
    row: tuple[Any, ...]
    readings: list[tuple[Any, ...]]
    devices: list[tuple[str, str | None]]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome for one delivery of a batch.

    Attributes:
        delivery_id: the id of the stored delivery: its new id, or for a ``duplicate`` the id
            of the delivery stored before with the same key (``None`` only when ``refused``).
        duplicate: the key was stored already (earlier, or by an earlier copy in the batch).
        refused: why the store refused the delivery for its content; nothing was stored.
    """

    delivery_id: int | None
    duplicate: bool
    refused: str | None = None


def _check_length(value: str | None, limit: int, field: str) -> None:
    if value is not None and len(value) > limit:
        raise StoreLimitError(
            f"{value[:24]!r}... is {len(value)} characters long, more than the {limit} "
            "the store keeps",
            field=field,
        )


def _reading(seq: int, item: Measurement) -> tuple[Any, ...]:
    _check_length(item.name, MAX_NAME_LENGTH, "measurement name")
    _check_length(item.unit, MAX_NAME_LENGTH, "measurement unit")
    extra = None
    if item.extra or item.update_time is not None:
        fields = dict(item.extra)
        if item.update_time is not None:
            fields["ut"] = item.update_time
        extra = json.dumps(fields, default=str)
    return (
        seq,
        item.device,
        utc(item.time),
        item.name,
        _text(item.unit),
        item.value,
        _text(item.string_value),
        item.bool_value,
        item.data_value,
        item.sum,
        item.origin,
        extra,
    )


def new_delivery(
    delivery: Delivery,
    *,
    plug_uuid: str,
    received_at: float,
    headers: str,
    body: bytes,
    network: str = "kpn",
    metadata: str | None = None,
) -> NewDelivery:
    """Turn a parsed delivery into the rows the store writes.

    Args:
        delivery: from :func:`lora_emotion.networks.kpn.parse_delivery` (KPN) or
            :func:`lora_emotion.networks.delivery_of` (the other networks).
        plug_uuid: the KPN destination or the network's application it came through.
        received_at: the receiver's clock when it arrived, seconds since the Unix epoch.
        headers: request headers worth keeping, as a JSON object (never the token).
        body: the raw body, kept byte for byte.
        network: who delivered it (``kpn``, ``ttn``, ``chirpstack``).
        metadata: what the network said beside the payload, as a JSON object.

    Raises:
        StoreLimitError: a device URN, name, unit or the plug UUID is longer than the store
            keeps (422).
    """
    _check_length(plug_uuid, MAX_PLUG_UUID_LENGTH, "Things-Plug-UUID")
    # The transport records (payload hex and FPort) are in the delivery row and its raw body;
    # as readings they would double the rows a delivery writes and tell a reader nothing that
    # the readings decoded from them do not.
    measurements = [
        m for m in delivery.measurements if m.origin != "kpn" or m.name not in _TRANSPORT_NAMES
    ]
    decode_error = delivery.decode_error
    if decode_error is not None and len(decode_error) > MAX_DECODE_ERROR_LENGTH:
        decode_error = decode_error[: MAX_DECODE_ERROR_LENGTH - 1] + "…"
    row = (
        delivery.dedup_key,
        plug_uuid,
        delivery.device,
        utc(received_at),
        utc(delivery.event_time) if delivery.event_time is not None else None,
        delivery.kind,
        delivery.decode_status,
        _text(decode_error),
        delivery.fport,
        delivery.payload,
        len(measurements),
        headers,
        body,
        network,
        metadata,
    )
    named = {delivery.device: delivery.dev_eui}
    for item in delivery.measurements:
        named.setdefault(item.device, None)
    for urn in named:
        _check_length(urn, MAX_DEVICE_LENGTH, "device URN")
    return NewDelivery(
        delivery.dedup_key,
        row,
        [_reading(seq, item) for seq, item in enumerate(measurements)],
        list(named.items()),
    )


class Store:
    """The engines over one database.

    Args:
        write_engine: engine of the SQLite batch writer and of migrations.
        read_engine: engine of the read API and readiness checks.
        url: the URL both were made from (the PostgreSQL batch writer opens its own
            connection from it).
    """

    def __init__(self, write_engine: Engine, read_engine: Engine, url: str) -> None:
        self.write_engine = write_engine
        self.read_engine = read_engine
        self.url = url
        self.dialect = write_engine.dialect.name

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.write_engine.dispose()
        self.read_engine.dispose()


def _enter_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Switch the database to WAL, waiting out other processes that are switching it too.

    Changing the journal mode needs the database to itself, and SQLite reports "database is
    locked" for it at once instead of calling the busy handler, so several workers opening a
    new database together would fail without the retry (seen in the concurrent-start test).
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _sqlite_engine(url: str, *, immediate: bool, busy_timeout_ms: int) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_size=1 if immediate else 4,
        max_overflow=0 if immediate else 8,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: DBAPIConnection, _: ConnectionPoolEntry) -> None:
        # Transactions are begun by the "begin" hook below, not implicitly by the driver.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        _enter_wal(cursor, busy_timeout_ms)
        # WAL with synchronous=FULL syncs the log at every commit: a 2xx survives power loss.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def create_store(
    url: str, *, busy_timeout_ms: int = 10_000, read_pool_size: int = 4, connect_timeout_s: int = 5
) -> Store:
    """Open (lazily) the store at ``url``: ``sqlite:///path`` or ``postgresql+psycopg://...``.

    Args:
        url: SQLAlchemy URL.
        busy_timeout_ms: how long SQLite waits for another process's write lock.
        read_pool_size: pooled read connections per process on PostgreSQL.
        connect_timeout_s: PostgreSQL connection timeout, so an unreachable server fails fast.
    """
    if url.startswith("sqlite"):
        return Store(
            _sqlite_engine(url, immediate=True, busy_timeout_ms=busy_timeout_ms),
            _sqlite_engine(url, immediate=False, busy_timeout_ms=busy_timeout_ms),
            url,
        )
    connect_args = {"connect_timeout": connect_timeout_s, "application_name": "lora-emotion"}
    writer = create_engine(url, pool_size=1, max_overflow=1, connect_args=connect_args)
    # pre_ping: a pooled connection that a database restart ended is replaced before a read
    # uses it, so the first read after an outage is not answered 503.
    reader = create_engine(
        url,
        pool_size=read_pool_size,
        max_overflow=read_pool_size,
        connect_args=connect_args,
        pool_pre_ping=True,
    )
    return Store(writer, reader, url)


# --- queries ----------------------------------------------------------------------------------

#: What a query raises when the store cannot answer (server gone, connection refused or cut,
#: SQLite locked past its busy timeout, no pooled connection free in time): the read API
#: answers these 503 with Retry-After, as ingest does, rather than 500.
STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
)


def unavailable(exc: Exception) -> StoreUnavailableError:
    """The service error to answer for ``exc``, one of :data:`STORE_UNAVAILABLE`."""
    orig = getattr(exc, "orig", None) or exc
    return StoreUnavailableError(f"the store is unavailable ({type(orig).__name__})")


def ping(conn: Connection) -> None:
    """Run a trivial query, raising if the store cannot answer."""
    conn.execute(select(1)).scalar_one()


@dataclass(frozen=True, slots=True)
class DeviceSummary:
    """A device with its latest emotion reading and the time of its newest reading."""

    urn: str
    dev_eui: str | None
    first_seen: datetime
    last_seen: datetime
    latest_emotion: str | None
    latest_confidence: float | None
    latest_time: datetime | None


def _summary(conn: Connection, row: Row[Any]) -> DeviceSummary:
    newest = conn.execute(
        select(readings.c.time)
        .where(readings.c.device == row.urn)
        .order_by(readings.c.time.desc())
        .limit(1)
    ).scalar()
    emotion = conn.execute(
        select(readings.c.time, readings.c.string_value, readings.c.delivery_id)
        .where(readings.c.device == row.urn, readings.c.name == EMOTION_NAME)
        .order_by(readings.c.time.desc(), readings.c.delivery_id.desc())
        .limit(1)
    ).first()
    confidence = None
    if emotion is not None:
        confidence = conn.execute(
            select(readings.c.value).where(
                readings.c.delivery_id == emotion.delivery_id,
                readings.c.device == row.urn,
                readings.c.time == emotion.time,
                readings.c.name == CONFIDENCE_NAME,
            )
        ).scalar()
    return DeviceSummary(
        urn=row.urn,
        dev_eui=row.dev_eui,
        first_seen=row.first_seen,
        last_seen=newest or row.first_seen,
        latest_emotion=emotion.string_value if emotion is not None else None,
        latest_confidence=confidence,
        latest_time=emotion.time if emotion is not None else None,
    )


def get_device(conn: Connection, *, urn: str) -> Row[Any] | None:
    """The ``devices`` row of ``urn``, or ``None``."""
    return conn.execute(select(devices).where(devices.c.urn == urn)).first()


def device_summaries(
    conn: Connection, *, limit: int = 100, after: str | None = None, urn: str | None = None
) -> list[DeviceSummary]:
    """Devices in URN order (or the one named ``urn``) with their latest emotion.

    Each device costs three probes of the (device, time desc) index, whatever its history.
    """
    query = select(devices).order_by(devices.c.urn).limit(limit)
    if after is not None:
        query = query.where(devices.c.urn > after)
    if urn is not None:
        query = query.where(devices.c.urn == urn)
    return [_summary(conn, row) for row in conn.execute(query)]


@dataclass(frozen=True, slots=True)
class ReadingKey:
    """Position of a reading in (time, delivery, seq) order; the cursor of the readings API."""

    time: datetime
    delivery_id: int
    seq: int

    def encode(self) -> str:
        """An opaque URL-safe cursor."""
        text = json.dumps([self.time.isoformat(), self.delivery_id, self.seq])
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> ReadingKey:
        """Parse a cursor made by :meth:`encode`.

        Raises:
            ValueError: not such a cursor.
        """
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            time_text, delivery_id, seq = json.loads(base64.urlsafe_b64decode(padded))
            when = datetime.fromisoformat(time_text)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError("not a readings cursor") from exc
        if not (isinstance(delivery_id, int) and isinstance(seq, int)) or when.tzinfo is None:
            raise ValueError("not a readings cursor")
        return cls(when.astimezone(UTC), delivery_id, seq)


def read_readings(
    conn: Connection,
    *,
    device: str,
    start: datetime | None = None,
    end: datetime | None = None,
    name: str | None = None,
    order: Literal["asc", "desc"] = "asc",
    limit: int = 100,
    after: ReadingKey | None = None,
) -> list[Row[Any]]:
    """One device's readings with ``start <= time < end``, in time order, keyset-paginated.

    Args:
        device: the device URN.
        start, end: the time range (either may be open).
        name: only readings of this measurement name.
        order: ``asc`` oldest first, ``desc`` newest first.
        limit: at most this many rows.
        after: continue after this position (in ``order``).
    """
    columns = readings.c
    query = select(readings).where(columns.device == device)
    if start is not None:
        query = query.where(columns.time >= start)
    if end is not None:
        query = query.where(columns.time < end)
    if name is not None:
        query = query.where(columns.name == name)
    if after is not None:
        beyond: Callable[[Any, Any], ColumnElement[bool]] = (
            operator.gt if order == "asc" else operator.lt
        )
        query = query.where(
            or_(
                beyond(columns.time, after.time),
                and_(columns.time == after.time, beyond(columns.delivery_id, after.delivery_id)),
                and_(
                    columns.time == after.time,
                    columns.delivery_id == after.delivery_id,
                    beyond(columns.seq, after.seq),
                ),
            )
        )
    keys = (columns.time, columns.delivery_id, columns.seq)
    query = query.order_by(*(keys if order == "asc" else (k.desc() for k in keys))).limit(limit)
    return list(conn.execute(query))


def list_deliveries(
    conn: Connection,
    *,
    device: str | None = None,
    decode_status: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[Row[Any]]:
    """Raw deliveries, newest first, optionally one device's or one decode status's."""
    query = select(deliveries).order_by(deliveries.c.id.desc()).limit(limit)
    if device is not None:
        query = query.where(deliveries.c.device == device)
    if decode_status is not None:
        query = query.where(deliveries.c.decode_status == decode_status)
    if before_id is not None:
        query = query.where(deliveries.c.id < before_id)
    return list(conn.execute(query))


def get_delivery(conn: Connection, *, delivery_id: int) -> Row[Any] | None:
    """One raw delivery, or ``None``."""
    return conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).first()
