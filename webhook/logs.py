"""Structured logging: one JSON object per line, secrets scrubbed before anything is written.

Why no access log by default: uvicorn's access log writes a line per request and costs about a
third of the request rate on a small machine; the per-delivery facts that matter (outcome,
latency, decode errors) are Prometheus metrics, and every rejected or failed delivery is
logged here with its reason. ``lora-emotion serve --access-log`` turns the access log back on.

The service never passes a secret or token to a log call; :class:`Redactor` is the second line
of defence, for messages written by libraries (a driver error quoting a connection string).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = ["JsonFormatter", "Redactor", "logging_config", "redactor"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}
# user:password@ in database URLs
_URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]+):([^@\s]+)@")


class Redactor(logging.Filter):
    """Replaces every known secret (and passwords in URLs) in a record by ``[redacted]``."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()

    def set_secrets(self, secrets: Iterable[str]) -> None:
        """Scrub these values from now on (longest first, so no secret is half-replaced)."""
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def scrub(self, text: str) -> str:
        """``text`` without secrets."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, "[redacted]")
        return _URL_PASSWORD.sub(r"\1:[redacted]@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.scrub(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


#: The one redactor of the process, installed on the service's handlers.
redactor = Redactor()


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        return json.dumps(document, default=str)


def logging_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document for uvicorn and the service.

    Args:
        level: the level of the service's and uvicorn's loggers.
        fmt: ``json`` (one object per line) or ``text``.
    """
    formatter = (
        {"()": "lora_emotion.webhook.logs.JsonFormatter"}
        if fmt == "json"
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "default",
        "filters": ["redact"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "lora_emotion.webhook.logs._shared_redactor"}},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "lora_emotion": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["default"], "level": level, "propagate": False},
            "sqlalchemy": {"handlers": ["default"], "level": "WARNING", "propagate": False},
        },
    }


def _shared_redactor() -> Redactor:
    return redactor
