"""The alerts API (read-only, bearer token): the configured rules and channels, and the alerts
raised, each with where it has been delivered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from ..alerts import AlertService, outbox
from ..alerts.rules import device_urn
from ..deps import ReaderDep, StoreDep
from ..errors import BadRequestError
from ..models import Problem

router = APIRouter(
    prefix="/alerts",
    tags=["alerts"],
    dependencies=[ReaderDep],
    responses={
        400: {"model": Problem, "description": "A parameter the schema could not check"},
        401: {"model": Problem, "description": "Missing or unknown bearer token"},
        422: {"model": Problem, "description": "A parameter of the wrong type or range"},
    },
)


class RuleOut(BaseModel):
    """A configured alert rule, as the configuration file declares it (channels by name)."""

    name: str
    kind: Literal["sustained", "change", "silence", "trouble"]
    severity: str
    devices: list[str] | None = Field(description="Selected devices; null with no tag: all.")
    tag: str | None
    cooldown_s: float
    recovery: bool
    channels: list[str] = Field(description="Where its alerts go.")
    condition: dict[str, Any] = Field(description="The kind's own fields (label, k, n, ...).")


class ChannelOut(BaseModel):
    """A configured channel, without its address or secrets."""

    name: str
    kind: Literal["mqtt", "webhook", "email"]


class RulesOut(BaseModel):
    rules: list[RuleOut]
    channels: list[ChannelOut]
    tags: dict[str, list[str]]


class AlertDeliveryOut(BaseModel):
    """An alert's delivery to one channel."""

    channel: str
    delivered_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None = Field(description="Null once delivered.")
    last_error: str | None


class AlertOut(BaseModel):
    """An alert: a rule's condition began (``firing``) or ended (``resolved``) for a device."""

    id: str = Field(description="Stable id; the webhook-id, MQTT payload id and Message-ID.")
    rule: str
    device: str
    status: Literal["firing", "resolved"]
    severity: str
    created_at: datetime
    delivery_id: int | None = Field(description="The delivery that caused it (null: silence).")
    summary: str
    details: dict[str, Any]
    deliveries: list[AlertDeliveryOut]


class AlertPage(BaseModel):
    """Alerts newest first; pass ``next_cursor`` as ``before`` for older ones."""

    alerts: list[AlertOut]
    next_cursor: int | None


_COMMON = frozenset(
    {"name", "kind", "severity", "devices", "tag", "cooldown_s", "recovery", "channels"}
)


def _service(request: Request) -> AlertService:
    service: AlertService = request.app.state.alerts
    return service


@router.get("/rules", response_model=RulesOut)
async def list_rules(request: Request) -> RulesOut:
    """The alert rules, device tags and channels of the configuration file."""
    settings = _service(request).settings
    rules = [
        RuleOut(
            **{key: getattr(rule, key) for key in _COMMON - {"channels"}},
            channels=settings.channels_of(rule),
            condition=rule.model_dump(exclude=set(_COMMON)),
        )
        for rule in settings.rules
    ]
    channels = [ChannelOut(name="mqtt", kind="mqtt")] if settings.mqtt else []
    channels += [ChannelOut(name=hook.name, kind="webhook") for hook in settings.webhooks]
    if settings.email is not None:
        channels.append(ChannelOut(name="email", kind="email"))
    return RulesOut(rules=rules, channels=channels, tags=settings.tags)


@router.get("", response_model=AlertPage)
def list_alerts(
    store: StoreDep,
    device: Annotated[str | None, Query(max_length=200, description="Device URN or DevEUI")] = None,
    rule: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["firing", "resolved"] | None = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
) -> AlertPage:
    """Alerts raised, newest first, with their delivery to each channel."""
    urn = None
    if device is not None:
        try:
            urn = device_urn(device)
        except ValueError as exc:
            raise BadRequestError(str(exc)) from None
    rows = outbox.list_alerts(
        store.read_engine, device=urn, rule=rule, status=status, before=before, limit=limit
    )
    sent = outbox.deliveries_of(store.read_engine, [row.id for row in rows])
    found = [
        AlertOut(
            id=row.alert_id,
            rule=row.rule,
            device=row.device,
            status=row.status,
            severity=row.severity,
            created_at=row.created_at,
            delivery_id=row.delivery_id,
            summary=row.summary,
            details=orjson.loads(row.details),
            deliveries=[
                AlertDeliveryOut(
                    channel=d.channel,
                    delivered_at=d.delivered_at,
                    attempts=d.attempts,
                    next_attempt_at=None if d.delivered_at else d.next_attempt_at,
                    last_error=d.last_error,
                )
                for d in sent.get(row.id, [])
            ],
        )
        for row in rows
    ]
    more = rows[-1].id if len(rows) == limit else None
    return AlertPage(alerts=found, next_cursor=more)
