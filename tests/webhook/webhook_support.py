"""Constants and helpers shared by the webhook tests (conftest puts this directory on sys.path)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Literal

import httpx

from lora_emotion.networks.kpn import delivery_body, message_token, raw_payload_records

PLUG = "6f1c3a52-0d3e-4b7e-9a51-0c2b9f8e7a10"
SECRET = "Kpn-Shared-0123456789-abcdefghij-XYZ!"
NEXT_SECRET = "Rotated-9876543210-zyxwvutsrq-ABC#"
READ_TOKEN = "rt_" + "0123456789abcdef" * 3
#: A The Things Stack application and a ChirpStack one, both sending NETWORK_TOKEN.
TTN_APP = "emotion-test-app"
CHIRPSTACK_APP = "17c82e96-be03-4f38-aef3-f83d48582d97"
NETWORK_TOKEN = "nt_" + "fedcba9876543210" * 3
DEV_EUI = "0004A30B001F1234"
DEVICE = "urn:dev:DEVEUI:0004A30B001F1234"
THINGSML_HAPPY = "81A20067656D6F74696F6E03656861707079"


def signed_headers(body: bytes, *, secret: str = SECRET, plug: str = PLUG) -> dict[str, str]:
    """The headers KPN sends with ``body``."""
    return {
        "Things-Plug-UUID": plug,
        "Things-Message-Token": message_token(body, secret),
        "Content-Type": "application/json",
    }


def payload_body(
    payload_hex: str = THINGSML_HAPPY,
    fport: int = 1,
    *,
    base_time: float = 1_615_572_314.0,
    dev_eui: str = DEV_EUI,
    layout: Literal["legacy", "merged"] = "legacy",
) -> bytes:
    """A "Raw LoRa payload" delivery as KPN would send it."""
    records = raw_payload_records(bytes.fromhex(payload_hex), fport)
    return delivery_body(dev_eui, records, base_time=base_time, layout=layout)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerProcess:
    """``lora-emotion serve`` in a process group of its own, so it can be killed whole.

    Args:
        database_url: the store.
        workers: uvicorn worker processes.
        port: where to listen (a free port by default).
        env: more ``LORA_EMOTION_*`` settings for the server.
    """

    def __init__(
        self,
        database_url: str,
        *,
        workers: int = 1,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.workers = workers
        self.env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start and wait until every worker could answer ``/healthz``."""
        env = {
            **os.environ,
            "LORA_EMOTION_DATABASE_URL": self.database_url,
            "LORA_EMOTION_DESTINATIONS": json.dumps({PLUG: [SECRET]}),
            "LORA_EMOTION_READ_TOKENS": READ_TOKEN,
            "LORA_EMOTION_LOG_LEVEL": "WARNING",
            **self.env,
        }
        command = [sys.executable, "-m", "lora_emotion.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        self.process = subprocess.Popen(
            command,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                raise RuntimeError(f"server exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    # uvicorn's workers start one by one; give the others a moment too.
                    time.sleep(0.5 if self.workers > 1 else 0)
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        """SIGKILL the whole process group: supervisor and workers, no chance to clean up."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def stop(self) -> None:
        """SIGTERM and wait for a graceful exit (SIGKILL after 15 s)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
