"""The path of one delivery, whichever network sent it: limits, verification, decoding, the
group commit, the answer, metrics.

One pipeline for every network (verify -> adapt -> decode -> group commit -> answer); what
differs per network is its adapter (``adapters.py``). Order matters: the media type and size
limit are applied before the body is read (from ``Content-Length``, then while streaming), the
credentials are checked before any parsing (KPN's token over the raw bytes), and the answer
waits for the commit. Every refusal is counted by network and outcome and logged with its
reason, never with the token or the secret.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import orjson
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from lora_emotion.errors import LoraEmotionError
from lora_emotion.labels import LabelRegistry

from . import metrics
from .adapters import JSON_MEDIA_TYPES, NetworkAdapter
from .config import Settings
from .errors import BodyTooLargeError, StoreLimitError, StoreUnavailableError
from .storage import new_delivery
from .writer import GroupCommitWriter

__all__ = ["JSON_MEDIA_TYPES", "MAX_HEADER_LENGTH", "Ingest", "IngestEndpoint", "kept_headers"]

log = logging.getLogger("lora_emotion.webhook.ingest")

#: Longest kept header (name and value), as common proxies limit a header line (nginx: 8 KiB).
MAX_HEADER_LENGTH = 8_192
_KEPT_HEADERS = frozenset(
    {
        b"content-type",
        # The Things Stack: its cluster, and where this device's downlinks can be queued.
        b"x-tts-domain",
        b"x-downlink-push",
        b"x-downlink-replace",
        b"user-agent",
        b"x-forwarded-for",
        b"x-real-ip",
        b"x-request-id",
        b"forwarded",
    }
)
_NEVER_KEPT = frozenset(
    {b"things-message-token", b"authorization", b"cookie", b"x-api-key", b"x-downlink-apikey"}
)
_OUTCOME_BY_STATUS = {
    401: "unauthorized",
    403: "forbidden",
    413: "too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


def kept_headers(headers: Mapping[bytes, bytes]) -> dict[str, str]:
    """The request headers stored with a delivery: KPN's ``Things-*``, The Things Stack's
    ``X-Tts-Domain`` and downlink queue URLs, and proxy headers.

    ``headers`` maps lowercase names to values, as ASGI gives them. The message token and any
    credential header are never kept.

    Raises:
        StoreLimitError: a kept header is longer than :data:`MAX_HEADER_LENGTH` (422).
    """
    kept = {}
    for name, value in headers.items():
        if name in _NEVER_KEPT:
            continue
        if name.startswith(b"things-") or name in _KEPT_HEADERS:
            if len(name) + len(value) > MAX_HEADER_LENGTH:
                raise StoreLimitError(
                    f"{len(value)} bytes, more than the {MAX_HEADER_LENGTH} kept of a header",
                    field=f"header {name.decode('latin-1')}",
                )
            kept[name.decode("latin-1")] = value.decode("latin-1")
    return kept


def _header_map(raw: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    headers: dict[bytes, bytes] = {}
    for name, value in raw:
        # The first of repeated headers counts, as with Starlette's Headers.get. ASGI servers
        # lowercase names already; lower() is for those that do not.
        headers.setdefault(name.lower(), value)
    return headers


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"body of {declared} bytes exceeds the {limit}-byte limit")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"body exceeds the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@dataclass(frozen=True, slots=True)
class Ingest:
    """What a network's uplinks route needs, set up once per process by the lifespan."""

    settings: Settings
    registry: LabelRegistry
    writer: GroupCommitWriter
    adapter: NetworkAdapter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Verify, decode and durably store one delivery of the adapter's network, as ASGI.

        Answers 200 with ``status`` (``stored`` or ``duplicate``), ids and decode status; a
        message that is no uplink (a join, an acknowledgement) 200 with ``ignored``.

        Raises:
            LoraEmotionError: with the HTTP status to answer (401, 403, 413, 415, 422, 503);
                the application's exception handler writes the answer.
        """
        started = time.perf_counter()
        network = self.adapter.network
        counters = metrics.OUTCOME_COUNTERS[network]
        headers = _header_map(scope["headers"])
        try:
            self.adapter.check_media_type(headers)
            body = await _read_body(
                receive, _text(headers.get(b"content-length")), self.settings.max_body_bytes
            )
            now = time.time()
            adapted = self.adapter.adapt(
                headers, body, scope.get("query_string", b""), now=now, registry=self.registry
            )
            delivery = adapted.delivery
            if delivery is None:
                counters["ignored"].inc()
                await _answer(send, {"status": "ignored", "event": adapted.event})
                metrics.DELIVERY_SECONDS[network].observe(time.perf_counter() - started)
                return
            item = new_delivery(
                delivery,
                plug_uuid=adapted.source,
                received_at=now,
                headers=orjson.dumps(kept_headers(headers), option=orjson.OPT_SORT_KEYS).decode(),
                body=body,
                network=network,
                metadata=None
                if adapted.metadata is None
                else orjson.dumps(adapted.metadata, option=orjson.OPT_SORT_KEYS).decode(),
            )
            result = await self.writer.submit(item)
        except LoraEmotionError as exc:
            outcome = _OUTCOME_BY_STATUS.get(exc.http_status, "malformed")
            counters[outcome].inc()
            level = logging.ERROR if isinstance(exc, StoreUnavailableError) else logging.WARNING
            log.log(
                level,
                "delivery refused: %s",
                exc,
                extra={"event": "delivery_refused", "outcome": outcome, "network": network},
            )
            raise
        outcome = "duplicate" if result.duplicate else "stored"
        counters[outcome].inc()
        if delivery.decode_status == "error" and not result.duplicate:
            metrics.DECODE_ERRORS[network].inc()
            log.warning(
                "payload did not decode; stored raw",
                extra={
                    "event": "decode_error",
                    "network": network,
                    "device": delivery.device,
                    "delivery_id": result.delivery_id,
                    "error": delivery.decode_error,
                },
            )
        await _answer(
            send,
            {
                "status": outcome,
                "delivery_id": result.delivery_id,
                "device": delivery.device,
                "readings": len(item.readings),
                "decode_status": delivery.decode_status,
                "decode_error": delivery.decode_error,
            },
        )
        metrics.DELIVERY_SECONDS[network].observe(time.perf_counter() - started)


async def _answer(send: Send, document: dict[str, object]) -> None:
    answer = orjson.dumps(document)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(answer)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": answer})


class IngestEndpoint:
    """A network's delivery route as a plain ASGI endpoint: ``Route(path, IngestEndpoint(...))``.

    It is an ordinary route of the application, so middleware added with
    ``app.add_middleware`` sees deliveries and their answers like any other request, and
    project errors are answered by the application's exception handler. Being plain ASGI it
    skips what FastAPI does for a declared route (a ``Request`` object, dependency solving,
    response validation), which measured at about as much CPU as the delivery's own work.

    The pipeline is set up per process by the lifespan and found on ``app.state`` under
    ``state_key``, so one class serves any network whose pipeline is an ASGI callable like
    :class:`Ingest`.
    """

    __slots__ = ("state_key",)

    def __init__(self, state_key: str = "ingest") -> None:
        self.state_key = state_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        pipeline = getattr(scope["app"].state, self.state_key, None)
        if pipeline is None:
            raise StoreUnavailableError("the service is starting or stopping")
        with contextlib.suppress(ClientDisconnect):  # nothing was stored, nobody is listening
            await pipeline(scope, receive, send)
