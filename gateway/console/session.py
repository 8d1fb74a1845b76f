"""Console sessions: a signed cookie naming a session kept in PostgreSQL, and the CSRF token of its forms.

The cookie (``console_session``) is ``<id>.<signature>``: 32 random bytes, and their HMAC-SHA256 under
``GATEWAY_CONSOLE_SECRET``, so that a forged cookie is refused without a query. The table holds the id's SHA-256
only: a copy of it opens no session. A session ends when unused for ``GATEWAY_CONSOLE_IDLE_S``, after
``GATEWAY_CONSOLE_SESSION_MAX_S`` in all, at logout, and when its member of staff is disabled or gets a new
password. Every process of every gateway reads the same table, so any of them serves any session.

Every form carries a token, the HMAC of the session id (of the login cookie's value on the login form, before
there is a session): a page of another site cannot know it, so it cannot post a form in the staff's name. The
cookies are HttpOnly and SameSite=Strict, and Secure when the console is served over TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import asyncpg
import msgspec
from starlette.requests import Request
from starlette.responses import Response

from core.rollup import Conn

PATH = "/console"
SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"


class Staff(msgspec.Struct, frozen=True):
    """The member of staff a session belongs to."""

    name: str
    role: str


def sign(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` for one purpose (a session cookie, a form token), lowercase hex."""
    return hmac.digest(secret.encode(), f"{purpose}:{value}".encode(), "sha256").hex()


def cookie_value(secret: str, session_id: str) -> str:
    return f"{session_id}.{sign(secret, 'session', session_id)}"


def session_id(secret: str, cookie: str | None) -> str | None:
    """The session id of a cookie whose signature holds, else None."""
    sid, _, signature = (cookie or "").partition(".")
    if not sid or not hmac.compare_digest(signature, sign(secret, "session", sid)):
        return None
    return sid


def form_token(secret: str, value: str) -> str:
    """The CSRF token of the forms of a session (``value``: its id), or of the login form (the login cookie)."""
    return sign(secret, "csrf", value)


def token_ok(secret: str, value: str, token: str) -> bool:
    return bool(value) and hmac.compare_digest(token, form_token(secret, value))


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    """A console cookie: HttpOnly, SameSite=Strict, for /console only; Secure when the request came over TLS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def new_login_value() -> str:
    return secrets.token_urlsafe(24)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


TOUCH = """
UPDATE staff_sessions s SET last_seen = now()
FROM staff st
WHERE s.id = $1 AND st.name = s.staff AND st.disabled_at IS NULL
  AND s.last_seen > now() - make_interval(secs => $2) AND s.created_at > now() - make_interval(secs => $3)
RETURNING st.name, st.role
"""


async def start(pool: asyncpg.Pool, name: str, source: str, idle_s: float) -> str:
    """A new session of ``name``; returns its id. Sessions idle for longer than ``idle_s`` are swept now."""
    sid = secrets.token_urlsafe(32)
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM staff_sessions WHERE last_seen < now() - make_interval(secs => $1)", idle_s)
        await conn.execute(
            "INSERT INTO staff_sessions (id, staff, source) VALUES ($1, $2, $3)", _digest(sid), name, source
        )
    return sid


async def resume(pool: asyncpg.Pool, sid: str, idle_s: float, max_s: float) -> Staff | None:
    """The staff of a live session, which this request keeps alive; None when it has ended."""
    row = await pool.fetchrow(TOUCH, _digest(sid), idle_s, max_s)
    return None if row is None else Staff(row["name"], row["role"])


async def end(conn: Conn, sid: str) -> None:
    await conn.execute("DELETE FROM staff_sessions WHERE id = $1", _digest(sid))
