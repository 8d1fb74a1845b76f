"""Wakes long polls when PostgreSQL announces new data (LISTEN/NOTIFY): the sealer's ``feed_sealed`` for
``GET /v1/feed``, the ``invoice_events`` trigger (migration 021) for ``GET /v1/events``; and calls back on the
other announcements a process asked for (``api_clients``, migration 041: the client table reloads at once)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

CHANNEL = "feed_sealed"
EVENTS = "invoice_events"
CLIENTS = "api_clients"


class FeedWatch:
    """One LISTEN connection per process; ``wait`` returns when its channel is notified or the time is up."""

    def __init__(self) -> None:
        self._woken = {name: asyncio.Event() for name in (CHANNEL, EVENTS)}
        self._conn: asyncpg.Connection | None = None
        self._callbacks: dict[str, Callable[[], object]] = {}

    async def start(self, dsn: str, callbacks: dict[str, Callable[[], object]] | None = None) -> None:
        """Open the LISTEN connection: its own, outside the pool, since it stays busy for the process's life.
        ``callbacks``: what to call when one of those channels is notified."""
        conn = await asyncpg.connect(dsn)
        self._callbacks = callbacks or {}
        for name in self._woken:
            await conn.add_listener(name, self._notified)
        for name in self._callbacks:
            await conn.add_listener(name, self._call)
        self._conn = conn

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _call(self, _conn: Any, _pid: int, channel: str, _payload: object) -> None:
        self._callbacks[channel]()

    def _notified(self, _conn: Any, _pid: int, channel: str, _payload: object) -> None:
        # Wake every waiter, then arm a new event for the next round.
        self._woken[channel].set()
        self._woken[channel] = asyncio.Event()

    async def wait(self, timeout_s: float, channel: str = CHANNEL) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken[channel].wait(), timeout_s)
