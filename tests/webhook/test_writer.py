"""The group-commit writer on a real SQLite store: batching, the commit timeout, shutdown."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from lora_emotion.webhook import schema
from lora_emotion.webhook.commits import SQLiteBatchWriter
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


def stored(store: Store) -> int:
    with store.read_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.deliveries)).scalar_one())


def test_deliveries_that_arrive_together_share_a_commit(sqlite_store: Store) -> None:
    async def run() -> list[int | None]:
        writer = GroupCommitWriter(SQLiteBatchWriter(sqlite_store), batch_max=8)
        writer.start()
        try:
            results = await asyncio.gather(*(writer.submit(delivery(i)) for i in range(20)))
            again = await writer.submit(delivery(3))
        finally:
            await writer.close()
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
        writer = GroupCommitWriter(SQLiteBatchWriter(sqlite_store), timeout_s=0.3)
        writer.start()
        try:
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
        finally:
            await writer.close()

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
