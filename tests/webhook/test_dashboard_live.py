"""The live stream across processes: a delivery committed by one server reaches a browser
connected to another, and a stream resumed with Last-Event-ID (on either) misses nothing.

Two ``lora-emotion serve`` processes on one store stand for two workers or two hosts: on
PostgreSQL they meet through LISTEN/NOTIFY, on SQLite through polling the shared file.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from webhook_support import (
    READ_TOKEN,
    ServerProcess,
    payload_body,
    signed_headers,
)

AUTH = {"Authorization": f"Bearer {READ_TOKEN}"}


class Listener:
    """An SSE client on a thread: the events it got, with the time each arrived."""

    def __init__(self, url: str, *, last_event_id: int | None = None, after: int | None = None):
        self.events: list[tuple[float, int, dict[str, object]]] = []
        self.opened = threading.Event()
        self._stop = threading.Event()
        headers = dict(AUTH)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        params = {} if after is None else {"after": str(after)}
        self._thread = threading.Thread(target=self._run, args=(url, headers, params), daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"

    def _run(self, url: str, headers: dict[str, str], params: dict[str, str]) -> None:
        try:
            self._read(url, headers, params)
        except httpx.HTTPError:
            if not self._stop.is_set():
                raise  # closed by the test (or the server stopping afterwards) is expected

    def _read(self, url: str, headers: dict[str, str], params: dict[str, str]) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=30)) as client,
            client.stream("GET", url + "/events", headers=headers, params=params) as response,
        ):
            assert response.status_code == 200
            self.opened.set()
            event_id, kind = None, None
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "delivery":
                    assert event_id is not None
                    self.events.append((time.time(), event_id, json.loads(line[6:])))

    def ids(self) -> list[int]:
        return [event_id for _, event_id, _ in self.events]

    def wait_for(self, count: int, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.events) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.events) >= count, f"{len(self.events)} of {count} events arrived"

    def close(self) -> None:
        self._stop.set()


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ...]]:
    servers = tuple(ServerProcess(database_url) for _ in range(2))
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.kill()


def _post(url: str, dev_eui: str, at: float, label_hex: str = "0186") -> None:
    body = payload_body(label_hex, 16, base_time=at, dev_eui=dev_eui)
    response = httpx.post(url + "/uplinks/kpn", content=body, headers=signed_headers(body))
    assert response.status_code == 200, response.text


def test_a_delivery_to_one_server_reaches_a_browser_on_the_other(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    ingest, viewer = two_servers
    listener = Listener(viewer.url)
    sent = time.time()
    _post(ingest.url, "0004A30B000000A1", sent)
    listener.wait_for(1, timeout_s=5)
    arrived, _, event = listener.events[0]
    listener.close()
    assert event["device"] == "urn:dev:DEVEUI:0004A30B000000A1"
    assert event["emotion"] == "happy" and event["confidence"] == pytest.approx(0.87)
    assert arrived - sent < 1.0


def test_last_event_id_resumes_on_either_server_without_a_gap(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    first, second = two_servers
    start = time.time() - 600
    listener = Listener(first.url)
    for n in range(5):
        _post(first.url if n % 2 else second.url, f"0004A30B0000B{n:03X}", start + n)
    listener.wait_for(5)
    listener.close()
    seen = listener.ids()
    # While no browser is connected, ten more arrive through both servers.
    for n in range(5, 15):
        _post(first.url if n % 2 else second.url, f"0004A30B0000B{n:03X}", start + n)
    time.sleep(0.5)
    everything = httpx.get(first.url + "/deliveries", params={"limit": 200}, headers=AUTH)
    all_ids = sorted(d["id"] for d in everything.json()["deliveries"])
    assert len(all_ids) == 15
    for server in (first, second):
        resumed = Listener(server.url, last_event_id=seen[-1])
        resumed.wait_for(10)
        time.sleep(0.3)  # nothing more may follow
        resumed.close()
        assert sorted(seen + resumed.ids()) == all_ids, server.url
    # A page that loaded its snapshot at the newest id starts exactly after it.
    fresh = Listener(second.url, after=all_ids[-1])
    _post(first.url, "0004A30B0000BFFF", start + 99)
    fresh.wait_for(1)
    time.sleep(0.3)
    fresh.close()
    assert len(fresh.ids()) == 1 and fresh.ids()[0] > all_ids[-1]


def test_a_device_filter_passes_only_that_device(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    ingest, viewer = two_servers
    opened = threading.Event()
    got: list[str] = []

    def run() -> None:
        params = {"device": "0004a30b000000c1"}
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=30)) as client,
            client.stream("GET", viewer.url + "/events", headers=AUTH, params=params) as r,
        ):
            opened.set()
            for line in r.iter_lines():
                if line.startswith("data: "):
                    got.append(json.loads(line[6:])["device"])
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert opened.wait(10)
    _post(ingest.url, "0004A30B000000C2", time.time())
    _post(ingest.url, "0004A30B000000C1", time.time())
    thread.join(10)
    assert got == ["urn:dev:DEVEUI:0004A30B000000C1"]
