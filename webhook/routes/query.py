"""The read API: devices, their readings (paginated or exported) and raw deliveries."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from sqlalchemy import Row

from lora_emotion.networks.kpn import DEVEUI_URN_PREFIX

from .. import storage
from ..deps import ReaderDep, StoreDep
from ..errors import BadRequestError, NotFoundError
from ..models import (
    DeliveryOut,
    DeliveryPage,
    DeviceOut,
    DevicePage,
    Problem,
    ReadingOut,
    ReadingPage,
)

router = APIRouter(
    tags=["read"],
    dependencies=[ReaderDep],
    responses={
        400: {"model": Problem, "description": "A parameter the schema could not check"},
        401: {"model": Problem, "description": "Missing or unknown bearer token"},
        422: {"model": Problem, "description": "A parameter of the wrong type or range"},
    },
)
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such"}}

EXPORT_PAGE = 1_000
MAX_ID = 2**63 - 1
_EUI = re.compile(r"[0-9A-Fa-f]{16}")
#: The shape of every device URN the store holds (the KPN parser's), hence of a devices cursor.
_DEVICE_URN = re.compile(r"urn:dev:[A-Za-z0-9]+:[^:]+")
_DEVICE_DOC = "Device URN (urn:dev:DEVEUI:0004A30B001F1234) or a bare DevEUI."

Limit = Annotated[int, Query(ge=1, le=1_000, description="Page size")]
Start = Annotated[datetime | None, Query(description="Inclusive start (ISO 8601; UTC if naive)")]
End = Annotated[datetime | None, Query(description="Exclusive end (ISO 8601; UTC if naive)")]
Name = Annotated[str | None, Query(max_length=200, description="Only this measurement name")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of a page")]


def _text(value: str, what: str) -> str:
    # Parameters reach SQL; PostgreSQL refuses NUL and UTF-8 refuses lone surrogates.
    if "\x00" in value or not value.isprintable():
        raise BadRequestError(f"{what} contains control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequestError(f"{what} is not valid UTF-8") from None
    return value


def _device_urn(device: str) -> str:
    text = _text(device.strip(), "device").rstrip(":")
    if _EUI.fullmatch(text):
        return DEVEUI_URN_PREFIX + text.upper()
    if text.lower().startswith(DEVEUI_URN_PREFIX.lower()):
        return DEVEUI_URN_PREFIX + text[len(DEVEUI_URN_PREFIX) :].upper()
    return text


def _utc(value: datetime | None, what: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadRequestError(f"{what} is out of range in UTC") from None


def _existing_device(store: storage.Store, device: str) -> str:
    urn = _device_urn(device)
    with store.read_engine.connect() as conn:
        if storage.get_device(conn, urn=urn) is None:
            raise NotFoundError(f"no device {urn}")
    return urn


def _device(summary: storage.DeviceSummary) -> DeviceOut:
    return DeviceOut(
        urn=summary.urn,
        dev_eui=summary.dev_eui,
        first_seen=summary.first_seen,
        last_seen=summary.last_seen,
        latest_emotion=summary.latest_emotion,
        latest_confidence=summary.latest_confidence,
        latest_time=summary.latest_time,
    )


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.urlsafe_b64encode(data).decode().rstrip("=")


def _reading(row: Row[Any]) -> ReadingOut:
    return ReadingOut(
        time=row.time,
        name=row.name,
        unit=row.unit,
        value=row.value,
        string_value=row.string_value,
        bool_value=row.bool_value,
        data_value=_b64(row.data_value),
        sum=row.sum_value,
        origin=row.origin,
        delivery_id=row.delivery_id,
        seq=row.seq,
    )


def _reading_cursor(cursor: str | None) -> storage.ReadingKey | None:
    if cursor is None:
        return None
    try:
        key = storage.ReadingKey.decode(cursor)
    except ValueError:
        raise BadRequestError("cursor is not one this API gave out") from None
    if not (0 <= key.delivery_id <= MAX_ID and 0 <= key.seq < 2**31):
        raise BadRequestError("cursor is not one this API gave out")
    return key


def _opaque(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unopaque(cursor: str) -> str:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("cursor is not one this API gave out") from None
    return _text(text, "cursor")


@router.get("/devices", response_model=DevicePage)
def list_devices(store: StoreDep, limit: Limit = 100, cursor: Cursor = None) -> DevicePage:
    """List devices with their latest emotion and last-seen time, in URN order."""
    after = None
    if cursor:
        after = _unopaque(cursor)
        if not _DEVICE_URN.fullmatch(after):
            raise BadRequestError("cursor is not one this API gave out")
    with store.read_engine.connect() as conn:
        found = storage.device_summaries(conn, limit=limit, after=after)
    more = _opaque(found[-1].urn) if len(found) == limit else None
    return DevicePage(devices=[_device(d) for d in found], next_cursor=more)


@router.get("/devices/{device}", response_model=DeviceOut, responses=_NOT_FOUND)
def get_device(store: StoreDep, device: Annotated[str, Path(description=_DEVICE_DOC)]) -> DeviceOut:
    """Show one device's summary."""
    urn = _device_urn(device)
    with store.read_engine.connect() as conn:
        found = storage.device_summaries(conn, urn=urn, limit=1)
    if not found:
        raise NotFoundError(f"no device {urn}")
    return _device(found[0])


@router.get("/devices/{device}/readings", response_model=ReadingPage, responses=_NOT_FOUND)
def device_readings(
    store: StoreDep,
    device: Annotated[str, Path(description=_DEVICE_DOC)],
    start: Start = None,
    end: End = None,
    name: Name = None,
    order: Literal["asc", "desc"] = "asc",
    limit: Limit = 100,
    cursor: Cursor = None,
) -> ReadingPage:
    """Page through one device's readings in a time range (cursor pagination)."""
    urn = _existing_device(store, device)
    with store.read_engine.connect() as conn:
        rows = storage.read_readings(
            conn,
            device=urn,
            start=_utc(start, "start"),
            end=_utc(end, "end"),
            name=_text(name, "name") if name else None,
            order=order,
            limit=limit,
            after=_reading_cursor(cursor),
        )
    last = storage.ReadingKey(rows[-1].time, rows[-1].delivery_id, rows[-1].seq) if rows else None
    more = last.encode() if last is not None and len(rows) == limit else None
    return ReadingPage(device=urn, readings=[_reading(r) for r in rows], next_cursor=more)


_CSV_COLUMNS = (
    "time",
    "device",
    "name",
    "unit",
    "value",
    "string_value",
    "bool_value",
    "data_value",
    "sum",
    "origin",
    "delivery_id",
    "seq",
)


def _export_rows(
    store: storage.Store, urn: str, start: datetime | None, end: datetime | None, name: str | None
) -> Iterator[list[Row[Any]]]:
    after = None
    while True:
        # A fresh connection per page: no transaction is held open while the client reads.
        with store.read_engine.connect() as conn:
            rows = storage.read_readings(
                conn, device=urn, start=start, end=end, name=name, limit=EXPORT_PAGE, after=after
            )
        if not rows:
            return
        yield rows
        after = storage.ReadingKey(rows[-1].time, rows[-1].delivery_id, rows[-1].seq)


def _csv(pages: Iterator[list[Row[Any]]], urn: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for rows in pages:
        for r in rows:
            writer.writerow(
                [
                    r.time.isoformat(),
                    urn,
                    r.name,
                    r.unit,
                    r.value,
                    r.string_value,
                    r.bool_value,
                    _b64(r.data_value),
                    r.sum_value,
                    r.origin,
                    r.delivery_id,
                    r.seq,
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _senml(pages: Iterator[list[Row[Any]]], urn: str) -> Iterator[str]:
    yield "["
    first = True
    for rows in pages:
        parts = []
        for r in rows:
            record: dict[str, Any] = {"bn": urn + ":"} if first else {}
            record.update(n=r.name, t=r.time.timestamp())
            if r.unit is not None:
                record["u"] = r.unit
            for key, value in (
                ("v", r.value),
                ("vs", r.string_value),
                ("vb", r.bool_value),
                ("vd", _b64(r.data_value)),
                ("s", r.sum_value),
            ):
                if value is not None:
                    record[key] = value
            parts.append(("" if first else ",") + json.dumps(record, ensure_ascii=False))
            first = False
        yield "".join(parts)
    yield "]"


@router.get(
    "/devices/{device}/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/senml+json": {}}},
        **_NOT_FOUND,
    },
)
def export_readings(
    store: StoreDep,
    device: Annotated[str, Path(description=_DEVICE_DOC)],
    format: Literal["csv", "json"] = "csv",
    start: Start = None,
    end: End = None,
    name: Name = None,
) -> StreamingResponse:
    """Export one device's readings as CSV or as a SenML JSON pack, oldest first."""
    urn = _existing_device(store, device)
    pages = _export_rows(
        store, urn, _utc(start, "start"), _utc(end, "end"), _text(name, "name") if name else None
    )
    stem = urn.rsplit(":", 1)[-1]
    if format == "csv":
        body, media_type, suffix = _csv(pages, urn), "text/csv", "csv"
    else:
        body, media_type, suffix = _senml(pages, urn), "application/senml+json", "json"
    disposition = f'attachment; filename="{stem}-readings.{suffix}"'
    return StreamingResponse(
        body, media_type=media_type, headers={"Content-Disposition": disposition}
    )


def _delivery(row: Row[Any]) -> DeliveryOut:
    values = dict(row._mapping)
    values["payload"] = row.payload.hex().upper() if row.payload is not None else None
    values["headers"] = json.loads(row.headers)
    values["body"] = bytes(row.body).decode("utf-8", "replace")
    values["network_metadata"] = (
        json.loads(row.network_metadata) if row.network_metadata is not None else None
    )
    return DeliveryOut.model_validate(values)


@router.get("/deliveries", response_model=DeliveryPage)
def list_deliveries(
    store: StoreDep,
    device: Annotated[str | None, Query(max_length=200, description=_DEVICE_DOC)] = None,
    decode_status: Literal["ok", "error", "none"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> DeliveryPage:
    """List raw deliveries for audit, newest first."""
    before = None
    if cursor:
        text = _unopaque(cursor)
        if not text.isdigit() or not 0 < int(text) <= MAX_ID:
            raise BadRequestError("cursor is not one this API gave out")
        before = int(text)
    with store.read_engine.connect() as conn:
        rows = storage.list_deliveries(
            conn,
            device=_device_urn(device) if device else None,
            decode_status=decode_status,
            limit=limit,
            before_id=before,
        )
    more = _opaque(str(rows[-1].id)) if len(rows) == limit else None
    return DeliveryPage(deliveries=[_delivery(r) for r in rows], next_cursor=more)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryOut, responses=_NOT_FOUND)
def get_delivery(
    store: StoreDep, delivery_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> DeliveryOut:
    """Show one raw delivery, body and kept headers included."""
    with store.read_engine.connect() as conn:
        row = storage.get_delivery(conn, delivery_id=delivery_id)
    if row is None:
        raise NotFoundError(f"no delivery {delivery_id}")
    return _delivery(row)
