"""Releasing committed keys from the in-flight hashes, a grace period after their commit.

The grace period keeps a key in flight a while after PostgreSQL has it, so that a gateway which looked in
PostgreSQL just before the commit and claims a "false positive" just after still finds the claim (the
exact check of dedup.claim has two steps). A key left in flight by a worker that died is harmless: it is
committed, so "duplicate" is the right answer for it; `dedup rebuild` sweeps such leftovers.
"""

from __future__ import annotations

import time
from collections import deque

from redis.asyncio import Redis

from gateway import keys


class Releaser:
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
