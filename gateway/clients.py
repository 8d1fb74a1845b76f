"""The table of callers (client id, secret, role), kept in PostgreSQL and cached in each process."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import msgspec

ROLES = ("channel", "draw", "admin", "auditor")  # auditor: reads reports and reconciliation, changes nothing
log = logging.getLogger(__name__)


class Client(msgspec.Struct, frozen=True):
    client_id: str
    secret: str
    role: str


class ClientTable:
    """An in-process copy of ``api_clients``, refreshed in the background so no request waits on it."""

    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def all(self) -> list[Client]:
        return list(self._clients.values())

    async def load(self, pool: asyncpg.Pool) -> None:
        rows = await pool.fetch("SELECT client_id, secret, role FROM api_clients")
        self._clients = {r["client_id"]: Client(r["client_id"], r["secret"], r["role"]) for r in rows}

    async def refresh_forever(self, pool: asyncpg.Pool, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.load(pool)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("client table refresh failed, keeping the cached one: %s", type(exc).__name__)


async def add(pool: asyncpg.Pool, client_id: str, secret: str, role: str) -> None:
    """Create a client, or replace its secret and role."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    await pool.execute(
        "INSERT INTO api_clients (client_id, secret, role) VALUES ($1, $2, $3)"
        " ON CONFLICT (client_id) DO UPDATE SET secret = excluded.secret, role = excluded.role",
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
