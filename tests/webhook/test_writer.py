"""The group-commit writer on real stores: batching, the commit timeout, shutdown, and on
PostgreSQL several batches committing at once."""

from __future__ import annotations

import asyncio
import contextlib
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
)
from lora_emotion.webhook.errors import StoreUnavailableError
from lora_emotion.webhook.migrations import migrate
from lora_emotion.webhook.storage import NewDelivery, Store, create_store, new_delivery
from lora_emotion.webhook.writer import GroupCommitWriter
from sqlalchemy import func, select
from webhook_support import payload_body

from lora_emotion.kpn import parse_delivery

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
        assert again.duplicate and again.delivery_id is None
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
