"""Helpers shared by tests: a live webhook on loopback, and a device-to-webhook pipeline.

``DeviceToWebhook`` pushes a message through every hop in process, as h11's ``ConnectionPair``
joins two ends of a connection: encode -> LoRaWAN frame -> network-side open -> signed KPN
delivery -> FastAPI ``TestClient`` -> store -> read API. ``LiveWebhook`` runs the real app
under uvicorn on 127.0.0.1 in a thread, for the simulator's HTTP clients and the CLI.
"""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi.testclient import TestClient
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.eventloop import LOOP_FACTORY
from lora_emotion.webhook.main import create_app

from lora_emotion.fleet import (
    DEFAULT_PLUG_UUID,
    DEFAULT_SECRET,
    DeviceIdentity,
    KpnDestination,
    NetworkServer,
    device_identity,
)
from lora_emotion.lorawan import DataFrame, MType, build_frame
from lora_emotion.messages import Message, encode, port_of

READ_TOKEN = "rt_simulator_" + "5f3a9c1e" * 4
KPN_PATH = "/uplinks/kpn"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def webhook_settings(database_url: str, **changes: Any) -> Settings:
    """Settings accepting the simulator's default destination, with one read token."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "destinations": {DEFAULT_PLUG_UUID: [DEFAULT_SECRET]},
        "read_tokens": [READ_TOKEN],
        "log_level": "WARNING",
    }
    values.update(changes)
    return Settings(**values)


def reader_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {READ_TOKEN}"}


class LiveWebhook:
    """The webhook app served by uvicorn on 127.0.0.1 in a background thread.

    Attributes:
        base_url: ``http://127.0.0.1:<port>``.
        url: the KPN endpoint.
    """

    def __init__(self, settings: Settings) -> None:
        import uvicorn

        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = self.base_url + KPN_PATH
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
            loop=LOOP_FACTORY,  # as `lora-emotion serve` runs it
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> LiveWebhook:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=20)

    def get(self, path: str, **params: Any) -> Any:
        """GET a read-API path with the read token; the JSON answer."""
        import httpx

        response = httpx.get(
            self.base_url + path, params=params, headers=reader_headers(), timeout=10
        )
        response.raise_for_status()
        return response.json()


@contextmanager
def live_webhook(database_url: str | None = None, **changes: Any) -> Iterator[LiveWebhook]:
    """A :class:`LiveWebhook` on a fresh SQLite file unless ``database_url`` is given."""
    with tempfile.TemporaryDirectory(prefix="lora-emotion-test-") as directory:
        url = database_url or f"sqlite:///{Path(directory) / 'store.sqlite3'}"
        with LiveWebhook(webhook_settings(url, **changes)) as server:
            yield server


def all_readings(get: Any, device: str) -> list[dict[str, Any]]:
    """Every stored reading of ``device`` through the paginated read API."""
    readings: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = get(f"/devices/{device}/readings", **params)
        readings.extend(page["readings"])
        cursor = page["next_cursor"]
        if not cursor:
            return readings


class DeviceToWebhook:
    """One virtual device talking to the webhook in process, every hop real.

    Args:
        client: a started ``TestClient`` of the webhook app.
        index: the device's index (its DevEUI, DevAddr and keys derive from it).
        seed: the fleet seed the identity derives from.
    """

    def __init__(self, client: TestClient, *, index: int = 0, seed: int = 0) -> None:
        self.client = client
        self.identity: DeviceIdentity = device_identity(index, seed=seed)
        self.network = NetworkServer([self.identity])
        self.destination = KpnDestination(plug_uuid=DEFAULT_PLUG_UUID, secret=DEFAULT_SECRET)
        self.fcnt = 0
        self.frames: list[bytes] = []

    @property
    def device(self) -> str:
        return f"urn:dev:DEVEUI:{self.identity.dev_eui}"

    def send(
        self,
        message: Message,
        *,
        base_time: float,
        layout: Literal["legacy", "merged"] = "legacy",
    ) -> dict[str, Any]:
        """Encode, frame, open network-side, deliver signed; the webhook's JSON answer.

        Raises:
            AssertionError: the webhook did not answer 200.
        """
        identity = self.identity
        frame = DataFrame(
            mtype=MType.UNCONFIRMED_UP,
            dev_addr=identity.dev_addr,
            fcnt=self.fcnt,
            fport=port_of(message),
            frm_payload=encode(message),
        )
        self.fcnt += 1
        phy = build_frame(frame, nwk_s_key=identity.nwk_s_key, app_s_key=identity.app_s_key)
        self.frames.append(phy)
        heard, opened = self.network.receive(phy)
        assert heard == identity and opened.fport is not None
        body, headers = self.destination.request(
            identity.dev_eui, opened.frm_payload, opened.fport, base_time=base_time, layout=layout
        )
        response = self.client.post(KPN_PATH, content=body, headers=headers)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def delivery(self, delivery_id: int) -> dict[str, Any]:
        """One stored delivery as the read API returns it (payload, FPort, raw body)."""
        response = self.client.get(f"/deliveries/{delivery_id}", headers=reader_headers())
        assert response.status_code == 200, response.text
        stored: dict[str, Any] = response.json()
        return stored

    def readings(self) -> list[dict[str, Any]]:
        """Every stored reading of this device, oldest first as the API pages them."""

        def get(path: str, **params: Any) -> Any:
            response = self.client.get(path, params=params, headers=reader_headers())
            assert response.status_code == 200, response.text
            return response.json()

        return all_readings(get, self.device)


class PseudoTerminal:
    """A pty pair standing in for the relay's USB port: the tool opens ``path``, the test
    plays the relay on the master side.
    """

    def __init__(self) -> None:
        import os

        self._os = os
        self.master, self._slave = os.openpty()
        self.path = os.ttyname(self._slave)

    def write(self, data: bytes) -> None:
        self._os.write(self.master, data)

    def read_available(self, *, wait_s: float = 0.3) -> bytes:
        """Everything the tool wrote, waiting up to ``wait_s`` for more to arrive."""
        import select

        chunks = []
        while True:
            ready, _, _ = select.select([self.master], [], [], wait_s)
            if not ready:
                return b"".join(chunks)
            try:
                chunk = self._os.read(self.master, 4096)
            except OSError:
                return b"".join(chunks)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)

    def write_later(self, lines: list[str], *, delay_s: float = 0.3, gap_s: float = 0.02) -> Any:
        """Write ``lines`` (CRLF-terminated, as Serial.println does) from a thread."""

        def play() -> None:
            time.sleep(delay_s)
            for line in lines:
                try:
                    self.write(line.encode() + b"\r\n")
                except OSError:  # the test closed the pty: the relay was unplugged
                    return
                time.sleep(gap_s)

        thread = threading.Thread(target=play, daemon=True)
        thread.start()
        return thread

    def close_master(self) -> None:
        if self.master >= 0:
            self._os.close(self.master)
            self.master = -1

    def close(self) -> None:
        self.close_master()
        if self._slave >= 0:
            self._os.close(self._slave)
            self._slave = -1

    def __enter__(self) -> PseudoTerminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
