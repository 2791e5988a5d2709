"""Group commit: the deliveries that arrive together are committed in one durable transaction.

Why: a durable commit costs a log flush (an fsync), and one flush per request caps a worker at
the disk's flush rate whatever the CPU could do. Here each request hands its rows to one
writer task per process and waits on a future. The writer takes everything queued, commits it
in one transaction (see ``commits.py``), then resolves every future; while that commit is in
flight, new arrivals queue up and form the next batch. Nobody waits for a timer: under light
load a batch is one delivery, under heavy load it grows until a flush serves hundreds of
deliveries. No request is answered before the transaction holding its delivery has committed.

Why more than one batch may be committing at once (PostgreSQL: ``commit_concurrency``
connections per worker, one by default): a commit is mostly waiting, for the server, a network
round trip and its log flush; with one commit at a time a worker's rate is capped at one batch
per commit time, and a batch stuck on a lock holds back every delivery behind it. A second
connection commits the next batch meanwhile. Where the CPU is the limit (the benchmark, with
PostgreSQL local) that only makes batches smaller, hence the default. Batches of one worker are
to each other what batches of two workers are: inserted in key order and decided by the unique
key, so this adds no new way to deadlock or to store a delivery twice. SQLite has one writer at
a time, so it keeps one commit in flight.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import time

from . import metrics
from .commits import BatchWriter
from .errors import StoreRefusedError, StoreUnavailableError
from .storage import NewDelivery, WriteResult

__all__ = ["GroupCommitWriter"]

log = logging.getLogger("lora_emotion.webhook.writer")

#: A submitted delivery, the future its request waits on, and when that wait ends (loop time).
_Entry = tuple[NewDelivery, asyncio.Future[WriteResult], float]


class GroupCommitWriter:
    """One per process: batches submitted deliveries into shared transactions.

    Args:
        batches: commits one batch (SQLite from a thread, PostgreSQL asynchronously); its
            ``concurrency`` says how many batches may be committing at once.
        batch_max: most deliveries in one transaction.
        timeout_s: how long :meth:`submit` waits for the commit before giving up with 503.
    """

    def __init__(
        self, batches: BatchWriter, *, batch_max: int = 512, timeout_s: float = 10.0
    ) -> None:
        self._batches = batches
        self._batch_max = batch_max
        self._timeout_s = timeout_s
        self._concurrency = max(1, batches.concurrency)
        self._queue: collections.deque[_Entry] = collections.deque()
        # Batches being committed, oldest first.
        self._in_flight: list[list[_Entry]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # The event loop keeps only weak references to tasks: these keep the commits alive.
        self._commits: set[asyncio.Task[None]] = set()
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._closing = False

    def start(self) -> None:
        """Start the writer task on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    @property
    def alive(self) -> bool:
        """Whether the writer task is running and accepting deliveries."""
        return self._task is not None and not self._task.done() and not self._closing

    async def close(self) -> None:
        """Commit what is queued, then stop; later submissions fail with 503."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        await self._batches.close()

    async def submit(self, item: NewDelivery) -> WriteResult:
        """Queue ``item`` and return once the transaction holding it has committed.

        Raises:
            StoreUnavailableError: the commit failed or took longer than the timeout.
            StoreRefusedError: the store refused this delivery's content (the others of its
                batch were committed).
        """
        if not self.alive:
            raise StoreUnavailableError("the service is shutting down")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResult] = loop.create_future()
        deadline = loop.time() + self._timeout_s
        self._queue.append((item, future, deadline))
        self._wakeup.set()
        # One timer for all waiters, due when the oldest one's wait ends: a timer per request
        # (call_later, or asyncio.wait_for's task and shield) was a few µs of every delivery.
        if self._sweep_timer is None:
            self._sweep_timer = loop.call_at(deadline, self._sweep)
        return await future

    def _sweep(self) -> None:
        """Fail the waits that have run out, then set the timer for the next one to end."""
        self._sweep_timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        # Batches are taken from the queue's front, so in-flight batches in the order they
        # started, then the queue, are in arrival order: the first wait found running is the
        # next to end.
        for _, future, deadline in itertools.chain(*self._in_flight, self._queue):
            if future.done():
                continue
            if deadline > now:
                self._sweep_timer = loop.call_at(deadline, self._sweep)
                return
            future.set_exception(
                StoreUnavailableError(f"the store did not commit within {self._timeout_s:g} s")
            )

    async def _run(self) -> None:
        while True:
            if not self._queue or len(self._in_flight) >= self._concurrency:
                if self._closing and not self._queue and not self._in_flight:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            size = min(len(self._queue), self._batch_max)
            batch = [self._queue.popleft() for _ in range(size)]
            self._in_flight.append(batch)
            commit = asyncio.get_running_loop().create_task(self._commit(batch))
            self._commits.add(commit)
            commit.add_done_callback(self._commits.discard)

    async def _commit(self, batch: list[_Entry]) -> None:
        started = time.perf_counter()
        try:
            results = await self._batches.write([item for item, _, _ in batch])
        except Exception as exc:  # the whole batch is unacknowledged: every waiter gets 503
            log.error(
                "store unavailable",
                extra={"event": "commit_failed", "error": type(exc).__name__, "batch": len(batch)},
            )
            reason = f"the store is unavailable ({type(exc).__name__})"
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(StoreUnavailableError(reason))
            return
        finally:
            # By identity: comparing batches would compare their deliveries.
            del self._in_flight[next(i for i, b in enumerate(self._in_flight) if b is batch)]
            self._wakeup.set()
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.BATCH_SIZE.observe(len(batch))
        for (_, future, _), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if result.refused is not None:
                future.set_exception(StoreRefusedError(result.refused))
            else:
                future.set_result(result)
