"""Benchmark the dashboard on PostgreSQL: its queries on 10^7 readings, and live latency.

Usage:
    python bench/dashboard_bench.py             # both parts; writes docs/bench-dashboard.md
    python bench/dashboard_bench.py --only queries --readings 1000000
    python bench/dashboard_bench.py --only live --rate 1000 --duration 20

queries: a dedicated database (``lora_emotion_bench_dashboard``, dropped and recreated) gets
the service's schema (every migration) and ``--readings`` emotion readings (default 10^7; each
an ``emotion`` row and a ``confidence`` row, as the codec's Reading becomes) from 1,000 devices
over the last 30 days, ten per delivery (10^6 deliveries), plus one status message per device,
all made by ``generate_series`` inside PostgreSQL in slices, bounded by ``--max-load-minutes``.
The rollup job then folds it all (timed), 25 s of deliveries at 1,000/s are added past the
watermark (the part every query reads from ``readings``), the last second of them after a run
of the job that kept each device's newest facts (the part the fleet page reads past those),
and each query runs ``--repeat`` times: the fleet page, one device's 30-day timeline (a
different device each time), the fleet's hourly mix over 30 days. Reported: p50 and p95 in
milliseconds.

live: ``lora-emotion serve --workers 2`` on a fresh PostgreSQL database, SSE clients on
``/events``, and ``wrk`` posting unique signed KPN deliveries at ``--rate`` per second for
``--duration`` seconds. Each event's latency is the client's clock when the event arrived
minus ``received_at`` (the server's clock when the delivery arrived; same machine), so it
covers the group commit, NOTIFY, the feed's fetch and the stream. Reported: p50/p99/max and
how many deliveries every client saw (all of them, or the run fails).

Needs PostgreSQL on 127.0.0.1:5432 (user postgres may create databases) and wrk.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from lora_emotion.webhook.dashboard import queries
from lora_emotion.webhook.dashboard.rollup import fold
from lora_emotion.webhook.dashboard.routes import fleet_document
from lora_emotion.webhook.main import tune_gc
from lora_emotion.webhook.migrations import migrate
from lora_emotion.webhook.schema import readings as readings_table
from lora_emotion.webhook.storage import create_store
from sqlalchemy import text

from lora_emotion.networks.kpn import delivery_body, message_token, raw_payload_records

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = ROOT / "docs" / "bench-dashboard.md"
RESULTS = ROOT / "docs" / "bench-dashboard.json"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
QUERY_DB = "lora_emotion_bench_dashboard"
LIVE_DB = "lora_emotion_bench_live"
DEVICES = 1_000
PER_DELIVERY = 10
DAYS = 30
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
PLUG = "0b5e6c1a-7d42-4f0e-9c3b-5a8e2d1f4b71"
SECRET = "Bench-Shared-Secret-0123456789-dash!"
TOKEN = "bench-read-token-" + "0123456789abcdef" * 2


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(PG_ADMIN, autocommit=True)


def _fresh_database(name: str) -> str:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop_database(name: str) -> None:
    with _admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# --- queries ----------------------------------------------------------------------------------

_DEVICE = "'urn:dev:DEVEUI:02EE' || lpad(upper(to_hex(({g}) % {devices})), 12, '0')"
_LABELS = "(ARRAY[" + ", ".join(f"'{label}'" for label in LABELS) + "])"

_LOAD_DELIVERIES = """
INSERT INTO deliveries (id, dedup_key, plug_uuid, device, received_at, event_time, kind,
    decode_status, fport, payload, reading_count, headers, body)
SELECT g, md5(g::text), 'bench', {device},
    CAST(:t0 AS timestamptz) + g * CAST(:step AS float8) * interval '1 second', NULL,
    'payload', 'ok', 16, '\\x0186'::bytea, {rows}, '{{}}', '\\x7b7d'::bytea
FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) AS g
"""
# Ten readings per delivery, 26 s apart, ending at its arrival: each an emotion row (a label
# that drifts per device) and a confidence row.
_LOAD_READINGS = """
INSERT INTO readings (delivery_id, seq, device, time, name, unit, value, string_value, origin)
SELECT g, 2 * k + j, {device},
    CAST(:t0 AS timestamptz) + (g * CAST(:step AS float8) - (9 - k) * 26) * interval '1 second',
    CASE j WHEN 0 THEN 'emotion' ELSE 'confidence' END,
    CASE j WHEN 1 THEN '/' END,
    CASE j WHEN 1 THEN round((0.3 + 0.7 * random())::numeric, 2)::float8 END,
    CASE j WHEN 0 THEN {labels}[1 + ((g / 7 + k / 4 + g % 5) % 7)::int] END,
    'kpn'
FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) AS g,
    generate_series(0, 9) AS k, generate_series(0, 1) AS j
"""
_LOAD_STATUS = """
WITH d AS (
    INSERT INTO deliveries (id, dedup_key, plug_uuid, device, received_at, kind, decode_status,
        fport, payload, reading_count, headers, body)
    SELECT CAST(:base AS bigint) + g, md5('status' || g), 'bench', {device},
        now() - interval '2 hours',
        'payload', 'ok', 2, '\\x01'::bytea, 3, '{{}}', '\\x7b7d'::bytea
    FROM generate_series(0, {devices} - 1) AS g
    RETURNING id, device, received_at
)
INSERT INTO readings (delivery_id, seq, device, time, name, value, string_value, origin)
SELECT id, s, device, received_at,
    (ARRAY['firmwareVersion', 'droppedReadings', 'labelSetId'])[s + 1],
    CASE WHEN s > 0 THEN 0 END, CASE WHEN s = 0 THEN '1.0.0' END, 'kpn'
FROM d, generate_series(0, 2) AS s
"""


def _drop_readings_indexes(conn: Any) -> list[str]:
    """Drop the readings indexes and key (loading is several times faster without them)."""
    conn.execute(text("ALTER TABLE readings DROP CONSTRAINT pk_readings"))
    names = [str(index.name) for index in readings_table.indexes]
    for name in names:
        conn.execute(text(f"DROP INDEX {name}"))
    return names


def _restore_readings_indexes(conn: Any) -> None:
    conn.execute(
        text("ALTER TABLE readings ADD CONSTRAINT pk_readings PRIMARY KEY (delivery_id, seq, time)")
    )
    for index in readings_table.indexes:
        index.create(conn)


def load(url: str, *, readings: int, max_minutes: float, log: Callable[[str], None]) -> int:
    """Fill the bench database; returns the number of emotion readings loaded."""
    store = create_store(url)
    migrate(store.write_engine)
    deliveries = readings // PER_DELIVERY
    span = DAYS * 86400
    step = span / deliveries
    t0 = datetime.fromtimestamp(time.time() - span, UTC)
    device = _DEVICE.format(g="g", devices=DEVICES)
    deadline = time.monotonic() + max_minutes * 60
    slice_size = 100_000
    loaded = 0
    started = time.monotonic()
    with store.write_engine.begin() as conn:
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        _drop_readings_indexes(conn)
    for low in range(1, deliveries + 1, slice_size):
        if time.monotonic() > deadline:
            log(f"  load stopped at the time bound after {loaded:,} deliveries")
            break
        high = min(deliveries, low + slice_size - 1)
        with store.write_engine.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            params = {"t0": t0, "step": step, "low": low, "high": high}
            conn.execute(
                text(_LOAD_DELIVERIES.format(device=device, rows=2 * PER_DELIVERY)), params
            )
            conn.execute(text(_LOAD_READINGS.format(device=device, labels=_LABELS)), params)
        loaded = high
        log(f"  {loaded * PER_DELIVERY:,} readings ({time.monotonic() - started:.0f} s)")
    with store.write_engine.begin() as conn:
        conn.execute(
            text(
                _LOAD_STATUS.format(device=_DEVICE.format(g="g", devices=DEVICES), devices=DEVICES)
            ),
            {"base": deliveries + 1},
        )
        conn.execute(
            text(
                "INSERT INTO devices (urn, dev_eui, first_seen) SELECT DISTINCT device, "
                "right(device, 16), :t0 FROM deliveries WHERE id > :base"
            ),
            {"t0": t0, "base": deliveries},
        )
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), max(id)) FROM deliveries"
            )
        )
    log(f"  indexing ({time.monotonic() - started:.0f} s)")
    with store.write_engine.begin() as conn:
        _restore_readings_indexes(conn)
    store.dispose()
    return loaded * PER_DELIVERY


def _tail(url: str, *, deliveries: int) -> None:
    """Deliveries at 1,000/s past the watermark, one reading each, ending now."""
    store = create_store(url)
    device = _DEVICE.format(g="g", devices=DEVICES)
    with store.write_engine.begin() as conn:
        base = int(conn.execute(text("SELECT max(id) FROM deliveries")).scalar_one())
        t0 = datetime.fromtimestamp(time.time() - deliveries / 1000, UTC)
        conn.execute(
            text(
                _LOAD_DELIVERIES.format(device=device, rows=2).replace(
                    "g * CAST(:step AS float8)",
                    "(g - CAST(:low AS bigint)) * CAST(:step AS float8)",
                )
            ),
            {"t0": t0, "step": 0.001, "low": base + 1, "high": base + deliveries},
        )
        conn.execute(
            text(
                f"""
INSERT INTO readings (delivery_id, seq, device, time, name, unit, value, string_value, origin)
SELECT g, j, {device},
    CAST(:t0 AS timestamptz)
        + (g - CAST(:low AS bigint)) * CAST(:step AS float8) * interval '1 second',
    CASE j WHEN 0 THEN 'emotion' ELSE 'confidence' END, CASE j WHEN 1 THEN '/' END,
    CASE j WHEN 1 THEN 0.5 END, CASE j WHEN 0 THEN {_LABELS}[1 + (g % 7)::int] END, 'kpn'
FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) AS g, generate_series(0, 1) AS j
"""
            ),
            {"t0": t0, "step": 0.001, "low": base + 1, "high": base + deliveries},
        )
        conn.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), max(id)) FROM deliveries"
            )
        )
    store.dispose()


def _time(run: Callable[[], Any], repeat: int) -> list[float]:
    run()  # warm the caches as a dashboard in use would have them
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _prepare(
    url: str, args: argparse.Namespace, log: Callable[[str], None]
) -> tuple[int, float, float, dict[str, str], int]:
    """Load, fold, add the tail past the watermark, vacuum; what the report says of it."""
    started = time.monotonic()
    loaded = load(url, readings=args.readings, max_minutes=args.max_load_minutes, log=log)
    load_s = time.monotonic() - started
    store = create_store(url)
    started = time.monotonic()
    with store.write_engine.begin() as conn:
        fold(conn, settle_s=0)
    with store.write_engine.begin() as conn:
        watermark = fold(conn, settle_s=0)
    fold_s = time.monotonic() - started
    log(f"  rollups folded to delivery {watermark} in {fold_s:.1f} s")
    # The job's run between the two parts settles nothing (the hourly watermark stays put) but
    # keeps each device's newest facts up to then, so the last part lies past both, as the job's
    # interval leaves it at worst.
    _tail(url, deliveries=args.tail - args.latest_tail)
    with store.write_engine.begin() as conn:
        fold(conn, settle_s=float("inf"))
    _tail(url, deliveries=args.latest_tail)
    with store.write_engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        # What autovacuum does to a table of this age: statistics, and the visibility map
        # that lets the partial indexes answer without visiting the table.
        conn.execute(text("VACUUM ANALYZE"))
        sizes = {
            name: str(
                conn.execute(
                    text(f"SELECT pg_size_pretty(pg_total_relation_size('{name}'))")
                ).scalar_one()
            )
            for name in ("readings", "deliveries", "rollup_device_hour", "rollup_label_hour")
        }
        rows = int(conn.execute(text("SELECT count(*) FROM readings")).scalar_one())
    store.dispose()
    return loaded, load_s, fold_s, sizes, rows


def bench_queries(
    args: argparse.Namespace, log: Callable[[str], None], previous: dict[str, Any] | None
) -> dict[str, Any]:
    if args.reuse:
        # Time the queries again on the database a --keep run left (loading takes minutes).
        if previous is None:
            raise SystemExit("--reuse needs the results of an earlier --keep run")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{QUERY_DB}"
        loaded, load_s, fold_s = previous["readings"], previous["load_s"], previous["fold_s"]
        sizes, rows = previous["sizes"], previous["rows"]
        args.tail = previous["tail"]
        args.latest_tail = previous.get("latest_tail", 0)
        store = create_store(url)
        migrate(store.write_engine)  # a database kept by an older version
    else:
        url = _fresh_database(QUERY_DB)
    try:
        if not args.reuse:
            loaded, load_s, fold_s, sizes, rows = _prepare(url, args, log)
            store = create_store(url)
        now = datetime.now(UTC)
        start30, end = queries.default_range("30d", now)
        pick = random.Random(1)

        def fleet() -> None:
            with store.read_engine.connect() as conn:
                found = queries.fleet(conn)
            assert len(found) == DEVICES

        def fleet_json() -> None:
            document = orjson.loads(fleet_document(store))
            assert len(document["devices"]) == DEVICES

        def timeline() -> None:
            urn = "urn:dev:DEVEUI:02EE" + f"{pick.randrange(DEVICES):012X}"
            with store.read_engine.connect() as conn:
                found = queries.device_timeline(conn, device=urn, start=start30, end=end)
            assert sum(sum(v) for v in found.labels.values()) > 0

        def mix() -> None:
            with store.read_engine.connect() as conn:
                _, labels = queries.hourly_mix(conn, start=start30, end=end)
            assert sum(sum(v) for v in labels.values()) >= loaded

        # The service's collector settings (a young generation of 50,000 and start-up objects
        # frozen): with CPython's defaults, full collections of this process's heap landed in
        # a few runs of the page's JSON and doubled its 95th percentile.
        tune_gc()
        results = {}
        for name, run in (
            ("fleet", fleet),
            ("fleet_json", fleet_json),
            ("timeline_30d", timeline),
            ("mix_30d", mix),
        ):
            times = _time(run, args.repeat)
            results[name] = {
                "p50_ms": statistics.median(times),
                "p95_ms": _percentile(times, 95),
                "max_ms": max(times),
            }
            log(
                f"  {name}: p50 {results[name]['p50_ms']:.1f} ms, "
                f"p95 {results[name]['p95_ms']:.1f} ms"
            )
        store.dispose()
        return {
            "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "load_average": os.getloadavg()[0],
            "readings": loaded,
            "rows": rows,
            "load_s": load_s,
            "fold_s": fold_s,
            "tail": args.tail,
            "latest_tail": args.latest_tail,
            "sizes": sizes,
            "repeat": args.repeat,
            "results": results,
        }
    finally:
        if not (args.keep or args.reuse):
            _drop_database(QUERY_DB)


# --- live -------------------------------------------------------------------------------------

PACED_LUA = """
-- POST pre-signed KPN deliveries from a file, each connection paced by delay().
local counter = 0
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args)
  local path, threads, plug = args[1], tonumber(args[2]), args[3]
  pause = tonumber(args[4])
  prepared = {}
  local n = 0
  for line in io.lines(path) do
    if n % threads == id then
      local tab = line:find("\\t", 1, true)
      prepared[#prepared + 1] = wrk.format("POST", "/uplinks/kpn", {
        ["Content-Type"] = "application/json", ["Things-Plug-UUID"] = plug,
        ["Things-Message-Token"] = line:sub(1, tab - 1)}, line:sub(tab + 1))
    end
    n = n + 1
  end
  position = 0
end
function delay() return pause end
function request()
  position = position + 1
  if position > #prepared then position = 1 end
  return prepared[position]
end
function done(summary, latency, requests)
  io.write(string.format('{"requests":%d,"duration_us":%d,"status_errors":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, summary.errors.status, latency:percentile(99)))
end
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _server(url: str, workers: int) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "LORA_EMOTION_DATABASE_URL": url,
        "LORA_EMOTION_DESTINATIONS": json.dumps({PLUG: [SECRET]}),
        "LORA_EMOTION_READ_TOKENS": TOKEN,
        "LORA_EMOTION_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "lora_emotion.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError("server did not start")
        time.sleep(2)  # every worker up and listening
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class _Client(threading.Thread):
    """One browser's stream: records each delivery event's latency."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.latencies: list[float] = []
        self.ids: set[int] = set()
        self.opened = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(timeout=httpx.Timeout(5, read=60)) as client,
            client.stream("GET", self.base + "/events", headers=headers) as response,
        ):
            self.opened.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    arrived = time.time()
                    event = orjson.loads(line[6:])
                    self.latencies.append((arrived - event["received_at"]) * 1000)
                    self.ids.add(event["id"])
                if self.stop.is_set():
                    return


def _write_bodies(path: Path, count: int) -> None:
    now = time.time()
    with path.open("w") as out:
        for n in range(count):
            dev_eui = f"02EE{n % DEVICES:012X}"
            records = raw_payload_records(bytes([1, n % 256]), 16)
            body = delivery_body(dev_eui, records, base_time=now + n * 0.001)
            out.write(f"{message_token(body, SECRET)}\t{body.decode()}\n")


def bench_live(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("the live benchmark needs wrk (apt-get install wrk)")
    url = _fresh_database(LIVE_DB)
    workdir = Path(tempfile.mkdtemp(prefix="dash-bench-"))
    try:
        bodies = workdir / "bodies.txt"
        total = int(args.rate * args.duration * 1.3)
        _write_bodies(bodies, total)
        script = workdir / "paced.lua"
        script.write_text(PACED_LUA)
        # wrk waits a request's latency plus delay() on each connection: many connections,
        # each pausing its share of a second less the latency expected under load.
        connections = max(4, int(args.rate * 0.3))
        pause_ms = max(1, int(connections * 1000 / args.rate) - 60)
        with _server(url, args.workers) as base:
            clients = [_Client(base) for _ in range(args.clients)]
            for client in clients:
                client.start()
                client.opened.wait(10)
            time.sleep(1)
            threads = 2
            result = subprocess.run(
                [
                    "wrk",
                    "-t",
                    str(threads),
                    "-c",
                    str(connections),
                    "-d",
                    f"{args.duration}s",
                    "--latency",
                    "-s",
                    str(script),
                    base,
                    "--",
                    str(bodies),
                    str(threads),
                    PLUG,
                    str(pause_ms),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=args.duration + 60,
            )
            summary = json.loads(result.stdout.strip().splitlines()[-1])
            time.sleep(3)  # the last events in flight
            for client in clients:
                client.stop.set()
            with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
                stored = int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])
        latencies = [x for c in clients for x in c.latencies]
        seen = [len(c.ids) for c in clients]
        rate = summary["requests"] / (summary["duration_us"] / 1e6)
        log(f"  {rate:.0f} deliveries/s, {stored} stored, clients saw {seen}")
        return {
            "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "load_average": os.getloadavg()[0],
            "rate": rate,
            "stored": stored,
            "requests": summary["requests"],
            "status_errors": summary["status_errors"],
            "ack_p99_ms": summary["p99_us"] / 1000,
            "clients": args.clients,
            "seen": seen,
            "workers": args.workers,
            "duration": args.duration,
            "p50_ms": statistics.median(latencies),
            "p99_ms": _percentile(latencies, 99),
            "max_ms": max(latencies),
            "events": len(latencies),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        _drop_database(LIVE_DB)


# --- report -----------------------------------------------------------------------------------


def report(q: dict[str, Any] | None, live: dict[str, Any] | None) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    with _admin() as admin:
        version = admin.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    lines = [
        "# Dashboard benchmark",
        "",
        f"Written by `python bench/dashboard_bench.py` ({machine}, PostgreSQL {version}); each "
        "section names the command, time and 1-minute load average of its run. The machine is "
        "shared: other jobs' tests and benchmarks ran at the same time (a load average of 8-11 "
        "on 2 cores means each process got a fraction of a core), so these are medians and "
        "percentiles of one loaded run, not a quiet-machine best. See docs/dashboard.md for what "
        "the queries do and why the indexes and rollups exist.",
        "",
    ]
    if q:
        r = q["results"]
        lines += [
            "## Queries on 10^7 readings"
            if q["readings"] >= 10_000_000
            else f"## Queries on {q['readings']:,} readings",
            "",
            f"`{q['command']}`, {q['at']}, load average {q.get('load_average', 0):.1f}: "
            f"{q['readings']:,} emotion readings ({q['rows']:,} rows of `readings`: an emotion "
            f"and a confidence row each, plus the tail and status rows) from {DEVICES:,} "
            f"devices over {DAYS} days, ten per delivery; loaded in {q['load_s']:.0f} s "
            f"(generate_series, indexes built after), rollups folded in {q['fold_s']:.1f} s. "
            f"Then {q['tail']:,} more deliveries (25 s at 1,000/s) past the hourly rollups' "
            "watermark, which every query reads from `readings`"
            + (
                f"; the last {q['latest_tail']:,} of them came after a run of the job that kept "
                "each device's newest facts (one run interval at 1,000/s), so they lie past "
                "those too, and the fleet page reads them from `readings` and `deliveries`"
                if "latest_tail" in q
                else ""
            )
            + ". Sizes: "
            + ", ".join(f"{k} {v}" for k, v in q["sizes"].items())
            + ".",
            "",
            f"| query ({q['repeat']} runs) | target p95 | p50 | p95 | max |",
            "|---|---|---|---|---|",
            f"| fleet page ({DEVICES:,} devices: latest emotion, 24 h per hour, status, "
            f"silence) | 50 ms | {r['fleet']['p50_ms']:.1f} ms | {r['fleet']['p95_ms']:.1f} ms "
            f"| {r['fleet']['max_ms']:.1f} ms |",
            *(
                [
                    "| fleet page's JSON (what `GET /dashboard/api/fleet` sends: the query above, "
                    f"the newest delivery id, orjson) | 50 ms | {r['fleet_json']['p50_ms']:.1f} ms "
                    f"| {r['fleet_json']['p95_ms']:.1f} ms | {r['fleet_json']['max_ms']:.1f} ms |"
                ]
                if "fleet_json" in r
                else []
            ),
            f"| one device's 30-day timeline (label counts, confidence, summaries; a different "
            f"device each run) | 50 ms | {r['timeline_30d']['p50_ms']:.1f} ms | "
            f"{r['timeline_30d']['p95_ms']:.1f} ms | {r['timeline_30d']['max_ms']:.1f} ms |",
            f"| fleet hourly mix over 30 days | 200 ms | {r['mix_30d']['p50_ms']:.1f} ms | "
            f"{r['mix_30d']['p95_ms']:.1f} ms | {r['mix_30d']['max_ms']:.1f} ms |",
            "",
            "Times are the Python query functions the dashboard's routes call "
            "(`webhook/dashboard/queries.py`), connection from the pool included, JSON "
            "rendering excluded, except the fleet page's JSON row: the bytes the route answers "
            "(`fleet_document` in `webhook/dashboard/routes.py`), without HTTP; all with the "
            "service's garbage-collector settings (`tune_gc` in `webhook/main.py`). Each query's "
            "runs come one after the other, so the median and the 95th percentile show "
            "how the shared machine's load varied during the run. Targets on this run: "
            + "; ".join(
                f"{name} p95 {r[key]['p95_ms']:.0f} ms against {target} ms: "
                + ("met" if r[key]["p95_ms"] <= target else "**not met**")
                for name, key, target in (
                    ("fleet page", "fleet", 50),
                    ("fleet page's JSON", "fleet_json", 50),
                    ("30-day timeline", "timeline_30d", 50),
                    ("30-day hourly mix", "mix_30d", 200),
                )
                if key in r
            )
            + ".",
            "",
        ]
    if live:
        lines += [
            "## Delivery to browser event",
            "",
            f"`{live['command']}`, {live['at']}, load average {live.get('load_average', 0):.1f}: "
            f"`lora-emotion serve --workers {live['workers']}` on PostgreSQL; "
            f"{live['clients']} SSE clients on `/events` (each lands on either worker); wrk "
            f"posting unique signed deliveries for {live['duration']} s.",
            "",
            "| deliveries/s | stored | events per client | latency p50 | p99 (target 250 ms) "
            "| max | ack p99 |",
            "|---|---|---|---|---|---|---|",
            f"| {live['rate']:.0f} | {live['stored']:,} | "
            + " / ".join(f"{s:,}" for s in live["seen"])
            + f" | {live['p50_ms']:.0f} ms | {live['p99_ms']:.0f} ms | {live['max_ms']:.0f} ms "
            f"| {live['ack_p99_ms']:.0f} ms |",
            "",
            "Latency: the client's clock when the event arrived minus the server's clock when the "
            "delivery arrived (`received_at`), so it includes the group commit, the batch's "
            "NOTIFY, each worker's fetch of the batch and the stream. 'ack p99' is wrk's "
            "request latency (the delivery's 2xx). Target on this run: p99 "
            f"{live['p99_ms']:.0f} ms against 250 ms at 1,000/s: "
            + (
                "met"
                if live["p99_ms"] <= 250 and live["rate"] >= 950
                else f"**not met** ({live['rate']:.0f} deliveries/s reached)"
            )
            + ".",
            "",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["queries", "live"])
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite the report from the saved results"
    )
    parser.add_argument("--readings", type=int, default=10_000_000)
    parser.add_argument("--max-load-minutes", type=float, default=20.0)
    # What lies past the watermark at 1,000/s: the settle time (20 s) plus a run interval.
    parser.add_argument("--tail", type=int, default=25_000)
    # ... and past the job's newest facts per device: its interval (1 s) at 1,000/s.
    parser.add_argument("--latest-tail", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--keep", action="store_true", help="keep the query database")
    parser.add_argument(
        "--reuse", action="store_true", help="time the queries on the database --keep left"
    )
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    # Each part's raw results are kept beside the report, so one part can be rerun alone.
    saved: dict[str, Any] = {}
    if RESULTS.exists():
        saved = json.loads(RESULTS.read_text(encoding="utf-8"))
    command = "python bench/dashboard_bench.py " + " ".join(sys.argv[1:])
    if args.report_only:
        args.only = "none"
    if args.only in (None, "queries"):
        log("queries:")
        saved["queries"] = {
            **bench_queries(args, log, saved.get("queries")),
            "command": command,
        }
    if args.only in (None, "live"):
        log("live:")
        saved["live"] = {**bench_live(args, log), "command": command}
    text_ = report(saved.get("queries"), saved.get("live"))
    print(text_)
    if not args.no_report:
        REPORT.write_text(text_ + "\n", encoding="utf-8")
        RESULTS.write_text(json.dumps(saved, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
