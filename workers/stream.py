"""The workers' first and last steps: reading the intake streams (one per shard) in a consumer group, and, once
a batch is committed, acknowledging it (``settle``). What an entry holds is the stream's contract,
core/contract.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import RedisCluster
from redis.exceptions import ResponseError

from core import contract, keys
from core.contract import Duplicate, Queued, TallyPart
from core.stores import RedisClient
from workers import recheck

PENDING_PAGE = 500  # entries of a consumer's pending list read at a time (orphans)


class Pending(msgspec.Struct):
    """An invoice to verify: from a stream entry (tries 0) or from a re-check item (``member``)."""

    queued: Queued
    shard: int
    tries: int
    packed: bytes
    member: bytes | None = None


class Batch(msgspec.Struct):
    ids: dict[int, list[bytes]]  # stream entry ids by shard, acknowledged once the batch is committed
    items: list[Pending]
    dups: list[Duplicate]
    dead: list[tuple[int, bytes, str, dict[bytes, bytes]]] = []  # (shard, entry id, reason, fields)
    tallies: list[TallyPart] = []  # the requests' tallies for the daily reports, rolled up with the batch

    @property
    def empty(self) -> bool:
        return not self.ids and not self.items


def empty() -> Batch:
    return Batch({}, [], [], [], [])


def from_rechecks(taken: dict[int, list[bytes]]) -> Batch:
    batch = empty()
    for shard, members in taken.items():
        for member in members:
            tries, packed = recheck.parse(member)
            batch.items.append(Pending(contract.unpack(packed), shard, tries, packed, member))
    return batch


async def ensure_groups(redis: RedisClient, shards: int) -> None:
    """Create the consumer group (and the stream) of every shard once; an existing group is fine."""
    for shard in range(shards):
        try:
            await redis.xgroup_create(keys.stream(shard), keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def read(redis: RedisClient, consumer: str, shards: int, count: int, block_ms: int, pending: bool) -> Batch:
    """Up to ``count`` entries per shard: this consumer's unacknowledged ones when ``pending``, else new ones
    (waiting up to ``block_ms`` for some when none is there)."""
    streams: dict[Any, Any] = {keys.stream(s): "0" if pending else ">" for s in range(shards)}
    block = None if pending else block_ms
    answer: Any
    if isinstance(redis, RedisCluster):
        answer = await _read_each(redis, consumer, streams, count, block)
    else:
        answer = await redis.xreadgroup(keys.GROUP, consumer, streams, count=count, block=block)
    batch = empty()
    for name, entries in answer or []:
        decode_into(batch, _shard_of_stream(name), entries)
    return batch


async def _read_each(
    redis: RedisCluster, consumer: str, streams: dict[Any, Any], count: int, block_ms: int | None
) -> list[Any]:
    """On a cluster: one XREADGROUP can only name streams of one slot, so each shard's is read on its own, all
    at once (a pipeline, split per node); only when none had anything does each wait on a connection of its own
    for ``block_ms``, all together: a wait may end up to ``block_ms`` after the first entry arrives, only on the
    first entries after a lull."""
    async with redis.pipeline(transaction=False) as pipe:
        for name, start in streams.items():
            pipe.xreadgroup(keys.GROUP, consumer, {name: start}, count=count)
        found: list[Any] = [a for answer in await pipe.execute() for a in answer or []]
    if found or not block_ms:
        return found
    waits = [
        redis.xreadgroup(keys.GROUP, consumer, {name: start}, count=count, block=block_ms)
        for name, start in streams.items()
    ]
    return [a for answer in await asyncio.gather(*waits) for a in answer or []]


async def claim_idle(
    redis: RedisClient, consumer: str, shards: int, min_idle_ms: int, count: int, max_deliveries: int
) -> Batch:
    """Take over entries that another consumer read but did not acknowledge for ``min_idle_ms`` (it died, or
    the batch failed). An entry delivered ``max_deliveries`` times already goes to the dead letters instead:
    it is what keeps failing."""
    batch = empty()
    for shard in range(shards):
        idle: Any = await redis.xpending_range(keys.stream(shard), keys.GROUP, "-", "+", count, idle=min_idle_ms)
        if not idle:
            continue
        poison = [p["message_id"] for p in idle if p["times_delivered"] >= max_deliveries]
        retry = [p["message_id"] for p in idle if p["times_delivered"] < max_deliveries]
        for entry_id in poison:
            found: Any = await redis.xrange(keys.stream(shard), entry_id, entry_id)
            for found_id, fields in found:
                batch.dead.append((shard, found_id, f"delivered {max_deliveries} times without success", fields))
            batch.ids.setdefault(shard, []).append(entry_id)
        if retry:
            claimed: Any = await redis.xclaim(keys.stream(shard), keys.GROUP, consumer, min_idle_ms, retry)
            decode_into(batch, shard, claimed)
    return batch


async def orphans(redis: RedisClient, consumer: str, shards: int, count: int, held: set[bytes]) -> Batch:
    """Up to ``count`` entries a shard that Redis delivered to this consumer but that it is not working on: their
    reply was lost (a read or a claim timed out after Redis had answered it). They are held (``hold``) and fetched
    by id (``XRANGE``): neither counts a delivery, so a lost reply spends none. ``held``: the ids it is working on,
    or left for another delivery (a failure that may be their own)."""
    batch = empty()
    for shard in range(shards):
        found: list[bytes] = []
        start: bytes | str = "-"
        while len(found) < count:
            page: Any = await redis.xpending_range(
                keys.stream(shard), keys.GROUP, start, "+", PENDING_PAGE, consumername=consumer
            )
            found += [p["message_id"] for p in page if p["message_id"] not in held]
            if len(page) < PENDING_PAGE:
                break
            start = b"(" + page[-1]["message_id"]
        if not found:
            continue
        found = found[:count]
        await hold(redis, consumer, {shard: found})  # idle no more: not taken over while it is fetched
        async with redis.pipeline(transaction=False) as pipe:
            for entry_id in found:
                pipe.xrange(keys.stream(shard), entry_id, entry_id)
            fetched: Any = await pipe.execute()
        for entry_id, entries in zip(found, fetched, strict=True):
            decode_into(batch, shard, entries or [(entry_id, None)])
    return batch


async def hold(redis: RedisClient, consumer: str, ids: dict[int, list[bytes]]) -> None:
    """Keep entries this consumer is still working on from looking idle: claimed again by it, their idle time
    starts over and their delivery count stays (``JUSTID``). A batch slower than ``claim_idle_ms``, or one
    waiting to be tried again after a store failed, is then never taken over while its worker lives."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard, shard_ids in ids.items():
            pipe.xclaim(keys.stream(shard), keys.GROUP, consumer, 0, list[Any](shard_ids), justid=True)
        await pipe.execute()


def _shard_of_stream(name: bytes | str) -> int:
    text = name.decode() if isinstance(name, bytes) else name
    return int(text[2 : text.index("}")])


def decode_into(batch: Batch, shard: int, entries: Sequence[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
    for entry_id, fields in entries:
        batch.ids.setdefault(shard, []).append(entry_id)
        if not fields:  # deleted after it was read: nothing left to do but acknowledge
            continue
        try:
            queued, dups = contract.read_entry(fields)
            tallies = contract.read_tallies(fields, shard)
        except (KeyError, ValueError, msgspec.DecodeError) as exc:
            batch.dead.append((shard, entry_id, f"undecodable entry: {type(exc).__name__}: {exc}", fields))
            continue
        batch.items.extend(Pending(q, shard, 0, packed) for packed, q in queued)
        batch.dups.extend(dups)
        batch.tallies.extend(tallies)


async def settle(
    redis: RedisClient, batch: Batch, deferred: list[tuple[Pending, float, bool]], committed: list[Pending]
) -> None:
    """After the batch's commit, in one round trip: schedule the deferred invoices again, keep the dead
    letters, acknowledge and delete the stream entries, remove the committed re-check items, count the
    invoices done.

    Deferred items are written before the entries are acknowledged: a crash in between redelivers the entry,
    which is deferred again (same item), never lost.
    """
    now_ms = time.time() * 1000
    async with redis.pipeline(transaction=False) as pipe:
        for p, delay_s, spend_try in deferred:
            new = recheck.item(p.tries + (1 if spend_try else 0), p.packed)
            pipe.zadd(keys.recheck(p.shard), {new: now_ms + delay_s * 1000})
            if p.member is not None and p.member != new:
                pipe.zrem(keys.recheck(p.shard), p.member)
        for shard, entry_id, reason, fields in batch.dead:
            letter: dict[Any, Any] = {**fields, b"~entry": entry_id, b"~reason": reason.encode()}
            pipe.xadd(keys.dead_letters(shard), letter)
        for shard, shard_ids in batch.ids.items():
            pipe.xack(keys.stream(shard), keys.GROUP, *shard_ids)
            pipe.xdel(keys.stream(shard), *shard_ids)
        for p in committed:
            if p.member is not None:
                pipe.zrem(keys.recheck(p.shard), p.member)
        pipe.incrby(keys.PIPELINE_DONE, len(committed))
        await pipe.execute()
