"""Errors of the service, each carrying the HTTP status the one exception handler answers with.

They extend the project's :class:`~lora_emotion.errors.LoraEmotionError` so that a codec error
(422) and a service error (413, 503 ...) reach the client through the same handler.
"""

from __future__ import annotations

from lora_emotion.errors import LoraEmotionError, VerificationError

__all__ = [
    "BadRequestError",
    "BodyTooLargeError",
    "NotFoundError",
    "StoreLimitError",
    "StoreRefusedError",
    "StoreUnavailableError",
    "UnknownDestinationError",
    "UnsupportedMediaTypeError",
]


class BadRequestError(LoraEmotionError):
    """A request that is malformed in a way no schema caught (a bad cursor)."""

    http_status = 400


class UnknownDestinationError(VerificationError):
    """A ``Things-Plug-UUID`` that names no configured destination."""

    http_status = 403


class NotFoundError(LoraEmotionError):
    """No such device or delivery."""

    http_status = 404


class BodyTooLargeError(LoraEmotionError):
    """The body exceeds ``max_body_bytes``."""

    http_status = 413


class UnsupportedMediaTypeError(LoraEmotionError):
    """The body is not declared as JSON."""

    http_status = 415


class StoreUnavailableError(LoraEmotionError):
    """The store could not commit; the sender should retry (KPN does, up to three times)."""

    http_status = 503


class StoreRefusedError(LoraEmotionError):
    """The store refused this delivery's rows for their content (a value it cannot hold).

    Not retryable: the same bytes would be refused again, so the answer is 422, and the
    deliveries that shared its batch are committed without it.
    """

    http_status = 422


class StoreLimitError(LoraEmotionError):
    """A value of the delivery is longer than the store keeps (a header, a name, a unit).

    Args:
        message: what is too long, in words.
        field: the field that holds it.
    """

    http_status = 422

    def __init__(self, message: str, *, field: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")
