"""The store on SQLite and PostgreSQL: migrations, the batched write path, queries."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from lora_emotion.webhook import schema
from lora_emotion.webhook.commits import open_batch_writer
from lora_emotion.webhook.errors import StoreLimitError
from lora_emotion.webhook.migrations import (
    MIGRATIONS,
    Migration,
    SchemaVersionError,
    current_version,
    migrate,
)
from lora_emotion.webhook.storage import (
    DELIVERY_COLUMNS,
    NewDelivery,
    ReadingKey,
    Store,
    WriteResult,
    create_store,
    device_summaries,
    list_deliveries,
    new_delivery,
    read_readings,
    utc,
)
from sqlalchemy import Connection, UniqueConstraint, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError
from webhook_support import DEVICE, THINGSML_HAPPY, payload_body

from lora_emotion.networks.kpn import parse_delivery

NOW = 1_700_000_000.0


def item(body: bytes, received_at: float = NOW) -> NewDelivery:
    delivery = parse_delivery(body, now=received_at)
    return new_delivery(
        delivery, plug_uuid="plug", received_at=received_at, headers='{"a": "b"}', body=body
    )


def as_row(new: NewDelivery) -> dict[str, object]:
    return dict(zip((name for name, _ in DELIVERY_COLUMNS), new.row, strict=True))


#: Columns of ``deliveries`` added by schema version 4 (absent from an older database).
V4_COLUMNS = frozenset({"network", "network_metadata"})


def as_old_row(new: NewDelivery) -> dict[str, object]:
    """``as_row`` for a database before schema version 4."""
    return {name: value for name, value in as_row(new).items() if name not in V4_COLUMNS}


def commit(store: Store, *batches: list[NewDelivery]) -> list[list[WriteResult]]:
    """Commit each batch in turn with the service's batch writer for this store."""

    async def run() -> list[list[WriteResult]]:
        writer = open_batch_writer(store)
        try:
            return [await writer.write(batch) for batch in batches]
        finally:
            await writer.close()

    return asyncio.run(run())


def reading_body(label_hex: str, base_time: float) -> bytes:
    return payload_body(label_hex, 16, base_time=base_time)


@pytest.fixture
def empty_store(database_url: str) -> Store:
    opened = create_store(database_url)
    yield opened  # type: ignore[misc]
    opened.dispose()


def _shape(conn: Connection) -> dict[str, object]:
    inspector = inspect(conn)
    shape: dict[str, object] = {}
    for table in schema.metadata.tables:
        shape[table] = (
            sorted(c["name"] for c in inspector.get_columns(table)),
            sorted(
                i["name"]
                for i in inspector.get_indexes(table)
                if i["name"] and not i.get("duplicates_constraint")
            ),
            sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
            sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        )
    return shape


def test_migrations_build_the_schema_the_code_queries(empty_store: Store) -> None:
    assert migrate(empty_store.write_engine) == MIGRATIONS[-1].version
    with empty_store.read_engine.connect() as conn:
        migrated = _shape(conn)
    expected = {
        name: (
            sorted(c.name for c in table.columns),
            sorted(str(i.name) for i in table.indexes),
            sorted(c.name for c in table.primary_key.columns),
            sorted(
                tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, UniqueConstraint)
            ),
        )
        for name, table in schema.metadata.tables.items()
    }
    assert migrated == expected
    assert migrate(empty_store.write_engine) == MIGRATIONS[-1].version


def test_an_existing_database_upgrades_in_place(empty_store: Store) -> None:
    assert migrate(empty_store.write_engine, target=1) == 1
    with empty_store.write_engine.begin() as conn:
        conn.execute(insert(schema.deliveries), [as_old_row(item(payload_body()))])
    with empty_store.read_engine.connect() as conn:
        assert "ix_deliveries_device_id" not in {
            i["name"] for i in inspect(conn).get_indexes("deliveries")
        }
    assert migrate(empty_store.write_engine) == MIGRATIONS[-1].version
    with empty_store.read_engine.connect() as conn:
        assert current_version(conn) == MIGRATIONS[-1].version
        assert "ix_deliveries_device_id" in {
            i["name"] for i in inspect(conn).get_indexes("deliveries")
        }
        # Version 4: a delivery stored before it is KPN's, without network metadata.
        (row,) = conn.execute(select(schema.deliveries)).all()
        assert (row.network, row.network_metadata) == ("kpn", None)


def test_lower_case_deveuis_of_an_existing_database_become_upper_case(
    empty_store: Store,
) -> None:
    """Version 3: devices stored under a lower-case DevEUI (before ingest normalised them)
    take the one spelling; a device stored under both spellings becomes one device, with the
    earlier first-seen time and every delivery and reading of both."""
    assert migrate(empty_store.write_engine, target=2) == 2
    lower, mixed = "urn:dev:DEVEUI:abcdefabcdef0123", "urn:dev:deveui:0004a30B001F1234"
    other = "urn:dev:mac:0024befffe804ff1"  # not a DevEUI: kept as it is
    rows = []
    for n, device in enumerate([lower, mixed, DEVICE, other]):
        new = item(reading_body("0186", NOW - 100 * n))
        row = as_old_row(new) | {"device": device}
        rows.append(
            (
                row,
                [
                    dict(zip(schema.readings.c.keys(), (n + 1, *r), strict=True))
                    for r in new.readings
                ],
            )
        )
    with empty_store.write_engine.begin() as conn:
        for n, (row, readings) in enumerate(rows):
            conn.execute(insert(schema.deliveries), [row | {"id": n + 1}])
            conn.execute(insert(schema.readings), [r | {"device": row["device"]} for r in readings])
        conn.execute(
            insert(schema.devices),
            [
                {"urn": lower, "dev_eui": "ABCDEFABCDEF0123", "first_seen": utc(NOW)},
                {"urn": mixed, "dev_eui": None, "first_seen": utc(NOW - 50)},
                {"urn": DEVICE, "dev_eui": "0004A30B001F1234", "first_seen": utc(NOW)},
                {"urn": other, "dev_eui": None, "first_seen": utc(NOW)},
            ],
        )
    assert migrate(empty_store.write_engine) == MIGRATIONS[-1].version
    upper = "urn:dev:DEVEUI:ABCDEFABCDEF0123"
    with empty_store.read_engine.connect() as conn:
        found = {r.urn: (r.dev_eui, r.first_seen) for r in conn.execute(select(schema.devices))}
        assert found == {
            upper: ("ABCDEFABCDEF0123", utc(NOW)),
            DEVICE: ("0004A30B001F1234", utc(NOW - 50)),
            other: (None, utc(NOW)),
        }
        query = select(schema.deliveries.c.id, schema.deliveries.c.device)
        by_delivery = {i: d for i, d in conn.execute(query)}
        assert by_delivery == {1: upper, 2: DEVICE, 3: DEVICE, 4: other}
        readings = conn.execute(select(schema.readings.c.delivery_id, schema.readings.c.device))
        assert {(i, d) for i, d in readings} == {(1, upper), (2, DEVICE), (3, DEVICE), (4, other)}
        (summary,) = device_summaries(conn, urn=DEVICE)
        assert summary.latest_emotion == "happy"


def test_a_newer_database_is_refused(empty_store: Store) -> None:
    migrate(empty_store.write_engine)
    newer = MIGRATIONS[-1].version + 1
    future = (*MIGRATIONS, Migration(newer, "from the future", lambda conn: None))
    migrate(empty_store.write_engine, migrations=future)
    with pytest.raises(SchemaVersionError, match="newer"):
        migrate(empty_store.write_engine)


def test_concurrent_starters_apply_each_step_once(database_url: str) -> None:
    stores = [create_store(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def start(store: Store) -> None:
        barrier.wait()
        try:
            migrate(store.write_engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        with stores[0].read_engine.connect() as conn:
            versions = conn.execute(text("SELECT version FROM schema_version ORDER BY version"))
            assert [v for (v,) in versions] == [m.version for m in MIGRATIONS]
    finally:
        for store in stores:
            store.dispose()


def test_sqlite_is_durable_wal(tmp_path: object) -> None:
    store = create_store(f"sqlite:///{tmp_path}/x.sqlite3")
    try:
        with store.write_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.dispose()


def test_write_batch_stores_once_and_reports_duplicates(store: Store) -> None:
    first, second = item(payload_body()), item(reading_body("0186", NOW - 60))
    again = item(payload_body(layout="merged"))  # the same uplink, spelled differently
    results = commit(store, [first, second, again])[0]
    assert [r.duplicate for r in results] == [False, False, True]
    assert all(r.delivery_id for r in results[:2])
    later = commit(store, [item(payload_body())])[0]
    assert later[0].duplicate and later[0].delivery_id == results[0].delivery_id
    assert results[2].delivery_id == results[0].delivery_id
    with store.read_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.deliveries)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(schema.readings)).scalar_one() == 1 + 2
        assert conn.execute(select(func.count()).select_from(schema.devices)).scalar_one() == 1
        (device,) = device_summaries(conn)
    assert device.latest_emotion == "happy"


def test_the_unique_constraint_is_in_the_database(store: Store) -> None:
    row = as_row(item(payload_body()))
    with store.write_engine.begin() as conn:
        conn.execute(insert(schema.deliveries), [row])
    with pytest.raises(IntegrityError), store.write_engine.begin() as conn:
        conn.execute(insert(schema.deliveries), [row])


def test_device_summary_shows_the_newest_emotion_whatever_the_arrival_order(store: Store) -> None:
    newer = item(reading_body("0186", NOW - 10))  # happy, 87 %
    older = item(reading_body("01B5", NOW - 500))  # sad, 33 %
    commit(store, [newer])
    commit(store, [older])
    with store.read_engine.connect() as conn:
        (device,) = device_summaries(conn, urn=DEVICE)
    assert (device.latest_emotion, device.latest_confidence) == ("happy", 0.87)
    assert device.latest_time == datetime.fromtimestamp(NOW - 10, UTC)
    assert device.last_seen == datetime.fromtimestamp(NOW - 10, UTC)
    assert device.first_seen == datetime.fromtimestamp(NOW, UTC)  # received_at of the first
    assert device.dev_eui == "0004A30B001F1234"


def test_a_row_the_database_refuses_is_kept_without_readings(store: Store) -> None:
    good, bad = item(reading_body("0186", NOW - 1)), item(reading_body("01B5", NOW - 2))
    bad.readings[0] = (0, None, *bad.readings[0][2:])  # NOT NULL: the store refuses the batch
    results = commit(store, [good, bad])[0]
    assert not any(r.duplicate for r in results)
    with store.read_engine.connect() as conn:
        rows = {r.id: r for r in list_deliveries(conn, limit=10)}
    kept = rows[results[1].delivery_id]
    assert kept.decode_status == "error"
    assert "refused" in kept.decode_error
    assert kept.reading_count == 0
    assert rows[results[0].delivery_id].reading_count == 2


def test_text_with_nul_is_stored_on_both_backends(store: Store) -> None:
    body = payload_body().replace(b'"n":"payload"', b'"n":"note","vs":"a\\u0000b"},{"n":"payload"')
    results = commit(store, [item(body)])[0]
    with store.read_engine.connect() as conn:
        notes = read_readings(conn, device=DEVICE, name="note")
        stored = list_deliveries(conn, limit=1)[0]
    assert notes[0].string_value == "a\ufffdb"
    assert bytes(stored.body) == body
    assert stored.id == results[0].delivery_id


def test_every_byte_string_of_a_batch_lands_in_its_own_row(store: Store) -> None:
    # PostgreSQL receives a batch's bodies, payloads and vd values laid end to end in one
    # parameter; each row must get exactly its own bytes back.
    blob = b'{"n":"blob","vd":"AAEC_w"},{"n":"payload"'
    bodies = [
        payload_body("0186", 16, base_time=NOW - 30),
        payload_body(THINGSML_HAPPY, base_time=NOW - 20, layout="merged"),
        payload_body("02C2", 16, base_time=NOW - 10).replace(b'{"n":"payload"', blob),
    ]
    results = commit(store, [item(body) for body in bodies])[0]
    with store.read_engine.connect() as conn:
        stored = {row.id: row for row in list_deliveries(conn, limit=10)}
        blobs = read_readings(conn, device=DEVICE, name="blob")
    for body, result in zip(bodies, results, strict=True):
        assert result.delivery_id is not None
        row = stored[result.delivery_id]
        assert bytes(row.body) == body
        assert bytes(row.payload) == parse_delivery(body, now=NOW).payload
    assert [bytes(r.data_value) for r in blobs] == [b"\x00\x01\x02\xff"]


def test_readings_range_order_and_cursor(store: Store) -> None:
    times = [NOW - 400 + 100 * i for i in range(4)]
    commit(store, [item(reading_body("0186", t)) for t in times])
    start = datetime.fromtimestamp(times[1], UTC)
    end = datetime.fromtimestamp(times[3], UTC)
    with store.read_engine.connect() as conn:
        window = read_readings(conn, device=DEVICE, start=start, end=end, name="emotion")
        assert [r.time for r in window] == [start, start + timedelta(seconds=100)]
        pages, after = [], None
        while True:
            page = read_readings(conn, device=DEVICE, order="desc", limit=3, after=after)
            if not page:
                break
            pages.append(page)
            after = ReadingKey(page[-1].time, page[-1].delivery_id, page[-1].seq)
            after = ReadingKey.decode(after.encode())
    flat = [r for page in pages for r in page]
    assert len(flat) == 4 * 2
    keys = [(r.time, r.delivery_id, r.seq) for r in flat]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)


def test_reading_cursor_rejects_garbage() -> None:
    for cursor in ("", "abc", "W10", "WyJ4IiwxLDJd"):
        with pytest.raises(ValueError):
            ReadingKey.decode(cursor)


def test_stored_raw_delivery_keeps_bytes_and_headers(store: Store) -> None:
    body = payload_body(THINGSML_HAPPY[:-2] + "FF")
    results = commit(store, [item(body)])[0]
    with store.read_engine.connect() as conn:
        row = list_deliveries(conn, limit=5, decode_status="error")[0]
    assert row.id == results[0].delivery_id
    assert bytes(row.body) == body
    assert row.headers == '{"a": "b"}'
    assert row.decode_error


def test_values_longer_than_the_store_keeps_are_refused_naming_the_field() -> None:
    delivery = parse_delivery(payload_body(), now=NOW)
    with pytest.raises(StoreLimitError, match=r"Things-Plug-UUID: .* 129 characters"):
        new_delivery(delivery, plug_uuid="p" * 129, received_at=NOW, headers="{}", body=b"")
    long_name = payload_body().replace(b'"n":"port"', b'"n":"' + b"p" * 201 + b'"')
    with pytest.raises(StoreLimitError, match=r"measurement name: .* 201 characters"):
        item(long_name)
    errors = "; ".join(["byte 0 (header): unknown message type 0xFF"] * 100)
    cut = new_delivery(
        delivery._replace(decode_status="error", decode_error=errors),
        plug_uuid="plug",
        received_at=NOW,
        headers="{}",
        body=b"",
    )
    assert len(as_row(cut)["decode_error"]) == 2_000  # type: ignore[arg-type]
