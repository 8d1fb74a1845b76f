"""Loading a package's Lua script (the scripts live beside the modules that run them), and calling one."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from core.stores import RedisClient


def load(package: str, name: str) -> str:
    return resources.files(package).joinpath(name).read_text()


def indices(values: Sequence[int]) -> bytes:
    """Per-invoice indices into KEYS as one argument, 2 bytes each (big-endian), as the scripts read them back
    with ``string.byte``: one argument for the request instead of one per invoice."""
    return struct.pack(f">{len(values)}H", *values)


async def call_each(redis: RedisClient, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]) -> list[Any]:
    """The script's answers to ``calls`` (KEYS, ARGV) in one round trip. One call goes alone (EVALSHA, loaded
    again only on NOSCRIPT, when nothing ran); several go in a pipeline, which redis-py prefixes with a
    SCRIPT EXISTS on a single Redis: a round trip of its own that a lone call does not need (the usual case on
    one shard). On a cluster the pipeline goes to each node at once and checks nothing first: a node without
    the script (a replica promoted since) answers NOSCRIPT for the calls it did not run, which go again."""
    if len(calls) == 1:
        keys, args = calls[0]
        return [await run(redis, script, keys, args)]
    if not isinstance(redis, RedisCluster):
        async with redis.pipeline(transaction=False) as pipe:
            for keys, args in calls:
                await script(keys=keys, args=args, client=pipe)
            return list(await pipe.execute())
    replies = await _cluster_round(redis, script, calls)
    missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
    if missing:
        await redis.script_load(script.script)  # on every primary
        for i, again in zip(missing, await _cluster_round(redis, script, [calls[i] for i in missing]), strict=True):
            replies[i] = again
    for r in replies:
        if isinstance(r, Exception):
            raise r
    return replies


async def run(redis: RedisClient, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """The script's answer to one call: EVALSHA, and on NOSCRIPT (nothing ran) the script loaded and called again.
    What redis-py's script object does, without its checks of the client's type per call (6 µs of a single-invoice
    upload's three calls each, measured by benchmarks/single_stages.py)."""
    try:
        return await redis.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await redis.script_load(script.script)
        return await redis.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)


async def _cluster_round(
    redis: RedisCluster, script: AsyncScript, calls: Sequence[tuple[list[str], list[Any]]]
) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            # redis-py refuses its evalsha method in a cluster pipeline (it cannot load a script there): the
            # command itself goes through, and a NOSCRIPT comes back as the call's answer.
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))
