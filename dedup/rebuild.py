"""Rebuilding the filters from PostgreSQL after Redis lost them, without stopping intake.

1. Mark every shard not ready: from then on the claim script checks every key exactly (in flight, then
   PostgreSQL) and still sets filter bits, so nothing slips through while the filter is incomplete.
2. Drop what is left of the old filter and allocate a new one, sized for the larger of the campaign's
   estimate and 1.5 times the keys PostgreSQL holds.
3. Add every committed key (a server-side cursor, in batches, with a progress line).
4. Add every in-flight key, and release those committed longer ago than the grace period (leftovers of
   workers that died).
5. Add the keys committed since the rebuild began (they may have left the in-flight hashes meanwhile).
6. Mark every shard ready.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

import asyncpg

from core import keys, locks, lua
from core.campaign import Dedup
from core.shards import digest, shard_of
from core.stores import RedisClient
from dedup import bloom, inflight, scripts
from dedup.claim import MAX_GENERATIONS

SCRIPT = scripts.load("bloom_add.lua")
BATCH = 20_000
CATCH_UP_MARGIN = dt.timedelta(minutes=10)

Progress = Callable[[int, int], None]


class Adder:
    """Adds keys to the filters with ``bloom_add.lua``: one pipelined round trip per batch of keys."""

    def __init__(self, redis: RedisClient, shards: int) -> None:
        self._redis = redis
        self._shards = shards
        self._script = redis.register_script(SCRIPT)

    async def add(self, invoice_keys: Iterable[str], only_test: bool = False) -> int:
        """Add keys (or, ``only_test``, count those the filter has not seen); returns that count."""
        by_shard: dict[int, list[bytes]] = defaultdict(list)
        for key in invoice_keys:
            d = digest(key)
            by_shard[shard_of(d, self._shards)].append(d)
        if not by_shard:
            return 0
        calls: list[tuple[list[str], list[Any]]] = [
            (
                [keys.bloom_meta(shard), *(keys.bloom(shard, g) for g in range(1, MAX_GENERATIONS + 1))],
                [b"".join(digests), "test" if only_test else "add"],
            )
            for shard, digests in by_shard.items()
        ]
        return sum(await lua.call_each(self._redis, self._script, calls))


async def rebuild(redis: RedisClient, pool: asyncpg.Pool, config: Dedup, grace_s: float, progress: Progress) -> int:
    """Rebuild every shard's filter; returns the keys added. Intake goes on throughout (slower: exact checks)."""
    async with pool.acquire() as lock:
        if not await lock.fetchval("SELECT pg_try_advisory_lock($1)", locks.REBUILD):
            raise RuntimeError("another dedup rebuild is running")
        try:
            return await _rebuild(redis, pool, config, grace_s, progress)
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", locks.REBUILD)


async def _rebuild(redis: RedisClient, pool: asyncpg.Pool, config: Dedup, grace_s: float, progress: Progress) -> int:
    shards = config.shards
    began = await pool.fetchval("SELECT now()")
    await bloom.set_ready(redis, shards, False)
    await _drop(redis, shards)
    total = int(await pool.fetchval("SELECT count(*) FROM invoices"))
    await bloom.add_generation(redis, shards, max(config.expected_invoices, total * 3 // 2), config.false_positive_rate)
    adder = Adder(redis, shards)
    done = 0
    async with pool.acquire() as conn, conn.transaction():
        async for chunk in _chunks(conn.cursor("SELECT key FROM invoices", prefetch=BATCH)):
            await adder.add(chunk)
            done += len(chunk)
            progress(done, total)
    await _sweep_in_flight(redis, pool, adder, shards, grace_s)
    late = [
        r["key"] for r in await pool.fetch("SELECT key FROM invoices WHERE committed_at >= $1", began - CATCH_UP_MARGIN)
    ]
    await adder.add(late)
    await bloom.set_ready(redis, shards, True)
    return done + len(late)


async def _drop(redis: RedisClient, shards: int) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.delete(keys.bloom_meta(shard), *(keys.bloom(shard, g) for g in range(1, MAX_GENERATIONS + 1)))
        await pipe.execute()


async def _sweep_in_flight(redis: RedisClient, pool: asyncpg.Pool, adder: Adder, shards: int, grace_s: float) -> None:
    for shard in range(shards):
        await adder.add(await inflight.in_flight(redis, shard))
    await inflight.release_committed(redis, pool, shards, grace_s)


async def _chunks(rows: AsyncIterable[asyncpg.Record]) -> AsyncIterator[list[str]]:
    chunk: list[str] = []
    async for row in rows:
        chunk.append(row["key"])
        if len(chunk) >= BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ProgressBar:
    """One line on stderr, rewritten in place: keys done, share, rate."""

    def __init__(self) -> None:
        self._started = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        rate = done / max(time.monotonic() - self._started, 1e-9)
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        sys.stderr.write(f"\rrebuild [{bar:<30}] {done:,}/{total:,} keys ({share:.0%}) {rate:,.0f} keys/s")
        sys.stderr.flush()
