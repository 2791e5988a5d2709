"""The simulator's HTTP clients against servers that close keep-alive connections.

Servers close idle keep-alive connections (uvicorn after ``timeout_keep_alive``), and a request
written onto such a connection is never answered. A client that reuses one and counts the loss
as a failed attempt reports retries that never happened (the demo showed 6 of 25 on loopback).
Both clients run here against real servers on 127.0.0.1: uvicorn with a short keep-alive
timeout, and an asyncio server that closes connections in the ways that make clients trip.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import uvicorn

from lora_emotion.aggregator import RelayConfig
from lora_emotion.fleet import Delivery, Fleet, FleetConfig
from lora_emotion.messages import Mode
from lora_emotion.simulate_run import (
    RawPoster,
    RetryPolicy,
    RunLimits,
    RunStats,
    prebuild,
    run_deliveries,
)

FAST = RelayConfig(mode=Mode.READING, window_s=1, budget=False, status_interval_min=0)
RETRY = RetryPolicy(timeouts_s=(2.0, 2.0, 2.0), pauses_s=(0.05,))
OK = b'{"status":"stored"}'


def deliveries(n: int) -> list[Delivery]:
    return prebuild(Fleet(FleetConfig(devices=3, relay=FAST, lorawan=False)).deliveries(), n)


@asynccontextmanager
async def closing_server(
    *, idle_close_s: float | None = None, answers_per_connection: int | None = None
) -> AsyncIterator[tuple[str, Counter[bytes], Counter[bytes], list[int]]]:
    """An HTTP/1.1 server that closes connections without ``Connection: close``.

    ``idle_close_s``: a connection idle this long is closed (as uvicorn's keep-alive timeout).
    ``answers_per_connection``: after this many answers the next request on the connection
    is read and dropped unanswered, the connection closed (a close racing a reuse).

    Yields the URL, the bodies received, the bodies answered and the connection count.
    """
    received: Counter[bytes] = Counter()
    answered: Counter[bytes] = Counter()
    connections = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        served = 0
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), idle_close_s)
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                received[body] += 1
                if answers_per_connection is not None and served >= answers_per_connection:
                    return
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Length: {len(OK)}\r\n"
                    "Content-Type: application/json\r\n\r\n".encode()
                    + OK
                )
                await writer.drain()
                answered[body] += 1
                served += 1
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/uplinks/kpn", received, answered, connections
    finally:
        server.close()


@contextmanager
def uvicorn_server(timeout_keep_alive: float) -> Iterator[tuple[str, Counter[bytes]]]:
    """A plain ASGI app under uvicorn that answers 200 and closes idle connections quickly."""
    received: Counter[bytes] = Counter()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received[body] += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": OK})

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_keep_alive=timeout_keep_alive,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/uplinks/kpn", received
    finally:
        server.should_exit = True
        thread.join(timeout=20)


async def paced_run(items: list[Delivery], url: str, client: str) -> RunStats:
    """Two senders at 5 deliveries/s: every connection idles 0.4 s between requests."""
    return await run_deliveries(
        items,
        url=url,
        limits=RunLimits(count=len(items), duration_s=30, speed=None, rate=5.0),
        retry=RETRY,
        concurrency=2,
        client=client,
    )


@pytest.mark.parametrize("client", ["httpx", "raw"])
def test_no_false_retries_when_uvicorn_closes_idle_connections(client: str) -> None:
    items = deliveries(10)
    with uvicorn_server(timeout_keep_alive=0.1) as (url, received):
        stats = asyncio.run(paced_run(items, url, client))
    assert stats.acknowledged == 10 and stats.failed == 0
    assert stats.retried == 0 and stats.outcomes == Counter({"200": 10})
    assert received == Counter(d.body for d in items)  # each delivery sent once


@pytest.mark.parametrize("client", ["httpx", "raw"])
def test_no_false_retries_when_a_server_closes_idle_connections(client: str) -> None:
    items = deliveries(10)

    async def main() -> tuple[RunStats, Counter[bytes], int]:
        async with closing_server(idle_close_s=0.1) as (url, received, _, connections):
            return await paced_run(items, url, client), received, connections[0]

    stats, received, connections = asyncio.run(main())
    assert stats.retried == 0 and stats.outcomes == Counter({"200": 10})
    assert received == Counter(d.body for d in items)
    assert connections > 2  # the server did close idle connections under the two senders


def test_raw_sends_again_what_a_closing_connection_left_unanswered() -> None:
    """A close that races the reuse loses the request: sent again, once, not as a retry."""
    items = deliveries(8)

    async def main() -> tuple[RunStats, Counter[bytes], Counter[bytes]]:
        async with closing_server(answers_per_connection=1) as (url, received, answered, _):
            stats = await run_deliveries(
                items,
                url=url,
                limits=RunLimits(count=8, duration_s=30, speed=None),
                retry=RETRY,
                concurrency=1,
                client="raw",
            )
            return stats, received, answered

    stats, received, answered = asyncio.run(main())
    assert stats.retried == 0 and stats.outcomes == Counter({"200": 8})
    assert answered == Counter(d.body for d in items)  # every delivery answered exactly once
    assert sum(received.values()) > 8  # ... and some were sent again after an unanswered try


def test_raw_poster_counts_what_it_sent_again() -> None:
    items = deliveries(6)

    async def main() -> tuple[int, list[int], int]:
        async with closing_server(answers_per_connection=1) as (url, received, _, _):
            poster = RawPoster(url, concurrency=1)
            try:
                statuses = [(await poster.post(d, 2.0))[0] for d in items]
            finally:
                await poster.aclose()
            return poster.resent, statuses, sum(received.values())

    resent, statuses, received = asyncio.run(main())
    assert statuses == [200] * 6
    # Each later request either found its idle connection closed (dropped before use) or
    # lost the race to the close and was sent again; the server saw exactly those extra sends.
    assert received == 6 + resent


@pytest.mark.parametrize("client", ["httpx", "raw"])
def test_a_new_connection_closed_unanswered_is_a_failed_attempt(client: str) -> None:
    """Only a reused connection is tried again: a fresh one that drops the request failed."""
    items = deliveries(1)

    async def main() -> tuple[RunStats, Counter[bytes]]:
        async with closing_server(answers_per_connection=0) as (url, received, _, _):
            stats = await run_deliveries(
                items,
                url=url,
                limits=RunLimits(count=1, duration_s=30, speed=None),
                retry=RETRY,
                client=client,
            )
            return stats, received

    stats, received = asyncio.run(main())
    assert stats.failed == 1 and stats.outcomes == Counter({"connection": 3})
    assert received == Counter({items[0].body: 3})  # one request per attempt, no more
