"""The group-commit writer on real stores: batching, the commit timeout, shutdown, and on
PostgreSQL several batches committing at once."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from conftest import reset_postgres
from lora_emotion.webhook import schema
from lora_emotion.webhook.commits import (
    BatchWriter,
    PostgresBatchWriter,
    SQLiteBatchWriter,
    libpq_url,
    open_batch_writer,
)
from lora_emotion.webhook.errors import StoreRefusedError, StoreUnavailableError
from lora_emotion.webhook.migrations import migrate
from lora_emotion.webhook.storage import (
    DELIVERY_NAMES,
    NewDelivery,
    Store,
    WriteResult,
    create_store,
    new_delivery,
)
from lora_emotion.webhook.writer import GroupCommitWriter
from sqlalchemy import func, select
from webhook_support import free_port, payload_body

from lora_emotion.networks.kpn import parse_delivery

NOW = 1_700_000_000.0


def delivery(index: int) -> NewDelivery:
    body = payload_body("0186", 16, base_time=NOW + index)
    return new_delivery(
        parse_delivery(body, now=NOW), plug_uuid="plug", received_at=NOW, headers="{}", body=body
    )


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    store = create_store(f"sqlite:///{tmp_path / 'writer.db'}", busy_timeout_ms=2_000)
    migrate(store.write_engine)
    yield store  # type: ignore[misc]
    store.dispose()


@contextlib.asynccontextmanager
async def running(
    batches: BatchWriter, *, batch_max: int = 512, timeout_s: float = 10.0
) -> AsyncIterator[GroupCommitWriter]:
    """A started writer over ``batches``, closed (what is queued committed) on the way out."""
    writer = GroupCommitWriter(batches, batch_max=batch_max, timeout_s=timeout_s)
    writer.start()
    try:
        yield writer
    finally:
        await writer.close()


def stored(store: Store) -> int:
    with store.read_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.deliveries)).scalar_one())


def test_deliveries_that_arrive_together_share_a_commit(sqlite_store: Store) -> None:
    async def run() -> list[int | None]:
        async with running(SQLiteBatchWriter(sqlite_store), batch_max=8) as writer:
            results = await asyncio.gather(*(writer.submit(delivery(i)) for i in range(20)))
            again = await writer.submit(delivery(3))
        assert again.duplicate and again.delivery_id == results[3].delivery_id
        return [result.delivery_id for result in results]

    ids = asyncio.run(run())
    assert len(set(ids)) == 20 and None not in ids
    assert stored(sqlite_store) == 20


def test_a_commit_that_takes_too_long_answers_unavailable_then_recovers(
    sqlite_store: Store,
) -> None:
    database = sqlite_store.write_engine.url.database
    assert database is not None
    blocker = sqlite3.connect(database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the writer's commit waits

    async def run() -> None:
        async with running(SQLiteBatchWriter(sqlite_store), timeout_s=0.3) as writer:
            started = time.monotonic()
            first = asyncio.ensure_future(writer.submit(delivery(1)))
            await asyncio.sleep(0.1)
            second = asyncio.ensure_future(writer.submit(delivery(2)))  # queued behind it
            for waiter, ends in ((first, 0.3), (second, 0.4)):
                with pytest.raises(StoreUnavailableError, match=r"did not commit within 0\.3 s"):
                    await waiter
                # Each wait ends at its own deadline, not at the other's.
                assert ends <= time.monotonic() - started < ends + 0.5
            blocker.execute("ROLLBACK")
            result = await writer.submit(delivery(3))
            assert result.delivery_id is not None

    try:
        asyncio.run(run())
    finally:
        blocker.close()
    # The late commits still land (a retry of either would answer duplicate).
    assert stored(sqlite_store) == 3


def test_after_close_nothing_is_accepted(sqlite_store: Store) -> None:
    async def run() -> None:
        writer = GroupCommitWriter(SQLiteBatchWriter(sqlite_store))
        writer.start()
        await writer.submit(delivery(1))
        await writer.close()
        assert not writer.alive
        with pytest.raises(StoreUnavailableError, match="shutting down"):
            await writer.submit(delivery(2))

    asyncio.run(run())
    assert stored(sqlite_store) == 1


@pytest.fixture
def postgres_store(postgres_url: str) -> Store:
    reset_postgres(postgres_url)
    store = create_store(postgres_url)
    migrate(store.write_engine)
    yield store  # type: ignore[misc]
    store.dispose()


def test_a_blocked_commit_does_not_hold_back_the_next_batch(postgres_store: Store) -> None:
    """With two commits in flight, a batch stuck on a lock leaves room for the next one."""
    blocked = delivery(1)
    # Another session inserts the same key and keeps its transaction open: the writer's
    # insert of that delivery waits on the unique index until this session ends.
    blocker = psycopg.connect(libpq_url(postgres_store.url))
    blocker.execute(
        "INSERT INTO deliveries (dedup_key, plug_uuid, device, received_at, kind, "
        "decode_status, reading_count, headers, body) "
        "VALUES (%s, 'p', 'd', now(), 'payload', 'ok', 0, '{}', '')",
        (blocked.dedup_key,),
    )

    async def run() -> None:
        batches = PostgresBatchWriter(postgres_store.url, concurrency=2)
        async with running(batches) as writer:
            first = asyncio.ensure_future(writer.submit(blocked))
            await asyncio.sleep(0.2)
            assert not first.done()
            result = await asyncio.wait_for(writer.submit(delivery(2)), timeout=5)
            assert result.delivery_id is not None and not first.done()
            blocker.rollback()  # the other session gives the key up: the first batch commits
            assert (await asyncio.wait_for(first, timeout=5)).delivery_id is not None

    try:
        asyncio.run(run())
    finally:
        blocker.close()
    assert stored(postgres_store) == 2


def test_copies_in_concurrent_batches_are_stored_once(postgres_store: Store) -> None:
    async def run() -> list[bool]:
        batches = PostgresBatchWriter(postgres_store.url, concurrency=3)
        async with running(batches, batch_max=7) as writer:
            copies = [delivery(i % 40) for i in range(120)]
            results = await asyncio.gather(*(writer.submit(item) for item in copies))
        return [result.duplicate for result in results]

    duplicates = asyncio.run(run())
    assert duplicates.count(False) == 40 and duplicates.count(True) == 80
    assert stored(postgres_store) == 40


def refused_by_the_store(store: Store) -> NewDelivery:
    """A delivery that passed no parse validation and that the store cannot hold at all.

    On PostgreSQL the issue's own case: a device URN far beyond what a B-tree index entry can
    hold (``ProgramLimitExceeded``, which psycopg raises as an ``OperationalError``). SQLite has
    no such limit, so there a NOT NULL column is left empty.
    """
    item = delivery(10_000)
    if store.dialect == "postgresql":
        huge = "urn:dev:DEVEUI:" + secrets.token_hex(3_000).upper()
        row = dict(zip(DELIVERY_NAMES, item.row, strict=True), device=huge)
        readings = [(r[0], huge, *r[2:]) for r in item.readings]
        return NewDelivery(item.dedup_key, tuple(row.values()), readings, [(huge, None)])
    row = dict(zip(DELIVERY_NAMES, item.row, strict=True), kind=None)
    return NewDelivery(item.dedup_key, tuple(row.values()), item.readings, item.devices)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request: pytest.FixtureRequest) -> Store:
    fixture = "sqlite_store" if request.param == "sqlite" else "postgres_store"
    store: Store = request.getfixturevalue(fixture)
    return store


def test_a_row_the_store_refuses_is_422_and_the_rest_of_its_batch_commits(
    any_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """200 good deliveries and one bad one arrive together: the good ones are stored at once
    (never 503), the bad one alone is refused with 422, and it stays refused on a retry."""
    bad = refused_by_the_store(any_store)

    async def run() -> list[WriteResult | BaseException]:
        async with running(open_batch_writer(any_store)) as writer:
            items = [delivery(i) for i in range(200)]
            items.insert(77, bad)
            outcomes = await asyncio.gather(
                *(writer.submit(item) for item in items), return_exceptions=True
            )
            with pytest.raises(StoreRefusedError):
                await writer.submit(bad)
        return outcomes

    outcomes = asyncio.run(run())
    refused = outcomes.pop(77)
    assert isinstance(refused, StoreRefusedError) and refused.http_status == 422
    expected = "ProgramLimitExceeded" if any_store.dialect == "postgresql" else "IntegrityError"
    assert f"the store refused the delivery: {expected}" in str(refused)
    # It shared a batch with good deliveries, which was split to commit them.
    splits = [r.batch for r in caplog.records if getattr(r, "event", "") == "batch_refused"]
    assert max(splits) > 100, splits
    assert all(isinstance(o, WriteResult) for o in outcomes), outcomes
    ids = {o.delivery_id for o in outcomes if isinstance(o, WriteResult)}
    assert len(ids) == 200 and None not in ids
    assert stored(any_store) == 200


def test_store_unavailable_is_still_503_not_422(postgres_store: Store) -> None:
    """A server that cannot be reached is unavailability, whatever the batch holds."""
    closed = create_store(postgres_store.url.replace("127.0.0.1:5432", f"127.0.0.1:{free_port()}"))

    async def run() -> None:
        async with running(open_batch_writer(closed, connect_timeout_s=2)) as writer:
            outcomes = await asyncio.gather(
                writer.submit(delivery(1)),
                writer.submit(refused_by_the_store(postgres_store)),
                return_exceptions=True,
            )
        assert all(isinstance(o, StoreUnavailableError) for o in outcomes), outcomes

    asyncio.run(run())


def test_a_duplicate_answers_the_id_of_the_original(any_store: Store) -> None:
    """Copies in the same batch, in a later batch, and racing on two writers (as two workers
    would) all answer the id the stored delivery got."""

    async def run() -> None:
        async with (
            running(open_batch_writer(any_store)) as one,
            running(open_batch_writer(any_store)) as other,
        ):
            together = await asyncio.gather(*(one.submit(delivery(i % 3)) for i in range(9)))
            later = await one.submit(delivery(1))
            raced = await asyncio.gather(
                *(w.submit(delivery(100 + i % 5)) for i in range(40) for w in (one, other))
            )
        first = {i: together[i].delivery_id for i in range(3)}
        assert None not in first.values() and len(set(first.values())) == 3
        assert [r.delivery_id for r in together] == [first[i % 3] for i in range(9)]
        assert [r.duplicate for r in together] == [False] * 3 + [True] * 6
        assert later.duplicate and later.delivery_id == first[1]
        by_key: dict[int, set[int | None]] = {}
        for n, result in enumerate(raced):
            by_key.setdefault(n // 2 % 5, set()).add(result.delivery_id)
        assert all(len(ids) == 1 and None not in ids for ids in by_key.values()), by_key
        assert sum(not r.duplicate for r in raced) == 5

    asyncio.run(run())
    assert stored(any_store) == 3 + 5
