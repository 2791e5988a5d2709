"""Committing one batch of deliveries: a SQLite writer and a PostgreSQL writer.

Why a batch is written in key order: several workers commit batches concurrently, and a batch
that inserted key A and waits on key B while another holds B and waits on A would deadlock.
Deliveries are inserted sorted by their unique key, so every transaction takes its locks in
one global order. ``ON CONFLICT DO NOTHING`` on that key makes the write idempotent, which is
also what makes it safe to retry a batch whose connection died during ``COMMIT``: what did
commit comes back as duplicates.

Why the write touches no per-device row: a "latest emotion" column updated by every delivery
would be a row lock that all workers queue on. ``devices`` gets a row the first time a process
sees a device; the latest emotion is read from ``readings`` when someone asks.

Why a batch the store refuses is split: a batch is one statement (PostgreSQL) or one
transaction (SQLite), so one row the store cannot hold (a value too long for an index entry, a
NOT NULL left empty) fails every delivery that shared the batch. Retrying the batch whole
would fail again forever. Failures are sorted into two kinds: the store *refusing content*
(PostgreSQL SQLSTATE classes 22 data exception, 23 integrity constraint except unique
violations, 54 program limit exceeded; their SQLite equivalents; values the driver cannot
encode), which is final for those rows, and everything else (connection lost, server shutting
down, disk full, lock timeouts, unique races), which is the store being *unavailable* and is
answered 503 for the whole batch, so the sender retries. A refused batch is halved and each
half written again, recursively: the good deliveries commit in a few statements (about two per
level, log2 of the batch size levels per bad delivery), and a single delivery that is still
refused is tried once more without its readings (the raw body is what must never be lost);
refused even so, it alone is answered 422.

Why a duplicate's answer carries the id of the delivery stored before: a sender that retried
after a lost answer can then find the delivery it sent (``GET /deliveries/{id}``). ``ON
CONFLICT DO NOTHING`` returns nothing for a key that was there already, so the ids of the keys
a batch did not insert are read back after the insert (PostgreSQL: a second statement, whose
fresh snapshot sees a copy another worker committed while this insert waited on its key;
SQLite: in the same transaction). Batches without duplicates, the common case, skip it.

Why PostgreSQL is written asynchronously and SQLite from a thread: a commit spends most of its
time waiting for the server. A writer thread waits without the GIL, but needs it back after
every round trip, and while the event loop is busy parsing requests it gets it only at the
interpreter's switch interval (5 ms), so a batch of a few round trips took tens of
milliseconds under load. psycopg's asyncio connection waits inside the event loop instead, so
requests are parsed while the server works. sqlite3 has no asynchronous interface, and its
calls are short and local, so it keeps a thread.

Why one statement per batch on PostgreSQL: the deliveries, their readings and new devices go in
as one ``INSERT ... SELECT FROM jsonb_to_recordset(...)`` chain with the whole batch as one JSON
parameter. That is one round trip and, in autocommit, one transaction; psycopg does no work per
value, and the server parses one text. It replaced ``COPY`` into a staging table followed by
``INSERT ... SELECT``, which took three round trips per batch. SQLite goes through SQLAlchemy
Core statements and the sqlite3 cursor of SQLAlchemy's transaction.

Why the PostgreSQL statement also notifies: the dashboard's live feed in every worker and on
every host learns of committed deliveries from ``NOTIFY``, sent in the batch's own transaction
(so at commit, never before), once per batch, in the same round trip. SQLite needs nothing:
there the feed polls, and one writer at a time means ids are committed in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import sqlite3
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import psycopg
from sqlalchemy import Connection, make_url, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError

from .alerts import metrics as alert_metrics
from .alerts.outbox import AlertHook
from .schema import deliveries, devices
from .storage import (
    DELIVERY_COLUMNS,
    DELIVERY_NAMES,
    READING_COLUMNS,
    READING_NAMES,
    NewDelivery,
    Store,
    WriteResult,
)

__all__ = [
    "NOTIFY_CHANNEL",
    "BatchWriter",
    "PostgresBatchWriter",
    "SQLiteBatchWriter",
    "is_refusal",
    "open_batch_writer",
]

log = logging.getLogger("lora_emotion.webhook.commits")

#: The channel every committed batch is announced on (the dashboard's live feed listens):
#: ``low-high`` runs of the new delivery ids, comma-separated, in the batch's own transaction,
#: so listeners learn of it exactly when it is visible. ``low-high~`` when the runs would not
#: fit a notification (8000 bytes): a range that may hold other batches' ids as well.
NOTIFY_CHANNEL = "lora_emotion_deliveries"

#: Devices a process remembers having stored; past this the memory starts afresh.
KNOWN_DEVICES_LIMIT = 100_000
_RECEIVED_AT = DELIVERY_NAMES.index("received_at")
_DEVICE = DELIVERY_NAMES.index("device")


class BatchWriter(Protocol):
    """Commits batches of deliveries; the results are final once ``write`` returns."""

    #: How many batches ``write`` may be committing at once.
    concurrency: int

    async def write(self, batch: Sequence[NewDelivery]) -> list[WriteResult]:
        """Commit ``batch`` in one transaction (or, when the store refuses some deliveries'
        content, in as many as it takes to commit all the others); a refused delivery's result
        says why in ``refused``.

        Raises:
            Exception: the store is unavailable; nothing of the batch is acknowledged.
        """
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...


# --- what both writers share ------------------------------------------------------------------


def _plan(batch: Sequence[NewDelivery]) -> tuple[dict[str, NewDelivery], list[NewDelivery]]:
    """The first delivery of each key, and those in key order (the lock order)."""
    first: dict[str, NewDelivery] = {}
    for item in batch:
        first.setdefault(item.dedup_key, item)
    return first, [first[key] for key in sorted(first)]


def _results(
    batch: Sequence[NewDelivery],
    first: dict[str, NewDelivery],
    inserted: dict[str, int],
    existing: dict[str, int],
) -> list[WriteResult]:
    """Each delivery's outcome: new when it was its key's first and got inserted, else a
    duplicate with the id its key is stored under."""
    results = []
    for item in batch:
        key = item.dedup_key
        if key in inserted:
            results.append(WriteResult(inserted[key], duplicate=first[key] is not item))
        else:
            results.append(WriteResult(existing.get(key), duplicate=True))
    return results


def _refusal(exc: BaseException) -> str:
    """What the store said about content it refused, in one line, for the 422 answer."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    detail = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    name = type(orig).__name__
    return f"{name}: {detail[:200]}" if detail else name


#: Raised while encoding a row's values for the driver: that row's content, never the store.
_ENCODING_ERRORS = (UnicodeError, OverflowError, orjson.JSONEncodeError)
#: PostgreSQL SQLSTATE classes of a statement refused for its content: data exception,
#: integrity constraint violation, program limit exceeded.
_PG_CONTENT_CLASSES = frozenset({"22", "23", "54"})
_PG_UNIQUE_VIOLATION = "23505"


def is_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is the store refusing the content of the rows (final for them), as
    opposed to the store being unavailable (worth retrying later).

    A unique violation counts as unavailability: the writes arbitrate their unique keys with
    ``ON CONFLICT``, so one can only come from a race, which a retry resolves.
    """
    if isinstance(exc, _ENCODING_ERRORS):
        return True
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate is None:  # raised by psycopg itself, before sending
            return isinstance(exc, psycopg.DataError | psycopg.IntegrityError)
        return exc.sqlstate[:2] in _PG_CONTENT_CLASSES and exc.sqlstate != _PG_UNIQUE_VIOLATION
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(orig, _ENCODING_ERRORS):
        return True
    if isinstance(orig, sqlite3.IntegrityError):
        return orig.sqlite_errorcode not in _SQLITE_UNIQUE_CODES
    if isinstance(orig, sqlite3.DataError):
        return True
    if isinstance(orig, sqlite3.OperationalError):
        return orig.sqlite_errorcode & 0xFF == _SQLITE_TOOBIG
    if isinstance(orig, sqlite3.InterfaceError | sqlite3.ProgrammingError):
        return "binding" in str(orig)  # a value of a type sqlite3 cannot bind
    return False


_SQLITE_TOOBIG = 18
#: SQLITE_CONSTRAINT_PRIMARYKEY and SQLITE_CONSTRAINT_UNIQUE.
_SQLITE_UNIQUE_CODES = frozenset({1555, 2067})


class _KnownDevices:
    """Device URNs this process has stored, so that a device row is inserted once."""

    def __init__(self) -> None:
        self._urns: set[str] = set()

    def new(
        self, ordered: Sequence[NewDelivery], inserted: dict[str, int]
    ) -> list[tuple[str, str | None, datetime]]:
        """(urn, DevEUI, first received) of unknown devices of the inserted deliveries."""
        found: dict[str, tuple[str | None, datetime]] = {}
        for item in ordered:
            if item.dedup_key not in inserted:
                continue
            for urn, dev_eui in item.devices:
                if urn not in self._urns and urn not in found:
                    found[urn] = (dev_eui, item.row[_RECEIVED_AT])
        return [(urn, eui, seen) for urn, (eui, seen) in sorted(found.items())]

    def remember(self, urns: Sequence[tuple[str, str | None, datetime]]) -> None:
        if len(self._urns) > KNOWN_DEVICES_LIMIT:
            self._urns.clear()
        self._urns.update(urn for urn, _, _ in urns)


def _log_split(size: int, reason: str) -> None:
    log.warning(
        "store refused a batch of %d for its content (%s); splitting it",
        size,
        reason,
        extra={"event": "batch_refused", "batch": size},
    )


def _readings_refused(reason: str) -> str:
    return f"the store refused the readings ({reason}); kept raw"


def _refused(item: NewDelivery, reason: str) -> WriteResult:
    log.error(
        "store refused a delivery for its content: %s",
        reason,
        extra={"event": "delivery_refused_by_store", "dedup_key": item.dedup_key},
    )
    return WriteResult(None, duplicate=False, refused=f"the store refused the delivery: {reason}")


def _without_readings(item: NewDelivery, reason: str) -> NewDelivery:
    """``item`` kept raw: no readings, decode status ``error`` with ``reason`` appended."""
    row = dict(zip(DELIVERY_NAMES, item.row, strict=True))
    row["decode_error"] = "; ".join(filter(None, [row["decode_error"], reason]))
    row.update(decode_status="error", reading_count=0)
    return NewDelivery(item.dedup_key, tuple(row.values()), [], item.devices)


# --- SQLite -----------------------------------------------------------------------------------


class _WriterLock:
    """An exclusive ``flock`` that the SQLite writers of all workers take turns on.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so two workers contending for
    the write lock left waiters asleep while the other worker took the lock again: the
    benchmark saw seconds at the 99th percentile. ``flock`` hands the lock over as soon as it
    is released. It lives in a file of its own (never the database file: closing a second
    descriptor of it would drop SQLite's POSIX locks).
    """

    def __init__(self, database: Path) -> None:
        digest = hashlib.sha256(str(database.resolve()).encode()).hexdigest()[:16]
        self._file = open(  # noqa: SIM115 - held for the life of the writer
            Path(tempfile.gettempdir()) / f"lora-emotion-{digest}.lock", "a+b"
        )

    def __enter__(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()


class SQLiteBatchWriter:
    """Writes batches through SQLAlchemy Core on one thread of its own."""

    #: SQLite lets one writer in at a time, and the workers already take turns.
    concurrency = 1

    def __init__(self, store: Store, alerts: AlertHook | None = None) -> None:
        self._store = store
        self._alerts = alerts
        database = store.write_engine.url.database
        self._lock = _WriterLock(Path(database)) if database and database != ":memory:" else None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-commit")
        self._known = _KnownDevices()
        self._insert_deliveries = (
            sqlite.insert(deliveries)
            .on_conflict_do_nothing(index_elements=[deliveries.c.dedup_key])
            .returning(deliveries.c.id, deliveries.c.dedup_key)
        )
        self._insert_devices = sqlite.insert(devices).on_conflict_do_nothing(
            index_elements=[devices.c.urn]
        )

    async def write(self, batch: Sequence[NewDelivery]) -> list[WriteResult]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.write_sync, list(batch))

    async def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._lock is not None:
            self._lock.close()

    def write_sync(self, batch: Sequence[NewDelivery]) -> list[WriteResult]:
        """Commit ``batch`` from the calling thread.

        A batch the store refuses for its content is split until the refused deliveries are
        found (see the module's docstring); only those come back ``refused``.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the store is unavailable (locked, unwritable).
        """
        try:
            return self._write(batch)
        except Exception as exc:
            if not is_refusal(exc):
                raise
            reason = _refusal(exc)
        if len(batch) > 1:
            _log_split(len(batch), reason)
            half = len(batch) // 2
            return self.write_sync(batch[:half]) + self.write_sync(batch[half:])
        (item,) = batch
        if item.readings:
            try:
                return self._write([_without_readings(item, _readings_refused(reason))])
            except Exception as exc:
                if not is_refusal(exc):
                    raise
        return [_refused(item, reason)]

    def _write(self, batch: Sequence[NewDelivery]) -> list[WriteResult]:
        first, ordered = _plan(batch)
        with self._lock or contextlib.nullcontext(), self._store.write_engine.begin() as conn:
            inserted = self._insert(conn, ordered)
            # The alerts a batch raises commit with it, or not at all.
            raised = 0
            if self._alerts is not None and inserted:
                driver = conn.connection.driver_connection
                assert isinstance(driver, sqlite3.Connection)
                raised = self._alerts.write_sqlite(driver.cursor(), ordered, inserted)
            new = self._known.new(ordered, inserted)
            if new:
                conn.execute(
                    self._insert_devices,
                    [{"urn": u, "dev_eui": e, "first_seen": s} for u, e, s in new],
                )
            existing = self._existing(conn, [key for key in first if key not in inserted])
        self._known.remember(new)
        if self._alerts is not None and self._alerts.committed is not None:
            self._alerts.committed(ordered, inserted, raised)
        return _results(batch, first, inserted, existing)

    @staticmethod
    def _existing(conn: Connection, keys: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(keys), _SQLITE_KEYS_PER_QUERY):
            chunk = keys[start : start + _SQLITE_KEYS_PER_QUERY]
            query = select(deliveries.c.id, deliveries.c.dedup_key).where(
                deliveries.c.dedup_key.in_(chunk)
            )
            found.update({key: delivery_id for delivery_id, key in conn.execute(query)})
        return found

    def _insert(self, conn: Connection, ordered: Sequence[NewDelivery]) -> dict[str, int]:
        # The sqlite3 cursor of SQLAlchemy's own transaction: SQLAlchemy's per-row parameter
        # processing was half of the CPU of a SQLite commit (measured), sqlite3's loop is C.
        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            cursor = driver.cursor()
            values = ", ".join([_SQLITE_DELIVERY_ROW] * len(ordered))
            cursor.execute(
                _SQLITE_INSERT_DELIVERIES.format(values=values),
                [value for item in ordered for value in _sqlite_row(item.row, _DELIVERY_TIMES)],
            )
            inserted = {key: delivery_id for delivery_id, key in cursor.fetchall()}
            cursor.executemany(
                _SQLITE_INSERT_READINGS,
                [
                    _sqlite_row((inserted[item.dedup_key], *reading), _READING_TIMES)
                    for item in ordered
                    if item.dedup_key in inserted
                    for reading in item.readings
                ],
            )
        except sqlite3.Error as exc:
            raise DBAPIError.instance(
                _SQLITE_INSERT_READINGS, None, exc, sqlite3.Error, dialect=conn.dialect
            ) from exc
        return inserted


#: Below SQLite's smallest limit on the parameters of one statement (999 before 3.32).
_SQLITE_KEYS_PER_QUERY = 500
_SQLITE_DELIVERY_ROW = "(" + ", ".join("?" * len(DELIVERY_NAMES)) + ")"
_SQLITE_INSERT_DELIVERIES = (
    f"INSERT INTO deliveries ({', '.join(DELIVERY_NAMES)}) VALUES {{values}} "
    "ON CONFLICT (dedup_key) DO NOTHING RETURNING id, dedup_key"
)
_SQLITE_INSERT_READINGS = (
    f"INSERT INTO readings ({', '.join(READING_NAMES)}) "
    f"VALUES ({', '.join('?' * len(READING_NAMES))})"
)
_DELIVERY_TIMES = frozenset(
    position for position, (_, kind) in enumerate(DELIVERY_COLUMNS) if kind == "timestamptz"
)
_READING_TIMES = frozenset(
    position for position, (_, kind) in enumerate(READING_COLUMNS) if kind == "timestamptz"
)


def _sqlite_row(row: Sequence[Any], times: frozenset[int]) -> tuple[Any, ...]:
    """``row`` with its UTC datetimes written as SQLAlchemy's SQLite DATETIME stores them."""
    return tuple(
        value.isoformat(" ", "microseconds")[:26]
        if position in times and value is not None
        else value
        for position, value in enumerate(row)
    )


# --- PostgreSQL -------------------------------------------------------------------------------


def _recordset(columns: Sequence[tuple[str, str]], alias: str) -> tuple[str, str]:
    """The column definitions of ``jsonb_to_recordset`` and the expressions that read them.

    JSON has no bytes: a byte string travels in the batch's one binary parameter, ``bytes``,
    and its JSON field holds where (``<name>_at``, 1-based) and how long (``<name>_len``) it is.
    """
    definitions = ", ".join(
        f"{name}_at int4, {name}_len int4" if kind == "bytea" else f"{name} {kind}"
        for name, kind in columns
    )
    values = ", ".join(
        f"substring(%(bytes)b FROM {alias}.{name}_at FOR {alias}.{name}_len)"
        if kind == "bytea"
        else f"{alias}.{name}"
        for name, kind in columns
    )
    return definitions, values


_DELIVERY_FIELDS, _DELIVERY_VALUES = _recordset(DELIVERY_COLUMNS, "b")
_READING_FIELDS, _READING_VALUES = _recordset(READING_COLUMNS[1:], "r")


# One statement per batch, so one round trip and, in autocommit, one transaction: the
# deliveries go in in key order (the lock order), the readings of those that were new follow
# with the ids they got, and so do devices this process has not stored yet. jsonb rather than
# json: the server parses the parameter once, where json is checked on input and parsed again
# by every json_to_recordset, the readings of each delivery included (measured: 2-3 µs of
# PostgreSQL CPU per delivery). The raw bodies are one binary parameter rather than hex in the
# JSON: hex doubled the text the server parses and decodes (a body is most of a delivery).
def _batch_statement(checked: bool) -> str:
    """The batch statement; ``checked``: each delivery with a ``summary`` pattern is stored
    only if its device's summary is ``LIKE`` the rules' fingerprint followed by it, and the
    others come back with a NULL id (see "settled devices" in alerts/outbox.py)."""
    if checked:
        extra = ", summary text"
        # Each summary is read by its primary key and locked (FOR SHARE) in device order, the
        # order evaluations lock them in, and all before the first insert: the sort on
        # dedup_key reads every judged row first.
        checks = """, judged AS (
    SELECT w.*, CASE WHEN w.summary IS NULL THEN true ELSE coalesce((
        SELECT s.summary LIKE %(fingerprint)s || w.summary FROM alert_summary AS s
        WHERE s.device = w.device FOR SHARE), false) END AS ok
    FROM (SELECT * FROM batch ORDER BY device) AS w
)"""
        source, where = "judged", "WHERE b.ok "
        tail = "\nUNION ALL SELECT NULL, dedup_key FROM judged WHERE NOT ok"
    else:
        extra = checks = where = tail = ""
        source = "batch"
    return f"""
WITH batch AS (
    SELECT * FROM jsonb_to_recordset(%(deliveries)s::jsonb)
        AS b({_DELIVERY_FIELDS}, readings jsonb{extra})
){checks}, inserted AS (
    INSERT INTO deliveries ({", ".join(DELIVERY_NAMES)})
    SELECT {_DELIVERY_VALUES} FROM {source} AS b {where}ORDER BY b.dedup_key
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id, dedup_key
), new_readings AS (
    INSERT INTO readings ({", ".join(READING_NAMES)})
    SELECT inserted.id, {_READING_VALUES}
    FROM inserted JOIN batch USING (dedup_key),
        jsonb_to_recordset(batch.readings) AS r({_READING_FIELDS})
), new_devices AS (
    INSERT INTO devices (urn, dev_eui, first_seen)
    SELECT urn, dev_eui, first_seen
    FROM jsonb_to_recordset(%(devices)s::jsonb)
        AS d(urn text, dev_eui varchar, first_seen timestamptz)
    ORDER BY urn
    ON CONFLICT (urn) DO NOTHING
), runs AS (
    SELECT min(id) AS low, max(id) AS high
    FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS run FROM inserted) AS numbered
    GROUP BY run
), notified AS (
    SELECT pg_notify('{NOTIFY_CHANNEL}', CASE WHEN length(exact) <= 7900 THEN exact
        ELSE (SELECT min(low) || '-' || max(high) || '~' FROM runs) END)
    FROM (SELECT string_agg(low || '-' || high, ',' ORDER BY low) AS exact FROM runs) AS listed
    WHERE exact IS NOT NULL
)
SELECT id, dedup_key FROM inserted LEFT JOIN notified ON true{tail}
"""


_PG_WRITE_BATCH = _batch_statement(checked=False)
_PG_WRITE_CHECKED_BATCH = _batch_statement(checked=True)


def _json_fields(
    columns: Sequence[tuple[str, str]], skip: int = 0
) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str, int], ...]]:
    """(name, position) of the JSON-able columns and (``_at`` name, ``_len`` name, position) of
    the byte strings, for rows that lack the first ``skip`` columns."""
    plain = tuple(
        (name, position - skip)
        for position, (name, kind) in enumerate(columns)
        if position >= skip and kind != "bytea"
    )
    binary = tuple(
        (f"{name}_at", f"{name}_len", position - skip)
        for position, (name, kind) in enumerate(columns)
        if position >= skip and kind == "bytea"
    )
    return plain, binary


_DELIVERY_JSON, _DELIVERY_BYTES = _json_fields(DELIVERY_COLUMNS)
_READING_JSON, _READING_BYTES = _json_fields(READING_COLUMNS, skip=1)


def _batch_parameters(
    ordered: Sequence[NewDelivery], checks: dict[str, str] | None = None
) -> dict[str, str | bytes]:
    """The statement's parameters: the batch as JSON, each delivery with its readings (and,
    from ``checks``, the summary pattern its device is checked against), and the byte strings
    (raw bodies, payloads) laid end to end.

    Null fields are left out (``jsonb_to_recordset`` reads a missing key as NULL): most of a
    reading's value columns are null, and the server's JSON parsing is a good part of its
    work per delivery.
    """
    blob = bytearray()

    def fields(
        row: Sequence[Any],
        plain: tuple[tuple[str, int], ...],
        binary: tuple[tuple[str, str, int], ...],
    ) -> dict[str, Any]:
        out = {name: value for name, at in plain if (value := row[at]) is not None}
        for at_name, len_name, at in binary:
            value = row[at]
            if value is not None:
                out[at_name] = len(blob) + 1
                out[len_name] = len(value)
                blob.extend(value)
        return out

    deliveries = []
    for item in ordered:
        row = fields(item.row, _DELIVERY_JSON, _DELIVERY_BYTES)
        row["readings"] = [
            fields(reading, _READING_JSON, _READING_BYTES) for reading in item.readings
        ]
        if checks is not None and (check := checks.get(item.dedup_key)) is not None:
            row["summary"] = check
        deliveries.append(row)
    return {"deliveries": orjson.dumps(deliveries).decode(), "bytes": bytes(blob)}


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as the connection string psycopg takes."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBatchWriter:
    """Writes batches over asyncio psycopg connections, one per batch being committed.

    Connections are opened on first use and kept; one that broke is dropped and replaced.

    Args:
        url: the store's URL.
        concurrency: most batches committing at once, hence most connections.
        connect_timeout_s: how long to wait for the server before the batch fails.
        timeout_s: how long one batch may take before its connection is dropped (a server
            that stopped answering must not hold the writer forever).
    """

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 1,
        connect_timeout_s: int = 5,
        timeout_s: float = 30.0,
        alerts: AlertHook | None = None,
    ) -> None:
        self.concurrency = concurrency
        self._alerts = alerts
        self._conninfo = libpq_url(url)
        self._connect_timeout_s = connect_timeout_s
        self._timeout_s = timeout_s
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._known = _KnownDevices()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            connection = self._idle.pop()
            if not (connection.closed or connection.broken):
                return connection
        return await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=self._connect_timeout_s,
            application_name="lora-emotion-writer",
        )

    def _release(self, connection: psycopg.AsyncConnection[Any]) -> None:
        if not (connection.closed or connection.broken):
            self._idle.append(connection)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    async def write(self, batch: Sequence[NewDelivery]) -> list[WriteResult]:
        """Commit ``batch``.

        A connection that broke (a restarted server, a cut network) is replaced and the batch
        retried once. A batch the store refuses for its content is split until the refused
        deliveries are found (see the module's docstring); only those come back ``refused``.

        Raises:
            psycopg.Error: the store is unavailable; nothing is acknowledged.
        """
        connection = await self._connect()
        try:
            try:
                return await self._split(connection, batch)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                if not (connection.broken or connection.closed):
                    raise
                log.warning("store connection lost; retrying the batch once")
                await connection.close()
                connection = await self._connect()
                return await self._split(connection, batch)
        finally:
            self._release(connection)

    async def _split(
        self, connection: psycopg.AsyncConnection[Any], batch: Sequence[NewDelivery]
    ) -> list[WriteResult]:
        try:
            return await self._bounded(connection, batch)
        except Exception as exc:
            if not is_refusal(exc):
                raise
            reason = _refusal(exc)
        if len(batch) > 1:
            _log_split(len(batch), reason)
            half = len(batch) // 2
            return await self._split(connection, batch[:half]) + await self._split(
                connection, batch[half:]
            )
        (item,) = batch
        if item.readings:
            try:
                raw = _without_readings(item, _readings_refused(reason))
                return await self._bounded(connection, [raw])
            except Exception as exc:
                if not is_refusal(exc):
                    raise
        return [_refused(item, reason)]

    async def _bounded(
        self, connection: psycopg.AsyncConnection[Any], batch: Sequence[NewDelivery]
    ) -> list[WriteResult]:
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._write(connection, batch)
        except TimeoutError:
            # The connection is mid-protocol; only a new one is safe to use.
            await connection.close()
            raise psycopg.OperationalError(
                f"the store did not commit within {self._timeout_s:g} s"
            ) from None

    async def _write(
        self, connection: psycopg.AsyncConnection[Any], batch: Sequence[NewDelivery]
    ) -> list[WriteResult]:
        first, ordered = _plan(batch)
        # Devices of duplicates too: ON CONFLICT skips them, and the set stays small.
        new = self._known.new(ordered, {item.dedup_key: 0 for item in ordered})
        devices = [{"urn": u, "dev_eui": e, "first_seen": s} for u, e, s in new]
        new_devices = orjson.dumps(devices).decode()
        watched = self._alerts.devices(ordered) if self._alerts is not None else []
        raised = 0
        if self._alerts is not None and watched:
            inserted, raised = await self._write_watched(
                connection, self._alerts, ordered, watched, new_devices
            )
        else:
            parameters = {**_batch_parameters(ordered), "devices": new_devices}
            cursor = await connection.execute(_PG_WRITE_BATCH, parameters)
            inserted = {key: delivery_id for delivery_id, key in await cursor.fetchall()}
        self._known.remember(new)
        if self._alerts is not None and self._alerts.committed is not None:
            self._alerts.committed(ordered, inserted, raised)
        existing: dict[str, int] = {}
        if len(inserted) < len(first):
            cursor = await connection.execute(
                "SELECT id, dedup_key FROM deliveries WHERE dedup_key = ANY(%s)",
                ([key for key in first if key not in inserted],),
            )
            existing = {key: delivery_id for delivery_id, key in await cursor.fetchall()}
        return _results(batch, first, inserted, existing)

    async def _write_watched(
        self,
        connection: psycopg.AsyncConnection[Any],
        alerts: AlertHook,
        ordered: Sequence[NewDelivery],
        watched: list[str],
        new_devices: str,
    ) -> tuple[dict[str, int], int]:
        """Store a batch of which some deliveries are of devices that rules watch: those whose
        device is settled in one statement, the rest in a transaction that evaluates the rules
        (see "settled devices" in alerts/outbox.py); (inserted, alerts raised)."""
        checks, evaluate = alerts.route(ordered, watched)
        inserted: dict[str, int] = {}
        if len(evaluate) < len(ordered):
            skip = {item.dedup_key for item in evaluate}
            settled = [item for item in ordered if item.dedup_key not in skip]
            parameters = {
                **_batch_parameters(settled, checks),
                "devices": new_devices,
                "fingerprint": alerts.evaluator.fingerprint + ":",
            }
            cursor = await connection.execute(_PG_WRITE_CHECKED_BATCH, parameters)
            unsettled = set()
            for delivery_id, key in await cursor.fetchall():
                if delivery_id is None:
                    unsettled.add(key)
                else:
                    inserted[key] = delivery_id
            new_devices = "[]"
            refused = {item.row[_DEVICE] for item in settled if item.dedup_key in unsettled}
            passed = {item.row[_DEVICE] for item in settled if item.dedup_key in checks}
            alerts.learn(passed - refused, refused)
            if unsettled:
                evaluate = [item for item in ordered if item.dedup_key in skip | unsettled]
            alert_metrics.EVALUATIONS.labels("settled").inc(len(checks) - len(unsettled))
        if not evaluate:
            return inserted, 0
        alert_metrics.EVALUATIONS.labels("evaluated").inc(len(evaluate))
        # A transaction of three round trips instead of one statement: see alerts/outbox.py.
        parameters = {**_batch_parameters(evaluate), "devices": new_devices}
        more, raised = await alerts.write_postgres(
            connection, _PG_WRITE_BATCH, parameters, evaluate, alerts.devices(evaluate)
        )
        inserted.update(more)
        return inserted, raised


def open_batch_writer(
    store: Store,
    *,
    concurrency: int = 1,
    connect_timeout_s: int = 5,
    timeout_s: float = 30.0,
    alerts: AlertHook | None = None,
) -> BatchWriter:
    """The batch writer for ``store``'s database; ``concurrency`` applies to PostgreSQL;
    ``alerts`` evaluates alert rules inside each batch's transaction."""
    if store.dialect == "postgresql":
        return PostgresBatchWriter(
            store.url,
            concurrency=concurrency,
            connect_timeout_s=connect_timeout_s,
            timeout_s=timeout_s,
            alerts=alerts,
        )
    return SQLiteBatchWriter(store, alerts)
