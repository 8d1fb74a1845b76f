"""Replicated acknowledgement (deploy/README.md, "Durability"): a script call counts as done only once what it
wrote is on its primary and on ``Acks.replicas`` of that primary's replicas.

WAIT counts the replicas that have everything the connection it runs on has written, so it goes on the very
connection that ran the calls, right after them, in the same round trip: on a single Redis one pipeline; on a
cluster one pipeline per node (its calls, then one WAIT), sent to the node this client's slot map names.
Replication keeps a primary's order, so a replica that has the WAIT's offset has everything before it too.

On a cluster the node pipelines are sent here rather than through redis-py's cluster pipeline, which sends a
redirected command again on another connection, where a WAIT would not cover it: a call answered MOVED, ASK or
TRYAGAIN did not run, and goes again, with a WAIT of its own, to the node named. The calls must be safe to
repeat (the claim script recognises its own claims): a broken connection leaves their outcome unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode, PipelineCommand
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterError,
    ConnectionError,
    MovedError,
    NoScriptError,
    RedisError,
    TryAgainError,
)

from core import lua
from core.settings import Stores
from core.stores import RedisClient

Calls = Sequence[tuple[list[str], list[Any]]]  # each call's KEYS and ARGV
REDIRECTS = 8  # rounds of MOVED, ASK or TRYAGAIN before giving up (a resharding moves one slot at a time)
TRY_AGAIN_S = 0.05  # a slot whose keys are split between two nodes while it moves: soon whole on one


class Acks(NamedTuple):
    """How many replicas an acknowledgement waits for (0: none, no WAIT), and for how long at most."""

    replicas: int
    timeout_ms: int

    @staticmethod
    def of(stores: Stores) -> Acks:
        return Acks(stores.min_replicas(), stores.redis_wait_timeout_ms)


class NotReplicated(RedisError):
    """The calls ran, but fewer replicas than wanted acknowledged them in time. ``replies``: the calls' answers,
    in order (what was written stays on the primary: the caller decides what to answer)."""

    def __init__(self, replies: list[Any], acked: int, wanted: int) -> None:
        super().__init__(f"{acked} of {wanted} replica(s) acknowledged in time")
        self.replies = replies
        self.acked = acked


async def call_acked(redis: RedisClient, script: AsyncScript, calls: Calls, acks: Acks) -> list[Any]:
    """The script's answers to ``calls``, once each call's writes are on ``acks.replicas`` replicas (one round
    trip per node, the calls pipelined with their WAIT). Raises ``NotReplicated`` when fewer acknowledged in
    time; any other failure as redis-py raises it."""
    if acks.replicas <= 0:
        return await lua.call_each(redis, script, calls)
    if isinstance(redis, RedisCluster):
        return await _on_cluster(redis, script, calls, acks)
    return await _on_single(redis, script, calls, acks)


async def _on_single(redis: Redis, script: AsyncScript, calls: Calls, acks: Acks) -> list[Any]:
    replies: list[Any] = [None] * len(calls)
    short: list[int] = []
    todo = list(range(len(calls)))
    for _ in range(2):  # a second round only for calls Redis had no script for (restarted, or flushed)
        async with redis.pipeline(transaction=False) as pipe:
            for i in todo:
                keys, args = calls[i]
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            pipe.execute_command("WAIT", acks.replicas, acks.timeout_ms)
            *results, acked = await pipe.execute(raise_on_error=False)
        ran = [(i, r) for i, r in zip(todo, results, strict=True) if not isinstance(r, NoScriptError)]
        _file(ran, acked, replies, short, acks)
        todo = [i for i, r in zip(todo, results, strict=True) if isinstance(r, NoScriptError)]
        if not todo:
            return _checked(replies, short, acks)
        await redis.script_load(script.script)
    raise NoScriptError("Redis lost the script again as soon as it was loaded")


async def _on_cluster(redis: RedisCluster, script: AsyncScript, calls: Calls, acks: Acks) -> list[Any]:
    await redis.initialize()  # nothing to do once the slot map is known (redis-py reads it lazily)
    replies: list[Any] = [None] * len(calls)
    short: list[int] = []
    todo: list[tuple[int, str]] = [(i, "") for i in range(len(calls))]  # (call, the node an ASK named, or "")
    for _ in range(REDIRECTS):
        groups: dict[str, tuple[ClusterNode, list[tuple[int, str]]]] = {}
        for i, asked in todo:
            node = _node_for(redis, calls[i][0][0], asked)
            groups.setdefault(node.name, (node, []))[1].append((i, asked))
        sent = [_send(redis, node, script, calls, members, acks) for node, members in groups.values()]
        todo = []
        for (node, members), results in zip(groups.values(), await asyncio.gather(*sent), strict=True):
            *answers, acked = results
            todo += await _redirected(redis, node, script, members, answers)
            ran = [(i, r) for (i, _), r in zip(members, answers, strict=True) if not isinstance(r, Exception)]
            _file(ran, acked, replies, short, acks)
        if not todo:
            return _checked(replies, short, acks)
    raise ClusterError(f"still redirected after {REDIRECTS} rounds (a resharding in progress?)")


def _node_for(redis: RedisCluster, first_key: str, asked: str) -> ClusterNode:
    if asked:
        node = redis.get_node(node_name=asked)
        if node is None:
            raise ClusterError(f"ASK named {asked}, a node this client does not know yet")
        return node
    return redis.nodes_manager.get_node_from_slot(key_slot(first_key.encode()))


async def _send(
    redis: RedisCluster,
    node: ClusterNode,
    script: AsyncScript,
    calls: Calls,
    members: list[tuple[int, str]],
    acks: Acks,
) -> list[Any]:
    """One pipeline on one connection of ``node``: each call (after ASKING when an ASK sent it there), then WAIT.
    The results of the calls, then the WAIT's."""
    commands: list[PipelineCommand] = []
    for i, asked in members:
        if asked:
            commands.append(PipelineCommand(len(commands), "ASKING"))
        keys, args = calls[i]
        commands.append(PipelineCommand(len(commands), "EVALSHA", script.sha, len(keys), *keys, *args))
    commands.append(PipelineCommand(len(commands), "WAIT", acks.replicas, acks.timeout_ms))
    try:
        await node.execute_pipeline(commands)
    except ConnectionError:
        await redis.aclose()  # as redis-py's own cluster pipeline does: the next command reads the slot map anew
        raise
    return [c.result for c in commands if c.args[0] != "ASKING"]


async def _redirected(
    redis: RedisCluster, node: ClusterNode, script: AsyncScript, members: list[tuple[int, str]], answers: list[Any]
) -> list[tuple[int, str]]:
    """The calls of one node's pipeline that did not run and go again (with the node to go to, when an ASK
    named one), once what their errors say is learnt; raises any other error."""
    again: list[tuple[int, str]] = []
    for (i, _), answer in zip(members, answers, strict=True):
        if isinstance(answer, NoScriptError):  # a replica promoted since, or a node new to the slot: no cache
            await node.execute_command("SCRIPT", "LOAD", script.script)
            again.append((i, ""))
        elif isinstance(answer, MovedError):
            await redis.nodes_manager.move_slot(answer)
            again.append((i, ""))
        elif isinstance(answer, AskError):
            again.append((i, f"{answer.host}:{answer.port}"))
        elif isinstance(answer, TryAgainError):
            await asyncio.sleep(TRY_AGAIN_S)
            again.append((i, ""))
        elif isinstance(answer, Exception):
            if isinstance(answer, ConnectionError):
                await redis.aclose()
            raise answer
    return again


def _file(ran: list[tuple[int, Any]], acked: Any, replies: list[Any], short: list[int], acks: Acks) -> None:
    """Keep the answers of the calls that ran, noting when their WAIT fell short; raises an error among them
    (a script's own) or the WAIT's."""
    for i, answer in ran:
        if isinstance(answer, Exception):
            raise answer
        replies[i] = answer
    if isinstance(acked, Exception):
        raise acked
    if ran and int(acked) < acks.replicas:
        short.append(int(acked))


def _checked(replies: list[Any], short: list[int], acks: Acks) -> list[Any]:
    if short:
        raise NotReplicated(replies, min(short), acks.replicas)
    return replies
