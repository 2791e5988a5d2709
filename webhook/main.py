"""The FastAPI application: ``create_app()`` and the lifespan that owns the store and writer.

Run it with ``lora-emotion serve`` (or ``uvicorn --factory lora_emotion.webhook.main:create_app``).
Settings come from ``get_settings``; tests replace them through ``app.dependency_overrides``,
which the lifespan honours too, so the store is opened from the same settings the routes see.
"""

from __future__ import annotations

import gc
import inspect
import json
import logging
import secrets
import string
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from lora_emotion.errors import EncodeError, LoraEmotionError
from lora_emotion.labels import DEFAULT_REGISTRY, LabelRegistry, parse_label_sets

from . import dashboard
from .adapters import adapter_for
from .alerts import AlertService
from .commits import open_batch_writer
from .config import CONFIG_ENV, Settings, get_settings
from .ingest import Ingest, IngestEndpoint
from .logs import redactor
from .migrations import migrate
from .routes import alerts, health, query, uplinks
from .storage import STORE_UNAVAILABLE, create_store, unavailable
from .writer import GroupCommitWriter

__all__ = ["IngestFirst", "create_app", "create_ingest_first_app", "lifespan", "suggest_secret"]

log = logging.getLogger("lora_emotion.webhook")

DESCRIPTION = """Receives KPN Things HTTPS-destination deliveries, verifies their
`Things-Message-Token`, decodes raw payloads with the lora-emotion codec and stores every
delivery durably before answering 2xx. The read API (bearer token) lists devices, their
readings and the raw deliveries."""


def suggest_secret(length: int = 40) -> str:
    """A random shared secret that meets KPN's rules (upper, lower, digit, special)."""
    alphabet = string.ascii_letters + string.digits + "-_.~!*"
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in candidate)
            and any(c.isupper() for c in candidate)
            and any(c.isdigit() for c in candidate)
            and any(not c.isalnum() for c in candidate)
        ):
            return candidate


def _registry(settings: Settings) -> LabelRegistry:
    if settings.labels_file is None:
        return DEFAULT_REGISTRY
    document = json.loads(Path(settings.labels_file).read_text(encoding="utf-8"))
    try:
        return parse_label_sets(document)
    except EncodeError as exc:
        raise EncodeError(f"{settings.labels_file}: {exc}") from exc


#: Allocations between young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 50_000


def tune_gc() -> tuple[int, int, int]:
    """Collect less often, and never scan what start-up built; returns the old thresholds.

    Why: a delivery allocates a few hundred short-lived objects that reference counting frees
    at once, yet every 700 allocations CPython scanned the young generation, and every few
    scans the frameworks' start-up objects as well. Measured under load on one worker: 17 %
    less CPU per delivery. Cycles are still collected, every 50,000 allocations.
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    return thresholds


#: How an operator makes a secret: logs name the command, never a secret.
SECRET_COMMAND = (
    'python -c "from lora_emotion.webhook.main import suggest_secret; print(suggest_secret())"'
)


def _announce(settings: Settings) -> None:
    if not settings.destinations:
        log.warning(
            "no KPN destination is configured, so every delivery is refused with 403. Add one "
            'with LORA_EMOTION_DESTINATIONS=\'{"<Things-Plug-UUID>": ["<shared secret>"]}\' '
            "or a [destinations] table in the file named by %s; make a secret that KPN "
            "accepts with: %s",
            CONFIG_ENV,
            SECRET_COMMAND,
            extra={"event": "no_destinations"},
        )
        # A secret in a log would be kept (journald, a log shipper) where secrets must never
        # be; a person at a terminal can be shown one there, outside the log.
        terminal = sys.stderr
        if terminal is not None and terminal.isatty():
            print(f"A fresh shared secret that KPN accepts: {suggest_secret()}", file=terminal)
    if not settings.read_tokens:
        log.warning(
            "no read token is configured, so the read API refuses every request; set "
            "LORA_EMOTION_READ_TOKENS",
            extra={"event": "no_read_tokens"},
        )
    for problem in settings.weaknesses():
        log.warning("weak credential: %s", problem, extra={"event": "weak_credential"})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store, migrate it, start the group-commit writer; undo it all on shutdown."""
    settings: Settings = app.dependency_overrides.get(get_settings, get_settings)()
    redactor.set_secrets(
        [s.get_secret_value() for values in settings.destinations.values() for s in values]
        + [t for tokens in settings.network_tokens("ttn").values() for t in tokens]
        + [t for tokens in settings.network_tokens("chirpstack").values() for t in tokens]
        + [t.get_secret_value() for t in settings.read_tokens]
        + settings.alerts.secrets()
    )
    store = create_store(
        settings.database_url,
        busy_timeout_ms=settings.sqlite_busy_timeout_ms,
        read_pool_size=settings.read_pool_size,
    )
    version = await run_in_threadpool(migrate, store.write_engine)
    registry = _registry(settings)
    alerting = AlertService(settings.alerts, registry, store)
    writer = GroupCommitWriter(
        open_batch_writer(
            store,
            concurrency=settings.commit_concurrency,
            timeout_s=settings.store_timeout_s,
            alerts=alerting.hook if alerting.needed else None,
        ),
        batch_max=settings.batch_max,
        timeout_s=settings.store_timeout_s,
    )
    writer.start()
    alerting.start()
    thresholds = tune_gc()
    app.state.store = store
    app.state.alerts = alerting
    for network, key in uplinks.INGEST_STATE_KEYS.items():
        setattr(app.state, key, Ingest(settings, registry, writer, adapter_for(network, settings)))
    stop_dashboard = await dashboard.start(app, store, commit_timeout_s=settings.store_timeout_s)
    log.info(
        "webhook ready",
        extra={
            "event": "started",
            "store": store.dialect,
            "schema_version": version,
            "destinations": len(settings.destinations),
        },
    )
    _announce(settings)
    try:
        yield
    finally:
        await stop_dashboard()
        await writer.close()
        await alerting.close()
        store.dispose()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _error_response(path: str, exc: LoraEmotionError) -> JSONResponse:
    status = exc.http_status
    headers = {}
    if status == 401:
        # KPN's route is the one authenticated by something else than a bearer token.
        scheme = "Things-Message-Token" if path == uplinks.INGEST_PATH else "Bearer"
        headers["WWW-Authenticate"] = scheme
    elif status == 503:
        headers["Retry-After"] = "5"
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; ``settings`` overrides :func:`get_settings` when given."""
    app = FastAPI(
        title="lora-emotion webhook",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by the dashboard from packaged assets, so that they work offline.
        docs_url=None,
        redoc_url=None,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    # First in the table: the route that arrives by the thousand per second is matched first.
    app.router.routes[:0] = uplinks.routes()
    app.include_router(query.router)
    app.include_router(health.router)
    app.include_router(alerts.router)

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, with the delivery routes FastAPI does not declare itself."""
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=[*uplinks.openapi_router.routes, *app.routes],
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    dashboard.install(app)

    async def project_error(request: Request, exc: Exception) -> JSONResponse:
        """Answer any project error with its own HTTP status and message, and a store that
        cannot answer a query as :class:`StoreUnavailableError` (503, Retry-After)."""
        if not isinstance(exc, LoraEmotionError):
            log.error(
                "store unavailable for %s",
                _route_path(request.scope),
                extra={"event": "read_failed", "error": type(exc).__name__},
            )
            exc = unavailable(exc)
        return _error_response(_route_path(request.scope), exc)

    handled: tuple[type[Exception], ...] = (LoraEmotionError, *STORE_UNAVAILABLE)
    for kind in handled:
        app.add_exception_handler(kind, project_error)

    return app


class IngestFirst:
    """An ASGI application that hands KPN deliveries to their endpoint ahead of ``app``'s
    middleware and routing, and everything else to ``app``: ``serve --ingest-first``.

    Why it exists: FastAPI's middleware and routing cost a delivery more CPU than the route
    itself (``docs/bench-webhook.md`` has the numbers side by side). Why it is not the
    default: middleware added to ``app`` (CORS, OpenTelemetry, Sentry) and FastAPI's own
    telemetry then never see a delivery. Refusals are still answered by ``app``'s exception
    handlers, so they read the same either way.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.endpoint = IngestEndpoint("ingest")
        self.router = app.router  # uvicorn's lifespan and TestClient reach the app through it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or _route_path(scope) != uplinks.INGEST_PATH
        ):
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        try:
            await self.endpoint(scope, receive, send)
        except Exception as exc:
            handler = next(
                (
                    self.app.exception_handlers[kind]
                    for kind in type(exc).__mro__
                    if kind in self.app.exception_handlers
                ),
                None,
            )
            if handler is None:
                raise
            answer = handler(Request(scope, receive), exc)
            response = await answer if inspect.isawaitable(answer) else answer
            await response(scope, receive, send)


def create_ingest_first_app() -> IngestFirst:
    """:func:`create_app` behind :class:`IngestFirst` (uvicorn factory for ``--ingest-first``)."""
    return IngestFirst(create_app())
