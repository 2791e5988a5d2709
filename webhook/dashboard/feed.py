"""The live feed: committed deliveries, in commit order, to every open dashboard of a process.

Why it is fed from the database and not from the process's own commits: a browser is connected
to one worker of one host, and deliveries are committed by all of them. On PostgreSQL each
batch's transaction sends ``NOTIFY`` with the ids it committed (``commits.py``); every worker
listens, and PostgreSQL hands notifications to every listener in commit order. On SQLite (one
host) each worker polls for ids above the newest it has; one writer at a time commits, so ids
become visible in order.

Why ``Last-Event-ID`` resumes without a gap: each event's id is its delivery id. A process
keeps the ids of the last ``HISTORY`` events in the order it published them, which on
PostgreSQL is the commit order every worker sees; a browser that reconnects (to any worker)
gets every id after its last one in that order. Ids older than the history come from the
database (``id > last``): commits later than a batch's timeout cannot land below those, so none
is missed. One query per notification serves all browsers of a process, and a process with no
open stream reads nothing: it only notes the ids' order, and a stream that later resumes from
before them reads their events then. The ingest path pays one ``NOTIFY`` per batch on
PostgreSQL and nothing on SQLite.

Why a slow browser is cut off rather than waited for: each subscriber has a bounded queue; one
that overflows gets a ``resync`` event and its stream ends, and its reconnect resumes from its
last id. Nobody else waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Engine, select

from lora_emotion.networks.kpn import EMOTION_NAME

from ..commits import NOTIFY_CHANNEL, libpq_url
from ..schema import deliveries, readings
from ..storage import CONFIDENCE_NAME, Store

__all__ = ["HISTORY", "Feed", "Subscription", "parse_notification"]

log = logging.getLogger("lora_emotion.webhook.dashboard")

#: Events whose order a process remembers for resuming streams (100 s at 1,000/s, ten times
#: the commit timeout; about 10 MB).
HISTORY = 100_000
#: Events a subscriber may have waiting before it is cut off (and resumes).
QUEUE_LIMIT = 20_000
#: Rows fetched per query.
FETCH_CHUNK = 1_000
#: Seconds between SQLite polls.
POLL_S = 0.2


def parse_notification(payload: str) -> tuple[list[tuple[int, int]], bool]:
    """The id runs of a batch's notification and whether they are exact (see ``commits.py``)."""
    exact = not payload.endswith("~")
    runs = []
    for part in payload.rstrip("~").split(","):
        low, _, high = part.partition("-")
        runs.append((int(low), int(high)))
    return runs, exact


@dataclass(slots=True, eq=False)
class Subscription:
    """One open stream: a backlog to send first, then live events from ``queue``."""

    backlog: list[int]
    resume_after: int | None
    #: Set when the backlog was too long to replay: the stream tells the page to reload and
    #: carries on after this id.
    truncated_at: int | None = None
    queue: asyncio.Queue[tuple[int, bytes] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )


def _event(delivery: Any, emotion: str | None, confidence: float | None) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "device": delivery.device,
        "received_at": delivery.received_at.timestamp(),
        "event_time": delivery.event_time.timestamp() if delivery.event_time else None,
        "kind": delivery.kind,
        "decode_status": delivery.decode_status,
        "fport": delivery.fport,
        "payload": delivery.payload.hex().upper() if delivery.payload is not None else None,
        "reading_count": delivery.reading_count,
        "emotion": emotion,
        "confidence": confidence,
    }


# The events of a batch of delivery ids in one statement (the live path on PostgreSQL): the
# newest emotion reading of each and its confidence, from the delivery's readings found by the
# primary key alone. Why no condition on the reading's name in the WHERE clause: it lets the
# planner combine the primary key with the partial index on emotions (all of them, every
# device), which on a table whose statistics lag behind its growth took 15 ms a delivery.
_PG_EVENTS = """
SELECT d.id, d.device, d.received_at, d.event_time, d.kind, d.decode_status, d.fport,
    d.payload, d.reading_count, e.emotion, e.confidence
FROM deliveries AS d
LEFT JOIN LATERAL (
    SELECT (array_agg(r.string_value ORDER BY r.time DESC, r.seq DESC)
                FILTER (WHERE r.name = 'emotion' AND r.string_value IS NOT NULL))[1] AS emotion,
        (array_agg(r.value ORDER BY r.time DESC, r.seq DESC)
                FILTER (WHERE r.name = 'confidence' AND r.value IS NOT NULL))[1] AS confidence
    FROM readings AS r WHERE r.delivery_id = d.id
) AS e ON true
WHERE d.id = ANY(%(ids)s)
"""


def load_events(engine: Engine, ids: Sequence[int]) -> dict[int, bytes]:
    """The events (JSON) of the deliveries ``ids`` that exist, by id."""
    out: dict[int, bytes] = {}
    with engine.connect() as conn:
        for at in range(0, len(ids), FETCH_CHUNK):
            chunk = list(ids[at : at + FETCH_CHUNK])
            emotions: dict[int, str] = {}
            confidences: dict[int, float] = {}
            for r in conn.execute(
                select(
                    readings.c.delivery_id,
                    readings.c.name,
                    readings.c.string_value,
                    readings.c.value,
                )
                # By the primary key alone, names sorted out here: see _PG_EVENTS.
                .where(readings.c.delivery_id.in_(chunk))
                .order_by(readings.c.delivery_id, readings.c.time, readings.c.seq)
            ):
                # The newest reading of a batch is what the delivery says now.
                if r.name == EMOTION_NAME and r.string_value is not None:
                    emotions[r.delivery_id] = r.string_value
                elif r.name == CONFIDENCE_NAME and r.value is not None:
                    confidences[r.delivery_id] = r.value
            for d in conn.execute(
                select(
                    deliveries.c.id,
                    deliveries.c.device,
                    deliveries.c.received_at,
                    deliveries.c.event_time,
                    deliveries.c.kind,
                    deliveries.c.decode_status,
                    deliveries.c.fport,
                    deliveries.c.payload,
                    deliveries.c.reading_count,
                ).where(deliveries.c.id.in_(chunk))
            ):
                out[d.id] = orjson.dumps(_event(d, emotions.get(d.id), confidences.get(d.id)))
    return out


def ids_after(engine: Engine, last: int, limit: int) -> list[int]:
    """Up to ``limit`` delivery ids above ``last``, ascending."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(deliveries.c.id)
                .where(deliveries.c.id > last)
                .order_by(deliveries.c.id)
                .limit(limit)
            ).scalars()
        )


def newest_id(engine: Engine) -> int:
    """The newest delivery id (0 for an empty store)."""
    with engine.connect() as conn:
        value = conn.execute(select(deliveries.c.id).order_by(deliveries.c.id.desc()).limit(1))
        return int(value.scalar() or 0)


class Feed:
    """Publishes committed deliveries to the streams of this process.

    Args:
        store: the store (its read engine fetches events).
        history: how many event ids to remember for resuming.
    """

    def __init__(self, store: Store, *, history: int = HISTORY) -> None:
        self._store = store
        self._engine = store.read_engine
        self._history = history
        self._order: deque[int] = deque()
        self._position: dict[int, int] = {}
        self._counter = itertools.count()
        self._first_position = 0
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        #: The newest id published; streams that resume from older ids not in the history
        #: read the database up to here.
        self.newest = 0
        self.ready = asyncio.Event()
        self.published = 0

    # --- publishing ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start listening (PostgreSQL) or polling (SQLite) on the running loop."""
        run = self._listen if self._store.dialect == "postgresql" else self._poll
        self._task = asyncio.get_running_loop().create_task(run(), name="dashboard-feed")

    async def close(self) -> None:
        """Stop, and end every open stream."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscriber in list(self._subscribers):
            self._drop(subscriber)

    def _remember(self, delivery_id: int) -> bool:
        if delivery_id in self._position:
            return False
        self._position[delivery_id] = next(self._counter)
        self._order.append(delivery_id)
        if len(self._order) > self._history:
            del self._position[self._order.popleft()]
            self._first_position += 1
        return True

    def _note(self, ordered: Iterable[int]) -> None:
        """Remember the order of committed ids that no open stream waits for: their events are
        read only if a stream resumes from before them (see :meth:`backlog`)."""
        for delivery_id in ordered:
            if self._remember(delivery_id):
                self.newest = max(self.newest, delivery_id)

    def _publish(self, ordered: Iterable[int], events: dict[int, bytes]) -> None:
        for delivery_id in ordered:
            event = events.get(delivery_id)
            if event is None or not self._remember(delivery_id):
                continue
            self.newest = max(self.newest, delivery_id)
            self.published += 1
            for subscriber in list(self._subscribers):
                try:
                    subscriber.queue.put_nowait((delivery_id, event))
                except asyncio.QueueFull:
                    self._drop(subscriber)

    def _drop(self, subscriber: Subscription) -> None:
        self._subscribers.discard(subscriber)
        with contextlib.suppress(asyncio.QueueEmpty):
            while subscriber.queue.full():
                subscriber.queue.get_nowait()
        subscriber.queue.put_nowait(None)

    async def _poll(self) -> None:
        self.newest = await asyncio.to_thread(newest_id, self._engine)
        self.ready.set()
        while True:
            try:
                ids = await asyncio.to_thread(ids_after, self._engine, self.newest, FETCH_CHUNK)
                if ids:
                    if self._subscribers:
                        events = await asyncio.to_thread(load_events, self._engine, ids)
                        self._publish(ids, events)
                    else:
                        self._note(ids)
                    self.newest = max(self.newest, ids[-1])
                    if len(ids) == FETCH_CHUNK:
                        continue
            except Exception as exc:
                log.warning("live feed poll failed: %s", exc, extra={"event": "feed_failed"})
            await asyncio.sleep(POLL_S)

    async def _listen(self) -> None:
        conninfo = libpq_url(self._store.url)
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, application_name="lora-emotion-feed"
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    # Anything committed while this process was not listening (start-up, a
                    # lost connection) is read by id; from here on notifications say it.
                    await self._catch_up()
                    self.ready.set()
                    delay = 0.5
                    pending: asyncio.Queue[str] = asyncio.Queue()
                    fetching = await psycopg.AsyncConnection.connect(
                        conninfo,
                        autocommit=True,
                        application_name="lora-emotion-feed",
                        row_factory=namedtuple_row,
                    )
                    fetcher = asyncio.create_task(self._fetch_notified(pending, fetching))
                    try:
                        async for notice in conn.notifies():
                            pending.put_nowait(notice.payload)
                            if fetcher.done():
                                fetcher.result()
                    finally:
                        fetcher.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await fetcher
                        await fetching.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "live feed lost its PostgreSQL connection (%s); reconnecting",
                    exc,
                    extra={"event": "feed_reconnect"},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _catch_up(self) -> None:
        if not self.newest:
            self.newest = await asyncio.to_thread(newest_id, self._engine)
            return
        while True:
            ids = await asyncio.to_thread(ids_after, self._engine, self.newest, FETCH_CHUNK)
            if not ids:
                return
            events = await asyncio.to_thread(load_events, self._engine, ids)
            self._publish(ids, events)
            self.newest = max(self.newest, ids[-1])

    async def _fetch_notified(
        self, pending: asyncio.Queue[str], conn: psycopg.AsyncConnection[Any]
    ) -> None:
        while True:
            payloads = [await pending.get()]
            while not pending.empty():
                payloads.append(pending.get_nowait())
            ordered: list[int] = []
            exact = True
            for payload in payloads:
                try:
                    runs, exact_runs = parse_notification(payload)
                except ValueError:
                    log.warning("unreadable notification %r", payload[:80])
                    continue
                exact = exact and exact_runs
                for low, high in runs:
                    ordered.extend(range(low, high + 1))
            wanted = [i for i in ordered if i not in self._position]
            if wanted and exact and not self._subscribers:
                # Nobody is watching: reading every delivery back (in every worker) would cost
                # the store about as much as writing it. An approximate range still needs the
                # read, to learn which of its ids were committed.
                self._note(wanted)
            elif wanted:
                # On the event loop, like the batch writer: a thread would wait for the GIL
                # behind the requests the loop is parsing (see commits.py).
                cursor = await conn.execute(_PG_EVENTS, {"ids": wanted})
                rows = await cursor.fetchall()
                events = {r.id: orjson.dumps(_event(r, r.emotion, r.confidence)) for r in rows}
                self._publish(wanted, events)

    # --- subscribing --------------------------------------------------------------------------

    def subscribe(self, last_id: int | None) -> Subscription:
        """Open a stream that continues after ``last_id`` (or from now, without one).

        Must be called on the loop, without awaiting in between, so that the backlog and the
        live queue neither overlap nor leave a gap.
        """
        if last_id is None:
            subscription = Subscription(backlog=[], resume_after=None)
        elif last_id in self._position:
            at = self._position[last_id] - self._first_position + 1
            backlog = list(itertools.islice(self._order, at, None))
            subscription = Subscription(backlog=backlog, resume_after=None)
        elif last_id >= self.newest:
            subscription = Subscription(backlog=[], resume_after=None)
        else:
            # Older than the history: the database has what came after, up to what this
            # feed has published (later ones arrive live).
            subscription = Subscription(backlog=[], resume_after=last_id)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Close a stream."""
        self._subscribers.discard(subscription)

    async def backlog(self, subscription: Subscription) -> AsyncIterator[tuple[int, bytes]]:
        """The events a resumed stream missed, in order, before its live ones."""
        ids = subscription.backlog
        if subscription.resume_after is not None:
            last, ceiling = subscription.resume_after, self.newest
            ids = []
            while True:
                found = await asyncio.to_thread(ids_after, self._engine, last, FETCH_CHUNK)
                found = [i for i in found if i <= ceiling]
                if not found:
                    break
                ids.extend(found)
                last = found[-1]
                if len(ids) >= QUEUE_LIMIT:
                    # More missed than a page should replay: it reloads its views instead.
                    subscription.truncated_at = ceiling
                    ids = []
                    break
        for at in range(0, len(ids), FETCH_CHUNK):
            chunk = ids[at : at + FETCH_CHUNK]
            events = await asyncio.to_thread(load_events, self._engine, chunk)
            for delivery_id in chunk:
                if delivery_id in events:
                    yield delivery_id, events[delivery_id]
