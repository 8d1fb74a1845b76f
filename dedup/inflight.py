"""The in-flight claim hashes, one per intake shard: invoice key -> the claim of the upload that got it first.

This module owns them. ``claim_enqueue.lua`` writes a claim (``<channel>|<accepted_at_ms>|<request id>|<person
tag>``) in the same atomic step as the stream entry; the status route reads one (``owner``); the workers release
committed keys a grace period after their commit (``Releaser``); ``dedup rebuild`` and a starting worker sweep
what dead workers left behind (``release_committed``).

The grace period keeps a key in flight a while after PostgreSQL has it, so that a gateway which looked in
PostgreSQL just before the commit and claims a "false positive" just after still finds the claim (the exact
check of dedup.claim has two steps). A key left in flight by a worker that died is harmless: it is committed, so
"duplicate" is the right answer for it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import NamedTuple

import asyncpg
from redis.asyncio import Redis

from core import keys
from core.shards import digest, shard_of

PERSON_TAG = 16  # hex characters of the person hash kept in a claim: enough to tell two persons apart


class Owner(NamedTuple):
    """Who got an invoice key first: a channel, a tag of the person, and when (Unix ms; 0 if unknown)."""

    channel: str
    person: str
    accepted_at_ms: int


def parse_owner(answer: str) -> Owner | None:
    """None for "" (new); else the owner named by a claim "<channel>|<at ms>|<request>|<person tag>".

    Claims written before the person tag existed have three parts: their person is unknown ("").
    """
    if not answer:
        return None
    parts = answer.split("|", 3)
    at = parts[1] if len(parts) > 1 else ""
    return Owner(parts[0], parts[3] if len(parts) > 3 else "", int(at) if at.isascii() and at.isdigit() else 0)


async def owner(redis: Redis, shards: int, key: str) -> Owner | None:
    """The owner of a key still in flight (accepted, not committed), or None."""
    claim: bytes | None = await redis.hget(keys.inflight(shard_of(digest(key), shards)), key)  # type: ignore[assignment]
    return None if claim is None else parse_owner(claim.decode())


class Releaser:
    """Releases committed keys from the in-flight hashes once their grace period is over."""

    def __init__(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._due: deque[tuple[float, dict[int, list[str]]]] = deque()

    def schedule(self, committed: dict[int, list[str]]) -> None:
        if committed:
            self._due.append((time.monotonic() + self._grace_s, committed))

    async def release_due(self, redis: Redis, everything: bool = False) -> int:
        """HDEL every key whose grace period is over (all of them when ``everything``), in one round trip."""
        now = time.monotonic()
        ready: list[dict[int, list[str]]] = []
        while self._due and (everything or self._due[0][0] <= now):
            ready.append(self._due.popleft()[1])
        if not ready:
            return 0
        released = 0
        async with redis.pipeline(transaction=False) as pipe:
            for committed in ready:
                for shard, shard_keys in committed.items():
                    pipe.hdel(keys.inflight(shard), *shard_keys)
                    released += len(shard_keys)
            await pipe.execute()
        return released


async def release_committed(redis: Redis, pool: asyncpg.Pool, shards: int, grace_s: float) -> int:
    """Release in-flight keys committed longer ago than the grace period: what dead workers left behind."""
    released = 0
    for shard in range(shards):
        cursor = 0
        while True:
            cursor, found = await redis.hscan(keys.inflight(shard), cursor, count=1000)
            in_flight = [k.decode() if isinstance(k, bytes) else k for k in found]
            if in_flight:
                done = await pool.fetch(
                    "SELECT key FROM invoices WHERE key = ANY($1::text[])"
                    " AND committed_at < now() - make_interval(secs => $2)",
                    in_flight,
                    grace_s,
                )
                if done:
                    released += await redis.hdel(keys.inflight(shard), *(r["key"] for r in done))
            if cursor == 0:
                break
    return released


async def in_flight(redis: Redis, shard: int) -> list[str]:
    """Every key of a shard in flight now (the rebuild adds them to the filter)."""
    raw: list[bytes] = await redis.hkeys(keys.inflight(shard))  # type: ignore[assignment]
    return [k.decode() for k in raw]
