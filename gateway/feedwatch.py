"""Wakes long-polling feed readers when the sealer announces a batch (PostgreSQL LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

CHANNEL = "feed_sealed"


class FeedWatch:
    """One LISTEN connection per process; ``wait`` returns when a batch is sealed or the time is up."""

    def __init__(self) -> None:
        self._sealed = asyncio.Event()
        self._conn: asyncpg.Connection | None = None

    async def start(self, dsn: str) -> None:
        """Open the LISTEN connection: its own, outside the pool, since it stays busy for the process's life."""
        conn = await asyncpg.connect(dsn)
        await conn.add_listener(CHANNEL, self._notified)
        self._conn = conn

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _notified(self, *_: Any) -> None:
        # Wake every waiter, then arm a new event for the next round.
        self._sealed.set()
        self._sealed = asyncio.Event()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._sealed.wait(), timeout_s)
