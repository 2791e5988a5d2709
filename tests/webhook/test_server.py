"""`lora-emotion serve` as an operator starts and loses it: busy addresses, a killed parent.

Each test runs the real command in a process group of its own on a loopback port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from webhook_support import ServerProcess, free_port, payload_body, signed_headers

pytestmark = pytest.mark.timeout(120)


def serve_once(database: Path, port: int, workers: int) -> subprocess.CompletedProcess[str]:
    """Run a second ``lora-emotion serve`` to its end (it must not start)."""
    env = {
        **os.environ,
        "LORA_EMOTION_DATABASE_URL": f"sqlite:///{database}",
        "LORA_EMOTION_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "lora_emotion.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:  # it started serving: the defect
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"the second serve kept running; it said: {stderr}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def assert_refused(result: subprocess.CompletedProcess[str], port: int) -> None:
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: address already in use" in result.stderr
    assert "listening" not in result.stderr


def deliver(url: str) -> int:
    body = payload_body(base_time=1_700_000_000.0 + time.time() % 1000)
    return httpx.post(url + "/uplinks/kpn", content=body, headers=signed_headers(body)).status_code


@pytest.mark.parametrize("first_workers", [1, 2])
@pytest.mark.parametrize("second_workers", [1, 2])
def test_a_second_serve_on_the_same_port_is_refused(
    tmp_path: Path, first_workers: int, second_workers: int
) -> None:
    first_store = tmp_path / "first.sqlite3"
    with ServerProcess(f"sqlite:///{first_store}", workers=first_workers) as first:
        other_store = tmp_path / "other.sqlite3"
        result = serve_once(other_store, first.port, second_workers)
        assert_refused(result, first.port)
        # Refused before it touched its own store, and the first one serves on.
        assert not other_store.exists()
        assert all(deliver(first.url) == 200 for _ in range(20))


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_on_a_port_another_program_holds_is_refused(tmp_path: Path, workers: int) -> None:
    for reuse_port in (False, True):
        with socket.socket() as holder:
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(reuse_port))
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            assert_refused(serve_once(tmp_path / "store.sqlite3", port, workers), port)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as gone: it holds no socket)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _workers_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
    return found


def test_kill_9_of_the_parent_takes_its_workers_and_frees_the_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    port = free_port()
    server = ServerProcess(url, workers=2, port=port)
    server.start()
    try:
        assert server.process is not None
        workers = _workers_of(server.process.pid)
        assert len(workers) == 2
        assert deliver(server.url) == 200
        os.kill(server.process.pid, signal.SIGKILL)  # the parent only, as `kill -9 <pid>`
        server.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "workers outlived their parent"
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/healthz", timeout=2)
    finally:
        server.kill()
    # A restart finds the port free and serves.
    with ServerProcess(url, workers=2, port=port) as restarted:
        assert deliver(restarted.url) == 200
