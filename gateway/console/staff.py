"""Staff accounts: the people who log in to the console, each with one role. They are not API clients: their
table is ``staff``, not ``api_clients``, and an API client's id and secret open no console session.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended set), checked in a
thread so that a login never stalls the event loop. ``GATEWAY_CONSOLE_LOCKOUT_FAILURES`` wrong passwords in a
row lock the account for ``GATEWAY_CONSOLE_LOCKOUT_S``; while locked, no password is even checked. A name that
is not a member of staff costs the same hash as one that is, so the answer's time does not tell them apart.
Every login, failure, lockout and logout goes to the audit log.
"""

from __future__ import annotations

import asyncio
import functools
import re
from typing import NamedTuple

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.settings import Console
from gateway import audit
from gateway.console.session import Staff

ROLES = ("reviewer", "support", "analyst", "auditor", "admin")
NAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024


@functools.cache
def hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _decoy() -> str:
    """A hash to check an unknown name's password against: the same work as a real one."""
    return hasher().hash("not-a-password-of-anyone")


def password_problem(password: str) -> str | None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    return None


SAVE = """
INSERT INTO staff (name, role, password_hash) VALUES ($1, $2, $3)
ON CONFLICT (name) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash, failed_logins = 0,
    locked_until = NULL, disabled_at = NULL, updated_at = now()
"""


async def save(pool: asyncpg.Pool, name: str, role: str, password: str, actor: audit.Actor) -> None:
    """Create a member of staff, or give them a new password and role (unlocked, enabled; their sessions end)."""
    if not NAME.fullmatch(name):
        raise ValueError("a name is 2 to 64 of a-z 0-9 . _ -, starting with a letter or digit")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    hashed = await asyncio.to_thread(hasher().hash, password)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(SAVE, name, role, hashed)
        await conn.execute("DELETE FROM staff_sessions WHERE staff = $1", name)
        await audit.record(conn, actor, "staff_saved", name, {"role": role})


async def disable(pool: asyncpg.Pool, name: str, actor: audit.Actor) -> bool:
    """Disable a member of staff and end their sessions; False when there is no such member."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval("UPDATE staff SET disabled_at = now() WHERE name = $1 RETURNING name", name)
        if found is None:
            return False
        await conn.execute("DELETE FROM staff_sessions WHERE staff = $1", name)
        await audit.record(conn, actor, "staff_disabled", name)
    return True


class Login(NamedTuple):
    """A login's outcome: ``ok`` (with the staff), ``wrong_password``, ``locked``, ``unknown_name``, ``disabled``."""

    outcome: str
    staff: Staff | None = None


FIND = """
SELECT role, password_hash, disabled_at IS NOT NULL AS disabled, coalesce(locked_until > now(), false) AS locked
FROM staff WHERE name = $1
"""

FAILED = """
UPDATE staff SET
    failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,
    locked_until = CASE WHEN failed_logins + 1 >= $2 THEN now() + make_interval(secs => $3) ELSE locked_until END
WHERE name = $1
RETURNING locked_until > now() AS locked
"""


async def log_in(pool: asyncpg.Pool, name: str, password: str, rules: Console, source: str) -> Login:
    """Check a login and count it: a wrong password counts towards the lockout, a right one resets the count."""
    row = await pool.fetchrow(FIND, name) if NAME.fullmatch(name) else None
    if row is None or row["disabled"]:
        await _checks(_decoy(), password)
        outcome = Login("unknown_name" if row is None else "disabled")
        # An unknown name is not written down: it may be a password typed in the wrong field.
        who = audit.Actor("?" if row is None else name, "", "console", source)
        return await _recorded(pool, outcome, who, "login_failed", {"why": outcome.outcome})
    who = audit.Actor(name, row["role"], "console", source)
    if row["locked"]:
        return await _recorded(pool, Login("locked"), who, "login_failed", {"why": "locked"})
    if await _checks(row["password_hash"], password):
        await pool.execute("UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE name = $1", name)
        return await _recorded(pool, Login("ok", Staff(name, row["role"])), who, "login")
    locked = await pool.fetchval(FAILED, name, rules.lockout_failures, rules.lockout_s)
    if locked:
        return await _recorded(pool, Login("locked"), who, "lockout", {"for_s": rules.lockout_s})
    return await _recorded(pool, Login("wrong_password"), who, "login_failed", {"why": "wrong_password"})


async def _checks(hashed: str, password: str) -> bool:
    try:
        return bool(await asyncio.to_thread(hasher().verify, hashed, password[:MAX_PASSWORD]))
    except (VerificationError, InvalidHashError):
        return False


async def _recorded(
    pool: asyncpg.Pool, login: Login, who: audit.Actor, action: str, detail: dict[str, object] | None = None
) -> Login:
    async with pool.acquire() as conn:
        await audit.record(conn, who, action, who.name if who.name != "?" else "", detail)
    return login
