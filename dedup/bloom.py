"""The per-shard Bloom filters in Redis: create, grow, describe. (Rebuilding is dedup.rebuild.)

Each shard's meta hash (``{sNN}:bloom``) holds ``k``, ``sizes`` (blocks per generation, oldest first),
``ready`` ("1" when the filter can be trusted to say "new") and ``n:<generation>`` (keys added). The claim
script reads that layout in the same atomic step as its test-and-set, so every gateway uses the same one. Bitmaps
are allocated whole when created, so that no request pays for growing one.
"""

from __future__ import annotations

from typing import Any

import msgspec

from core import keys
from core.stores import RedisClient
from dedup import sizing

BLOCK_BYTES = sizing.BLOCK_BITS // 8


class Generation(msgspec.Struct, frozen=True):
    blocks: int
    keys: int

    @property
    def bytes(self) -> int:
        return self.blocks * BLOCK_BYTES


class ShardFilter(msgspec.Struct, frozen=True):
    shard: int
    k: int
    ready: bool
    generations: list[Generation]

    def false_positive_rate(self) -> float:
        """Estimated from the keys added: a key is a false positive if any generation says "seen"."""
        miss = 1.0
        for g in self.generations:
            bits_per_key = g.blocks * sizing.BLOCK_BITS / g.keys if g.keys else float("inf")
            miss *= 1 - (sizing.false_positive_rate(bits_per_key, self.k) if g.keys else 0.0)
        return 1 - miss


async def describe(redis: RedisClient, shards: int) -> list[ShardFilter]:
    """Every shard's filter as Redis holds it (one round trip)."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            pipe.hgetall(keys.bloom_meta(shard))
        metas: list[dict[bytes, bytes]] = await pipe.execute()
    return [_shard_filter(shard, meta) for shard, meta in enumerate(metas)]


def _shard_filter(shard: int, meta: dict[bytes, bytes]) -> ShardFilter:
    sizes = [int(s) for s in meta.get(b"sizes", b"").decode().split(",") if s]
    gens = [Generation(blocks, int(meta.get(f"n:{i}".encode(), b"0"))) for i, blocks in enumerate(sizes, 1)]
    return ShardFilter(shard, int(meta.get(b"k", b"0")), meta.get(b"ready") == b"1", gens)


async def add_generation(redis: RedisClient, shards: int, capacity: int, target_fpr: float) -> tuple[int, int]:
    """Allocate a new (newest) generation on every shard for ``capacity`` more keys; returns (k, blocks/shard).

    The first generation fixes k; later ones keep it (the script reads one k per shard) and are sized for it.
    """
    current = await describe(redis, shards)
    k, total_blocks = sizing.size(capacity, target_fpr)
    if current[0].generations:
        k = current[0].k
        bits = sizing.bits_per_key(target_fpr, k)
        if bits is None:
            raise ValueError(f"k={k} cannot reach a false-positive rate of {target_fpr}")
        total_blocks = sizing.blocks_for(capacity, bits)
    blocks = -(-total_blocks // shards)
    for f in current:
        generation = len(f.generations) + 1
        sizes = ",".join(str(g.blocks) for g in [*f.generations, Generation(blocks, 0)])
        async with redis.pipeline(transaction=True) as pipe:
            pipe.setrange(keys.bloom(f.shard, generation), blocks * BLOCK_BYTES - 1, b"\0")
            pipe.hset(keys.bloom_meta(f.shard), mapping={"k": k, "sizes": sizes, f"n:{generation}": 0})
            await pipe.execute()
    return k, blocks


async def set_ready(redis: RedisClient, shards: int, ready: bool) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(shards):
            if ready:
                pipe.hset(keys.bloom_meta(shard), "ready", "1")
            else:
                pipe.hdel(keys.bloom_meta(shard), "ready")
        await pipe.execute()


def summary(filters: list[ShardFilter]) -> dict[str, Any]:
    """Totals over the shards: keys, bytes, bytes per key, estimated false-positive rate (worst shard)."""
    added = sum(g.keys for f in filters for g in f.generations)
    size = sum(g.bytes for f in filters for g in f.generations)
    return {
        "shards": len(filters),
        "ready": all(f.ready for f in filters),
        "generations": max((len(f.generations) for f in filters), default=0),
        "keys": added,
        "bytes": size,
        "bytes_per_key": size / added if added else None,
        "estimated_fpr": max((f.false_positive_rate() for f in filters), default=0.0),
    }
