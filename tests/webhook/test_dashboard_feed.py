"""The live feed's bookkeeping: notification payloads, the resume order, slow streams.

The feed across real processes is tested in test_dashboard_live.py; here its ordering rules
are checked on one feed whose publishing is driven directly, with made-up events.
"""

from __future__ import annotations

import asyncio

import pytest
from lora_emotion.webhook.dashboard import feed as feed_module
from lora_emotion.webhook.dashboard.feed import Feed, parse_notification
from lora_emotion.webhook.storage import create_store


def test_notifications_name_exact_runs_or_an_approximate_range() -> None:
    assert parse_notification("5-7,9-9") == ([(5, 7), (9, 9)], True)
    assert parse_notification("5-90~") == ([(5, 90)], False)
    with pytest.raises(ValueError):
        parse_notification("five")


def _events(ids: list[int]) -> dict[int, bytes]:
    return {i: b'{"id": %d, "device": "d"}' % i for i in ids}


@pytest.fixture
def feed(tmp_path: object) -> Feed:
    store = create_store(f"sqlite:///{tmp_path}/feed.sqlite3")
    return Feed(store, history=5)


def test_a_resumed_stream_gets_what_followed_in_publishing_order(feed: Feed) -> None:
    async def run() -> None:
        # Commit order differs from id order: 3 committed after 4 and 5.
        feed._publish([1, 2, 4, 5], _events([1, 2, 4, 5]))
        feed._publish([3, 6], _events([3, 6]))
        resumed = feed.subscribe(4)
        assert resumed.backlog == [5, 3, 6]
        # What is published from now on reaches it live, once.
        feed._publish([6, 7], _events([6, 7]))
        assert resumed.queue.get_nowait()[0] == 7
        assert resumed.queue.empty()
        # The newest id: nothing missed. No id: from now on.
        assert feed.subscribe(7).backlog == []
        assert feed.subscribe(None).backlog == []

    asyncio.run(run())


def test_an_id_older_than_the_history_is_read_from_the_database(feed: Feed) -> None:
    async def run() -> None:
        feed._publish(list(range(1, 10)), _events(list(range(1, 10))))
        old = feed.subscribe(2)  # forgotten: the history holds 5..9
        assert old.backlog == [] and old.resume_after == 2

    asyncio.run(run())


def test_a_stream_that_falls_behind_is_cut_off_not_waited_for(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "QUEUE_LIMIT", 3)

    async def run() -> None:
        slow = feed.subscribe(None)
        fast = feed.subscribe(None)
        feed._publish([1, 2, 3], _events([1, 2, 3]))
        for _ in range(3):
            fast.queue.get_nowait()
        feed._publish([4], _events([4]))  # the slow one's queue is full
        items = []
        while not slow.queue.empty():
            items.append(slow.queue.get_nowait())
        assert items[-1] is None  # told to resync; it resumes from its last id
        assert fast.queue.get_nowait()[0] == 4

    asyncio.run(run())


def test_ids_noted_while_nobody_watched_are_replayed_to_a_resumed_stream(feed: Feed) -> None:
    async def run() -> None:
        feed._publish([1, 2], _events([1, 2]))
        # No stream is open: the feed keeps the order without reading the events.
        feed._note([4, 3])
        assert feed.newest == 4
        resumed = feed.subscribe(2)
        assert resumed.backlog == [4, 3]
        assert feed.subscribe(3).backlog == []
        feed._publish([5], _events([5]))
        assert resumed.queue.get_nowait()[0] == 5

    asyncio.run(run())
