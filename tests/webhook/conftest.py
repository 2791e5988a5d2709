"""Fixtures for the webhook tests: a real store on both backends, a signed-delivery client.

Every store test runs twice, on a fresh SQLite file and on a fresh schema of a PostgreSQL
database created for this session on 127.0.0.1:5432 (user postgres, trust auth) and dropped at
the end. Without a reachable server the PostgreSQL half is skipped, saying why, except under
CI=true, where it fails instead.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app
from lora_emotion.webhook.migrations import migrate
from lora_emotion.webhook.storage import Store, create_store
from webhook_support import (
    CHIRPSTACK_APP,
    NETWORK_TOKEN,
    NEXT_SECRET,
    PLUG,
    READ_TOKEN,
    SECRET,
    TTN_APP,
    signed_headers,
)

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "messages.json"


@pytest.fixture(scope="session")
def vectors() -> list[dict[str, Any]]:
    """The golden compact-message vectors shared with the other implementations."""
    document = json.loads(VECTORS.read_text(encoding="utf-8"))
    return list(document["vectors"])


def _unreachable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}")
    pytest.skip(f"no PostgreSQL server reachable at 127.0.0.1:5432 ({reason})")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own for this test session, dropped at the end."""
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.Error as exc:
        _unreachable(str(exc).strip().splitlines()[0])
    name = f"lora_emotion_test_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def reset_postgres(url: str) -> None:
    """Empty the session database: drop and recreate its public schema."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    reset_postgres(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings with one destination (two secrets, as during a rotation), a The Things Stack
    and a ChirpStack application, and a read token."""
    return Settings(
        database_url=database_url,
        destinations={PLUG: [SECRET, NEXT_SECRET]},
        ttn_applications={TTN_APP: [NETWORK_TOKEN]},
        chirpstack_applications={CHIRPSTACK_APP: [NETWORK_TOKEN]},
        read_tokens=[READ_TOKEN],
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The application, lifespan started, on the test store."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """Direct access to the same store, for assertions behind the API's back."""
    opened = create_store(settings.database_url)
    migrate(opened.write_engine)
    try:
        yield opened
    finally:
        opened.dispose()


Deliver = Callable[..., Response]


@pytest.fixture
def deliver(client: TestClient) -> Deliver:
    """POST a body to the KPN route, signed with the test secret unless told otherwise."""

    def post(
        body: bytes, *, secret: str = SECRET, headers: dict[str, str] | None = None
    ) -> Response:
        sent = signed_headers(body, secret=secret)
        sent.update(headers or {})
        return client.post("/uplinks/kpn", content=body, headers=sent)

    return post


@pytest.fixture
def reader_headers() -> dict[str, str]:
    """Authorization for the read API."""
    return {"Authorization": f"Bearer {READ_TOKEN}"}
