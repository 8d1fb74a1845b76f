"""Wakes long polls when PostgreSQL announces new data (LISTEN/NOTIFY): the sealer's ``feed_sealed`` for
``GET /v1/feed``, the ``invoice_events`` trigger (migration 021) for ``GET /v1/events``."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

CHANNEL = "feed_sealed"
EVENTS = "invoice_events"


class FeedWatch:
    """One LISTEN connection per process; ``wait`` returns when its channel is notified or the time is up."""

    def __init__(self) -> None:
        self._woken = {name: asyncio.Event() for name in (CHANNEL, EVENTS)}
        self._conn: asyncpg.Connection | None = None

    async def start(self, dsn: str) -> None:
        """Open the LISTEN connection: its own, outside the pool, since it stays busy for the process's life."""
        conn = await asyncpg.connect(dsn)
        for name in self._woken:
            await conn.add_listener(name, self._notified)
        self._conn = conn

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _notified(self, _conn: Any, _pid: int, channel: str, _payload: object) -> None:
        # Wake every waiter, then arm a new event for the next round.
        self._woken[channel].set()
        self._woken[channel] = asyncio.Event()

    async def wait(self, timeout_s: float, channel: str = CHANNEL) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken[channel].wait(), timeout_s)
