"""KPN Things HTTPS-destination deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import Route

from ..ingest import IngestEndpoint
from ..models import Problem, UplinkAccepted

#: Where KPN posts its deliveries.
INGEST_PATH = "/uplinks/kpn"


def routes() -> list[Route]:
    """The delivery routes the application serves: plain ASGI endpoints (see IngestEndpoint)."""
    return [Route(INGEST_PATH, IngestEndpoint("ingest"), methods=["POST"], name="receive_kpn")]


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
