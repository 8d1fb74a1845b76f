"""Where a day's accepted keys wait in Redis before (or instead of) their commit: in flight (claimed), queued in
an intake stream, waiting for a re-check, set aside as a dead letter. Read for reconciliation (gateway/reconcile.py)
in the order a key moves on: claims, then streams, then re-checks, then dead letters, so that a key moving
meanwhile is seen in its later place, never missed."""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

import msgspec

from core import contract, keys
from core.stores import RedisClient
from core.times import iso_ms
from dedup.inflight import parse_owner


class Waiting(NamedTuple):
    """A key of the day not committed: where it is, since when (ms), and what is known of it."""

    where: str  # "stream", "recheck", "dead", "claim"
    at_ms: int
    detail: str


class Gathered:
    """What Redis holds of the day: its keys not committed, and how many of its entries are still queued."""

    def __init__(self) -> None:
        self.waiting: dict[str, Waiting] = {}
        self.queued_entries = 0


async def gather(redis: RedisClient, shards: int, window: tuple[int, int]) -> Gathered:
    """Keys of the window not (yet) committed, from Redis, in the order a key moves on: claims, streams,
    re-checks, dead letters (a later place wins)."""
    found = Gathered()
    for shard in range(shards):
        await _claims(redis, shard, window, found.waiting)
    for shard in range(shards):
        found.queued_entries += await _entries(redis, keys.stream(shard), window, found.waiting, "stream")
        await _rechecks(redis, shard, window, found.waiting)
        await _entries(redis, keys.dead_letters(shard), window, found.waiting, "dead", everything=True)
    return found


async def _claims(redis: RedisClient, shard: int, window: tuple[int, int], found: dict[str, Waiting]) -> None:
    cursor = 0
    while True:
        claims: Any
        cursor, claims = await redis.hscan(keys.inflight(shard), cursor, count=1000)
        for key, claim in claims.items():
            owner = parse_owner(claim.decode())
            if owner is not None and window[0] <= owner.accepted_at_ms < window[1]:
                found[key.decode()] = Waiting("claim", owner.accepted_at_ms, owner.channel)
        if cursor == 0:
            return


async def _entries(
    redis: RedisClient,
    stream: str,
    window: tuple[int, int],
    found: dict[str, Waiting],
    where: str,
    everything: bool = False,
) -> int:
    """The invoices of a stream's entries accepted in ``window`` (read from the window's start to a little past
    its end, or the whole stream); returns how many of its entries belong to the window."""
    after, last = ("-", "+") if everything else (f"{window[0]}-0", f"{window[1] + contract.LATE_ENTRY_MS}-0")
    counted = 0
    while True:
        entries: Any = await redis.xrange(stream, after, last, count=1000)
        for entry_id, fields in entries:
            at_ms = _at_ms(fields)
            if not window[0] <= at_ms < window[1]:
                continue
            counted += 1
            detail = fields.get(b"~reason", b"").decode()
            queued = _queued(fields)
            for _, q in queued:
                found[q.key] = Waiting(where, at_ms, detail)
            if where == "dead" and not queued and detail.startswith("undecodable"):
                found[f"(dead letter {entry_id.decode()})"] = Waiting(where, at_ms, detail)
        if len(entries) < 1000:
            return counted
        after = "(" + entries[-1][0].decode()


def _at_ms(fields: dict[bytes, bytes] | None) -> int:
    try:
        return int(fields[contract.AT]) if fields else 0
    except (KeyError, ValueError):
        return 0


def _queued(fields: dict[bytes, bytes]) -> list[tuple[bytes, contract.Queued]]:
    try:
        return contract.read_entry(fields)[0]
    except (KeyError, ValueError, msgspec.DecodeError):
        return []  # an entry the workers could not decode either: its dead letter says why


async def _rechecks(redis: RedisClient, shard: int, window: tuple[int, int], found: dict[str, Waiting]) -> None:
    members: Any = await redis.zrange(keys.recheck(shard), 0, -1, withscores=True)
    for member, due_ms in members:
        tries, packed = contract.parse_recheck(member)
        q = contract.unpack(packed)
        if window[0] <= q.accepted_at_ms < window[1]:
            due = dt.datetime.fromtimestamp(due_ms / 1000, dt.UTC)
            found[q.key] = Waiting("recheck", q.accepted_at_ms, f"try {tries + 1}, due {iso_ms(due)}")
