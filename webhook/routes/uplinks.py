"""The delivery routes: KPN Things, The Things Stack and ChirpStack, one pipeline each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import Route

from lora_emotion.networks import Network

from ..ingest import IngestEndpoint
from ..models import EventIgnored, Problem, UplinkAccepted

#: Where KPN posts its deliveries.
INGEST_PATH = "/uplinks/kpn"
#: Where The Things Stack's webhooks and ChirpStack's HTTP integration post.
TTN_PATH = "/uplinks/ttn"
CHIRPSTACK_PATH = "/uplinks/chirpstack"
#: Each network's pipeline on ``app.state`` (set up by the lifespan).
INGEST_STATE_KEYS: dict[Network, str] = {
    "kpn": "ingest",
    "ttn": "ingest_ttn",
    "chirpstack": "ingest_chirpstack",
}


def routes() -> list[Route]:
    """The delivery routes the application serves: plain ASGI endpoints (see IngestEndpoint)."""
    return [
        Route(INGEST_PATH, IngestEndpoint("ingest"), methods=["POST"], name="receive_kpn"),
        Route(TTN_PATH, IngestEndpoint("ingest_ttn"), methods=["POST"], name="receive_ttn"),
        Route(
            CHIRPSTACK_PATH,
            IngestEndpoint("ingest_chirpstack"),
            methods=["POST"],
            name="receive_chirpstack",
        ),
    ]


#: Documents the routes above in the OpenAPI document, which FastAPI writes only for routes
#: it declares; main.py adds these to the document. Never mounted: nothing here is served.
openapi_router = APIRouter(prefix="/uplinks", tags=["uplinks"])

_RECORD: dict[str, Any] = {
    "type": "object",
    "properties": {
        "bn": {"type": "string"},
        "bt": {"type": "number"},
        "bu": {"type": "string"},
        "bv": {"type": "number"},
        "n": {"type": "string"},
        "u": {"type": "string"},
        "v": {"type": "number"},
        "vs": {"type": "string"},
        "vb": {"type": "boolean"},
        "vd": {"type": "string"},
        "s": {"type": "number"},
        "t": {"type": "number"},
        "ut": {"type": "number"},
    },
    "additionalProperties": True,
}
_SENML_PACK: dict[str, Any] = {
    "type": "array",
    "items": _RECORD,
    "example": [
        {"bn": "urn:dev:DEVEUI:0004A30B001F1234:", "bt": 1.615572314e9},
        {"n": "payload", "vs": "81A20067656D6F74696F6E03656861707079"},
        {"n": "port", "v": 1},
    ],
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "Missing Things-* header or a token that does not verify"),
        (403, "Things-Plug-UUID names no configured destination"),
        (413, "Body larger than LORA_EMOTION_MAX_BODY_BYTES"),
        (415, "Content-Type is not application/json"),
        (422, "Not a SenML JSON pack, or no device in it"),
        (503, "The store cannot commit; retry later (KPN retries by itself)"),
    )
}


# The headers are read from the request, not declared as parameters: FastAPI re-inspects the
# type of each declared parameter on every request, which measured at about a tenth of the
# whole cost of a delivery. They are documented here instead.
_HEADERS = [
    {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }
    for name, description in (
        ("Things-Plug-UUID", "Id of the KPN destination; selects the shared secrets"),
        ("Things-Message-Token", "Lowercase hex SHA-256 of the body followed by the secret"),
    )
]


@openapi_router.post(
    "/kpn",
    response_model=UplinkAccepted,
    responses=_ERRORS,
    openapi_extra={
        "parameters": _HEADERS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _SENML_PACK}},
        },
    },
)
async def receive_kpn() -> None:
    """Verify and store one KPN Things delivery; 200 means it is committed."""
    raise NotImplementedError("documentation only: routes() serves this path")


_TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "description": description}
    for status, description in (
        (401, "No 'Authorization: Bearer <token>' or 'X-API-Key', or a token of no application"),
        (403, "The application is not configured, or the token is another application's"),
        (413, "Body larger than LORA_EMOTION_MAX_BODY_BYTES"),
        (415, "Content-Type is not application/json"),
        (422, "A field missing or of the wrong type; the message names it"),
        (503, "The store cannot commit; retry later"),
    )
}
_TOKEN_HEADERS = [
    {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }
    for name, description in (
        ("Authorization", "Bearer <token>: a token of the application, set as a custom header"),
        ("X-API-Key", "The token, when sent in this header instead"),
    )
]
_TTN_UPLINK: dict[str, Any] = {
    "type": "object",
    "required": ["end_device_ids"],
    "properties": {
        "end_device_ids": {
            "type": "object",
            "properties": {
                "device_id": {"type": "string"},
                "application_ids": {
                    "type": "object",
                    "properties": {"application_id": {"type": "string"}},
                },
                "dev_eui": {"type": "string"},
            },
        },
        "received_at": {"type": "string", "format": "date-time"},
        "uplink_message": {
            "type": "object",
            "properties": {
                "session_key_id": {"type": "string"},
                "f_port": {"type": "integer"},
                "f_cnt": {"type": "integer"},
                "frm_payload": {"type": "string", "format": "byte"},
                "rx_metadata": {"type": "array", "items": {"type": "object"}},
                "settings": {"type": "object"},
                "received_at": {"type": "string", "format": "date-time"},
                "consumed_airtime": {"type": "string"},
            },
        },
        "simulated": {"type": "boolean"},
    },
    "additionalProperties": True,
    "example": {
        "end_device_ids": {
            "device_id": "relay-7",
            "application_ids": {"application_id": "my-app"},
            "dev_eui": "70B3D57ED005E2A1",
        },
        "received_at": "2026-03-12T18:05:14.123456789Z",
        "uplink_message": {
            "session_key_id": "AXZkNZjJuP9Ee5p9AUsdQw==",
            "f_port": 16,
            "f_cnt": 42,
            "frm_payload": "AYY=",
            "rx_metadata": [{"gateway_ids": {"gateway_id": "gw-1"}, "rssi": -97, "snr": 7.2}],
            "received_at": "2026-03-12T18:05:14.123456789Z",
        },
    },
}
_CHIRPSTACK_UP: dict[str, Any] = {
    "type": "object",
    "properties": {
        "deduplicationId": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "deviceInfo": {
            "type": "object",
            "properties": {
                "applicationId": {"type": "string"},
                "deviceName": {"type": "string"},
                "devEui": {"type": "string"},
            },
        },
        "fCnt": {"type": "integer"},
        "fPort": {"type": "integer"},
        "data": {"type": "string", "format": "byte"},
        "rxInfo": {"type": "array", "items": {"type": "object"}},
        "txInfo": {"type": "object"},
    },
    "additionalProperties": True,
    "example": {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2026-03-12T18:05:14.123456+00:00",
        "deviceInfo": {
            "applicationId": "17c82e96-be03-4f38-aef3-f83d48582d97",
            "devEui": "0004a30b001c2abc",
        },
        "fCnt": 42,
        "fPort": 16,
        "data": "AYY=",
    },
}


@openapi_router.post(
    "/ttn",
    response_model=UplinkAccepted | EventIgnored,
    responses=_TOKEN_ERRORS,
    openapi_extra={
        "parameters": _TOKEN_HEADERS,
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _TTN_UPLINK}},
        },
    },
)
async def receive_ttn() -> None:
    """Store one uplink message of The Things Stack (TTN v3) webhook; 200 means it is committed.

    Other message types (join accept, downlink events, location, service data) are answered
    200 `ignored` and counted, not stored.
    """
    raise NotImplementedError("documentation only: routes() serves this path")


@openapi_router.post(
    "/chirpstack",
    response_model=UplinkAccepted | EventIgnored,
    responses=_TOKEN_ERRORS,
    openapi_extra={
        "parameters": [
            *_TOKEN_HEADERS,
            {
                "name": "event",
                "in": "query",
                "required": True,
                "description": "The event type: up (stored), join, ack, txack, log, status, "
                "location, integration (answered 200 and counted)",
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _CHIRPSTACK_UP}},
        },
    },
)
async def receive_chirpstack() -> None:
    """Store one uplink event of ChirpStack's HTTP integration (JSON); 200 means committed."""
    raise NotImplementedError("documentation only: routes() serves this path")
