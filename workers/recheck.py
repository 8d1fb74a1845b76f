"""The re-check sets: invoices waiting to be asked again (not found yet, or the service failing).

An item is ``msgpack([tries, packed invoice])``; its score is the due time in ms. Items are taken under a
lease (``recheck_take.lua``) and removed only once their invoice is committed, so a worker killed at any
moment loses none. Waiting invoices stay ``accepted`` meanwhile.
"""

from __future__ import annotations

import time
from typing import Any

from core import keys, lua
from core.contract import parse_recheck as parse
from core.contract import recheck_item as item
from core.stores import RedisClient

__all__ = ["Rechecks", "item", "parse"]


class Rechecks:
    def __init__(self, redis: RedisClient, shards: int, lease_s: float) -> None:
        self._redis = redis
        self._shards = shards
        self._lease_ms = int(lease_s * 1000)
        self._take = redis.register_script(lua.load("workers", "recheck_take.lua"))

    async def take_due(self, count: int) -> dict[int, list[bytes]]:
        """Due items per shard, leased to this worker (one pipelined round trip)."""
        now_ms = int(time.time() * 1000)
        calls = [([keys.recheck(shard)], [now_ms, self._lease_ms, count]) for shard in range(self._shards)]
        replies = await lua.call_each(self._redis, self._take, calls)
        return {shard: list(r) for shard, r in enumerate(replies) if r}

    async def pending(self) -> tuple[int, float | None]:
        """How many items wait, and in how many seconds the next one is due (None when none waits)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for shard in range(self._shards):
                pipe.zcard(keys.recheck(shard))
                pipe.zrange(keys.recheck(shard), 0, 0, withscores=True)
            replies: list[Any] = await pipe.execute()
        waiting = sum(replies[0::2])
        firsts = [r[0][1] for r in replies[1::2] if r]
        return waiting, (max(0.0, min(firsts) / 1000 - time.time()) if firsts else None)
