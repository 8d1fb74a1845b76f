"""Loading a package's Lua script (the scripts live beside the modules that run them), and calling one."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def load(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text()


def indices(values: Sequence[int]) -> bytes:
    """Per-invoice indices into KEYS as one argument, 2 bytes each (big-endian), as the scripts read them back
    with ``string.byte``: one argument for the request instead of one per invoice."""
    return struct.pack(f">{len(values)}H", *values)


async def call_each(redis: Redis, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
    """The script's answers to ``calls`` (KEYS, ARGV) in one round trip. One call goes alone (EVALSHA, loaded
    again only on NOSCRIPT, when nothing ran); several go in a pipeline, which redis-py prefixes with a
    SCRIPT EXISTS: a round trip of its own that a lone call does not need (the usual case on one shard)."""
    if len(calls) == 1:
        keys, args = calls[0]
        return [await script(keys=keys, args=args)]
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            await script(keys=keys, args=args, client=pipe)
        return list(await pipe.execute())
