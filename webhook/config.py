"""Service configuration: environment variables (``LORA_EMOTION_*``) over an optional TOML file.

Why a file as well as variables: shared secrets rotate, and a destination has several of them
for a while; a TOML table says that more legibly than a JSON string in a unit file. The file
is named by ``LORA_EMOTION_CONFIG`` so that every uvicorn worker process finds the same one.
Secrets and tokens are ``SecretStr`` so that no repr, log line or traceback prints them.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .alerts.rules import AlertSettings
from .schema import MAX_PLUG_UUID_LENGTH

__all__ = ["CONFIG_ENV", "DEFAULT_DATABASE_URL", "Settings", "get_settings", "sqlalchemy_url"]

CONFIG_ENV = "LORA_EMOTION_CONFIG"
DEFAULT_DATABASE_URL = "sqlite:///lora-emotion.sqlite3"
#: KPN Things refuses shared secrets shorter than this or without all four character classes.
KPN_SECRET_MIN_LENGTH = 32
READ_TOKEN_MIN_LENGTH = 32
_PLACEHOLDERS = ("changethis", "changeme", "placeholder", "example", "secret")


def sqlalchemy_url(url: str) -> str:
    """``url`` with PostgreSQL URLs pointed at the psycopg 3 driver that the extra installs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _weak_secret(value: str, *, min_length: int, classes: bool) -> str | None:
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDERS):
        return "looks like a placeholder"
    if len(value) < min_length:
        return f"shorter than {min_length} characters"
    if classes and not (
        re.search(r"[a-z]", value)
        and re.search(r"[A-Z]", value)
        and re.search(r"[0-9]", value)
        and re.search(r"[^A-Za-z0-9]", value)
    ):
        return "needs upper and lower case letters, a digit and a special character"
    return None


class Settings(BaseSettings):
    """Everything the webhook reads from its environment.

    Variables are the field names upper-cased behind ``LORA_EMOTION_``; the TOML file named
    by ``LORA_EMOTION_CONFIG`` uses the field names as keys. Variables win over the file.
    """

    # Validation errors must not echo the input: it holds secrets.
    model_config = SettingsConfigDict(
        env_prefix="LORA_EMOTION_", extra="ignore", hide_input_in_errors=True
    )

    environment: Literal["dev", "production"] = "dev"
    database_url: str = DEFAULT_DATABASE_URL
    #: Things-Plug-UUID -> shared secrets; several during a rotation.
    destinations: dict[str, list[SecretStr]] = Field(default_factory=dict)
    #: The Things Stack application id -> tokens its webhook sends as a custom header
    #: (``Authorization: Bearer <token>`` or ``X-API-Key``); several during a rotation.
    ttn_applications: dict[str, list[SecretStr]] = Field(default_factory=dict)
    #: ChirpStack application UUID -> tokens its HTTP integration sends, likewise.
    chirpstack_applications: dict[str, list[SecretStr]] = Field(default_factory=dict)
    #: Bearer tokens for the read API (comma-separated or a JSON list in the variable).
    read_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    #: JSON document of user label sets (see lora_emotion.labels.parse_label_sets).
    labels_file: Path | None = None
    max_body_bytes: int = Field(default=65_536, ge=1_024, le=16 * 1024 * 1024)
    #: Most deliveries committed in one transaction.
    batch_max: int = Field(default=512, ge=1, le=10_000)
    #: Batches a worker may be committing at once on PostgreSQL (a connection each): more than
    #: one pays where a commit waits on a network; SQLite always commits one at a time.
    commit_concurrency: int = Field(default=1, ge=1, le=16)
    #: How long a delivery waits for its commit before the answer is 503.
    store_timeout_s: float = Field(default=10.0, gt=0, le=120)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0, le=600_000)
    #: Connections per worker for the read API on PostgreSQL (the writer has its own).
    read_pool_size: int = Field(default=4, ge=1, le=100)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    #: Alert rules, device tags and channels: the ``[alerts]`` table (docs/alerts.md).
    alerts: AlertSettings = Field(default_factory=AlertSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ValueError(f"{CONFIG_ENV}={config_file}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("destinations", "ttn_applications", "chirpstack_applications", mode="before")
    @classmethod
    def _one_or_more_secrets(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = json.loads(value)
        if not isinstance(value, dict):
            return value
        normalised: dict[str, Any] = {}
        for plug, secrets in value.items():
            key = str(plug).strip().lower()
            if len(key) > MAX_PLUG_UUID_LENGTH:
                # Every delivery to it would be refused (422); say so before starting.
                raise ValueError(
                    f"a destination's Things-Plug-UUID has {len(key)} characters, more than "
                    f"the {MAX_PLUG_UUID_LENGTH} the store keeps"
                )
            normalised[key] = [secrets] if isinstance(secrets, str | SecretStr) else secrets
        return normalised

    @field_validator("read_tokens", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _driver(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgres")):
            raise ValueError("only sqlite:/// and postgresql:// URLs are supported")
        return sqlalchemy_url(value)

    @model_validator(mode="after")
    def _production_refuses_weak_secrets(self) -> Settings:
        if self.environment == "production":
            problems = self.weaknesses()
            if problems:
                raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    def weaknesses(self) -> list[str]:
        """Secrets or tokens too weak for production, described without their values."""
        problems = []
        for plug, secrets in self.destinations.items():
            if not secrets:
                problems.append(f"destination {plug} has no shared secret")
            for position, secret in enumerate(secrets):
                reason = _weak_secret(
                    secret.get_secret_value(), min_length=KPN_SECRET_MIN_LENGTH, classes=True
                )
                if reason:
                    problems.append(f"secret {position} of destination {plug} {reason}")
        for network, applications in (
            ("The Things Stack", self.ttn_applications),
            ("ChirpStack", self.chirpstack_applications),
        ):
            for application, tokens in applications.items():
                if not tokens:
                    problems.append(f"{network} application {application} has no token")
                for position, token in enumerate(tokens):
                    reason = _weak_secret(
                        token.get_secret_value(), min_length=READ_TOKEN_MIN_LENGTH, classes=False
                    )
                    if reason:
                        problems.append(
                            f"token {position} of {network} application {application} {reason}"
                        )
        for position, token in enumerate(self.read_tokens):
            reason = _weak_secret(
                token.get_secret_value(), min_length=READ_TOKEN_MIN_LENGTH, classes=False
            )
            if reason:
                problems.append(f"read token {position} {reason}")
        return problems

    def secrets_for(self, plug_uuid: str) -> list[str]:
        """The shared secrets of destination ``plug_uuid`` (empty if it is not configured)."""
        return [s.get_secret_value() for s in self.destinations.get(plug_uuid.strip().lower(), [])]

    def network_tokens(self, network: Literal["ttn", "chirpstack"]) -> dict[str, list[str]]:
        """Application id -> current tokens of The Things Stack or ChirpStack."""
        applications = self.ttn_applications if network == "ttn" else self.chirpstack_applications
        return {app: [t.get_secret_value() for t in tokens] for app, tokens in applications.items()}

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
