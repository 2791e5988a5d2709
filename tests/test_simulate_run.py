"""The delivery runner: KPN's retries, bounds, statistics, both HTTP clients, a live webhook."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from helpers import all_readings, live_webhook

from lora_emotion.aggregator import RelayConfig
from lora_emotion.errors import LoraEmotionError
from lora_emotion.fleet import Delivery, Fleet, FleetConfig
from lora_emotion.messages import Mode
from lora_emotion.simulate_run import (
    RetryPolicy,
    RunLimits,
    RunStats,
    TargetError,
    check_loopback,
    percentile,
    prebuild,
    run_deliveries,
)

FAST = RelayConfig(mode=Mode.READING, window_s=1, budget=False, status_interval_min=0)
QUICK_RETRY = RetryPolicy(timeouts_s=(0.3, 0.6, 0.9), pauses_s=(0.05, 0.1))


def deliveries(n: int, *, devices: int = 4, seed: int = 0) -> list[Delivery]:
    return prebuild(Fleet(FleetConfig(devices=devices, relay=FAST, seed=seed)).deliveries(), n)


Answer = Callable[[bytes, int], tuple[int, bytes] | None]


@asynccontextmanager
async def scripted_server(answer: Answer) -> AsyncIterator[tuple[str, Counter[bytes]]]:
    """A tiny HTTP/1.1 server: ``answer(body, attempt)`` gives (status, body) or None (hang)."""
    attempts: Counter[bytes] = Counter()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                attempts[body] += 1
                reply = answer(body, attempts[body])
                if reply is None:
                    await asyncio.sleep(3600)
                    return
                status, content = reply
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(content)}\r\n"
                    f"Content-Type: application/json\r\n\r\n".encode()
                    + content
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/uplinks/kpn", attempts
    finally:
        server.close()


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_a_non_2xx_answer_is_retried_with_kpn_behaviour(client: str) -> None:
    items = deliveries(12)

    def answer(body: bytes, attempt: int) -> tuple[int, bytes]:
        # Every third delivery fails once with 503 and once with 500, then gets through.
        if hash(body) % 3 == 0 and attempt < 3:
            return (503 if attempt == 1 else 500), b'{"detail":"busy"}'
        return 200, b'{"status":"stored"}'

    async def main() -> tuple[RunStats, Counter[bytes]]:
        async with scripted_server(answer) as (url, attempts):
            stats = await run_deliveries(
                items,
                url=url,
                limits=RunLimits(count=12, duration_s=30, speed=None),
                retry=QUICK_RETRY,
                concurrency=4,
                client=client,
            )
            return stats, attempts

    stats, attempts = asyncio.run(main())
    flaky = sum(1 for d in items if hash(d.body) % 3 == 0)
    assert stats.sent == stats.acknowledged == 12 and stats.failed == 0
    assert stats.retried == flaky and stats.retries == 2 * flaky
    assert stats.outcomes == Counter({"200": 12, "503": flaky, "500": flaky})
    assert sorted(attempts.values()) == sorted(3 if hash(d.body) % 3 == 0 else 1 for d in items)
    assert len(stats.latencies_ms) == 12


def test_after_three_failed_attempts_a_delivery_is_discarded() -> None:
    items = deliveries(3)

    async def main() -> RunStats:
        async with scripted_server(lambda body, attempt: (500, b"{}")) as (url, attempts):
            stats = await run_deliveries(
                items,
                url=url,
                limits=RunLimits(count=3, duration_s=30, speed=None),
                retry=QUICK_RETRY,
                client="raw",
            )
            assert set(attempts.values()) == {3}
            return stats

    stats = asyncio.run(main())
    assert stats.failed == 3 and stats.acknowledged == 0
    assert stats.outcomes == Counter({"500": 9})
    assert stats.latencies_ms == []  # only acknowledged requests are timed


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_a_server_that_does_not_answer_times_out_with_growing_timeouts(client: str) -> None:
    items = deliveries(1)
    retry = RetryPolicy(timeouts_s=(0.2, 0.4, 0.6), pauses_s=(0.0,))

    async def main() -> tuple[RunStats, float]:
        async with scripted_server(lambda body, attempt: None) as (url, _):
            began = time.perf_counter()
            stats = await run_deliveries(
                items,
                url=url,
                limits=RunLimits(count=1, duration_s=30, speed=None),
                retry=retry,
                client=client,
            )
            return stats, time.perf_counter() - began

    stats, took = asyncio.run(main())
    assert stats.failed == 1 and stats.outcomes == Counter({"timeout": 3})
    assert 1.2 <= took < 5.0  # 0.2 + 0.4 + 0.6 s


def test_a_refused_connection_counts_as_a_failed_attempt() -> None:
    from helpers import free_port

    stats = asyncio.run(
        run_deliveries(
            deliveries(2),
            url=f"http://127.0.0.1:{free_port()}/uplinks/kpn",
            limits=RunLimits(count=2, duration_s=10, speed=None),
            retry=RetryPolicy(timeouts_s=(0.5, 0.5), pauses_s=(0.0,)),
            client="raw",
        )
    )
    assert stats.failed == 2 and stats.outcomes == Counter({"connection": 4})


def test_count_and_duration_bound_every_run() -> None:
    async def main(limits: RunLimits) -> tuple[RunStats, float]:
        async with scripted_server(lambda body, attempt: (200, b"{}")) as (url, _):
            began = time.perf_counter()
            fleet = Fleet(FleetConfig(devices=2, relay=FAST))
            stats = await run_deliveries(fleet.deliveries(), url=url, limits=limits, client="raw")
            return stats, time.perf_counter() - began

    counted, _ = asyncio.run(main(RunLimits(count=25, duration_s=30, speed=None)))
    assert counted.sent == 25
    # Real-time pacing of 1-s windows for 2 devices: about 2 deliveries per second.
    timed, took = asyncio.run(main(RunLimits(count=10_000, duration_s=1.5, speed=1.0)))
    assert 1 <= timed.sent <= 6 and took < 4.0
    rated, took = asyncio.run(main(RunLimits(count=10, duration_s=30, speed=None, rate=20.0)))
    assert rated.sent == 10 and 0.4 < took < 3.0  # 10 at 20/s take about 0.45 s


def test_deliveries_are_sent_when_due_on_the_virtual_clock() -> None:
    sent_at: list[float] = []

    def answer(body: bytes, attempt: int) -> tuple[int, bytes]:
        sent_at.append(time.perf_counter())
        return 200, b"{}"

    async def main() -> None:
        async with scripted_server(answer) as (url, _):
            # One device, 1-s windows, 10x clock: a delivery every 0.1 s.
            fleet = Fleet(FleetConfig(devices=1, relay=FAST))
            await run_deliveries(
                fleet.deliveries(),
                url=url,
                limits=RunLimits(count=11, duration_s=30, speed=10.0),
                client="raw",
            )

    asyncio.run(main())
    span = sent_at[-1] - sent_at[0]
    assert 0.8 < span < 2.5


def test_against_the_live_webhook_both_clients_store_everything() -> None:
    with live_webhook() as server:
        for seed, client in enumerate(("raw", "httpx")):
            items = deliveries(60, devices=3, seed=seed)
            stats = asyncio.run(
                run_deliveries(
                    items,
                    url=server.url,
                    limits=RunLimits(count=60, duration_s=60, speed=None),
                    concurrency=6,
                    client=client,
                )
            )
            assert stats.acknowledged == 60 and stats.failed == 0 and stats.duplicates == 0
            for dev_eui in {d.dev_eui for d in items}:
                stored = {r["delivery_id"] for r in all_readings(server.get, dev_eui)}
                assert len(stored) == sum(1 for d in items if d.dev_eui == dev_eui)
        # Sending the same bodies again: KPN retries must be recognised as duplicates.
        stats = asyncio.run(
            run_deliveries(
                items,
                url=server.url,
                limits=RunLimits(count=60, duration_s=60, speed=None),
                client="raw",
            )
        )
        assert stats.acknowledged == stats.duplicates == 60


def test_statistics_and_percentiles() -> None:
    assert percentile([], 50) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 1) == 7.0
    stats = RunStats(started=10.0)
    stats.record_attempt("503", 5.0, 10.5)
    stats.record_attempt("200", 2.0, 11.0)
    stats.record_delivery(attempts=2, acknowledged=True, duplicate=False)
    stats.record_attempt("timeout", None, 12.0)
    stats.record_delivery(attempts=1, acknowledged=False, duplicate=False)
    summary = stats.summary()
    assert summary["sent"] == 2 and summary["acknowledged"] == 1 and summary["failed"] == 1
    assert summary["retried"] == 1 and summary["retries"] == 1
    assert summary["latency_ms"]["p50"] == 2.0  # the 503 is not an acknowledged request
    assert summary["rate_per_s"] == 0.5
    assert "failed        1" in stats.text()
    assert stats.progress_line(12.0).startswith("sent 2 ack 1 retried 1 failed 1")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/x", "http://localhost/x", "https://[::1]:9/x", "http://127.5.6.7/"],
)
def test_loopback_targets_are_allowed(url: str) -> None:
    check_loopback(url)


@pytest.mark.parametrize(
    "url", ["http://192.0.2.1/uplinks/kpn", "https://example.org/x", "http://10.0.0.1/"]
)
def test_other_targets_need_permission(url: str) -> None:
    with pytest.raises(TargetError, match="--allow-remote"):
        check_loopback(url)
    check_loopback(url, allow_remote=True)


def test_bad_urls_and_settings_are_refused() -> None:
    with pytest.raises(TargetError):
        check_loopback("ftp://127.0.0.1/x")
    with pytest.raises(LoraEmotionError):
        RunLimits(count=0)
    with pytest.raises(LoraEmotionError):
        RunLimits(duration_s=float("inf"))
    with pytest.raises(LoraEmotionError):
        RetryPolicy(timeouts_s=())
    with pytest.raises(TargetError, match="plain HTTP"):
        asyncio.run(run_deliveries([], url="https://127.0.0.1/x", client="raw"))
    assert RetryPolicy().attempts == 3
    assert RetryPolicy().worst_case_s == 5 + 10 + 20 + 1 + 2


def test_prebuild_takes_exactly_count() -> None:
    fleet = Fleet(FleetConfig(devices=2, relay=FAST))
    assert len(prebuild(fleet.deliveries(), 7)) == 7
    assert len(prebuild(iter(list(itertools.islice(fleet.deliveries(), 3))), 7)) == 3
