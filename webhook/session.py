"""Browser sessions for the dashboard: a read token exchanged for an HttpOnly cookie.

Why a signed cookie keyed by the token itself: the service keeps no session table, every worker
and host checks a cookie on its own, and removing a token from the configuration ends every
session opened with it. The cookie holds an expiry and a nonce, signed with HMAC-SHA256 under
the read token that opened it; JavaScript cannot read it (HttpOnly) and other sites cannot send
it (SameSite=Strict).

Why CSRF needs more than SameSite for the two forms (log in, log out): older browsers ignore
SameSite, and logging a victim into an attacker's session needs no cookie at all. Each form
carries a token that must equal a random ``csrf`` cookie (double submit), and a POST whose
Origin names another site is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from .config import Settings

__all__ = [
    "CSRF_COOKIE",
    "SESSION_COOKIE",
    "SESSION_LIFETIME_S",
    "check_csrf",
    "csrf_token",
    "matching_token",
    "new_session",
    "session_valid",
    "set_csrf",
    "set_session",
]

SESSION_COOKIE = "le_session"
CSRF_COOKIE = "le_csrf"
#: A page left open keeps working for a week without logging in again.
SESSION_LIFETIME_S = 7 * 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _sign(key: str, message: str) -> str:
    return _b64(hmac.new(key.encode(), message.encode(), hashlib.sha256).digest())


def matching_token(settings: Settings, offered: str) -> str | None:
    """The configured read token equal to ``offered`` (compared in constant time), or None."""
    found = None
    for token in settings.read_tokens:
        value = token.get_secret_value()
        if hmac.compare_digest(value.encode(), offered.encode("utf-8", "replace")):
            found = value
    return found


def new_session(token: str, *, now: float | None = None) -> str:
    """A session cookie value signed under ``token``, valid for ``SESSION_LIFETIME_S``."""
    expires = int((time.time() if now is None else now) + SESSION_LIFETIME_S)
    message = f"{expires}.{secrets.token_urlsafe(12)}"
    return f"{message}.{_sign(token, message)}"


def session_valid(settings: Settings, value: str | None, *, now: float | None = None) -> bool:
    """Whether ``value`` is an unexpired session signed by a configured read token."""
    if not value or value.count(".") != 2:
        return False
    message, _, signature = value.rpartition(".")
    expires = message.partition(".")[0]
    if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
        return False
    valid = False
    for token in settings.read_tokens:
        valid |= hmac.compare_digest(_sign(token.get_secret_value(), message), signature)
    return valid


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, value: str | None) -> None:
    """Set (or, with ``None``, clear) the session cookie on ``response``."""
    if value is None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_LIFETIME_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def csrf_token(request: Request) -> str:
    """The form token of this browser: its ``csrf`` cookie, or a new one to set with
    :func:`set_csrf`."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) < 20:
        token = secrets.token_urlsafe(24)
    return token


def set_csrf(response: Response, request: Request, token: str) -> None:
    """Give the browser its form token cookie, unless it already has this one."""
    if request.cookies.get(CSRF_COOKIE) == token:
        return
    response.set_cookie(
        CSRF_COOKIE, token, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


def check_csrf(request: Request, submitted: str | None) -> str | None:
    """Why a state-changing form POST must be refused, or None if it may proceed."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        if parts.netloc != request.headers.get("host", ""):
            return "the form was posted from another site"
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        return "the form is stale or was not sent by this page; reload it and try again"
    return None
