"""Redis's memory by key family (``core/keys.FAMILIES``), estimated from a small sample, for ``/metrics``.

The many small keys (rate states, nonces, caps, verified answers) are sampled with RANDOMKEY and weighed with
MEMORY USAGE, each family's share of the sample scaled to the key count (DBSIZE); the few large keys of each
intake shard (its stream, in-flight hash, filter bitmaps...) are weighed one by one, since a sample would
miss them. Two pipelined round trips, at most once every ``EVERY_S`` seconds per process, at a scrape: never
on an upload's path. On a Redis Cluster nothing is sampled (the gauges stay absent): RANDOMKEY answers for one
node only.
"""

from __future__ import annotations

import time

from redis.asyncio import RedisCluster

from core import keys
from core.stores import RedisClient

SAMPLE = 200  # random keys a sample weighs
EVERY_S = 60.0  # a sample at most this often (per gateway process)
_last = {"at": -EVERY_S}


def _shard_keys(shards: int, sizes: list[bytes | None]) -> list[str]:
    """The large keys of every intake shard: one of each kind, the filter's bitmaps from its meta's sizes."""
    names: list[str] = []
    for shard, size in zip(range(shards), sizes, strict=True):
        generations = len((size or b"").split(b","))
        names += [keys.stream(shard), keys.inflight(shard), keys.duplicates(shard), keys.unacked(shard)]
        names += [keys.recheck(shard), keys.dead_letters(shard), keys.bloom_meta(shard)]
        names += [keys.bloom(shard, g) for g in range(1, generations + 1)]
    return names


async def sample(redis: RedisClient, shards: int, size: int = SAMPLE) -> dict[str, float]:
    """Estimated bytes by family."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.dbsize()
        for shard in range(shards):
            pipe.hget(keys.bloom_meta(shard), "sizes")
        for _ in range(size):
            pipe.randomkey()
        first = await pipe.execute()
    dbsize, sizes, picked = first[0], first[1 : 1 + shards], first[1 + shards :]
    exact = _shard_keys(shards, sizes)
    exact_set = {name.encode() for name in exact}
    drawn = [k for k in picked if k is not None and k not in exact_set]
    async with redis.pipeline(transaction=False) as pipe:
        for name in [*exact, *drawn]:
            pipe.memory_usage(name)
        weights = await pipe.execute()
    totals = dict.fromkeys(keys.FAMILIES, 0.0)
    for name, weight in zip(exact, weights, strict=False):
        totals[keys.family(name.encode())] += weight or 0
    scale = max(dbsize - sum(1 for w in weights[: len(exact)] if w), 0) / len(drawn) if drawn else 0.0
    for key, weight in zip(drawn, weights[len(exact) :], strict=True):
        totals[keys.family(key)] += (weight or 0) * scale
    return totals


async def due_sample(redis: RedisClient, shards: int) -> dict[str, float] | None:
    """A sample when the last is ``EVERY_S`` old (else None); none on a cluster."""
    now = time.monotonic()
    if isinstance(redis, RedisCluster) or now - _last["at"] < EVERY_S:
        return None
    _last["at"] = now
    return await sample(redis, shards)
