"""Reading the intake streams (one per shard) in a consumer group, and acknowledging what was committed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from gateway import keys
from gateway.model import Queued
from workers.sink import Dup

QUEUED = msgspec.msgpack.Decoder(Queued)


class Batch(msgspec.Struct):
    ids: dict[int, list[bytes]]  # stream entry ids by shard
    queued: list[Queued]
    dups: list[Dup]
    keys: dict[int, list[str]]  # accepted invoice keys by shard: released from the in-flight hash later

    @property
    def empty(self) -> bool:
        return not self.ids


def empty() -> Batch:
    return Batch({}, [], [], {})


async def ensure_groups(redis: Redis, shards: int) -> None:
    """Create the consumer group (and the stream) of every shard once; an existing group is fine."""
    for shard in range(shards):
        try:
            await redis.xgroup_create(keys.stream(shard), keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise


async def read(redis: Redis, consumer: str, shards: int, count: int, block_ms: int, pending: bool) -> Batch:
    """Up to ``count`` entries per shard: this consumer's unacknowledged ones when ``pending``, else new ones."""
    streams: dict[Any, Any] = {keys.stream(s): "0" if pending else ">" for s in range(shards)}
    answer: Any = await redis.xreadgroup(
        keys.GROUP, consumer, streams, count=count, block=None if pending else block_ms
    )
    batch = empty()
    for name, entries in answer or []:
        decode_into(batch, _shard_of_stream(name), entries)
    return batch


async def claim_idle(redis: Redis, consumer: str, shards: int, min_idle_ms: int, count: int) -> Batch:
    """Take over entries that another consumer read but did not acknowledge for ``min_idle_ms``."""
    batch = empty()
    for shard in range(shards):
        answer: Any = await redis.xautoclaim(keys.stream(shard), keys.GROUP, consumer, min_idle_ms, "0-0", count=count)
        decode_into(batch, shard, answer[1])
    return batch


def _shard_of_stream(name: bytes | str) -> int:
    text = name.decode() if isinstance(name, bytes) else name
    return int(text[2 : text.index("}")])


def decode_into(batch: Batch, shard: int, entries: Sequence[tuple[bytes, dict[bytes, bytes] | None]]) -> None:
    for entry_id, fields in entries:
        batch.ids.setdefault(shard, []).append(entry_id)
        if not fields:  # deleted after it was read: nothing left to do but acknowledge
            continue
        channel = fields[b"~channel"].decode()
        at = dt.datetime.fromtimestamp(int(fields[b"~at"]) / 1000, dt.UTC)
        for name, value in fields.items():
            if name.startswith(b"~"):
                if name[1:2].isdigit():
                    batch.dups.append(Dup(name[1:].decode(), channel, at))
            else:
                q = QUEUED.decode(value)
                batch.queued.append(q)
                batch.keys.setdefault(shard, []).append(q.key)


async def ack(redis: Redis, ids: dict[int, list[bytes]], invoices: int) -> None:
    """Acknowledge and delete committed entries, and count the invoices done, in one round trip (one consumer
    group reads the streams)."""
    if not ids:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for shard, shard_ids in ids.items():
            pipe.xack(keys.stream(shard), keys.GROUP, *shard_ids)
            pipe.xdel(keys.stream(shard), *shard_ids)
        pipe.incrby(keys.PIPELINE_DONE, invoices)
        await pipe.execute()
