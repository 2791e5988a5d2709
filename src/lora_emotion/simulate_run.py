"""Post KPN deliveries to a webhook the way KPN Things does, and measure what happens.

The sans-IO fleet (``lora_emotion.fleet``) decides what is sent; this module only sends it and
counts. Why it is built like a load generator and not like a loop of ``httpx.post``:

* Bodies and headers are built before the clock starts (``prebuild``) or by a producer task
  ahead of the senders, so the request path does no codec, AES or JSON work.
* ``concurrency`` workers share one connection pool with keep-alive, so a run measures the
  webhook, not TCP handshakes. ``--client raw`` goes further for plain-HTTP loopback targets:
  each worker keeps one HTTP/1.1 connection and writes pre-serialised requests, which costs a
  fraction of httpx's per-request overhead (both report the same numbers).
* KPN's retry behaviour is reproduced: any non-2xx answer, timeout or connection error is a
  failed attempt; at most three attempts, each with a longer timeout, then the delivery is
  discarded and counted as failed (KPN discards it too).
* Every run is bounded twice: by a number of deliveries and by wall-clock time.

Latency is measured per request (send to complete answer) for acknowledged requests, on the
monotonic clock; percentiles use the nearest-rank method.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from .errors import LoraEmotionError
from .fleet import Delivery

__all__ = [
    "KPN_RETRY",
    "HttpxPoster",
    "Poster",
    "RawPoster",
    "RetryPolicy",
    "RunLimits",
    "RunStats",
    "TargetError",
    "check_loopback",
    "percentile",
    "prebuild",
    "run_deliveries",
]


class TargetError(LoraEmotionError):
    """The webhook URL cannot be used (not loopback without permission, bad scheme)."""

    http_status = 400


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a delivery is retried.

    KPN documents "at most three attempts with increasing timeout" without the numbers; the
    defaults here (5, 10, 20 s with 1 s and 2 s pauses) are assumptions, kept configurable.

    Attributes:
        timeouts_s: the timeout of each attempt; its length is the number of attempts.
        pauses_s: the wait before attempt 2, 3, ...; the last value repeats.
    """

    timeouts_s: tuple[float, ...] = (5.0, 10.0, 20.0)
    pauses_s: tuple[float, ...] = (1.0, 2.0)

    def __post_init__(self) -> None:
        if not self.timeouts_s or any(not 0 < t < math.inf for t in self.timeouts_s):
            raise LoraEmotionError("retry timeouts must be positive and finite")
        if any(not 0 <= p < math.inf for p in self.pauses_s):
            raise LoraEmotionError("retry pauses must be finite and not negative")

    @property
    def attempts(self) -> int:
        return len(self.timeouts_s)

    def pause_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (1-based; 0 before the first)."""
        if attempt <= 1 or not self.pauses_s:
            return 0.0
        return self.pauses_s[min(attempt - 2, len(self.pauses_s) - 1)]

    @property
    def worst_case_s(self) -> float:
        """The longest one delivery can take, every attempt timing out."""
        return sum(self.timeouts_s) + sum(self.pause_before(a) for a in range(2, self.attempts + 1))


#: The retry behaviour the simulator assumes for KPN Things.
KPN_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLimits:
    """The two bounds of every run, and how deliveries are paced.

    Attributes:
        count: at most this many deliveries are sent.
        duration_s: no new delivery starts after this many seconds (in-flight ones finish
            within the retry policy's worst case).
        speed: virtual seconds per wall second for deliveries' own times; None sends as fast
            as the workers can (``rate`` may still cap it).
        rate: at most this many deliveries per second, evenly spaced; None for no cap.
    """

    count: int = 100
    duration_s: float = 60.0
    speed: float | None = 60.0
    rate: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise LoraEmotionError("the delivery count must be a positive integer")
        if not 0 < self.duration_s < math.inf:
            raise LoraEmotionError("the duration must be a positive number of seconds")
        if self.speed is not None and not 0 < self.speed < math.inf:
            raise LoraEmotionError("the speed must be positive")
        if self.rate is not None and not 0 < self.rate < math.inf:
            raise LoraEmotionError("the rate must be positive")


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of sorted values; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(slots=True)
class RunStats:
    """What happened to the deliveries of a run (sans-IO: the runner feeds it).

    Attributes:
        sent: deliveries attempted at least once.
        acknowledged: deliveries that got a 2xx answer at some attempt.
        duplicates: acknowledged deliveries the webhook reported as already stored.
        retried: deliveries that needed more than one attempt.
        retries: extra attempts in total.
        failed: deliveries discarded after the last attempt.
        outcomes: every attempt's outcome: an HTTP status, ``timeout`` or ``connection``.
        latencies_ms: the latency of every acknowledged request.
        started, finished: monotonic times of the first send and the last answer.
    """

    sent: int = 0
    acknowledged: int = 0
    duplicates: int = 0
    retried: int = 0
    retries: int = 0
    failed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None

    def record_attempt(self, outcome: str, latency_ms: float | None, now: float) -> None:
        """Count one attempt: ``outcome`` is the status code as text, or an error name."""
        self.outcomes[outcome] += 1
        if latency_ms is not None and outcome.startswith("2"):
            self.latencies_ms.append(latency_ms)
        self.finished = now

    def record_delivery(self, *, attempts: int, acknowledged: bool, duplicate: bool) -> None:
        """Count one finished delivery."""
        self.sent += 1
        if attempts > 1:
            self.retried += 1
            self.retries += attempts - 1
        if acknowledged:
            self.acknowledged += 1
            self.duplicates += duplicate
        else:
            self.failed += 1

    @property
    def elapsed_s(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return max(self.finished - self.started, 1e-9)

    @property
    def rate(self) -> float:
        """Acknowledged deliveries per second of the run."""
        return self.acknowledged / self.elapsed_s if self.acknowledged else 0.0

    def summary(self) -> dict[str, Any]:
        """The run as JSON-ready builtins (the ``--json`` output)."""
        ordered = sorted(self.latencies_ms)
        return {
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "duplicates": self.duplicates,
            "retried": self.retried,
            "retries": self.retries,
            "failed": self.failed,
            "elapsed_s": round(self.elapsed_s, 3),
            "rate_per_s": round(self.rate, 1),
            "latency_ms": {
                name: None if value is None else round(value, 3)
                for name, value in (
                    ("p50", percentile(ordered, 50)),
                    ("p90", percentile(ordered, 90)),
                    ("p99", percentile(ordered, 99)),
                    ("max", ordered[-1] if ordered else None),
                )
            },
            "outcomes": dict(sorted(self.outcomes.items())),
        }

    def progress_line(self, now: float) -> str:
        """A one-line state of the run for a terminal."""
        elapsed = 0.0 if self.started is None else now - self.started
        rate = self.acknowledged / elapsed if elapsed > 0 else 0.0
        recent = sorted(self.latencies_ms[-2000:])
        p50, p99 = percentile(recent, 50), percentile(recent, 99)
        latency = "" if p50 is None else f" | p50 {p50:.1f} ms p99 {p99:.1f} ms"
        return (
            f"sent {self.sent} ack {self.acknowledged} retried {self.retried} "
            f"failed {self.failed} | {rate:.0f}/s{latency} | {elapsed:.1f} s"
        )

    def text(self) -> str:
        """The final summary for people."""
        s = self.summary()
        lat = s["latency_ms"]

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} ms"

        outcomes = ", ".join(f"{k}: {v}" for k, v in s["outcomes"].items()) or "-"
        return "\n".join(
            [
                f"sent          {s['sent']}",
                f"acknowledged  {s['acknowledged']} ({s['duplicates']} duplicates)",
                f"retried       {s['retried']} ({s['retries']} extra attempts)",
                f"failed        {s['failed']}",
                f"rate          {s['rate_per_s']:.1f} deliveries/s over {s['elapsed_s']:.2f} s",
                f"latency       p50 {ms(lat['p50'])}, p90 {ms(lat['p90'])}, "
                f"p99 {ms(lat['p99'])}, max {ms(lat['max'])}",
                f"attempts      {outcomes}",
            ]
        )


def check_loopback(url: str, *, allow_remote: bool = False) -> None:
    """Refuse a URL that is not http(s) on a loopback address, unless ``allow_remote``.

    A load generator pointed at someone else's server is an attack; loopback is the default.

    Raises:
        TargetError: a bad scheme or host, or a non-loopback host without ``allow_remote``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"{url!r} is not an http:// or https:// URL")
    if allow_remote:
        return
    host = parts.hostname
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise TargetError(
            f"{host} is not a loopback address; pass --allow-remote to load a server you run"
        )


class Poster(Protocol):
    """Sends one request; returns the status and body, raises on timeout or connection loss."""

    async def post(self, delivery: Delivery, timeout_s: float) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class HttpxPoster:
    """Posts with one shared ``httpx.AsyncClient`` (keep-alive pool of ``concurrency``)."""

    def __init__(self, url: str, *, concurrency: int) -> None:
        import httpx

        self._httpx = httpx
        self._url = url
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            headers={"User-Agent": "lora-emotion-simulate"},
        )

    async def post(self, delivery: Delivery, timeout_s: float) -> tuple[int, bytes]:
        response = await self._client.post(
            self._url, content=delivery.body, headers=delivery.headers, timeout=timeout_s
        )
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


class _ConnectionLost(Exception):
    pass


class _Unanswered(Exception):
    """The connection closed before a single byte of the answer: the request was not taken."""


class RawPoster:
    """A minimal HTTP/1.1 client for plain-HTTP load: one keep-alive connection per worker.

    Requests are written as pre-serialised bytes; answers are read by ``Content-Length`` or
    chunked encoding. Servers close idle keep-alive connections (uvicorn after 5 s), and a
    request written onto such a connection is lost without an answer. So an idle connection
    the server has closed is dropped before use, and a request on a reused connection that
    closes before any byte of an answer is sent again on a new connection, within the same
    attempt: it was never answered, so it is no retry. Anything else (no connection, a
    timeout, an answer cut short) fails the attempt, as it would for KPN.
    """

    def __init__(self, url: str, *, concurrency: int) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise TargetError("--client raw speaks plain HTTP only; use httpx for https")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host_header = self._host if parts.port is None else f"{self._host}:{parts.port}"
        self._head = f"POST {self._path} HTTP/1.1\r\nHost: {host_header}\r\n".encode("latin-1")
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: set[asyncio.StreamWriter] = set()
        #: Requests sent again because the server had closed the idle connection they used.
        self.resent = 0

    def _request(self, delivery: Delivery) -> bytes:
        lines = [self._head]
        for name, value in delivery.headers.items():
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        lines.append(f"Content-Length: {len(delivery.body)}\r\n\r\n".encode("ascii"))
        lines.append(delivery.body)
        return b"".join(lines)

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        """An idle connection the server has not closed (reused=True), else a new one."""
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():
                self._close(writer)  # the server closed it while it was idle
                continue
            return reader, writer, True
        reader, writer = await asyncio.open_connection(self._host, self._port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._all.add(writer)
        return reader, writer, False

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
    ) -> tuple[int, bytes, bool]:
        try:
            writer.write(request)
            status_line = await reader.readline()
        except ConnectionError as exc:
            raise _Unanswered from exc
        if not status_line:
            raise _Unanswered
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked = False
        keep_alive = True
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            key = name.strip().lower()
            if key == b"content-length":
                length = int(value.strip())
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif key == b"connection" and b"close" in value.lower():
                keep_alive = False
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readline()
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:
            body = await reader.read()
            keep_alive = False
        return status, body, keep_alive

    async def post(self, delivery: Delivery, timeout_s: float) -> tuple[int, bytes]:
        request = self._request(delivery)
        async with asyncio.timeout(timeout_s):
            while True:
                reader, writer, reused = await self._connection()
                try:
                    status, body, keep_alive = await self._exchange(reader, writer, request)
                except _Unanswered:
                    self._close(writer)
                    if reused:
                        self.resent += 1
                        continue  # the server had closed it: send on a new connection
                    raise _ConnectionLost from None
                except BaseException:
                    self._close(writer)
                    raise
                break
        if keep_alive:
            self._idle.append((reader, writer))
        else:
            self._close(writer)
        return status, body

    def _close(self, writer: asyncio.StreamWriter) -> None:
        self._all.discard(writer)
        writer.close()

    async def aclose(self) -> None:
        for writer in list(self._all):
            self._close(writer)
        self._idle.clear()


async def _deliver(poster: Poster, delivery: Delivery, retry: RetryPolicy, stats: RunStats) -> None:
    acknowledged = duplicate = False
    attempt = 0
    for attempt, timeout_s in enumerate(retry.timeouts_s, start=1):
        pause = retry.pause_before(attempt)
        if pause:
            await asyncio.sleep(pause)
        began = time.perf_counter()
        if stats.started is None:
            stats.started = began
        try:
            status, body = await poster.post(delivery, timeout_s)
        except TimeoutError:
            stats.record_attempt("timeout", None, time.perf_counter())
            continue
        except (OSError, _ConnectionLost, ValueError, IndexError, asyncio.IncompleteReadError):
            stats.record_attempt("connection", None, time.perf_counter())
            continue
        except Exception as exc:  # httpx's transport errors, without importing httpx here
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                name = "timeout" if "Timeout" in type(exc).__name__ else "connection"
                stats.record_attempt(name, None, time.perf_counter())
                continue
            raise
        now = time.perf_counter()
        stats.record_attempt(str(status), (now - began) * 1000, now)
        if 200 <= status < 300:
            acknowledged = True
            duplicate = b'"duplicate"' in body
            break
    stats.record_delivery(attempts=attempt, acknowledged=acknowledged, duplicate=duplicate)


async def _schedule(
    deliveries: Iterable[Delivery], limits: RunLimits, start: float
) -> AsyncIterator[Delivery]:
    """Yield deliveries when they are due, within the count and time limits."""
    deadline = start + limits.duration_s
    first_t: int | None = None
    for sent, delivery in enumerate(deliveries):
        if sent >= limits.count:
            return
        due = start
        if limits.speed is not None:
            if first_t is None:
                first_t = delivery.t_ms
            due = max(due, start + (delivery.t_ms - first_t) / 1000 / limits.speed)
        if limits.rate is not None:
            due = max(due, start + sent / limits.rate)
        now = time.perf_counter()
        if due >= deadline or now >= deadline:
            return
        if due > now:
            await asyncio.sleep(due - now)
        elif sent % 64 == 0:
            await asyncio.sleep(0)  # a producer that is never due must still let workers run
        yield delivery


async def run_deliveries(
    deliveries: Iterable[Delivery],
    *,
    url: str,
    limits: RunLimits | None = None,
    retry: RetryPolicy = KPN_RETRY,
    concurrency: int = 8,
    client: str = "httpx",
    progress: Callable[[RunStats, float], None] | None = None,
    progress_interval_s: float = 0.5,
) -> RunStats:
    """Post ``deliveries`` to ``url`` with KPN's retry behaviour, within ``limits``.

    Args:
        deliveries: what to send, in time order (a prebuilt list or a lazy fleet iterator).
        url: the webhook's KPN endpoint.
        limits: count, duration and pacing bounds.
        retry: attempts and their timeouts.
        concurrency: workers (and connections) sending in parallel.
        client: ``httpx`` or ``raw`` (plain-HTTP keep-alive connections, less overhead).
        progress: called every ``progress_interval_s`` with the stats and the clock.
        progress_interval_s: seconds between progress calls.

    Returns:
        The run's statistics.

    Raises:
        TargetError: ``client`` is unknown, or ``raw`` with an https URL.
    """
    limits = limits or RunLimits()
    if not 1 <= concurrency <= 10_000:
        raise LoraEmotionError("concurrency must be 1..10000")
    if client == "httpx":
        poster: Poster = HttpxPoster(url, concurrency=concurrency)
    elif client == "raw":
        poster = RawPoster(url, concurrency=concurrency)
    else:
        raise TargetError(f"unknown client {client!r} (httpx or raw)")
    stats = RunStats()
    queue: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize=concurrency * 4)

    async def worker() -> None:
        while True:
            delivery = await queue.get()
            if delivery is None:
                return
            await _deliver(poster, delivery, retry, stats)

    async def report() -> None:
        assert progress is not None
        while True:
            await asyncio.sleep(progress_interval_s)
            progress(stats, time.perf_counter())

    start = time.perf_counter()
    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    reporter = asyncio.create_task(report()) if progress is not None else None
    try:
        async for delivery in _schedule(deliveries, limits, start):
            await queue.put(delivery)
        for _ in workers:
            await queue.put(None)
        # In-flight deliveries may still retry; none may outlive its worst case.
        await asyncio.wait_for(asyncio.gather(*workers), retry.worst_case_s + 5)
    finally:
        for task in workers:
            task.cancel()
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        await poster.aclose()
    if stats.started is None:
        stats.started = start
    if stats.finished is None:
        stats.finished = time.perf_counter()
    return stats


def prebuild(deliveries: Iterator[Delivery], count: int) -> list[Delivery]:
    """Build the first ``count`` deliveries before the clock starts (load generation)."""
    out: list[Delivery] = []
    for delivery in deliveries:
        out.append(delivery)
        if len(out) >= count:
            break
    return out
