"""Reliability under concurrency, crashes and store outages, against real server processes.

(a) three concurrent copies of each delivery, over two workers, are stored exactly once (on
PostgreSQL also with two commits in flight per worker);
(b) kill -9 in the middle of a load loses nothing that was answered 2xx;
(c) a store that goes away makes the service answer 503, never 2xx, and it recovers;
and a worker process that dies is replaced.
Counts and durations are small so the whole file runs in well under a minute on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from conftest import PG_ADMIN, reset_postgres
from fastapi.testclient import TestClient
from lora_emotion.webhook import schema
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app
from lora_emotion.webhook.storage import create_store
from pydantic import SecretStr
from sqlalchemy import select
from webhook_support import (
    DEV_EUI,
    PLUG,
    READ_TOKEN,
    SECRET,
    ServerProcess,
    payload_body,
    signed_headers,
)

from lora_emotion.networks.kpn import parse_delivery

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BT = 1_700_000_000.0


def unique_bodies(count: int, *, offset: int = 0) -> list[bytes]:
    """``count`` distinct deliveries from 50 devices, readings alternating happy and sad."""
    return [
        payload_body(
            "0186" if i % 2 else "01B5",
            16,
            base_time=BT + offset + i * 0.001,
            dev_eui=f"{0x0004A30B00000000 + i % 50:016X}",
        )
        for i in range(count)
    ]


def key(body: bytes) -> str:
    return parse_delivery(body, now=0).dedup_key


def stored_keys(database_url: str) -> set[str]:
    store = create_store(database_url)
    try:
        with store.read_engine.connect() as conn:
            return set(conn.execute(select(schema.deliveries.c.dedup_key)).scalars())
    finally:
        store.dispose()


async def post_all(
    url: str,
    bodies: list[bytes],
    *,
    concurrency: int,
    stop: asyncio.Event | None = None,
    results: dict[int, int | str] | None = None,
) -> dict[int, int | str]:
    """POST every body (signed), ``concurrency`` at a time, until ``stop`` is set.

    ``results``, when given, is filled as answers arrive, so a caller can watch the progress.

    Returns:
        The status, or the name of the transport error, of every body that was sent.
    """
    if results is None:
        results = {}
    pending = list(enumerate(bodies))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=20) as client:

        async def worker() -> None:
            while pending and not (stop is not None and stop.is_set()):
                index, body = pending.pop()
                try:
                    response = await client.post(
                        "/uplinks/kpn", content=body, headers=signed_headers(body)
                    )
                    results[index] = response.status_code
                except httpx.HTTPError as exc:
                    results[index] = type(exc).__name__

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def test_concurrent_copies_over_two_workers_are_stored_once(database_url: str) -> None:
    bodies = unique_bodies(120)
    copies = bodies * 3
    random.Random(7).shuffle(copies)
    with ServerProcess(database_url, workers=2) as server:
        results = asyncio.run(post_all(server.url, copies, concurrency=48))
    assert sorted(set(results.values()), key=str) == [200]
    assert stored_keys(database_url) == {key(b) for b in bodies}


def test_copies_over_workers_with_two_commits_each_in_flight_are_stored_once(
    postgres_url: str,
) -> None:
    reset_postgres(postgres_url)
    bodies = unique_bodies(120, offset=5_000)
    copies = bodies * 3
    random.Random(11).shuffle(copies)
    settings = {"LORA_EMOTION_COMMIT_CONCURRENCY": "2", "LORA_EMOTION_BATCH_MAX": "8"}
    with ServerProcess(postgres_url, workers=2, env=settings) as server:
        results = asyncio.run(post_all(server.url, copies, concurrency=48))
    assert sorted(set(results.values()), key=str) == [200]
    assert stored_keys(postgres_url) == {key(b) for b in bodies}


def test_kill_9_loses_no_acknowledged_delivery(database_url: str) -> None:
    bodies = unique_bodies(5000)
    server = ServerProcess(database_url, workers=2)
    server.start()

    async def load_then_kill() -> dict[int, int | str]:
        stop = asyncio.Event()
        progress: dict[int, int | str] = {}
        load = asyncio.create_task(
            post_all(server.url, bodies, concurrency=32, stop=stop, results=progress)
        )
        # Kill once the load is well under way, however slow a busy machine makes it (bounded).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not load.done():
            if sum(1 for status in progress.values() if status == 200) > 300:
                break
            await asyncio.sleep(0.05)
        server.kill()  # mid-load: requests are in flight and batches are being committed
        stop.set()
        return await load

    try:
        results = asyncio.run(load_then_kill())
    finally:
        server.kill()
    acknowledged = {i for i, status in results.items() if status == 200}
    failed = {i for i, status in results.items() if status != 200}
    assert len(acknowledged) > 100, "the load did not get going before the kill"
    assert failed, "the kill came after the load had finished"
    refusals = [results[i] for i in failed]
    assert all(isinstance(r, str) or r >= 500 for r in refusals)
    stored = stored_keys(database_url)
    missing = [i for i in acknowledged if key(bodies[i]) not in stored]
    assert missing == []

    attempted = sorted(results)
    with ServerProcess(database_url, workers=1) as server:
        again = asyncio.run(post_all(server.url, [bodies[i] for i in attempted], concurrency=16))
    assert set(again.values()) == {200}
    assert stored_keys(database_url) == {key(bodies[i]) for i in attempted}


class CuttableProxy:
    """A loopback TCP relay to PostgreSQL that can be cut (connections reset, port closed)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        assert self._listener is not None
        # shutdown() wakes the thread blocked in accept(); close() alone would not on Linux.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._listener = None
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy() -> Iterator[CuttableProxy]:
    relay = CuttableProxy(5432)
    relay.restore()
    yield relay
    with contextlib.suppress(AssertionError):
        relay.cut()


def _outage_settings(url: str) -> Settings:
    return Settings(
        database_url=url,
        destinations={PLUG: [SECRET]},
        store_timeout_s=10,
        sqlite_busy_timeout_ms=200,
    )


def _post(client: TestClient, body: bytes) -> httpx.Response:
    response: httpx.Response = client.post(
        "/uplinks/kpn", content=body, headers=signed_headers(body)
    )
    return response


def test_postgres_outage_is_503_then_recovers(postgres_url: str, proxy: CuttableProxy) -> None:
    reset_postgres(postgres_url)
    url = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    bodies = unique_bodies(4)
    with TestClient(create_app(_outage_settings(url))) as client:
        assert _post(client, bodies[0]).status_code == 200
        proxy.cut()
        during = [_post(client, body) for body in bodies[1:]]
        assert [r.status_code for r in during] == [503] * 3
        assert all(r.headers["Retry-After"] for r in during)
        assert client.get("/readyz").status_code == 503
        proxy.restore()
        assert client.get("/readyz").status_code == 200
        after = [_post(client, body) for body in bodies[1:]]
        assert [r.json()["status"] for r in after] == ["stored"] * 3
    assert stored_keys(postgres_url) == {key(b) for b in bodies}


def test_sqlite_locked_by_another_process_is_503_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    bodies = unique_bodies(3)
    with TestClient(create_app(_outage_settings(f"sqlite:///{path}"))) as client:
        assert _post(client, bodies[0]).status_code == 200
        locker = sqlite3.connect(path, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            during = [_post(client, body) for body in bodies[1:]]
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert [r.status_code for r in during] == [503, 503]
        after = [_post(client, body) for body in bodies[1:]]
        assert [r.status_code for r in after] == [200, 200]
    assert stored_keys(f"sqlite:///{path}") == {key(b) for b in bodies}


def _children(pid: int) -> set[int]:
    """Worker processes (multiprocessing spawn children) of ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
    return found


def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    with ServerProcess(url, workers=2) as server:
        assert server.process is not None
        workers = _children(server.process.pid)
        assert len(workers) >= 2
        victim = max(workers)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            current = _children(server.process.pid)
            if victim not in current and len(current - workers) >= 1:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the dead worker was not replaced")
        time.sleep(1.0)
        results = asyncio.run(post_all(server.url, unique_bodies(40), concurrency=8))
    assert set(results.values()) == {200}


@pytest.fixture
def own_database(postgres_url: str) -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """A PostgreSQL database for this test alone, and an admin connection to take it away."""
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    name = f"lora_emotion_outage_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}", admin
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


READ_ROUTES = (
    "/devices",
    f"/devices/{DEV_EUI}",
    f"/devices/{DEV_EUI}/readings",
    f"/devices/{DEV_EUI}/export",
    "/deliveries",
    "/deliveries/1",
)


def test_read_api_during_a_postgres_outage_is_503_then_recovers(
    own_database: tuple[str, psycopg.Connection[Any]],
) -> None:
    """The server ends every session of the database and accepts no new one: each read route
    answers 503 with Retry-After and a JSON problem, never 500, and serves again afterwards."""
    url, admin = own_database
    name = url.rsplit("/", 1)[1]
    settings = _outage_settings(url).model_copy(update={"read_tokens": [SecretStr(READ_TOKEN)]})
    auth = {"Authorization": f"Bearer {READ_TOKEN}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert _post(client, payload_body(dev_eui=DEV_EUI)).status_code == 200
        assert [client.get(r, headers=auth).status_code for r in READ_ROUTES] == [200] * 6
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        try:
            for route in READ_ROUTES:
                for _ in range(2):  # the session that was ended, then a new one refused
                    response = client.get(route, headers=auth)
                    assert response.status_code == 503, (route, response.text)
                    assert response.headers["Retry-After"] == "5"
                    assert response.headers["content-type"] == "application/json"
                    assert "store is unavailable" in response.json()["detail"]
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
        finally:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        assert [client.get(r, headers=auth).status_code for r in READ_ROUTES] == [200] * 6


def test_copies_racing_over_two_workers_all_answer_the_stored_id(database_url: str) -> None:
    """Issue 11 defect 7 as KPN's retries would meet it: whichever worker stored a delivery,
    every copy's answer names the one stored delivery."""
    bodies = unique_bodies(6, offset=9_000)

    async def race(url: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            answers = await asyncio.gather(
                *(
                    client.post("/uplinks/kpn", content=body, headers=signed_headers(body))
                    for body in bodies * 8
                )
            )
        return [answer.json() for answer in answers]

    with ServerProcess(database_url, workers=2) as server:
        answers = asyncio.run(race(server.url))
    ids: dict[int, set[int]] = {}
    for n, answer in enumerate(answers):
        ids.setdefault(n % len(bodies), set()).add(answer["delivery_id"])
    assert all(len(found) == 1 and None not in found for found in ids.values()), ids
    assert sorted(a["status"] for a in answers).count("stored") == len(bodies)


def test_the_issues_bad_delivery_among_200_concurrent_good_ones(database_url: str) -> None:
    """Issue 11 defect 1 as the held-out run met it: a signed delivery whose base name is a
    valid-looking URN with a ~4,000-character EUI, sent among 200 concurrent good ones. It
    alone is answered 422, saying why; every good one is stored at once (was: 503 for it
    forever, and for the 99-150 good ones that shared its batch, on PostgreSQL)."""
    good = unique_bodies(200, offset=20_000)
    # Random hex, as incompressible as it gets: PostgreSQL cannot index it.
    bad = good[0].replace(b"0004A30B00000000", secrets.token_hex(2_000).upper().encode())
    bodies = [*good[:100], bad, *good[100:]]
    with ServerProcess(database_url, workers=2) as server:
        results = asyncio.run(post_all(server.url, bodies, concurrency=64))
        answer = httpx.post(
            server.url + "/uplinks/kpn", content=bad, headers=signed_headers(bad), timeout=20
        )
    assert results.pop(100) == 422
    assert set(results.values()) == {200}
    assert answer.status_code == 422 and "DevEUI" in answer.json()["detail"]
    assert stored_keys(database_url) == {key(b) for b in good}
