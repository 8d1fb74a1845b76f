"""Reading the intake stream in a consumer group, and acknowledging what has been committed."""

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
    ids: list[bytes]
    queued: list[Queued]
    dups: list[Dup]


async def ensure_group(redis: Redis) -> None:
    """Create the consumer group (and the stream) once; an existing group is fine."""
    try:
        await redis.xgroup_create(keys.STREAM, keys.GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def read(redis: Redis, consumer: str, count: int, block_ms: int, pending: bool) -> Batch:
    """Up to ``count`` entries: this consumer's own unacknowledged ones when ``pending``, else new ones."""
    answer: Any = await redis.xreadgroup(
        keys.GROUP,
        consumer,
        {keys.STREAM: "0" if pending else ">"},
        count=count,
        block=None if pending else block_ms,
    )
    entries = answer[0][1] if answer else []
    return decode(entries)


async def claim_idle(redis: Redis, consumer: str, min_idle_ms: int, count: int) -> Batch:
    """Take over entries that another consumer read but did not acknowledge for ``min_idle_ms``."""
    answer: Any = await redis.xautoclaim(keys.STREAM, keys.GROUP, consumer, min_idle_ms, "0-0", count=count)
    return decode(answer[1])


def decode(entries: Sequence[tuple[bytes, dict[bytes, bytes] | None]]) -> Batch:
    batch = Batch([], [], [])
    for entry_id, fields in entries:
        batch.ids.append(entry_id)
        if not fields:  # deleted after it was read: nothing left to do but acknowledge
            continue
        channel = fields[b"~channel"].decode()
        at = dt.datetime.fromtimestamp(int(fields[b"~at"]) / 1000, dt.UTC)
        for name, value in fields.items():
            if name.startswith(b"~"):
                if name[1:2].isdigit():
                    batch.dups.append(Dup(name[1:].decode(), channel, at))
            else:
                batch.queued.append(QUEUED.decode(value))
    return batch


async def ack(redis: Redis, ids: Sequence[Any]) -> None:
    """Acknowledge and delete committed entries in one round trip (one consumer group reads the stream)."""
    if not ids:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xack(keys.STREAM, keys.GROUP, *ids)
        pipe.xdel(keys.STREAM, *ids)
        await pipe.execute()
