"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from .. import metrics, storage
from ..deps import StoreDep

router = APIRouter(tags=["operations"])

#: A readiness probe must answer before the prober's own timeout.
READY_TIMEOUT_S = 3.0
#: As every other 503 of the service says.
_RETRY = {"Retry-After": "5"}


def _ping(store: storage.Store) -> None:
    with store.read_engine.connect() as conn:
        storage.ping(conn)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The store does not answer"}})
async def readyz(request: Request, store: StoreDep) -> JSONResponse:
    """Answer 200 when the store answers a query and the writer runs, else 503."""
    if not request.app.state.ingest.writer.alive:
        return JSONResponse(
            {"status": "unavailable", "error": "writer stopped"}, 503, headers=_RETRY
        )
    try:
        await asyncio.wait_for(run_in_threadpool(_ping, store), READY_TIMEOUT_S)
    except Exception as exc:  # any failure to reach the store means "not ready"
        return JSONResponse(
            {"status": "unavailable", "error": type(exc).__name__}, 503, headers=_RETRY
        )
    return JSONResponse({"status": "ok", "store": store.dialect})


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    """Prometheus metrics in text format."""
    return Response(metrics.render(), media_type=metrics.CONTENT_TYPE_LATEST)
