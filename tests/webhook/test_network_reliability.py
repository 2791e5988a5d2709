"""Retries of The Things Stack's and ChirpStack's uplinks, concurrently over two workers.

Three copies of every uplink (a webhook retry, or ChirpStack posting the same event again),
shuffled and posted 48 at a time to ``lora-emotion serve --workers 2``: each uplink is stored
exactly once, every copy is answered 200, on SQLite and on the real PostgreSQL (there with two
commits in flight per worker as well).
"""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest
from conftest import reset_postgres
from lora_emotion.webhook import schema
from lora_emotion.webhook.storage import create_store
from sqlalchemy import select
from webhook_support import ServerProcess

from lora_emotion.networks import NetworkUplink
from lora_emotion.networks.chirpstack import event_body, parse_event
from lora_emotion.networks.ttn import message_body, parse_message

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TTN_APP, CS_APP = "emotion-app", "17c82e96-be03-4f38-aef3-f83d48582d97"
TOKEN = "net_" + "5a6b7c8d" * 5
NETWORK_SETTINGS = {
    "LORA_EMOTION_TTN_APPLICATIONS": json.dumps({TTN_APP: [TOKEN]}),
    "LORA_EMOTION_CHIRPSTACK_APPLICATIONS": json.dumps({CS_APP: [TOKEN]}),
}
BT = 1_700_000_000.0
PATHS = {"ttn": "/uplinks/ttn", "chirpstack": "/uplinks/chirpstack?event=up"}


def uplinks(count: int, *, offset: int = 0) -> list[tuple[str, bytes]]:
    """``count`` distinct uplinks of 40 devices, alternating networks and readings."""
    out = []
    for i in range(count):
        common = {
            "dev_eui": f"{0x02EE000000000000 + i % 40:016X}",
            "fport": 16,
            "payload": bytes.fromhex("0186" if i % 2 else "01B5"),
            "fcnt": offset + i,
            "time": BT + offset + i * 0.001,
        }
        if i % 2:
            out.append(("ttn", message_body(**common, application_id=TTN_APP)))  # type: ignore[arg-type]
        else:
            dedup = f"00000000-0000-4000-8000-{offset + i:012d}"
            body = event_body(**common, deduplication_id=dedup, application_id=CS_APP)  # type: ignore[arg-type]
            out.append(("chirpstack", body))
    return out


def key(network: str, body: bytes) -> str:
    adapted = (
        parse_message(body, now=0) if network == "ttn" else parse_event(body, event="up", now=0)
    )
    assert isinstance(adapted, NetworkUplink)
    return adapted.dedup_key


def stored_keys(database_url: str) -> list[str]:
    store = create_store(database_url)
    try:
        with store.read_engine.connect() as conn:
            return list(conn.execute(select(schema.deliveries.c.dedup_key)).scalars())
    finally:
        store.dispose()


async def post_all(url: str, sends: list[tuple[str, bytes]], concurrency: int) -> list[int]:
    statuses: list[int] = []
    pending = list(sends)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=20) as client:

        async def worker() -> None:
            while pending:
                network, body = pending.pop()
                answer = await client.post(PATHS[network], content=body, headers=headers)
                statuses.append(answer.status_code)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def test_copies_over_two_workers_are_stored_once(database_url: str) -> None:
    sent = uplinks(120)
    copies = sent * 3
    random.Random(3).shuffle(copies)
    with ServerProcess(database_url, workers=2, env=NETWORK_SETTINGS) as server:
        statuses = asyncio.run(post_all(server.url, copies, concurrency=48))
    assert set(statuses) == {200} and len(statuses) == 360
    stored = stored_keys(database_url)
    assert sorted(stored) == sorted(key(n, b) for n, b in sent)


def test_copies_with_two_commits_in_flight_per_worker_on_postgresql(postgres_url: str) -> None:
    reset_postgres(postgres_url)
    sent = uplinks(120, offset=10_000)
    copies = sent * 3
    random.Random(5).shuffle(copies)
    env = {
        **NETWORK_SETTINGS,
        "LORA_EMOTION_COMMIT_CONCURRENCY": "2",
        "LORA_EMOTION_BATCH_MAX": "8",
    }
    with ServerProcess(postgres_url, workers=2, env=env) as server:
        statuses = asyncio.run(post_all(server.url, copies, concurrency=48))
    assert set(statuses) == {200}
    assert sorted(stored_keys(postgres_url)) == sorted(key(n, b) for n, b in sent)
