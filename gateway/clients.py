"""The table of callers (client id, secret, role), kept in PostgreSQL and cached in each process, reloaded when
it changes (NOTIFY ``api_clients``, migration 041) and every ``GATEWAY_CLIENTS_REFRESH_S`` besides.

During a rotation (``rotate``: ``gateway rotate-secret CLIENT``) a client holds two secrets: the new one, and the
old one until its expiry, so that the client switches whenever it is ready within the window and no request of
its fails meanwhile. ``add`` replaces a secret outright (a leaked secret stops at once)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import asyncpg
import msgspec

ROLES = ("channel", "draw", "admin", "auditor")  # auditor: reads reports and reconciliation, changes nothing
LOAD = """
SELECT client_id, secret, role, coalesce(old_secret, ''), coalesce(extract(epoch FROM old_secret_expires_at), 0)::float8
FROM api_clients
"""
ROTATE = """
UPDATE api_clients SET old_secret = secret, secret = $2, old_secret_expires_at = now() + make_interval(secs => $3)
WHERE client_id = $1 AND (old_secret_expires_at IS NULL OR old_secret_expires_at <= now())
RETURNING old_secret_expires_at
"""
log = logging.getLogger(__name__)


class Client(msgspec.Struct, frozen=True):
    client_id: str
    secret: str
    role: str
    old_secret: str = ""  # during a rotation, until old_expires_s (Unix time)
    old_expires_s: float = 0.0

    def secrets_at(self, now_s: float) -> tuple[str, ...]:
        """The secrets a request signed at ``now_s`` may use: the current one, and the old one in its window."""
        return (self.secret, self.old_secret) if self.old_secret and now_s < self.old_expires_s else (self.secret,)


class RotationUnderWay(ValueError):
    """The client's previous rotation window is still open."""


class ClientTable:
    """An in-process copy of ``api_clients``, refreshed in the background so no request waits on it."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def all(self) -> list[Client]:
        return list(self._clients.values())

    async def load(self, pool: asyncpg.Pool) -> None:
        rows = await pool.fetch(LOAD)
        self._clients = {r["client_id"]: Client(*r) for r in rows}

    async def reload(self, pool: asyncpg.Pool) -> None:
        """Load the table again; on failure keep the cached one (the next refresh tries again)."""
        try:
            await self.load(pool)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("client table refresh failed, keeping the cached one: %s", type(exc).__name__)

    async def refresh_forever(self, pool: asyncpg.Pool, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            await self.reload(pool)


async def add(pool: asyncpg.Pool, client_id: str, secret: str, role: str) -> None:
    """Create a client, or replace its secret and role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    await pool.execute(
        "INSERT INTO api_clients (client_id, secret, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (client_id) DO UPDATE SET secret = excluded.secret, role = excluded.role,"
        " old_secret = NULL, old_secret_expires_at = NULL",
        client_id,
        secret,
        role,
    )


async def set_webhook(pool: asyncpg.Pool, channel: str, url: str | None) -> bool:
    """Give a channel a webhook URL (migration 080), replace it, or (``url`` None) remove it. False when the
    client is no channel."""
    role = await pool.fetchval("SELECT role FROM api_clients WHERE client_id = $1", channel)
    if role != "channel":
        return False
    if url is None:
        await pool.execute("DELETE FROM webhooks WHERE channel = $1", channel)
    else:
        await pool.execute(
            "INSERT INTO webhooks (channel, url) VALUES ($1, $2)"
            " ON CONFLICT (channel) DO UPDATE SET url = excluded.url, updated_at = now()",
            channel,
            url,
        )
    return True


async def rotate(pool: asyncpg.Pool, client_id: str, new_secret: str, old_valid_s: float) -> dt.datetime:
    """Give a client a new secret, its current one staying valid ``old_valid_s`` more; returns when it expires.
    Raises KeyError for an unknown client, RotationUnderWay while its previous window is open."""
    expires: dt.datetime | None = await pool.fetchval(ROTATE, client_id, new_secret, float(old_valid_s))
    if expires is not None:
        return expires
    until = await pool.fetchval("SELECT old_secret_expires_at FROM api_clients WHERE client_id = $1", client_id)
    if until is None:
        raise KeyError(client_id)
    raise RotationUnderWay(f"a rotation of {client_id} is under way: its old secret is valid until {until}")
