"""The one exception hierarchy of lora_emotion.

Every error the package raises on purpose derives from :class:`LoraEmotionError`, which is a
:class:`ValueError`, so callers that only know builtins still catch bad input. Each class
carries ``http_status``: the webhook maps any of them to a response in a single exception
handler instead of guessing per call site.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "EncodeError",
    "LoraEmotionError",
    "PayloadTooLargeError",
    "TruncatedPayloadError",
    "VerificationError",
]


class LoraEmotionError(ValueError):
    """Root of every error this project raises for bad data."""

    http_status: int = 400


class DecodeError(LoraEmotionError):
    """Bytes (or a document) that cannot be decoded.

    Args:
        message: what is wrong, in words.
        field: the field being read when the problem was found.
        offset: the byte offset of that field in the input, when known.
    """

    http_status = 422

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None):
        self.field = field
        self.offset = offset
        where = []
        if offset is not None:
            where.append(f"byte {offset}")
        if field is not None:
            where.append(f"({field})" if where else field)
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.reason = message


class TruncatedPayloadError(DecodeError, EOFError):
    """The input ended before a field was complete."""

    def __init__(self, *, field: str, expected: int, got: int, offset: int = 0):
        self.expected = expected
        self.got = got
        super().__init__(
            f"payload truncated: expected {expected} bytes, got {got}", field=field, offset=offset
        )


class EncodeError(LoraEmotionError):
    """A value that cannot be encoded: out of range, unknown label, wrong shape.

    Args:
        message: what is wrong, in words.
        field: the name of the offending field (``confidence``, ``probabilities[3]`` ...).
    """

    http_status = 422

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        self.reason = message
        super().__init__(f"{field}: {message}" if field else message)


class PayloadTooLargeError(EncodeError):
    """An encoded payload would exceed the maximum application payload size."""

    def __init__(self, *, field: str, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(f"needs {size} bytes, more than the {limit}-byte limit", field=field)


class VerificationError(LoraEmotionError):
    """A signature, token or message integrity code did not verify."""

    http_status = 401
