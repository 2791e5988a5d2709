"""Benchmark the webhook against a bare FastAPI endpoint on this machine.

Usage:
    python bench/webhook_bench.py                 # every scenario, 3 rounds of 10 s each
    python bench/webhook_bench.py --duration 5 --rounds 1 --only bare-2 postgresql-2

For each scenario a server is started on loopback (``lora-emotion serve`` for the webhook, the
same uvicorn options around ``bench/bare_app.py`` for the ceiling), warmed up, then loaded for
``--duration`` seconds by ``wrk`` with pre-signed, unique KPN deliveries (``bench/kpn_load.lua``),
or The Things Stack's / ChirpStack's uplinks of the same readings (``bench/network_load.lua``).
Every delivery is committed durably before its 2xx (SQLite WAL + synchronous=FULL, PostgreSQL
with synchronous_commit on). Rounds are interleaved so that background load on a shared machine
hits every scenario alike; the report gives medians. After each run the store is checked:
every delivery wrk saw answered 2xx must be in it.

Writes docs/bench-webhook.md. Needs wrk (apt-get install wrk) and, for the PostgreSQL
scenarios, a server on 127.0.0.1:5432 that lets user postgres create databases.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from lora_emotion.networks.chirpstack import event_body
from lora_emotion.networks.kpn import delivery_body, message_token, raw_payload_records
from lora_emotion.networks.ttn import message_body

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = ROOT / "docs" / "bench-webhook.md"
LUA = HERE / "kpn_load.lua"
NETWORK_LUA = HERE / "network_load.lua"
#: The Things Stack application, ChirpStack application and the token their headers carry.
TTN_APP = "bench-app"
CHIRPSTACK_APP = "0b5e6c1a-7d42-4f0e-9c3b-00000000c5c5"
NETWORK_TOKEN = "bench-network-token-0123456789abcdef"
#: Where each network posts.
NETWORK_PATHS = {
    "kpn": "/uplinks/kpn",
    "ttn": "/uplinks/ttn",
    "chirpstack": "/uplinks/chirpstack?event=up",
}
PLUG = "0b5e6c1a-7d42-4f0e-9c3b-5a8e2d1f4b70"
SECRET = "Bench-Shared-Secret-0123456789-abc!"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
DEVICES = 1_000
#: Deliveries per second the bodies file must cover without repeating (the bare endpoint ignores
#: bodies, so repeats there do not matter). A stored run that goes past the file fails rather
#: than count cheap duplicates: on a faster machine 14,000/s was once not enough.
MAX_STORED_RATE = 40_000


@dataclass(frozen=True)
class Scenario:
    """One server configuration under load."""

    key: str
    store: str  # "bare", "sqlite" or "postgresql"
    workers: int
    label: str
    access_log: bool = False
    env: dict[str, str] = field(default_factory=dict)
    #: wrk connections when not the run's default.
    connections: int | None = None
    #: More options for `lora-emotion serve`.
    options: tuple[str, ...] = ()
    #: How the webhook is run: "serve" (lora-emotion serve), "uvicorn" (uvicorn's own worker
    #: manager around the same application), or "baseline" (serve from --baseline's revision).
    runner: str = "serve"
    #: Whose deliveries it receives: "kpn", "ttn" or "chirpstack".
    network: str = "kpn"


SCENARIOS = (
    Scenario("bare-1", "bare", 1, "bare FastAPI 204 (ceiling)"),
    Scenario("bare-2", "bare", 2, "bare FastAPI 204 (ceiling)"),
    Scenario("sqlite-1", "sqlite", 1, "webhook, SQLite"),
    Scenario("sqlite-2", "sqlite", 2, "webhook, SQLite"),
    Scenario("postgresql-1", "postgresql", 1, "webhook, PostgreSQL"),
    Scenario("postgresql-2", "postgresql", 2, "webhook, PostgreSQL"),
    Scenario(
        "postgresql-2-unbatched",
        "postgresql",
        2,
        "webhook, PostgreSQL, one commit per request",
        env={"LORA_EMOTION_BATCH_MAX": "1"},
    ),
    Scenario(
        "postgresql-2-pipelined",
        "postgresql",
        2,
        "webhook, PostgreSQL, two commits at a time per worker",
        env={"LORA_EMOTION_COMMIT_CONCURRENCY": "2"},
    ),
    Scenario(
        "postgresql-2-ttn", "postgresql", 2, "webhook, PostgreSQL, The Things Stack", network="ttn"
    ),
    Scenario(
        "postgresql-2-chirpstack",
        "postgresql",
        2,
        "webhook, PostgreSQL, ChirpStack",
        network="chirpstack",
    ),
    Scenario(
        "postgresql-2-shared-socket",
        "postgresql",
        2,
        "webhook, PostgreSQL, uvicorn's worker manager (one shared socket)",
        runner="uvicorn",
    ),
    Scenario(
        "postgresql-2-ingest-first",
        "postgresql",
        2,
        "webhook, PostgreSQL, deliveries ahead of the middleware (--ingest-first)",
        options=("--ingest-first",),
    ),
    Scenario(
        "postgresql-2-plain-loop",
        "postgresql",
        2,
        "webhook, PostgreSQL, two writes per response (--loop auto)",
        options=("--loop", "auto"),
    ),
    Scenario(
        "postgresql-2-baseline",
        "postgresql",
        2,
        "webhook, PostgreSQL, the --baseline revision",
        runner="baseline",
    ),
    Scenario("bare-2-c64", "bare", 2, "bare FastAPI 204, 64 connections", connections=64),
    Scenario(
        "postgresql-2-c64", "postgresql", 2, "webhook, PostgreSQL, 64 connections", connections=64
    ),
    Scenario("bare-2-access-log", "bare", 2, "bare FastAPI 204, access log on", access_log=True),
    Scenario(
        "postgresql-2-access-log",
        "postgresql",
        2,
        "webhook, PostgreSQL, access log on",
        access_log=True,
    ),
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_bodies(path: Path, count: int, *, offset: float, network: str = "kpn") -> None:
    """``count`` unique deliveries of compact readings, one a line: KPN's "Raw LoRa payload"
    bodies with their tokens, or the same uplinks as The Things Stack or ChirpStack post them
    with their Authorization header."""
    labels = ("0186", "01B5", "0000", "02C2")  # happy 87 %, sad 33 %, angry 0 %, neutral 100 %
    with path.open("w", encoding="ascii") as out:
        for i in range(count):
            payload = bytes.fromhex(labels[i % 4])
            dev_eui = f"{0x0004A30B00000000 + i % DEVICES:016X}"
            time = 1_700_000_000.0 + offset + i / 1000
            if network == "kpn":
                body = delivery_body(
                    dev_eui,
                    raw_payload_records(payload, 16),
                    base_time=time,
                    layout="legacy" if i % 2 else "merged",
                )
                out.write(f"{message_token(body, SECRET)}\t{body.decode()}\n")
                continue
            # Counters and deduplication ids unique across the bodies and warm-up files.
            fcnt = int(offset) + i
            if network == "ttn":
                body = message_body(
                    dev_eui=dev_eui,
                    fport=16,
                    payload=payload,
                    fcnt=fcnt,
                    time=time,
                    application_id=TTN_APP,
                    airtime_s=0.041216,
                )
            else:
                body = event_body(
                    dev_eui=dev_eui,
                    fport=16,
                    payload=payload,
                    fcnt=fcnt,
                    time=time,
                    deduplication_id=f"00000000-0000-4000-8000-{fcnt:012d}",
                    application_id=CHIRPSTACK_APP,
                )
            out.write(f"Bearer {NETWORK_TOKEN}\t{body.decode()}\n")


# --- CPU accounting ---------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> tuple[str, int, float] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[2] is the process group; [11] and [12] are utime and stime in clock ticks.
    return name, int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICKS


def _serves_others(pid: str, database: str | None) -> bool:
    """A PostgreSQL backend connected to another database than the run's (another user of
    the shared server), as its process title tells: ``postgres: ... user db host(port) ...``."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return "(" in title and (database is None or database not in title)


def cpu_seconds(group: int, database: str | None = None) -> dict[str, float]:
    """CPU seconds used so far by the server's process group and by PostgreSQL (its
    background processes and the backends connected to ``database``)."""
    totals = {"server": 0.0, "postgres": 0.0}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(entry)
        if stat is None:
            continue
        name, pgrp, seconds = stat
        if pgrp == group:
            totals["server"] += seconds
        elif name.startswith("postgres") and not _serves_others(entry, database):
            totals["postgres"] += seconds
    return totals


# --- servers ----------------------------------------------------------------------------------


class Server:
    """A server process group on loopback."""

    def __init__(
        self, scenario: Scenario, database_url: str | None, baseline: Path | None = None
    ) -> None:
        self.scenario = scenario
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "LORA_EMOTION_LOG_LEVEL": "INFO", **scenario.env}
        if scenario.store == "bare":
            command = [
                sys.executable,
                str(Path(__file__)),
                "--serve-bare",
                str(self.port),
                str(scenario.workers),
            ]
            if scenario.access_log:
                command.append("--access-log")
        else:
            assert database_url is not None
            env.update(
                LORA_EMOTION_DATABASE_URL=database_url,
                LORA_EMOTION_DESTINATIONS=json.dumps({PLUG: [SECRET]}),
                LORA_EMOTION_TTN_APPLICATIONS=json.dumps({TTN_APP: [NETWORK_TOKEN]}),
                LORA_EMOTION_CHIRPSTACK_APPLICATIONS=json.dumps({CHIRPSTACK_APP: [NETWORK_TOKEN]}),
                LORA_EMOTION_READ_TOKENS="bench-" + secrets.token_hex(20),
            )
            command = [sys.executable, "-m", "lora_emotion.cli", "serve"]
            if scenario.runner == "uvicorn":
                command = [sys.executable, str(Path(__file__)), "--serve-uvicorn"]
            elif scenario.runner == "baseline":
                if baseline is None:
                    raise SystemExit(f"{scenario.key} needs --baseline REVISION")
                env["PYTHONPATH"] = str(baseline)
            command += ["--port", str(self.port), "--workers", str(scenario.workers)]
            command += scenario.options
            if scenario.access_log:
                command.append("--access-log")
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        probe = "/docs" if self.scenario.store == "bare" else "/healthz"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read().decode()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + probe, timeout=1).status_code == 200:
                    time.sleep(1.0 if self.scenario.workers > 1 else 0.2)
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def metrics(self) -> dict[str, float]:
        if self.scenario.store == "bare":
            return {}
        text = httpx.get(self.url + "/metrics", timeout=5).text
        values = {}
        for name in (
            "lora_emotion_commit_batch_size_sum",
            "lora_emotion_commit_batch_size_count",
            "lora_emotion_commit_seconds_sum",
            "lora_emotion_commit_seconds_count",
        ):
            match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
            values[name] = float(match.group(1)) if match else 0.0
        return values

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def serve_bare(port: int, workers: int, access_log: bool) -> None:
    """Run bench/bare_app.py the way `lora-emotion serve` runs the webhook: the same sockets
    (one per worker), worker supervision, event loop and uvicorn options."""
    import importlib

    # Imported by name: the webhook package is mapped into lora_emotion at install time,
    # which mypy cannot follow from here.
    logging_config = importlib.import_module("lora_emotion.webhook.logs").logging_config
    server = importlib.import_module("lora_emotion.webhook.server")
    sys.path.insert(0, str(HERE))  # the workers import bare_app (spawn passes sys.path on)
    listener = server.listen("127.0.0.1", port, workers)
    options = server.UvicornOptions(
        "bare_app:app", False, logging_config("INFO", "json"), access_log
    )
    server.run_workers(listener, options)


def serve_with_uvicorns_manager(port: int, workers: int, access_log: bool) -> None:
    """The webhook under uvicorn's own worker manager: one listening socket shared by the
    workers, which accept from it in turn. Migrations run in the workers' lifespan."""
    import importlib
    import tempfile

    import uvicorn

    logging_config = importlib.import_module("lora_emotion.webhook.logs").logging_config
    server = importlib.import_module("lora_emotion.webhook.server")
    eventloop = importlib.import_module("lora_emotion.webhook.eventloop")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    uvicorn.run(
        server.APP_FACTORY,
        factory=True,
        host="127.0.0.1",
        port=port,
        workers=workers,
        log_config=logging_config("INFO", "json"),
        access_log=access_log,
        server_header=False,
        loop=eventloop.LOOP_FACTORY,
    )


def baseline_tree(revision: str, workdir: Path) -> Path:
    """The code of ``revision`` laid out as an importable ``lora_emotion`` package."""
    tree = workdir / "baseline"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "src/lora_emotion", "webhook"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "webhook").rename(tree / "src" / "lora_emotion" / "webhook")
    return tree / "src"


# --- stores -----------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_store(kind: str, workdir: Path) -> Iterator[str | None]:
    """An empty store of ``kind`` for one run, removed afterwards."""
    if kind == "bare":
        yield None
    elif kind == "sqlite":
        path = workdir / f"bench-{secrets.token_hex(4)}.sqlite3"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        name = f"lora_emotion_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stored_count(url: str) -> int:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as conn:
            return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM deliveries").fetchone()
        assert row is not None
        return int(row[0])


# --- load -------------------------------------------------------------------------------------


def run_wrk(
    url: str,
    bodies: Path,
    *,
    duration: float,
    connections: int,
    network: str = "kpn",
    during: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Load ``url`` for ``duration`` seconds; ``during`` is called every second meanwhile."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s"]
    if network == "kpn":
        command += ["-s", str(LUA), url, "--", str(bodies), "1", PLUG]
    else:
        command += ["-s", str(NETWORK_LUA), url, "--", str(bodies), "1"]
        command += [NETWORK_PATHS[network], "Authorization"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as load:
        while during is not None:
            try:
                output, _ = load.communicate(timeout=1)
                break
            except subprocess.TimeoutExpired:
                during()
        else:
            output, _ = load.communicate()
    if load.returncode:
        raise subprocess.CalledProcessError(load.returncode, command, output)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def connection_split(group: int, port: int) -> float | None:
    """The share of the server's established connections that its busiest process holds, in
    per cent (50 is an even split over two workers), or None with one process holding any."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    established.add(fields[9])
    held = []
    for entry in os.listdir("/proc"):
        stat = _stat(entry) if entry.isdigit() else None
        if stat is None or stat[1] != group:
            continue
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):  # closed meanwhile
                    inodes.add(os.readlink(f"/proc/{entry}/fd/{fd}")[8:-1])
        held.append(len(inodes & established))
    held = [count for count in held if count]
    return 100 * max(held) / sum(held) if held else None


@dataclass
class Run:
    scenario: Scenario
    rate: float
    p50_ms: float
    p99_ms: float
    acknowledged: int
    failed: int
    stored: int | None
    batch_mean: float | None
    commit_ms: float | None
    cpu_server_us: float
    cpu_postgres_us: float
    load_average: float
    worker_split: float | None = None
    round_number: int = 0


def run_scenario(
    scenario: Scenario,
    *,
    bodies: dict[str, Path],
    distinct: int,
    warmup: dict[str, Path],
    duration: float,
    connections: int,
    workdir: Path,
    baseline: Path | None = None,
) -> Run:
    connections = scenario.connections or connections
    network = scenario.network
    with fresh_store(scenario.store, workdir) as url:
        server = Server(scenario, url, baseline)
        try:
            run_wrk(
                server.url, warmup[network], duration=2, connections=connections, network=network
            )
            warm = stored_count(url) if url else 0
            before_metrics = server.metrics()
            database = url.rsplit("/", 1)[-1] if url and url.startswith("postgresql") else None
            before_cpu = cpu_seconds(server.process.pid, database)
            split: list[float | None] = []
            result = run_wrk(
                server.url,
                bodies[network],
                duration=duration,
                connections=connections,
                network=network,
                during=lambda: split.append(
                    connection_split(server.process.pid, server.port)
                    if scenario.workers > 1
                    else None
                ),
            )
            after_cpu = cpu_seconds(server.process.pid, database)
            after_metrics = server.metrics()
        finally:
            server.stop()
        stored = stored_count(url) - warm if url else None
    failed = sum(
        result[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    seconds = result["duration_us"] / 1e6
    requests = result["requests"]
    if url and requests > distinct:
        raise SystemExit(
            f"{scenario.key}: {requests:,} requests but only {distinct:,} distinct deliveries, "
            "so some were resent as duplicates; raise MAX_STORED_RATE"
        )
    acknowledged = requests - result["status_errors"]
    batch_mean = commit_ms = None
    if after_metrics:
        batches = (
            after_metrics["lora_emotion_commit_batch_size_count"]
            - before_metrics["lora_emotion_commit_batch_size_count"]
        )
        if batches:
            batch_mean = (
                after_metrics["lora_emotion_commit_batch_size_sum"]
                - before_metrics["lora_emotion_commit_batch_size_sum"]
            ) / batches
            commit_ms = (
                1000
                * (
                    after_metrics["lora_emotion_commit_seconds_sum"]
                    - before_metrics["lora_emotion_commit_seconds_sum"]
                )
                / batches
            )
    return Run(
        scenario=scenario,
        rate=requests / seconds,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        acknowledged=acknowledged,
        failed=failed,
        stored=stored,
        batch_mean=batch_mean,
        commit_ms=commit_ms,
        cpu_server_us=1e6 * (after_cpu["server"] - before_cpu["server"]) / max(requests, 1),
        cpu_postgres_us=1e6 * (after_cpu["postgres"] - before_cpu["postgres"]) / max(requests, 1),
        load_average=os.getloadavg()[0],
        worker_split=_median(split),
    )


# --- the route's own cost, in process ---------------------------------------------------------


def route_overhead(blocks: int = 20, calls: int = 2000) -> dict[str, float]:
    """CPU µs per request of one delivery route reached in different ways, in process.

    The pipeline behind it only reads the body and answers, so what differs is the path to
    it: the endpoint called directly (what the service did before ingest became an ordinary
    route), the service's application (FastAPI's middleware and routing), the same with
    FastAPI's native telemetry switched off, and a bare Starlette application. Process CPU
    time, the least of ``blocks`` blocks taken in turns: the machine is shared, and the least
    is the run that was disturbed least.
    """
    import asyncio
    import importlib

    from fastapi import FastAPI
    from starlette.applications import Starlette

    main_module = importlib.import_module("lora_emotion.webhook.main")
    ingest_module = importlib.import_module("lora_emotion.webhook.ingest")
    uplinks = importlib.import_module("lora_emotion.webhook.routes.uplinks")
    config = importlib.import_module("lora_emotion.webhook.config")

    answer = b'{"status":"stored"}'
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"19")],
    }

    async def pipeline(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send(start)
        await send({"type": "http.response.body", "body": answer})

    def app_with_route(app: Any) -> Any:
        app.router.routes[:0] = uplinks.routes()
        app.state.ingest = pipeline
        return app

    service = app_with_route(
        main_module.create_app(config.Settings(database_url="sqlite:///unused.sqlite3"))
    )
    ways = {
        "endpoint called directly": (ingest_module.IngestEndpoint("ingest"), service),
        "the service's FastAPI application": (service, service),
        "the same, FastAPI telemetry off": (
            app_with_route(FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})),
            None,
        ),
        "a bare Starlette application": (app_with_route(Starlette()), None),
    }
    headers = [(b"host", b"bench"), (b"content-type", b"application/json")]
    body = {"type": "http.request", "body": b"x" * 300, "more_body": False}

    async def receive() -> dict[str, Any]:
        return body

    async def send(message: Any) -> None:
        return None

    async def block(app: Any, owner: Any) -> float:
        began = time.process_time()
        for _ in range(calls):
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/uplinks/kpn",
                "raw_path": b"/uplinks/kpn",
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 40000),
                "server": ("127.0.0.1", 8000),
                "state": {},
            }
            if owner is not None:
                scope["app"] = owner
            await app(scope, receive, send)
        return 1e6 * (time.process_time() - began) / calls

    async def measure() -> dict[str, float]:
        least = dict.fromkeys(ways, float("inf"))
        for _ in range(blocks):
            for name, (app, owner) in ways.items():
                least[name] = min(least[name], await block(app, owner))
        return least

    return asyncio.run(measure())


# --- report -----------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _fmt(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _machine() -> list[str]:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(Exception), psycopg.connect(PG_ADMIN) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        pg = row[0] if row else "?"
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    return [
        f"- {os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"PostgreSQL {pg} (local, synchronous_commit on), {wrk.split(' [')[0]}",
    ]


def _ceiling_key(scenario: Scenario) -> str:
    """The bare scenario a scenario is compared with: same workers, logging, connections."""
    if scenario.connections:
        return f"bare-{scenario.workers}-c{scenario.connections}"
    if scenario.access_log:
        return f"bare-{scenario.workers}-access-log"
    return f"bare-{scenario.workers}"


def round_shares(by_key: dict[str, list[Run]], key: str) -> list[float]:
    """Per round, the rate of ``key`` as a percentage of its bare endpoint's in that round.

    Why per round: the machine is shared, and its speed drifts over minutes (the bare
    endpoint's CPU time per request moved by a third between rounds of one run). The runs of
    one round are minutes apart, so dividing within a round cancels most of that drift,
    where dividing two medians taken from different rounds does not.
    """
    group = by_key.get(key, [])
    if not group:
        return []
    ceiling = {r.round_number: r.rate for r in by_key.get(_ceiling_key(group[0].scenario), [])}
    return [100 * r.rate / ceiling[r.round_number] for r in group if ceiling.get(r.round_number)]


def round_ratios(by_key: dict[str, list[Run]], key: str, reference: str) -> list[float]:
    """Per round, the rate of ``key`` as a percentage of ``reference``'s in that round."""
    base = {r.round_number: r.rate for r in by_key.get(reference, [])}
    return [
        100 * r.rate / base[r.round_number] for r in by_key.get(key, []) if base.get(r.round_number)
    ]


def _networks(by_key: dict[str, list[Run]], medians: dict[str, float | None]) -> list[str]:
    """The other networks against KPN: same store, workers and load, ratio per round."""
    lines = []
    kpn = medians.get("postgresql-2")
    for key, name in (
        ("postgresql-2-ttn", "The Things Stack"),
        ("postgresql-2-chirpstack", "ChirpStack"),
    ):
        ratios = round_ratios(by_key, key, "postgresql-2")
        rate = medians.get(key)
        if not ratios or not rate or not kpn:
            continue
        share = statistics.median(ratios)
        runs = by_key[key]
        cpu = _median([r.cpu_server_us for r in runs])
        kpn_cpu = _median([r.cpu_server_us for r in by_key.get("postgresql-2", [])])
        lines.append(
            f"- **{name}**: {rate:,.0f} uplinks/s on PostgreSQL with 2 workers, "
            f"{share:.0f} % of KPN's deliveries/s in the same rounds (median; per round: "
            f"{', '.join(f'{value:.0f}' for value in ratios)} %; "
            f"{'met' if share >= 90 else 'not met'}: the target is within 10 %). Its server "
            f"CPU per uplink is {_fmt(cpu)} µs against KPN's {_fmt(kpn_cpu)} µs, for a body "
            f"about seven times as long as KPN's (some 700 bytes of JSON with the radio "
            f"metadata, read by a one-pass reader as KPN's packs are, and kept byte for byte)."
        )
    return ["## The Things Stack and ChirpStack against KPN", "", *lines, ""] if lines else []


def _analysis(
    by_key: dict[str, list[Run]],
    medians: dict[str, float | None],
    overhead: dict[str, float] | None = None,
    baseline: str | None = None,
) -> list[str]:
    """The "what limits it" section, with this run's numbers filled in."""

    def rate(key: str) -> float | None:
        return medians.get(key)

    def cpu(key: str) -> float | None:
        group = by_key.get(key, [])
        server = _median([r.cpu_server_us for r in group])
        postgres = _median([r.cpu_postgres_us for r in group])
        return None if server is None or postgres is None else server + postgres

    lines: list[str | None] = []
    pg, bare = rate("postgresql-2"), rate("bare-2")
    shares = round_shares(by_key, "postgresql-2")
    if pg and bare and shares:
        share = statistics.median(shares)
        each = ", ".join(f"{value:.0f}" for value in shares)
        lines.append(
            f"- **Target**: PostgreSQL with 2 workers reached {share:.0f} % of the bare "
            f"endpoint's rate, the median over rounds (per round: {each} %; "
            f"{'met' if share >= 50 else 'not met'}: the target is 50 %). The medians of the "
            f"rates, {pg:,.0f} deliveries/s against {bare:,.0f}/s, give "
            f"{100 * pg / bare:.0f} %. The issue "
            f"expected the bare endpoint at about 7,000/s with 2 workers; measured with wrk, "
            f"which costs the machine little, it does {bare / 7000:.1f} times that, and 50 % of "
            f"it would be {bare / 2:,.0f} deliveries/s."
        )
    per_request, bare_cpu = cpu("postgresql-2"), cpu("bare-2")
    if per_request and bare_cpu and pg and bare:
        cores = os.cpu_count() or 1
        busy = per_request * pg / 1e6 / cores
        bare_busy = bare_cpu * bare / 1e6 / cores
        lines.append(
            f"- **CPU**: a stored delivery costs about {per_request:,.0f} µs of CPU (workers "
            f"and PostgreSQL together) against {bare_cpu:,.0f} µs for a bare request, which "
            f"reads no body, checks nothing and writes nothing. At the measured rates the "
            f"server's and PostgreSQL's processes kept {100 * busy:.0f} % of the {cores} "
            f"cores busy, the bare endpoint's {100 * bare_busy:.0f} %; wrk and the kernel's "
            f"loopback work take most of the rest."
        )
    pg_runs, bare_runs = by_key.get("postgresql-2", []), by_key.get("bare-2", [])
    if len(pg_runs) > 1 and bare_runs and shares:
        pg_cpu = [r.cpu_server_us + r.cpu_postgres_us for r in pg_runs]
        bare_cpus = [r.cpu_server_us for r in bare_runs]
        lines.append(
            f"- **Spread between rounds**: the webhook's CPU per delivery (workers and "
            f"PostgreSQL) ranged from {min(pg_cpu):,.0f} to {max(pg_cpu):,.0f} µs over the "
            f"rounds, the bare endpoint's from {min(bare_cpus):,.0f} to {max(bare_cpus):,.0f} "
            f"µs, and the ratio from {min(shares):.0f} to {max(shares):.0f} %. The same code "
            f"on the same load: the machine is shared, so the median over rounds is the figure "
            f"to read, and the spread says how far one round can be off."
        )
    few, bare_few = rate("postgresql-2-c64"), rate("bare-2-c64")
    if few and bare_few and pg:
        lines.append(
            f"- **Concurrency**: with 64 connections instead of the default the webhook does "
            f"{few:,.0f}/s ({_fmt(_median(round_shares(by_key, 'postgresql-2-c64')))} % of bare "
            f"at 64 connections). A commit "
            f"holds the deliveries that arrived while the previous one ran, so fewer requests "
            f"in flight make smaller batches, and a commit's fixed cost (one round trip, one "
            f"WAL flush, statement overhead) is shared by fewer deliveries. KPN delivers many "
            f"devices' uplinks concurrently, so the default load keeps more in flight."
        )
    pipelined = rate("postgresql-2-pipelined")
    if pipelined and pg and bare:
        runs = by_key.get("postgresql-2-pipelined", [])
        gain = 100 * (pipelined / pg - 1)
        verdict = (
            "so here a worker did wait for its commit with CPU to spare"
            if gain >= 3
            else "so here, with PostgreSQL local and the CPU the limit, the smaller batches "
            "cost more than the overlap brings; it is for a PostgreSQL across a network, where "
            "a commit waits on round trips"
        )
        lines.append(
            f"- **Commits in flight**: with two commits at a time per worker "
            f"(`LORA_EMOTION_COMMIT_CONCURRENCY=2`; the default is one) the webhook does "
            f"{pipelined:,.0f}/s ({_fmt(_median(round_shares(by_key, 'postgresql-2-pipelined')))}"
            f" % of bare, {gain:+.0f} % against one at a time), in batches of "
            f"{_fmt(_median([r.batch_mean for r in runs]))} instead of "
            f"{_fmt(_median([r.batch_mean for r in pg_runs]))} at "
            f"{_fmt(cpu('postgresql-2-pipelined'))} instead of {_fmt(per_request)} µs of CPU "
            f"per delivery, {verdict}."
        )
    before = rate("postgresql-2-baseline")
    if before and pg and baseline:
        lines.append(
            f"- **Before and after**: the same load on the code of revision `{baseline}` "
            f"(ingest answered ahead of FastAPI's middleware, uvicorn's private HTTP protocol "
            f"subclassed) did {before:,.0f} deliveries/s, "
            f"{_fmt(_median(round_shares(by_key, 'postgresql-2-baseline')))} % of bare "
            f"(per round: "
            f"{', '.join(f'{v:.0f}' for v in round_shares(by_key, 'postgresql-2-baseline'))} %), "
            f"at {_fmt(cpu('postgresql-2-baseline'))} µs of CPU per delivery; now "
            f"{pg:,.0f}/s and {_fmt(per_request)} µs, {100 * (pg / before - 1):+.0f} % in rate."
        )
    if overhead:
        direct = overhead["endpoint called directly"]
        routed = overhead["the service's FastAPI application"]
        share = (
            f", {100 * (routed - direct) / per_request:.0f} % of the {per_request:,.0f} µs "
            "of CPU a stored delivery costs"
            if per_request
            else ""
        )
        lines.append(
            f"- **Ingest as an ordinary route**: measured in process (CPU time, least of 20 "
            f"blocks of 2,000 requests, a pipeline that only reads the body and answers), a "
            f"delivery request costs {direct:.1f} µs handed to the endpoint directly, as before, "
            f"and {routed:.1f} µs through the service's FastAPI application: its middleware "
            f"(error handling, FastAPI's native telemetry and body limit, exceptions, exit "
            f"stack), where a user's middleware goes, and the routing table, in which the "
            f"delivery route comes first. That is {routed - direct:.1f} µs more{share}. With "
            f"FastAPI's telemetry switched off ({overhead['the same, FastAPI telemetry off']:.1f}"
            f" µs) most of it remains; a bare Starlette application takes "
            f"{overhead['a bare Starlette application']:.1f} µs. The price of a route that "
            f"CORS, OpenTelemetry or Sentry middleware sees, paid by the bare endpoint too."
        )
    first = rate("postgresql-2-ingest-first")
    if first and pg:
        lines.append(
            f"- **Deliveries ahead of the middleware** (`serve --ingest-first`, off by "
            f"default): {first:,.0f} deliveries/s "
            f"({_fmt(_median(round_shares(by_key, 'postgresql-2-ingest-first')))} % of bare, "
            f"{_fmt(cpu('postgresql-2-ingest-first'))} µs of CPU per delivery) against "
            f"{pg:,.0f}/s ({_fmt(per_request)} µs) as an ordinary route, "
            f"{100 * (first / pg - 1):+.0f} % in rate. The cost: middleware added to the "
            f"application and FastAPI's telemetry never see a delivery, so it is an option "
            f"for a service that has none."
        )
    shared = rate("postgresql-2-shared-socket")
    if shared and pg:
        shared_runs = by_key.get("postgresql-2-shared-socket", [])
        split = _median([r.worker_split for r in pg_runs])
        shared_split = _median([r.worker_split for r in shared_runs])
        lines.append(
            f"- **A socket per worker or uvicorn's worker manager**: the same application "
            f"under `uvicorn --workers 2` (one listening socket both workers accept from) did "
            f"{shared:,.0f} deliveries/s "
            f"({_fmt(_median(round_shares(by_key, 'postgresql-2-shared-socket')))} % of bare, "
            f"{100 * (shared / pg - 1):+.0f} % against a socket per worker), the busier "
            f"worker holding {_fmt(shared_split)} % of wrk's connections (per round: "
            f"{', '.join(_fmt(r.worker_split) for r in shared_runs)}) against "
            f"{_fmt(split)} % with a socket per worker. uvicorn's manager would also have "
            f"left the workers running after a kill -9 of the parent (its health-check pipe "
            f"ends, nothing stops the worker), so `serve` keeps its own: the parent binds the "
            f"address exclusively first, holds a lock named after it, keeps the workers' "
            f"sockets, and each worker gets SIGTERM when the parent dies."
        )
    plain = rate("postgresql-2-plain-loop")
    if plain and pg:
        lines.append(
            f"- **One write per response**: with uvicorn's own event loop (`--loop auto`), "
            f"which writes a response's head and body in two system calls, the webhook did "
            f"{plain:,.0f} deliveries/s "
            f"({_fmt(_median(round_shares(by_key, 'postgresql-2-plain-loop')))} % of bare); "
            f"the default loop (`webhook/eventloop.py`, chosen through uvicorn's public `loop` "
            f"setting) did {pg:,.0f}/s, {100 * (pg / plain - 1):+.0f} %."
        )
    unbatched = rate("postgresql-2-unbatched")
    if unbatched and pg and bare:
        lines.append(
            f"- **Group commit** is worth {pg / unbatched:.1f}x: with one transaction per "
            f"delivery (`LORA_EMOTION_BATCH_MAX=1`) the same setup does {unbatched:,.0f}/s, "
            f"{_fmt(_median(round_shares(by_key, 'postgresql-2-unbatched')))} % of bare."
        )
    logged, bare_logged = rate("postgresql-2-access-log"), rate("bare-2-access-log")
    if logged and pg and bare_logged and bare:
        lines.append(
            f"- **Access log**: turning it on costs the bare endpoint "
            f"{100 * (1 - bare_logged / bare):.0f} % of its rate and the webhook "
            f"{100 * (1 - logged / pg):.0f} %; the shipped configuration leaves it off and "
            f"counts deliveries in Prometheus instead."
        )
    lines += [
        "- **What made the difference** (py-spy on a loaded worker, `bench/webhook_bench.py` "
        "before and after each step): the route is a plain ASGI endpoint, which skips "
        "FastAPI's request object, dependency solving and response validation (together as "
        "much CPU as the delivery's own work; until this run it also skipped the middleware, "
        "see above); plain KPN packs are decoded and resolved in one pass "
        "(`lora_emotion/_plain_pack.py`) instead of being validated twice; a fleet's few "
        "hundred distinct payloads are decoded once and remembered; a batch is one SQL "
        "statement with its rows as one jsonb parameter without null fields (one round trip, "
        "no per-value work in psycopg, and PostgreSQL parses it once: as json it was checked "
        "on input and parsed again by every `json_to_recordset`, which with the nulls cost "
        "about 8 µs of its CPU per delivery); payload and port stay in the delivery row "
        "instead of becoming two more readings; measurements, resolved records and the parsed "
        "delivery are named tuples (a 12-field measurement builds in 0.7 µs, 2.0 µs as a "
        "frozen dataclass, and a delivery makes seven such objects); a response's head and "
        "body leave in one write (see above; the bare endpoint's 204 has no body to "
        "write); orjson writes the "
        "answer and the kept headers. Then, measured by instructions (callgrind, the "
        "application driven in process against the real PostgreSQL writer, the difference "
        "between 4,000 and 8,000 deliveries) because the machine's noise hides steps of a "
        "few per cent: KPN's raw-payload pack is matched byte for byte by one regular "
        "expression and other plain packs are parsed by orjson (resolving a pack 6.6 -> "
        "2.5 µs); the deduplication key and the measurements come out of one loop "
        "(`parse_delivery` 21.8 -> 13.3 µs); raw bodies and payloads travel to PostgreSQL "
        "as one binary parameter instead of hex inside the JSON, which had doubled the text "
        "the server parses; one commit-timeout timer per writer instead of one per request; "
        "headers stay bytes. Together: 471k -> 371k instructions per delivery in the worker. "
        "Last, and larger than all of these: every worker read every committed delivery back "
        "for the live dashboard whether or not a browser had it open, with a statement that "
        "let the planner combine the readings' primary key with the partial emotion index "
        "(EXPLAIN ANALYZE: 461 ms for 30 deliveries on a table whose statistics lagged its "
        "growth). Now a worker without an open stream reads nothing back, and the statement "
        "finds readings by the primary key alone (0.46 ms): PostgreSQL's CPU per delivery "
        "fell from about 530 to about 70 µs and the rate rose 2.5 times in the same "
        "benchmark.",
        "- **Where the rest goes**: uvicorn's HTTP handling and the event loop (about a third "
        "of a worker's CPU), parsing and resolving the pack and building the rows (about a "
        "third), the commit and the answer. In PostgreSQL, `EXPLAIN ANALYZE` of a batch of "
        "100 deliveries takes about 2.1 ms (median of 40): 0.2 ms unpacking the parameter, "
        "0.6-0.9 ms inserting the deliveries (three indexes each) and about 1 ms the 200 "
        "readings (two indexes each). The JSON parameter is parsed before that, and the "
        "commit's WAL flush and the protocol come on top: in a loop of such batches on one "
        "connection PostgreSQL spent 31-44 µs of CPU per delivery against 20 µs of "
        "execution. Tried without a measurable gain: dropping an index, the C collation, "
        "the readings as one flat recordset instead of one per delivery (2.07 against "
        "2.12 ms). Not done: times as epoch seconds with `to_timestamp` (a tenth of the cost "
        "of parsing ISO text), because it rounds differently from Python's `fromtimestamp` "
        "(a quarter of random times came out 1 µs apart between the two backends).",
        "- **Earlier findings that still hold**: the foreign key from readings to deliveries "
        "doubled PostgreSQL's CPU per delivery and was dropped (readings only ever go in with "
        "their delivery, in one statement); a writer thread lost milliseconds per commit "
        "waiting for the GIL, so PostgreSQL is written from the event loop; on SQLite, "
        "workers take turns on the "
        "write lock through `flock` rather than SQLite's sleeping busy handler.",
    ]
    return ["## What limits the rate", "", *(line for line in lines if line)]


def write_report(
    runs: list[Run],
    *,
    duration: float,
    connections: int,
    rounds: int,
    command: str,
    overhead: dict[str, float] | None = None,
    baseline: str | None = None,
) -> str:
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(run.scenario.key, []).append(run)
    medians = {key: _median([r.rate for r in group]) for key, group in by_key.items()}

    lines = [
        "# Webhook benchmark",
        "",
        f"Written by `{command}` on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; do not edit by hand.",
        "",
        *_machine(),
        f"- load: wrk, 1 thread, {connections} connections, {duration:g} s per run after a 2 s "
        f"warm-up, {rounds} interleaved round(s), medians shown; loopback only",
        '- deliveries: unique signed KPN "Raw LoRa payload" bodies (both SenML layouts) of '
        f"compact readings from {DEVICES:,} devices; each stores 1 delivery and 2 readings "
        "(emotion, confidence). The Things Stack and ChirpStack scenarios send the same "
        "uplinks as those networks post them (uplink messages, up events) with a bearer token",
        "- logging: the shipped configuration (JSON logs at INFO, no access log) unless the "
        "row says otherwise",
        "",
        '"% of bare" compares with the bare endpoint run with the same number of workers, '
        "logging and connections: per round, the scenario's rate divided by that endpoint's "
        "in the same round, and the median of those over the rounds (the machine's speed "
        "drifts). Within a round each webhook scenario runs right next to its bare endpoint, "
        "the PostgreSQL one first, and every other round runs in reverse order, so that the "
        "ceiling is measured once before and once after.",
        "",
        "| scenario | workers | deliveries/s | % of bare | p50 ms | p99 ms | batch | "
        "commit ms | CPU µs/req server | CPU µs/req PostgreSQL | busiest worker % | lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario in SCENARIOS:
        group = by_key.get(scenario.key)
        if not group:
            continue
        rate = medians[scenario.key]
        share = None if scenario.store == "bare" else _median(round_shares(by_key, scenario.key))
        lost = (
            sum(max(0, r.acknowledged - r.stored) for r in group if r.stored is not None)
            if scenario.store != "bare"
            else None
        )
        lines.append(
            f"| {scenario.label} | {scenario.workers} | {_fmt(rate)} | {_fmt(share)} | "
            f"{_fmt(_median([r.p50_ms for r in group]), 1)} | "
            f"{_fmt(_median([r.p99_ms for r in group]), 1)} | "
            f"{_fmt(_median([r.batch_mean for r in group]), 1)} | "
            f"{_fmt(_median([r.commit_ms for r in group]), 2)} | "
            f"{_fmt(_median([r.cpu_server_us for r in group]))} | "
            f"{_fmt(_median([r.cpu_postgres_us for r in group]))} | "
            f"{_fmt(_median([r.worker_split for r in group]))} | {_fmt(lost)} |"
        )
    lines += [
        "",
        '"lost" counts deliveries wrk saw answered 2xx that were not in the store afterwards '
        '(must be 0). "batch" is the mean number of deliveries per commit and "commit ms" '
        "the mean duration of one commit, from the service's own metrics. CPU columns divide "
        "the CPU time of the server's processes and of PostgreSQL's by the requests served. "
        "PostgreSQL's column counts its background processes and the backends connected to "
        "the run's own database, not other databases' backends. \"busiest worker %\" is the "
        "share of wrk's connections the busiest worker held, the median of a look every "
        "second: 50 is an even split over two workers.",
        "",
        *_networks(by_key, medians),
        *_analysis(by_key, medians, overhead, baseline),
        "",
        "## Every run",
        "",
        "| round | scenario | workers | deliveries/s | p50 ms | p99 ms | CPU µs/req server | "
        "CPU µs/req PostgreSQL | busiest worker % | failed | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        lines.append(
            f"| {run.round_number} | {run.scenario.label} | {run.scenario.workers} | "
            f"{_fmt(run.rate)} | {_fmt(run.p50_ms, 1)} | {_fmt(run.p99_ms, 1)} | "
            f"{_fmt(run.cpu_server_us)} | {_fmt(run.cpu_postgres_us)} | "
            f"{_fmt(run.worker_split)} | {run.failed} | {run.load_average:.2f} |"
        )
    return "\n".join(lines) + "\n"


def run_order(scenarios: Sequence[Scenario], round_number: int) -> list[Scenario]:
    """The order of one round's runs: each webhook scenario right after its bare ceiling,
    and every other round backwards.

    Why: the machine's speed drifts within a round too, and a ratio of two runs minutes apart
    takes that drift for a difference in the code. Adjacent runs, taken in alternating order,
    put the ceiling first in one round and second in the next.
    """
    ordered: list[Scenario] = []
    for ceiling in (s for s in scenarios if s.store == "bare"):
        ordered.append(ceiling)
        compared = [s for s in scenarios if s.store != "bare" and _ceiling_key(s) == ceiling.key]
        ordered += sorted(compared, key=lambda s: s.store != "postgresql")  # the target first
    ordered += [s for s in scenarios if s not in ordered]
    return ordered if round_number % 2 else ordered[::-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=256, help="wrk connections")
    parser.add_argument("--only", nargs="*", help="scenario keys to run")
    parser.add_argument("--output", type=Path, default=REPORT)
    parser.add_argument(
        "--serve-bare", nargs=2, type=int, metavar=("PORT", "WORKERS"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--baseline",
        metavar="REVISION",
        help="also run the webhook (PostgreSQL, 2 workers) from this git revision, side by side",
    )
    parser.add_argument("--serve-uvicorn", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--access-log", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        port, workers = args.serve_bare
        serve_bare(port, workers, args.access_log)
        return 0
    if args.serve_uvicorn:
        serve_with_uvicorns_manager(args.port, args.workers, args.access_log)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    scenarios = [
        s
        for s in SCENARIOS
        if (not args.only or s.key in args.only) and (s.runner != "baseline" or args.baseline)
    ]
    with tempfile.TemporaryDirectory(dir=ROOT / "bench", prefix=".run-") as tmp:
        workdir = Path(tmp)
        baseline = baseline_tree(args.baseline, workdir) if args.baseline else None
        print("writing signed deliveries ...", file=sys.stderr)
        distinct = int(MAX_STORED_RATE * args.duration)
        bodies, warmup = {}, {}
        for network in sorted({s.network for s in scenarios}):
            bodies[network] = workdir / f"bodies-{network}.txt"
            warmup[network] = workdir / f"warmup-{network}.txt"
            write_bodies(bodies[network], distinct, offset=0, network=network)
            write_bodies(
                warmup[network], int(MAX_STORED_RATE * 2.5), offset=10_000_000, network=network
            )
        runs = []
        for round_number in range(1, args.rounds + 1):
            for scenario in run_order(scenarios, round_number):
                run = run_scenario(
                    scenario,
                    bodies=bodies,
                    distinct=distinct,
                    warmup=warmup,
                    duration=args.duration,
                    connections=args.connections,
                    workdir=workdir,
                    baseline=baseline,
                )
                run.round_number = round_number
                runs.append(run)
                print(
                    f"round {round_number} {scenario.key}: {run.rate:,.0f}/s "
                    f"p50 {run.p50_ms:.1f} ms p99 {run.p99_ms:.1f} ms "
                    f"batch {_fmt(run.batch_mean, 1)} "
                    f"cpu {run.cpu_server_us:.0f}+{run.cpu_postgres_us:.0f} µs "
                    f"failed {run.failed} stored {run.stored} acked {run.acknowledged} "
                    f"busiest worker {_fmt(run.worker_split)} %",
                    file=sys.stderr,
                )
    options = sys.argv[1:] if argv is None else argv
    print("measuring the route's cost in process ...", file=sys.stderr)
    overhead = route_overhead()
    print(", ".join(f"{k} {v:.1f} µs" for k, v in overhead.items()), file=sys.stderr)
    report = write_report(
        runs,
        duration=args.duration,
        connections=args.connections,
        rounds=args.rounds,
        command=" ".join(["python bench/webhook_bench.py", *options]),
        overhead=overhead,
        baseline=args.baseline,
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report, encoding="utf-8")
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
