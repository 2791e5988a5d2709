"""Starting the service: validate the configuration, migrate once, listen, then run uvicorn.

Why migrations run here as well as in each worker's lifespan: with several workers they would
otherwise all start by queuing on the migration lock; running them once in the parent also
turns a bad database URL into one clear error before any worker is spawned.

Why several workers get a listening socket each (``SO_REUSEPORT``) instead of uvicorn's shared
one: on a shared socket, whichever worker wakes first accepts a whole burst of connections,
and keep-alive connections (from a load generator or a reverse proxy's upstream pool) stay
where they landed. In the benchmark one worker often ended up with every connection while the
other idled. With a socket per worker the kernel spreads connections evenly by their
addresses (``docs/bench-webhook.md`` compares the two side by side).

What makes that safe: ``SO_REUSEPORT`` lets any process of the same user join the port, so the
parent first binds the address exclusively, which fails if anything at all listens there, and
holds a lock named after the address while it runs; only then does it open the workers'
sockets, which it keeps, so a replaced worker gets the same one. Each worker asks the kernel
for SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), so no worker outlives it to serve an
old configuration next to a restarted service.
"""

from __future__ import annotations

import ctypes
import errno
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from lora_emotion.errors import LoraEmotionError

from .config import CONFIG_ENV, Settings
from .eventloop import LOOP_FACTORY
from .logs import logging_config
from .migrations import migrate
from .storage import create_store

__all__ = ["APP_FACTORY", "listen", "run_workers", "serve"]

log = logging.getLogger("lora_emotion.webhook.server")

#: The application factory uvicorn imports in each worker.
APP_FACTORY = "lora_emotion.webhook.main:create_app"
#: The same with deliveries answered ahead of the middleware (``--ingest-first``).
INGEST_FIRST_FACTORY = "lora_emotion.webhook.main:create_ingest_first_app"


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
    loop: str = LOOP_FACTORY,
    ingest_first: bool = False,
) -> int:
    """Run the webhook until it is stopped.

    Args:
        host, port: where to listen.
        workers: uvicorn worker processes.
        config: a TOML file (exported as ``LORA_EMOTION_CONFIG`` for the workers).
        database_url: overrides ``LORA_EMOTION_DATABASE_URL``.
        access_log: log every request (costs about a third of the request rate).
        check: validate and migrate, then return without serving.
        loop: uvicorn's ``loop`` setting; the default writes each response in one piece
            (``webhook/eventloop.py``), ``auto`` is uvicorn's own choice.
        ingest_first: answer deliveries ahead of the application's middleware
            (:class:`~lora_emotion.webhook.main.IngestFirst`).

    Returns:
        The exit code.

    Raises:
        LoraEmotionError: invalid configuration, an unreachable store, or the address is
            already in use.
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
    # Listening first: a second instance on a busy address is refused before it touches its
    # store, and says nothing about "listening" (connections wait in the backlog meanwhile).
    listener = None if check else listen(host, port, workers)
    try:
        store = create_store(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        try:
            version = migrate(store.write_engine)
        except Exception as exc:
            raise LoraEmotionError(f"cannot open the store: {type(exc).__name__}: {exc}") from exc
        finally:
            store.dispose()
        summary = (
            f"lora-emotion serve: {_describe(settings.database_url)} at schema version "
            f"{version}; {len(settings.destinations)} KPN destination(s), "
            f"{len(settings.read_tokens)} read token(s)"
        )
        if listener is None:
            print(f"{summary}; configuration OK", file=sys.stderr)
            return 0
        print(f"{summary}; listening on {listener.url} with {workers} worker(s)", file=sys.stderr)
        log_config = logging_config(settings.log_level, settings.log_format)
        options = UvicornOptions(
            INGEST_FIRST_FACTORY if ingest_first else APP_FACTORY,
            True,
            log_config,
            access_log,
            loop,
        )
        metrics_dir = None
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = tempfile.mkdtemp(prefix="lora-emotion-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            return run_workers(listener, options)
        finally:
            if metrics_dir is not None:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    finally:
        if listener is not None:
            listener.close()


@dataclass(frozen=True)
class UvicornOptions:
    """What each worker hands uvicorn besides its socket."""

    app: str
    factory: bool
    log_config: dict[str, Any]
    access_log: bool
    loop: str = LOOP_FACTORY

    def config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app,
            factory=self.factory,
            log_config=self.log_config,
            access_log=self.access_log,
            server_header=False,
            timeout_graceful_shutdown=10,
            loop=self.loop,
        )


@dataclass
class Listener:
    """The listening sockets of one service: one per worker, and the address lock."""

    host: str
    port: int
    sockets: list[socket.socket]
    lock: socket.socket | None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        if self.lock is not None:
            self.lock.close()


#: Pending connections per socket, as uvicorn's default.
BACKLOG = 2048


def _in_use(host: str, port: int, reason: str) -> LoraEmotionError:
    return LoraEmotionError(
        f"cannot listen on {host}:{port}: address already in use ({reason}); stop what holds "
        "it or choose another --port"
    )


def _address_lock(host: str, port: int) -> socket.socket | None:
    """Hold a name for ``host:port`` that one process at a time can hold, or raise.

    Why: between the exclusive check and binding the workers' ``SO_REUSEPORT`` sockets,
    another ``serve`` starting at the same moment could pass the same check. The name is a
    socket in Linux's abstract namespace: it vanishes with the process that holds it, even on
    SIGKILL, leaves no file behind, and is scoped like the port itself (per network namespace).
    """
    if not sys.platform.startswith("linux"):
        return None
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0lora-emotion-serve {host}:{port}")
    except OSError as exc:
        lock.close()
        if exc.errno == errno.EADDRINUSE:
            raise _in_use(host, port, "another lora-emotion serve holds it") from exc
        raise
    return lock


def listen(host: str, port: int, workers: int) -> Listener:
    """Listen on ``host:port`` with one socket per worker, refusing an address in use.

    One worker gets a plain socket. Several get ``SO_REUSEPORT`` sockets, but only after the
    address was bound exclusively (which fails if anything listens there, with or without
    ``SO_REUSEPORT``) and its lock taken. Port 0 picks a free port.

    Raises:
        LoraEmotionError: the address is in use or cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is fine
    try:
        probe.bind((host, port))
    except OSError as exc:
        probe.close()
        if exc.errno == errno.EADDRINUSE:
            raise _in_use(host, port, "something else listens there") from exc
        raise LoraEmotionError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    port = probe.getsockname()[1]
    if workers == 1:
        probe.listen(BACKLOG)
        return Listener(host, port, [probe], None)
    try:
        lock = _address_lock(host, port)
    finally:
        probe.close()
    sockets: list[socket.socket] = []
    try:
        for _ in range(workers):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Bound, not listening: the kernel hands connections only to listening sockets,
            # so none waits on a worker that has not started; each worker listens as it starts.
            sock.bind((host, port))
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if lock is not None:
            lock.close()
        raise _in_use(host, port, f"taken while starting: {exc.strerror}") from exc
    return Listener(host, port, sockets, lock)


def run_workers(listener: Listener, options: UvicornOptions) -> int:
    """Serve on ``listener`` until SIGTERM or SIGINT: in this process for one socket, else
    one worker process per socket, each replaced if it dies.

    Returns:
        The exit code: 1 if the workers kept failing at start-up.
    """
    if len(listener.sockets) == 1:
        uvicorn.Server(options.config()).run(sockets=listener.sockets)
        return 0
    return _supervise(listener, options)


PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGTERM when the parent exits, however it exits (Linux)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("no parent-death signal: errno %s", ctypes.get_errno())
    if os.getppid() != parent:  # the parent died before the request took effect
        sys.exit(1)


def _worker(parent: int, sock: socket.socket, options: UvicornOptions) -> None:
    """One worker process: a uvicorn server on its socket, gone when the parent goes."""
    _die_with_parent(parent)
    uvicorn.Server(options.config()).run(sockets=[sock])


def _supervise(listener: Listener, options: UvicornOptions) -> int:
    """Run a worker per socket until SIGTERM or SIGINT, replacing any that dies."""
    logging.config.dictConfig(options.log_config)
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    def start(sock: socket.socket) -> multiprocessing.process.BaseProcess:
        process = context.Process(
            target=_worker, args=(os.getpid(), sock, options), name="lora-emotion-worker"
        )
        process.start()
        return process

    processes = [start(sock) for sock in listener.sockets]
    workers = len(processes)
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
            processes[position] = start(listener.sockets[position])
            started[position] = time.monotonic()
    for process in processes:
        process.terminate()  # SIGTERM: uvicorn finishes in-flight requests
    for process in processes:
        process.join(timeout=20)
        if process.is_alive():
            process.kill()
            process.join()
    return 1 if quick_deaths > 2 * workers else 0
