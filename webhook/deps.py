"""Dependencies shared by the routes: settings, the store, the ingest path, read-API auth."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lora_emotion.errors import VerificationError

from .config import Settings, get_settings
from .session import SESSION_COOKIE, session_valid
from .storage import Store

__all__ = ["ReaderDep", "SettingsDep", "StoreDep", "require_reader"]

SettingsDep = Annotated[Settings, Depends(get_settings)]

# The dependencies are coroutines although they never wait: FastAPI runs plain functions in
# its thread pool, a hand-over that costs more than everything they do.


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]

_bearer = HTTPBearer(auto_error=False, description="A token from LORA_EMOTION_READ_TOKENS.")


async def require_reader(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through only with one of the configured read tokens, or the dashboard's
    session cookie (which a read token opened; see ``dashboard/session.py``).

    Raises:
        VerificationError: no bearer token, or not a configured one (401).
    """
    if not settings.read_tokens:
        raise VerificationError("the read API is closed: no tokens in LORA_EMOTION_READ_TOKENS")
    if credentials is None and session_valid(settings, request.cookies.get(SESSION_COOKIE)):
        return
    if credentials is None:
        raise VerificationError("missing bearer token (Authorization: Bearer <token>)")
    offered = credentials.credentials.encode("utf-8", "replace")
    matched = False
    for token in settings.read_tokens:
        matched |= hmac.compare_digest(token.get_secret_value().encode("utf-8"), offered)
    if not matched:
        raise VerificationError("bearer token is not valid")


ReaderDep = Depends(require_reader)
