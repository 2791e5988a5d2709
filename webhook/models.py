"""Response bodies of the API, as pydantic models for validation and the OpenAPI document."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "DeliveryOut",
    "DeliveryPage",
    "DeviceOut",
    "DevicePage",
    "EventIgnored",
    "Problem",
    "ReadingOut",
    "ReadingPage",
    "UplinkAccepted",
]


class Problem(BaseModel):
    """An error answer: what was wrong, in words."""

    detail: str | list[Any]


class UplinkAccepted(BaseModel):
    """The answer to a delivery that is committed (or was already)."""

    status: Literal["stored", "duplicate"]
    delivery_id: int | None = Field(description="Id of the stored delivery; null for a duplicate.")
    device: str
    readings: int = Field(description="Resolved records, including those decoded from a payload.")
    decode_status: Literal["ok", "error", "none"]
    decode_error: str | None


class EventIgnored(BaseModel):
    """The answer to a message that is no uplink (a join, an acknowledgement, a log event)."""

    status: Literal["ignored"]
    event: str = Field(description="The message or event type, as the network names it.")


class DeviceOut(BaseModel):
    """A device with its latest emotion and when it was last seen."""

    urn: str
    dev_eui: str | None
    first_seen: datetime = Field(description="When the first delivery naming it was received.")
    last_seen: datetime = Field(description="Time of its newest reading.")
    latest_emotion: str | None
    latest_confidence: float | None
    latest_time: datetime | None


class DevicePage(BaseModel):
    """Devices in URN order; pass ``next_cursor`` as ``cursor`` for the next page."""

    devices: list[DeviceOut]
    next_cursor: str | None


class ReadingOut(BaseModel):
    """One stored (resolved) SenML record."""

    time: datetime
    name: str
    unit: str | None
    value: float | None
    string_value: str | None
    bool_value: bool | None
    data_value: str | None = Field(description="Base64url, as SenML JSON writes vd.")
    sum: float | None
    origin: Literal["kpn", "payload"] = Field(
        description="kpn: as delivered; payload: decoded here from the raw payload."
    )
    delivery_id: int
    seq: int


class ReadingPage(BaseModel):
    """A page of one device's readings; pass ``next_cursor`` as ``cursor`` to continue."""

    device: str
    readings: list[ReadingOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    """A raw delivery as received, for audit."""

    id: int
    dedup_key: str
    plug_uuid: str
    device: str
    received_at: datetime
    event_time: datetime | None
    kind: str
    decode_status: str
    decode_error: str | None
    fport: int | None
    payload: str | None = Field(description="The raw FRMPayload as upper-case hex.")
    reading_count: int
    headers: dict[str, str]
    body: str = Field(description="The body as received (UTF-8).")
    network: Literal["kpn", "ttn", "chirpstack"] = Field(description="Who delivered it.")
    network_metadata: dict[str, Any] | None = Field(
        description="What The Things Stack or ChirpStack said beside the payload: frame "
        "counter, application, radio (rssi, snr, gateways, spreading_factor ...) and "
        "simulated (true for an uplink simulated in the console)."
    )


class DeliveryPage(BaseModel):
    """Deliveries, newest first; pass ``next_cursor`` as ``cursor`` for older ones."""

    deliveries: list[DeliveryOut]
    next_cursor: str | None
