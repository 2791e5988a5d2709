"""Starting the service: validate the configuration, migrate once, then run uvicorn.

Why migrations run here as well as in each worker's lifespan: with several workers they would
otherwise all start by queuing on the migration lock; running them once in the parent also
turns a bad database URL into one clear error before any worker is spawned.

Why several workers get a listening socket each (``SO_REUSEPORT``) instead of uvicorn's shared
one: on a shared socket, whichever worker wakes first accepts a whole burst of connections,
and keep-alive connections (from a load generator or a reverse proxy's upstream pool) stay
where they landed. In the benchmark one worker often ended up with every connection while the
other idled. With a socket per worker the kernel spreads connections evenly by their
addresses.
"""

from __future__ import annotations

import logging
import logging.config
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from lora_emotion.errors import LoraEmotionError

from .config import CONFIG_ENV, Settings
from .logs import logging_config
from .migrations import migrate
from .protocol import CoalescingHttpToolsProtocol
from .storage import create_store

__all__ = ["APP_FACTORY", "serve"]

log = logging.getLogger("lora_emotion.webhook.server")

#: The application factory uvicorn imports in each worker.
APP_FACTORY = "lora_emotion.webhook.main:create_app"


def _describe(url: str) -> str:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        return f"embedded SQLite file {Path(path).resolve()}"
    return f"PostgreSQL at {url.split('@', 1)[-1]}"


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    config: Path | None = None,
    database_url: str | None = None,
    access_log: bool = False,
    check: bool = False,
) -> int:
    """Run the webhook until it is stopped.

    Args:
        host, port: where to listen.
        workers: uvicorn worker processes.
        config: a TOML file (exported as ``LORA_EMOTION_CONFIG`` for the workers).
        database_url: overrides ``LORA_EMOTION_DATABASE_URL``.
        access_log: log every request (costs about a third of the request rate).
        check: validate and migrate, then return without serving.

    Returns:
        The exit code.

    Raises:
        LoraEmotionError: invalid configuration or an unreachable store.
    """
    if workers < 1:
        raise LoraEmotionError("--workers must be at least 1")
    if config is not None:
        os.environ[CONFIG_ENV] = str(config.resolve())
    if database_url:
        os.environ["LORA_EMOTION_DATABASE_URL"] = database_url
    try:
        settings = Settings()
    except (ValidationError, ValueError) as exc:
        raise LoraEmotionError(f"invalid configuration: {exc}") from exc
    store = create_store(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
    try:
        version = migrate(store.write_engine)
    except Exception as exc:
        raise LoraEmotionError(f"cannot open the store: {type(exc).__name__}: {exc}") from exc
    finally:
        store.dispose()
    where = "configuration OK" if check else f"listening on http://{host}:{port}"
    print(
        f"lora-emotion serve: {_describe(settings.database_url)} at schema version {version}; "
        f"{len(settings.destinations)} KPN destination(s), {len(settings.read_tokens)} read "
        f"token(s); {where} with {workers} worker(s)",
        file=sys.stderr,
    )
    if check:
        return 0
    log_config = logging_config(settings.log_level, settings.log_format)
    if workers == 1:
        uvicorn.Server(_uvicorn_config(host, port, log_config, access_log)).run()
        return 0
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="lora-emotion-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        return _supervise(host, port, workers, log_config, access_log)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _uvicorn_config(
    host: str, port: int, log_config: dict[str, Any], access_log: bool
) -> uvicorn.Config:
    return uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        log_config=log_config,
        access_log=access_log,
        server_header=False,
        timeout_graceful_shutdown=10,
        http=CoalescingHttpToolsProtocol,
    )


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(host: str, port: int, log_config: dict[str, Any], access_log: bool) -> None:
    """One worker process: its own listening socket on the shared port, one uvicorn server."""
    config = _uvicorn_config(host, port, log_config, access_log)
    uvicorn.Server(config).run(sockets=[_listen(host, port)])


def _supervise(
    host: str, port: int, workers: int, log_config: dict[str, Any], access_log: bool
) -> int:
    """Run ``workers`` worker processes until SIGTERM or SIGINT, replacing any that dies."""
    logging.config.dictConfig(log_config)
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_worker, args=(host, port, log_config, access_log), name="lora-emotion-worker"
        )
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    started = [time.monotonic()] * workers
    quick_deaths = 0
    while not stopping.wait(0.5):
        for position, process in enumerate(processes):
            if process.is_alive():
                continue
            quick_deaths = quick_deaths + 1 if time.monotonic() - started[position] < 10 else 0
            log.error(
                "worker %s exited with code %s",
                process.pid,
                process.exitcode,
                extra={"event": "worker_exited"},
            )
            if quick_deaths > 2 * workers:
                log.error("workers keep failing at start-up; stopping", extra={"event": "abort"})
                stopping.set()
                break
            processes[position], started[position] = start(), time.monotonic()
    for process in processes:
        process.terminate()  # SIGTERM: uvicorn finishes in-flight requests
    for process in processes:
        process.join(timeout=20)
        if process.is_alive():
            process.kill()
            process.join()
    return 1 if quick_deaths > 2 * workers else 0
