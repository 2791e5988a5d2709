"""The dashboard's routes: pages, log in and out, its JSON, the live stream, offline API docs.

Pages and JSON are readable with the session cookie (or, for scripts, the read API's bearer
token); nothing but the login page and the static assets is readable without. The JSON routes
and the stream are left out of the OpenAPI document: they serve this page, and the read API is
the interface for programs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import html
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from string import Template
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from starlette.responses import StreamingResponse

from lora_emotion import decode
from lora_emotion.errors import LoraEmotionError, VerificationError
from lora_emotion.labels import LabelSet

from .. import session, storage
from ..config import Settings, get_settings
from ..errors import BadRequestError, NotFoundError
from ..routes.query import _device_urn
from ..schema import readings
from . import queries
from .feed import Feed, newest_id
from .rollup import SETTLE_S, run_rollups

__all__ = ["install", "require_viewer", "start"]

STATIC = resources.files("lora_emotion.webhook") / "static"
#: The dashboard's pages load only their own scripts, styles and images.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
KEEPALIVE_S = 10.0
RANGES = ("1h", "6h", "24h", "7d", "30d")
Range = Literal["1h", "6h", "24h", "7d", "30d"]

_bearer = HTTPBearer(auto_error=False)


def _signed_in(settings: Settings, request: Request, bearer: str | None = None) -> bool:
    if bearer is not None and session.matching_token(settings, bearer) is not None:
        return True
    return session.session_valid(settings, request.cookies.get(session.SESSION_COOKIE))


async def require_viewer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through with a session cookie or a read token.

    Raises:
        VerificationError: neither (401).
    """
    settings: Settings = request.app.dependency_overrides.get(get_settings, get_settings)()
    bearer = credentials.credentials if credentials is not None else None
    if not _signed_in(settings, request, bearer):
        raise VerificationError("log in at /login, or send a read token as a bearer token")


def _page(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _store(request: Request) -> storage.Store:
    store: storage.Store = request.app.state.store
    return store


def _feed(request: Request) -> Feed:
    feed: Feed = request.app.state.feed
    return feed


def _local_path(target: str | None) -> str:
    # Only a path on this site: never an open redirect.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


pages = APIRouter(include_in_schema=False)
api = APIRouter(include_in_schema=False, dependencies=[Depends(require_viewer)])


@pages.get("/")
async def dashboard(request: Request) -> Response:
    settings: Settings = request.app.dependency_overrides.get(get_settings, get_settings)()
    if not _signed_in(settings, request):
        return RedirectResponse("/login?next=" + quote(request.url.path), status_code=303)
    return HTMLResponse(_page("dashboard.html"), headers=PAGE_HEADERS)


def _login_page(request: Request, *, error: str = "", status: int = 200) -> HTMLResponse:
    token = session.csrf_token(request)
    next_path = _local_path(request.query_params.get("next"))
    body = Template(_page("login.html")).substitute(
        csrf=html.escape(token),
        next=html.escape(next_path),
        error=f'<p class="error" role="alert">{html.escape(error)}</p>' if error else "",
    )
    response = HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)
    session.set_csrf(response, request, token)
    return response


@pages.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


async def _form(request: Request) -> dict[str, str]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise BadRequestError("send the form as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > 4096:
        raise BadRequestError("form too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


@pages.post("/login")
async def login(request: Request) -> Response:
    settings: Settings = request.app.dependency_overrides.get(get_settings, get_settings)()
    fields = await _form(request)
    problem = session.check_csrf(request, fields.get("csrf"))
    if problem:
        return _login_page(request, error=problem, status=403)
    token = session.matching_token(settings, fields.get("token", "").strip())
    if token is None:
        await asyncio.sleep(0.2)  # a little friction for guessing
        return _login_page(request, error="that is not a read token of this service", status=401)
    response = RedirectResponse(_local_path(fields.get("next")), status_code=303)
    session.set_session(response, request, session.new_session(token))
    return response


@pages.post("/logout")
async def logout(request: Request) -> Response:
    fields = await _form(request)
    problem = session.check_csrf(request, fields.get("csrf"))
    if problem:
        return _login_page(request, error=problem, status=403)
    response = RedirectResponse("/login", status_code=303)
    session.set_session(response, request, None)
    return response


@api.get("/dashboard/api/session")
async def whoami(request: Request) -> JSONResponse:
    """The CSRF token the page's log-out form sends, and the newest delivery id."""
    token = session.csrf_token(request)
    response = JSONResponse({"csrf": token, "newest_id": _feed(request).newest})
    session.set_csrf(response, request, token)
    return response


def _device_json(row: queries.DeviceRow) -> dict[str, Any]:
    return {
        "urn": row.urn,
        "dev_eui": row.dev_eui,
        "first_seen": _iso(row.first_seen),
        "last_seen": _iso(row.last_seen),
        "emotion": row.emotion,
        "confidence": row.confidence,
        "emotion_time": _iso(row.emotion_time),
        "hourly_readings": row.hourly_readings,
        "hourly_confidence": row.hourly_confidence,
        "status": row.status,
        "status_time": _iso(row.status_time),
        "expected_interval_s": row.expected_interval_s,
        "silent": row.silent,
    }


def _newest_id(store: storage.Store) -> int:
    return newest_id(store.read_engine)


@api.get("/dashboard/api/fleet")
def fleet(request: Request) -> JSONResponse:
    """Every device with its latest emotion, 24 h per hour, status and silence."""
    store = _store(request)
    # Read before the snapshot: the page's stream starts after it, so nothing is missed.
    newest = _newest_id(store)
    now = datetime.now(UTC)
    with store.read_engine.connect() as conn:
        rows = queries.fleet(conn, now=now)
    return JSONResponse(
        {
            "now": now.isoformat(),
            "newest_id": newest,
            "devices": [_device_json(r) for r in rows],
        }
    )


def _range(name: str, now: datetime) -> tuple[datetime, datetime]:
    start, end = queries.default_range(name, now)
    return start, end


@api.get("/dashboard/api/mix")
def mix(request: Request, range: Range = "24h") -> JSONResponse:
    """Emotion readings of the whole fleet per label and hour."""
    start, end = _range(range, datetime.now(UTC))
    with _store(request).read_engine.connect() as conn:
        hours, labels = queries.hourly_mix(conn, start=start, end=end)
    return JSONResponse({"range": range, "hours": hours, "labels": labels})


@api.get("/dashboard/api/devices/{device}/timeline")
def timeline(
    request: Request,
    device: Annotated[str, Path(max_length=200)],
    range: Range = "24h",
) -> JSONResponse:
    """One device's emotion over ``range``, in buckets."""
    urn = _device_urn(device)
    store = _store(request)
    start, end = _range(range, datetime.now(UTC))
    with store.read_engine.connect() as conn:
        if storage.get_device(conn, urn=urn) is None:
            raise NotFoundError(f"no device {urn}")
        found = queries.device_timeline(conn, device=urn, start=start, end=end)
    return JSONResponse(
        {
            "device": urn,
            "range": range,
            "start": found.start,
            "bucket_s": found.bucket_s,
            "times": found.times,
            "labels": found.labels,
            "dominant": found.dominant,
            "confidence": found.confidence,
            "summaries": found.summaries,
        }
    )


@api.get("/dashboard/api/deliveries/{delivery_id}")
def delivery(
    request: Request, delivery_id: Annotated[int, Path(ge=1, le=2**63 - 1)]
) -> JSONResponse:
    """One raw delivery, its stored readings and its payload decoded again now."""
    with _store(request).read_engine.connect() as conn:
        row = storage.get_delivery(conn, delivery_id=delivery_id)
        if row is None:
            raise NotFoundError(f"no delivery {delivery_id}")
        stored = conn.execute(
            select(readings).where(readings.c.delivery_id == delivery_id).order_by(readings.c.seq)
        ).all()
    decoded: Any = None
    error = None
    if row.payload is not None and row.fport is not None:
        try:
            decoded = _plain(decode(bytes(row.payload), fport=row.fport))
        except LoraEmotionError as exc:
            error = str(exc)
    return JSONResponse(
        {
            "id": row.id,
            "device": row.device,
            "received_at": _iso(row.received_at),
            "kind": row.kind,
            "decode_status": row.decode_status,
            "decode_error": row.decode_error,
            "fport": row.fport,
            "payload": row.payload.hex().upper() if row.payload is not None else None,
            "decoded": decoded,
            "decode_now_error": error,
            "readings": [
                {
                    "time": _iso(r.time),
                    "name": r.name,
                    "unit": r.unit,
                    "value": r.value,
                    "string_value": r.string_value,
                    "bool_value": r.bool_value,
                    "sum": r.sum_value,
                }
                for r in stored
            ],
            "body": bytes(row.body).decode("utf-8", "replace"),
        }
    )


def _plain(value: Any) -> Any:
    """A decoded message as JSON-able values (dataclasses, enums and tuples flattened)."""
    if isinstance(value, LabelSet):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"type": type(value).__name__}
        out.update(
            {
                f.name: _plain(getattr(value, f.name))
                for f in dataclasses.fields(value)
                if f.repr and not f.name.startswith("_")
            }
        )
        return out
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex().upper()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _frame(delivery_id: int, event: bytes, kind: str = "delivery") -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (delivery_id, kind.encode(), event)


def _last_id(request: Request, after: int | None) -> int | None:
    header = request.headers.get("last-event-id")
    if header is not None and header.strip().isdigit():
        return int(header.strip())
    return after


@api.get("/events")
async def events(
    request: Request,
    device: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> StreamingResponse:
    """Server-sent events: one ``delivery`` event per committed delivery, in commit order.

    Resumes after ``Last-Event-ID`` (what a browser sends when it reconnects) or ``after``.
    """
    feed = _feed(request)
    urn = _device_urn(device) if device else None
    subscription = feed.subscribe(_last_id(request, after))

    def wanted(event: bytes) -> bool:
        return urn is None or json.loads(event)["device"] == urn

    async def stream() -> AsyncIterator[bytes]:
        sent: set[int] = set()
        try:
            yield b"retry: 2000\n\n"
            async for delivery_id, event in feed.backlog(subscription):
                sent.add(delivery_id)
                if wanted(event):
                    yield _frame(delivery_id, event)
            if subscription.truncated_at is not None:
                yield _frame(subscription.truncated_at, b"{}", "resync")
            while True:
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                # Whatever else is waiting goes out in the same write: under load a write per
                # event costs the worker more than the events do.
                items = [item]
                while items[-1] is not None and not subscription.queue.empty():
                    items.append(subscription.queue.get_nowait())
                frames = [
                    _frame(delivery_id, event)
                    for delivery_id, event in (i for i in items if i is not None)
                    if delivery_id not in sent and wanted(event)
                ]
                if frames:
                    yield b"".join(frames)
                if items[-1] is None:
                    # Too slow to keep up: reconnect resumes from the last id received.
                    yield b"event: resync\ndata: {}\n\n"
                    return
        finally:
            feed.unsubscribe(subscription)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _swagger(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )


def install(app: FastAPI) -> None:
    """Add the dashboard, its assets and the offline ``/docs`` to ``app``."""
    app.include_router(pages)
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _swagger(app)


async def start(
    app: FastAPI, store: storage.Store, *, commit_timeout_s: float = 10.0
) -> Callable[[], Awaitable[None]]:
    """Start the live feed (``app.state.feed``) and, on PostgreSQL, the rollup job; returns
    what stops them."""
    feed = Feed(store)
    feed.start()
    app.state.feed = feed
    rollups = None
    if store.dialect == "postgresql":
        rollups = asyncio.get_running_loop().create_task(
            run_rollups(store.write_engine, settle_s=max(SETTLE_S, 2 * commit_timeout_s)),
            name="dashboard-rollups",
        )

    async def stop() -> None:
        if rollups is not None:
            rollups.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await rollups
        await feed.close()

    return stop
