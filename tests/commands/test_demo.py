"""``lora-emotion demo``: serves, backfills, goes live, says where to look, stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lora_emotion.cli import main


def _count(database: Path, table: str) -> int:
    with sqlite3.connect(database) as conn:
        (count,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(count)


def test_backfill_and_live_run_store_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "demo.sqlite3"
    argv = ["demo", "--port", "0", "--database", str(database), "--devices", "2"]
    code = main([*argv, "--backfill", "7200", "--duration", "1.5", "--speed", "600", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    backfill = re.search(
        r"backfill: 7200 s of history, (\d+) sent, (\d+) acknowledged, 0 failed, 0 retried",
        out,
    )
    live = re.search(r"live: (\d+) sent, (\d+) acknowledged, 0 failed, 0 retried", out)
    assert backfill is not None and live is not None
    # Per device: a status, the pacer's 3-h burst (7 uplinks of 1543 s of credit each less the
    # reserve) and more as credit comes back; anything below 2 x 6 would mean a stuck relay.
    assert backfill.group(1) == backfill.group(2) and int(backfill.group(1)) >= 2 * 6
    assert live.group(1) == live.group(2)
    sent = int(backfill.group(1)) + int(live.group(1))
    assert _count(database, "deliveries") == sent
    assert "read API" in out and "API docs" in out and str(database) in out
    assert re.match(r"dashboard: http://127\.0\.0\.1:\d+/login#token=\S+\n", out)


def test_each_run_starts_afresh_unless_told_to_keep(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE earlier_run (x)")
    argv = ["demo", "--port", "0", "--database", str(database), "--devices", "1"]
    quick = ["--backfill", "600", "--duration", "0", "--quiet", "--no-browser"]
    assert main([*argv, *quick, "--keep"]) == 0
    with sqlite3.connect(database) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "earlier_run" in tables and "deliveries" in tables
    assert main([*argv, *quick]) == 0
    with sqlite3.connect(database) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "earlier_run" not in tables and "deliveries" in tables


def test_the_printed_token_opens_the_read_api_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    database = tmp_path / "demo.sqlite3"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "lora_emotion.cli", "demo", "--port", "0"),
            *("--database", str(database), "--backfill", "600", "--duration", "60", "--quiet"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while "backfill" not in seen and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            for key, pattern in (
                ("api", r"read API\s+(\S+)"),
                ("token", r"read token\s+(\S+)"),
                ("backfill", r"backfill: (.*)"),
            ):
                match = re.search(pattern, line)
                if match:
                    seen[key] = match.group(1)
        assert set(seen) == {"api", "token", "backfill"}, seen
        auth = {"Authorization": f"Bearer {seen['token']}"}
        devices = httpx.get(seen["api"], headers=auth, timeout=10).json()["devices"]
        assert len(devices) == 8, (seen["backfill"], devices)
        assert all(d["last_seen"] for d in devices)
        assert httpx.get(seen["api"], timeout=10).status_code == 401
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
        assert process.returncode in (0, 130)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_port_in_use_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(
            [
                *("demo", "--port", str(port), "--database", str(tmp_path / "d.sqlite3")),
                *("--duration", "0", "--backfill", "0"),
            ]
        )
    assert code == 1
    assert "could not start" in capsys.readouterr().err


def test_only_loopback_is_offered() -> None:
    with pytest.raises(SystemExit) as caught:
        main(["demo", "--host", "0.0.0.0"])
    assert caught.value.code == 2


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "examples:" in capsys.readouterr().out
