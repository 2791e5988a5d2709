"""The Things Stack and ChirpStack end to end: ``simulate --network`` through ``serve``.

A seeded fleet posts as each network would, to a real ``lora-emotion serve`` (two workers);
the read API must then return, for every device, exactly the readings those uplinks carry
(decoded here from the very bodies ``simulate --dry-run`` prints for the same fleet).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from typing import Any

import httpx
import pytest
from webhook_support import READ_TOKEN, ServerProcess

from lora_emotion.networks import NetworkUplink, delivery_of
from lora_emotion.networks.chirpstack import parse_event
from lora_emotion.networks.ttn import parse_message

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TOKEN = "net_" + "1f2e3d4c" * 5
APPLICATIONS = {"ttn": "emotion-e2e", "chirpstack": "0e2e0e2e-0000-4000-8000-000000000e2e"}
FLEET = ["--devices", "4", "--seed", "9", "--epoch", "1700000000", "--mode", "reading"]
COUNT = 60


def _simulate(network: str, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lora_emotion.cli", "simulate", "--network", network]
    command += [*FLEET, "--count", str(COUNT), "--application", APPLICATIONS[network]]
    command += ["--token", TOKEN, "--quiet", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _expected(network: str) -> dict[str, list[tuple[Any, ...]]]:
    dry = _simulate(network, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    expected: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for line in dry.stdout.splitlines():
        body = json.loads(line)["body"].encode()
        adapted = (
            parse_message(body, now=0) if network == "ttn" else parse_event(body, event="up", now=0)
        )
        assert isinstance(adapted, NetworkUplink)
        for m in delivery_of(adapted, now=0).measurements:
            expected[m.device].append((m.time, m.name, m.value, m.string_value))
    return expected


def _stored(base: str) -> dict[str, list[tuple[Any, ...]]]:
    headers = {"Authorization": f"Bearer {READ_TOKEN}"}
    stored: dict[str, list[tuple[Any, ...]]] = {}
    devices = httpx.get(f"{base}/devices", headers=headers, timeout=10).json()["devices"]
    for device in devices:
        urn = device["urn"]
        rows: list[tuple[Any, ...]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            page = httpx.get(
                f"{base}/devices/{urn}/readings", headers=headers, params=params, timeout=10
            ).json()
            for r in page["readings"]:
                rows.append((r["time"], r["name"], r["value"], r["string_value"]))
            cursor = page["next_cursor"]
            if not cursor:
                break
        stored[urn] = rows
    return stored


@pytest.mark.parametrize("network", ["ttn", "chirpstack"])
def test_simulated_deliveries_reach_the_read_api(network: str, database_url: str) -> None:
    expected = _expected(network)
    env = {
        "LORA_EMOTION_TTN_APPLICATIONS": json.dumps({APPLICATIONS["ttn"]: [TOKEN]}),
        "LORA_EMOTION_CHIRPSTACK_APPLICATIONS": json.dumps({APPLICATIONS["chirpstack"]: [TOKEN]}),
    }
    with ServerProcess(database_url, workers=2, env=env) as server:
        path = "/uplinks/ttn" if network == "ttn" else "/uplinks/chirpstack?event=up"
        run = _simulate(network, "--url", server.url + path, "--speed", "max", "--json")
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout)
        assert summary["acknowledged"] == COUNT and summary["failed"] == 0
        stored = _stored(server.url)
    assert set(stored) == set(expected)
    for urn, rows in expected.items():
        got = sorted((datetime.fromisoformat(t).timestamp(), n, v, s) for t, n, v, s in stored[urn])
        want = sorted((round(t, 6), n, v, s) for t, n, v, s in rows)
        assert [(round(t, 6), n, v, s) for t, n, v, s in got] == want
