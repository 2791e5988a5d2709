"""The static tokens The Things Stack and ChirpStack send in headers, checked in constant time.

Neither network signs its requests: the user adds a header to the webhook or integration
(``Authorization: Bearer <token>`` or ``X-API-Key: <token>``), and the receiver compares it
with the tokens configured per application, several at once while one is being rotated out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

__all__ = ["ApplicationTokens", "matching_applications", "presented_token"]


def presented_token(authorization: str | None, api_key: str | None) -> str | None:
    """The token a request presents: ``Authorization: Bearer <token>``, else ``X-API-Key``.

    Returns:
        The token, or ``None`` when the request presents none (an ``Authorization`` header of
        another scheme counts as none).
    """
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    if api_key and api_key.strip():
        return api_key.strip()
    return None


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class ApplicationTokens:
    """The configured tokens of every application, ready to compare.

    Args:
        tokens_by_application: application id -> its current tokens (several during a
            rotation).
    """

    __slots__ = ("_digests",)

    def __init__(self, tokens_by_application: Mapping[str, Sequence[str]]) -> None:
        # Digested once: every request compares against all of them.
        self._digests = [
            (application, [_digest(token) for token in tokens])
            for application, tokens in tokens_by_application.items()
        ]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def matching(self, token: str) -> frozenset[str]:
        """The applications one of whose tokens is ``token``.

        Every configured token is compared, whatever the earlier ones gave, and each
        comparison is ``hmac.compare_digest`` of SHA-256 digests (equal lengths), so the time
        taken tells nothing about the token, not even its length.
        """
        offered = _digest(token)
        matched = set()
        for application, digests in self._digests:
            found = False
            for candidate in digests:
                found |= hmac.compare_digest(candidate, offered)
            if found:
                matched.add(application)
        return frozenset(matched)


def matching_applications(
    token: str, tokens_by_application: Mapping[str, Sequence[str]]
) -> frozenset[str]:
    """The applications one of whose tokens is ``token``: :meth:`ApplicationTokens.matching`."""
    return ApplicationTokens(tokens_by_application).matching(token)
