"""Alert rules and channels as the configuration file declares them (``[alerts]`` in the TOML).

Why rules are validated one by one: pydantic's own message for a list of tagged unions names a
position and a union tag (``alerts.rules.2.sustained.k``), which a person editing a file of
twenty rules has to count out. Each rule is checked on its own here and a failure is reported
as ``alert rule 'name' (alerts.rules[2]), field 'k': ...``, so the service refuses to start
with the rule and field named.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from lora_emotion.networks.kpn import DEVEUI_URN_PREFIX

__all__ = [
    "AlertSettings",
    "ChangeRule",
    "EmailChannel",
    "MqttChannel",
    "Rule",
    "SilenceRule",
    "SustainedRule",
    "TroubleRule",
    "WebhookChannel",
    "device_urn",
    "parse_duration",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EUI = re.compile(r"[0-9A-Fa-f]{16}")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

Severity = Literal["info", "warning", "critical"]


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a text such as ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``.

    Anything else is handed back for the field's own type check to refuse.
    """
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration (a number of seconds, or 90s, 10m, 2h)")
        return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return value


def device_urn(value: str) -> str:
    """A device as the store names it: a bare DevEUI becomes ``urn:dev:DEVEUI:<upper>``."""
    text = value.strip()
    if _EUI.fullmatch(text):
        return DEVEUI_URN_PREFIX + text.upper()
    if text.lower().startswith(DEVEUI_URN_PREFIX.lower()):
        eui = text[len(DEVEUI_URN_PREFIX) :].rstrip(":")
        if _EUI.fullmatch(eui):
            return DEVEUI_URN_PREFIX + eui.upper()
    if not text.startswith("urn:dev:"):
        raise ValueError(f"{value!r} is neither a DevEUI (16 hex digits) nor a urn:dev: URN")
    return text


class FieldProblem(ValueError):
    """A check across fields of a rule that is best reported against one of them."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


Seconds = Annotated[float, Field(ge=0, le=366 * 86400)]


class _Rule(BaseModel):
    """What every rule has: a name, which devices, how loud, how often, where to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    #: Devices by URN or bare DevEUI; absent (and no ``tag``) means every device.
    devices: list[str] | None = None
    #: A tag of ``[alerts.tags]``: the devices listed under it.
    tag: str | None = None
    severity: Severity = "warning"
    #: No new alert of this rule for a device within this long of its last one.
    cooldown_s: Seconds = 300.0
    #: Send a "resolved" notice when the condition clears.
    recovery: bool = True
    #: Channel names (``mqtt``, ``email``, a webhook's name); absent means every channel.
    channels: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value):
            raise ValueError(
                "1-64 letters, digits, '_', '.' or '-', starting with one of the first two"
            )
        return value

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("an empty list selects no device; leave it out for every device")
        return [device_urn(item) for item in value]

    @field_validator("cooldown_s", mode="before")
    @classmethod
    def _cooldown(cls, value: Any) -> Any:
        return parse_duration(value)

    @model_validator(mode="after")
    def _one_selection(self) -> _Rule:
        if self.devices is not None and self.tag is not None:
            raise FieldProblem("tag", "give either devices or tag, not both")
        return self


class SustainedRule(_Rule):
    """Label ``label`` with confidence at least ``confidence`` in ``k`` of a device's last ``n``
    emotion readings; or, with ``share``, a window summary where ``label`` has at least that
    share of the readings."""

    kind: Literal["sustained"]
    label: str = Field(min_length=1, max_length=64)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    k: int | None = Field(default=None, ge=1, le=100)
    n: int | None = Field(default=None, ge=1, le=100)
    share: float | None = Field(default=None, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _window(self) -> SustainedRule:
        if self.share is not None:
            if self.k is not None or self.n is not None:
                raise FieldProblem(
                    "share", "give either share (window summaries) or k and n, not both"
                )
            return self
        if self.k is None or self.n is None:
            missing = "k" if self.k is None else "n"
            raise FieldProblem(missing, "needs k and n (k of the last n readings), or share")
        if self.k > self.n:
            raise FieldProblem("k", f"k ({self.k}) is more than n ({self.n})")
        return self


class ChangeRule(_Rule):
    """The device's dominant (latest) emotion label changes to one of ``to``."""

    kind: Literal["change"]
    to: list[str] = Field(min_length=1)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)


class SilenceRule(_Rule):
    """No delivery from the device for ``after_s``."""

    kind: Literal["silence"]
    after_s: Annotated[float, Field(ge=10, le=366 * 86400)]

    @field_validator("after_s", mode="before")
    @classmethod
    def _after(cls, value: Any) -> Any:
        return parse_duration(value)


class TroubleRule(_Rule):
    """A status message reports low battery, dropped readings or a label set the service does
    not know as the device does."""

    kind: Literal["trouble"]
    #: Battery percentage below which the device is in trouble; null to ignore the battery.
    battery_below: float | None = Field(default=20.0, ge=0, le=100)
    #: Dropped readings (as the status reports them) above which the device is in trouble.
    dropped_above: int | None = Field(default=0, ge=0)
    label_set_mismatch: bool = True


Rule = Annotated[
    SustainedRule | ChangeRule | SilenceRule | TroubleRule, Field(discriminator="kind")
]
_RULE = TypeAdapter(Rule)


class MqttChannel(BaseModel):
    """An MQTT broker: alerts to ``<prefix>/alerts/<device>/<severity>`` (QoS 1), each device's
    alert state retained at ``<prefix>/state/<device>``, and optionally every decoded reading
    to ``<prefix>/readings/<device>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    topic_prefix: str = "lora-emotion"
    client_id: str | None = None
    publish_readings: bool = False
    timeout_s: float = Field(default=5.0, gt=0, le=120)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or "+" in value or "#" in value or value.startswith("/"):
            raise ValueError("a topic prefix without wildcards and not starting with '/'")
        return value.rstrip("/")


class WebhookChannel(BaseModel):
    """An HTTP endpoint that gets each alert as JSON, signed per Standard Webhooks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    #: ``whsec_<base64>`` secrets; every one signs, so the receiver can rotate.
    secrets: list[SecretStr] = Field(min_length=1)
    timeout_s: float = Field(default=5.0, gt=0, le=120)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.fullmatch(value) or value in ("mqtt", "email"):
            raise ValueError("a name of letters, digits, '_', '.', '-' other than mqtt and email")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"https?://[^\s/]+", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("secrets")
    @classmethod
    def _whsec(cls, value: list[SecretStr]) -> list[SecretStr]:
        import base64
        import binascii

        for position, secret in enumerate(value):
            text = secret.get_secret_value()
            if not text.startswith("whsec_"):
                raise ValueError(f"secret {position} does not start with whsec_")
            try:
                key = base64.b64decode(text[len("whsec_") :], validate=True)
            except binascii.Error:
                raise ValueError(f"secret {position} is not base64 after whsec_") from None
            if not 24 <= len(key) <= 64:
                raise ValueError(f"secret {position} must be 24 to 64 bytes")
        return value


class EmailChannel(BaseModel):
    """An SMTP server that mails each alert as plain text."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    #: ``starttls`` (submission, port 587), ``tls`` (implicit, 465) or ``none`` (local relay).
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: A CA bundle to trust instead of the system's (a private relay's certificate).
    ca_file: str | None = None


class AlertSettings(BaseModel):
    """The ``[alerts]`` table: rules, device tags, channels and the dispatcher's pacing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)
    #: tag -> devices (URN or DevEUI) for the rules' ``tag``.
    tags: dict[str, list[str]] = Field(default_factory=dict)
    mqtt: MqttChannel | None = None
    webhooks: list[WebhookChannel] = Field(default_factory=list)
    email: EmailChannel | None = None
    #: First retry after this long, doubling up to ``retry_max_s`` (never given up).
    retry_base_s: float = Field(default=2.0, gt=0, le=3600)
    retry_max_s: float = Field(default=300.0, gt=0, le=86400)
    #: How often each worker looks for due deliveries that another process queued.
    poll_s: float = Field(default=0.5, gt=0, le=60)
    #: How often silence is checked.
    silence_check_s: float = Field(default=10.0, gt=0, le=3600)
    #: A claimed delivery not finished within this long is taken up by another worker.
    lease_s: float = Field(default=60.0, ge=5, le=3600)

    @field_validator("rules", mode="before")
    @classmethod
    def _each_rule(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        checked = []
        for position, raw in enumerate(value):
            name = raw.get("name", "?") if isinstance(raw, dict) else "?"
            where = f"alert rule {name!r} (alerts.rules[{position}])"
            if isinstance(raw, dict) and raw.get("kind") not in (
                "sustained",
                "change",
                "silence",
                "trouble",
            ):
                raise ValueError(
                    f"{where}, field 'kind': {raw.get('kind')!r} is not one of "
                    "sustained, change, silence, trouble"
                )
            try:
                checked.append(_RULE.validate_python(raw))
            except ValidationError as exc:
                error = exc.errors(include_input=False)[0]
                cause = error.get("ctx", {}).get("error")
                if isinstance(cause, FieldProblem):
                    field = cause.field
                else:
                    field = ".".join(str(part) for part in error["loc"][1:]) or "(the rule)"
                message = error["msg"].removeprefix("Value error, ")
                raise ValueError(f"{where}, field {field!r}: {message}") from None
        return checked

    @field_validator("tags")
    @classmethod
    def _tag_devices(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {tag: [device_urn(device) for device in devices] for tag, devices in value.items()}

    @model_validator(mode="after")
    def _references(self) -> AlertSettings:
        names = self.channel_names()
        seen: set[str] = set()
        for position, rule in enumerate(self.rules):
            where = f"alert rule {rule.name!r} (alerts.rules[{position}])"
            if rule.name in seen:
                raise ValueError(f"{where}, field 'name': another rule has this name")
            seen.add(rule.name)
            if rule.tag is not None and rule.tag not in self.tags:
                raise ValueError(f"{where}, field 'tag': no tag {rule.tag!r} in [alerts.tags]")
            for channel in rule.channels or []:
                if channel not in names:
                    known = ", ".join(names) or "none is configured"
                    raise ValueError(
                        f"{where}, field 'channels': no channel {channel!r} (known: {known})"
                    )
        webhook_names = [hook.name for hook in self.webhooks]
        if len(set(webhook_names)) != len(webhook_names):
            raise ValueError("alerts.webhooks: two webhooks have the same name")
        if self.retry_max_s < self.retry_base_s:
            raise ValueError("alerts.retry_max_s is less than alerts.retry_base_s")
        return self

    def channel_names(self) -> list[str]:
        """Every configured channel's name."""
        names = ["mqtt"] if self.mqtt is not None else []
        names += [hook.name for hook in self.webhooks]
        if self.email is not None:
            names.append("email")
        return names

    def channels_of(self, rule: _Rule) -> list[str]:
        """The channels an alert of ``rule`` goes to."""
        return list(rule.channels) if rule.channels is not None else self.channel_names()

    def selects(self, rule: _Rule, device: str) -> bool:
        """Whether ``rule`` applies to ``device``."""
        if rule.devices is not None:
            return device in rule.devices
        if rule.tag is not None:
            return device in self.tags[rule.tag]
        return True

    def secrets(self) -> list[str]:
        """Every secret the channels hold, for the log redactor."""
        found = [s.get_secret_value() for hook in self.webhooks for s in hook.secrets]
        for channel in (self.mqtt, self.email):
            if channel is not None and channel.password is not None:
                found.append(channel.password.get_secret_value())
        return found
