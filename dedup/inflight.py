"""The in-flight claim hashes, one per intake shard: invoice key -> the claim of the upload that got it first.

This module owns them, and the duplicates hashes beside them (core/keys.py ``duplicates``). ``claim_enqueue.lua``
writes a claim (``<channel>|<accepted_at_ms>|<request id>|<person tag>``) in the same atomic step as the stream
entry, and notes there a channel's upload of a key another channel has in flight; the status route reads both
(``seen_by``); the workers release committed keys and recorded duplicates a grace period after their commit
(``Releaser``); ``dedup rebuild`` and a starting worker sweep what dead workers left behind
(``release_committed``).

The grace period keeps a key in flight a while after PostgreSQL has it, so that a gateway which looked in
PostgreSQL just before the commit and claims a "false positive" just after still finds the claim (the exact
check of dedup.claim has two steps). A key left in flight by a worker that died is harmless: it is committed, so
"duplicate" is the right answer for it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

import asyncpg

from core import keys
from core.shards import digest, shard_of
from core.stores import RedisClient

PERSON_TAG = 16  # hex characters of the person hash kept in a claim: enough to tell two persons apart


class Owner(NamedTuple):
    """Who got an invoice key first: a channel, a tag of the person, and when (Unix ms; 0 if unknown).
    ``retaken``: the asking channel's own upload, answered 503 for want of replicas, which its retry takes back
    (an acceptance, at the first upload's time: dedup/claim_enqueue.lua)."""

    channel: str
    person: str
    accepted_at_ms: int
    retaken: bool = False


def parse_owner(answer: str) -> Owner | None:
    """None for "" (new); else the owner named by a claim "<channel>|<at ms>|<request>|<person tag>", which the
    claim script prefixes with "+" when the asking channel retakes it.

    Claims written before the person tag existed have three parts: their person is unknown ("").
    """
    if not answer:
        return None
    retaken = answer.startswith("+")
    parts = answer[1:].split("|", 3) if retaken else answer.split("|", 3)
    at = parts[1] if len(parts) > 1 else ""
    person = parts[3] if len(parts) > 3 else ""
    return Owner(parts[0], person, int(at) if at.isascii() and at.isdigit() else 0, retaken)


async def owner(redis: RedisClient, shards: int, key: str) -> Owner | None:
    """The owner of a key still in flight (accepted, not committed), or None."""
    claim: bytes | None = await redis.hget(keys.inflight(shard_of(digest(key), shards)), key)  # type: ignore[assignment]
    return None if claim is None else parse_owner(claim.decode())


async def seen_by(redis: RedisClient, shards: int, key: str, channel: str) -> tuple[Owner | None, int | None]:
    """In one round trip: the owner of a key in flight, and when ``channel`` uploaded it as a duplicate of
    another channel's while it was (Unix ms; None if it did not, or the workers have recorded it since)."""
    shard = shard_of(digest(key), shards)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hget(keys.inflight(shard), key)
        pipe.hget(keys.duplicates(shard), f"{channel}|{key}")
        claim, dup_at = await pipe.execute()
    return (None if claim is None else parse_owner(claim.decode())), (None if dup_at is None else int(dup_at))


class Releaser:
    """Releases committed keys from the in-flight hashes, and recorded duplicates from the duplicates hashes, once
    their grace period is over; and drops the committed invoices' verified answers (workers/verify.py's cache) then:
    a redelivery would find them committed, and re-verification before payout asks the tax service anew. Their
    TTL (``GATEWAY_VERIFY_CACHE_S``) is for answers of invoices not committed yet (issue 19: 120 B an invoice kept
    for 7 days, now none)."""

    def __init__(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._due: deque[tuple[float, dict[str, list[str]], dict[int, list[str]]]] = deque()

    def schedule(self, committed: dict[int, list[str]], duplicates: dict[int, list[str]] | None = None) -> None:
        """``committed``: keys by shard; ``duplicates``: "<channel>|<key>" fields by shard."""
        fields = {keys.inflight(shard): names for shard, names in committed.items()}
        fields |= {keys.duplicates(shard): names for shard, names in (duplicates or {}).items()}
        if fields:
            self._due.append((time.monotonic() + self._grace_s, fields, committed))

    async def release_due(self, redis: RedisClient, everything: bool = False) -> int:
        """HDEL every field whose grace period is over (all of them when ``everything``), in one round trip. If
        the round trip fails, they stay due and the next call sends them again (an HDEL twice is harmless):
        dropped, they stayed in flight until a worker's next start swept them (5,000 claims and their answers
        after one Redis timeout in a burst)."""
        now = time.monotonic()
        ready: list[tuple[float, dict[str, list[str]], dict[int, list[str]]]] = []
        while self._due and (everything or self._due[0][0] <= now):
            ready.append(self._due.popleft())
        if not ready:
            return 0
        released = 0
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for _, fields, committed in ready:
                    for name, names in fields.items():
                        pipe.hdel(name, *names)
                        released += len(names)
                    for shard, names in committed.items():
                        _drop_answers(pipe, shard, names)
                await pipe.execute()
        except BaseException:
            self._due.extendleft(reversed(ready))
            raise
        return released


async def release_committed(redis: RedisClient, pool: asyncpg.Pool, shards: int, grace_s: float) -> int:
    """Release in-flight keys committed longer ago than the grace period, and duplicates recorded in PostgreSQL
    that were uploaded longer ago than it: what dead workers left behind (with the verified answers of those
    keys, as ``Releaser`` drops them)."""
    released = 0
    for shard in range(shards):
        async for found in _scan(redis, keys.inflight(shard)):
            done = await pool.fetch(
                "SELECT key FROM invoices WHERE key = ANY($1::text[])"
                " AND committed_at < now() - make_interval(secs => $2)",
                list(found),
                grace_s,
            )
            if done:
                names = [r["key"] for r in done]
                async with redis.pipeline(transaction=False) as pipe:
                    pipe.hdel(keys.inflight(shard), *names)
                    _drop_answers(pipe, shard, names)
                    gone, _ = await pipe.execute()
                released += gone
        async for found in _scan(redis, keys.duplicates(shard)):
            released += await _release_recorded(redis, pool, shard, found, grace_s)
    return released


def _drop_answers(pipe: Any, shard: int, names: list[str]) -> None:
    """Queue the UNLINK of committed invoices' verified answers (workers/verify.py's cache) on ``pipe``. A shard's
    keys share its hash tag: one slot on a cluster, one command (a cluster pipeline's unlink() would split them)."""
    pipe.execute_command("UNLINK", *(keys.verified(shard, key) for key in names))


async def _scan(redis: RedisClient, name: str) -> AsyncIterator[dict[str, bytes]]:
    """A hash's fields and values, a thousand at a time."""
    cursor = 0
    while True:
        reply: Any = await redis.hscan(name, cursor, count=1000)
        cursor, found = reply
        if found:
            yield {_text(k): v for k, v in found.items()}
        if cursor == 0:
            return


async def _release_recorded(
    redis: RedisClient, pool: asyncpg.Pool, shard: int, found: dict[str, bytes], grace_s: float
) -> int:
    old = time.time() * 1000 - grace_s * 1000
    pairs = [f.split("|", 1) for f, at in found.items() if "|" in f and int(at) < old]
    if not pairs:
        return 0
    rows = await pool.fetch(
        "SELECT key, channel FROM duplicate_uploads WHERE (key, channel) IN"
        " (SELECT * FROM unnest($1::text[], $2::text[]))",
        [k for _, k in pairs],
        [c for c, _ in pairs],
    )
    if not rows:
        return 0
    return int(await redis.hdel(keys.duplicates(shard), *(f"{r['channel']}|{r['key']}" for r in rows)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def in_flight(redis: RedisClient, shard: int) -> list[str]:
    """Every key of a shard in flight now (the rebuild adds them to the filter)."""
    raw: list[bytes] = await redis.hkeys(keys.inflight(shard))  # type: ignore[assignment]
    return [k.decode() for k in raw]
