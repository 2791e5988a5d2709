"""The application's start-up announcements: what an operator is told, and what is logged."""

from __future__ import annotations

import logging
import os
import re
import select
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from lora_emotion.webhook.config import Settings
from lora_emotion.webhook.main import create_app

# What suggest_secret makes: 40 characters of its alphabet (the check for all four character
# classes is left out, so this finds more than secrets, never fewer).
SUGGESTED = re.compile(r"(?<![A-Za-z0-9_.~!*-])[A-Za-z0-9_.~!*-]{40}(?![A-Za-z0-9_.~!*-])")


def start_without_destinations(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'store.sqlite3'}")
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)


def test_no_log_record_holds_a_suggested_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not on a terminal (a service manager, a container): the log says how to make a secret
    and shows none, and nothing is printed."""
    caplog.set_level(logging.DEBUG)
    start_without_destinations(tmp_path)
    text = logged(caplog)
    assert "no KPN destination is configured" in text
    assert "print(suggest_secret())" in text
    assert SUGGESTED.findall(text) == []
    assert SUGGESTED.findall(capsys.readouterr().err) == []


def _read_terminal(leader: int, seconds: float = 10.0) -> str:
    """What the terminal shows, once it shows a suggested secret (or after ``seconds``).

    A pty hands written bytes to its leader side asynchronously: on a loaded machine a single
    read right after the flush can find nothing yet.
    """
    shown = b""
    deadline = time.monotonic() + seconds
    while not SUGGESTED.findall(shown.decode(errors="replace")):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([leader], [], [], left)
        if ready:
            try:
                shown += os.read(leader, 65536)
            except BlockingIOError:
                continue
    return shown.decode(errors="replace")


def test_on_a_terminal_the_secret_is_shown_there_and_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    leader, follower = os.openpty()
    os.set_blocking(leader, False)
    try:
        with os.fdopen(follower, "w") as terminal:
            monkeypatch.setattr("sys.stderr", terminal)
            start_without_destinations(tmp_path)
            terminal.flush()
            shown = _read_terminal(leader)
    finally:
        os.close(leader)
    (secret,) = SUGGESTED.findall(shown)
    assert secret not in logged(caplog)
    assert SUGGESTED.findall(logged(caplog)) == []
