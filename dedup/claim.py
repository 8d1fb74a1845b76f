"""Cross-channel deduplication and durable enqueue (SPEC.md, pipeline stages 4 and 5).

One pipelined Redis round trip per request (one script call per intake shard the request touches). Keys the
filter has seen and that are not in flight are looked up in PostgreSQL, once per request; those absent there
are the filter's false positives and are claimed in a second round ("force"), so a new invoice is never
refused because of the filter.

With replicated acknowledgement (``Acks``, core/acks.py) each round's calls are followed, on the same
connection, by a WAIT for the replicas. When they fall short the request is answered 503 and its claims are
left for the channel's retry, which the claim script then answers "accepted" (``Owner.retaken``) rather than
"duplicate".
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg

from core import contract, keys, lua
from core.acks import Acks, NotReplicated, call_acked
from core.errors import STORE_ERRORS
from core.shards import digest, shard_of
from core.stores import RedisClient
from dedup import metrics, scripts
from dedup.inflight import PERSON_TAG, Owner, parse_owner

SCRIPT = scripts.load("claim_enqueue.lua")
MAX_GENERATIONS = 8  # bitmaps the script may touch per shard: KEYS must name them all
NO_ACKS = Acks(0, 0)
# How long the claims of an upload answered 503 stay the channel's own to take back (dedup/unacked.lua):
# a retry comes within seconds; a week covers a channel's own outage too.
UNACKED_TTL_S = 7 * 86_400
log = logging.getLogger(__name__)


class Item(NamedTuple):
    key: str
    packed: bytes  # the invoice as the workers decode it
    person: str
    industry: str = "other"  # what the daily reports count it under (core/campaign.py)


class Claimer:
    def __init__(self, redis: RedisClient, pool: asyncpg.Pool, shards: int, acks: Acks = NO_ACKS) -> None:
        self._redis = redis
        self._pool = pool
        self._shards = shards
        self._acks = acks
        self._script = redis.register_script(SCRIPT)
        self._leave = redis.register_script(lua.load(__package__, "unacked.lua"))

    async def claim_and_enqueue(
        self,
        channel: str,
        accepted_at_ms: int,
        request_id: str,
        items: Sequence[Item],
        tally: bytes = b"",
        first: Sequence[bytes] | None = None,
    ) -> list[Owner | None]:
        """Claim each item, no key twice; enqueue the new ones with this request's duplicates. ``tally``: what was
        decided about the request before the claim (core/contract.py), carried by the first shard's entry.
        ``first``: the answers of the check round, made already in the call of ``first_call`` (gateway/together.py).

        Returns, per item, None when it was new and is now queued, else the owner of the upload that came first
        (``retaken`` when it is this channel's own upload left for its retry: accepted then). Raises
        ``NotReplicated`` when replicas did not acknowledge in time, having left the claims for the retry.
        """
        by_shard = self._by_shard(items)
        try:
            if first is None:
                answers = await self._claim(channel, accepted_at_ms, request_id, items, by_shard, tally)
            else:
                answers = [a.decode() for a in first]
                await self._resolve(channel, accepted_at_ms, request_id, items, answers, by_shard)
        except NotReplicated:
            metrics.NOT_REPLICATED.inc()
            await self._leave_for_retry(f"{channel}|{accepted_at_ms}|{request_id}|", by_shard)
            raise
        metrics.CHECKED.inc(len(items))
        in_flight = sum(1 for a in answers if a.count("|") == 3 and not a.startswith("+"))
        if in_flight:
            metrics.DUPLICATES.labels("in_flight").inc(in_flight)
        retaken = sum(1 for a in answers if a.startswith("+"))
        if retaken:
            metrics.RETAKEN.inc(retaken)
        return [parse_owner(a) for a in answers]

    async def _claim(
        self,
        channel: str,
        accepted_at_ms: int,
        request_id: str,
        items: Sequence[Item],
        by_shard: dict[int, list[tuple[int, Item, bytes]]],
        tally: bytes,
    ) -> list[str]:
        first = await self._round(by_shard, self._calls(channel, accepted_at_ms, request_id, by_shard, "check", tally))
        answers = [first[i] for i in range(len(items))]
        await self._resolve(channel, accepted_at_ms, request_id, items, answers, by_shard)
        return answers

    def first_call(
        self, channel: str, accepted_at_ms: int, request_id: str, items: Sequence[Item], tally: bytes
    ) -> tuple[list[str], list[Any]] | None:
        """KEYS and ARGV of the check round's one script call, for a caller that makes it within a call of its
        own (gateway/together.py) and hands its answers back as ``first``; None when the round is not one plain
        call: items of several shards, or replicas to wait for."""
        if self._acks.replicas > 0 or not items:
            return None
        by_shard = self._by_shard(items)
        if len(by_shard) > 1:
            return None
        return self._calls(channel, accepted_at_ms, request_id, by_shard, "check", tally)[0]

    def _by_shard(self, items: Sequence[Item]) -> dict[int, list[tuple[int, Item, bytes]]]:
        by_shard: dict[int, list[tuple[int, Item, bytes]]] = defaultdict(list)
        for i, item in enumerate(items):
            d = digest(item.key)
            by_shard[shard_of(d, self._shards)].append((i, item, d))
        return by_shard

    async def _leave_for_retry(self, prefix: str, by_shard: dict[int, list[tuple[int, Item, bytes]]]) -> None:
        """Mark this request's claims as its channel's to take back (best effort: unmarked, a retry reads
        "duplicate" with the first upload's receipt, as after a lost answer)."""
        calls = [
            (
                [keys.inflight(shard), keys.unacked(shard)],
                [prefix, UNACKED_TTL_S, *(item.key for _, item, _ in entries)],
            )
            for shard, entries in by_shard.items()
        ]
        try:
            metrics.LEFT_FOR_RETRY.inc(sum(await lua.call_each(self._redis, self._leave, calls)))
        except STORE_ERRORS as exc:
            log.warning("could not leave the claims of an unacknowledged upload for its retry: %s", exc)

    async def _resolve(
        self,
        channel: str,
        accepted_at_ms: int,
        request_id: str,
        items: Sequence[Item],
        answers: list[str],
        by_shard: dict[int, list[tuple[int, Item, bytes]]],
    ) -> None:
        """The exact check behind the filter for the answers "?": committed keys are duplicates, the rest are
        false positives."""
        maybe = [i for i, a in enumerate(answers) if a == "?"]
        if not maybe:
            return
        metrics.MAYBE.inc(len(maybe))
        committed = await committed_owners(self._pool, [items[i].key for i in maybe])
        if committed:
            metrics.DUPLICATES.labels("committed").inc(len(committed))
            others = [(key, channel) for key, owner in committed.items() if _channel_of(owner) != channel]
            await record_duplicates(self._pool, others, accepted_at_ms)
        wanted = {i for i in maybe if items[i].key not in committed}
        for i in maybe:
            if i not in wanted:
                answers[i] = committed[items[i].key]
        if not wanted:
            return
        metrics.FALSE_POSITIVES.inc(len(wanted))
        retry = {s: [e for e in entries if e[0] in wanted] for s, entries in by_shard.items()}
        retry = {s: e for s, e in retry.items() if e}
        forced = await self._round(retry, self._calls(channel, accepted_at_ms, request_id, retry, "force", b""))
        for i in wanted:
            answers[i] = forced[i]

    async def tally_only(self, channel: str, accepted_at_ms: int, request_id: str, tally: bytes) -> None:
        """The tally of a request that claimed nothing (every invoice refused before the claim), as an entry of
        its own in the first shard's stream: the only round trip such a request spends on it."""
        fields = {contract.REQUEST: request_id, contract.CHANNEL: channel, contract.AT: accepted_at_ms}
        await self._redis.xadd(keys.stream(0), {**fields, contract.TALLY: tally})  # type: ignore[dict-item]

    async def _round(
        self, by_shard: dict[int, list[tuple[int, Item, bytes]]], calls: list[tuple[list[str], list[Any]]]
    ) -> dict[int, str]:
        """The calls of a round (``_calls``), one per shard, all in one pipelined round trip; answers by item
        index."""
        replies = await call_acked(self._redis, self._script, calls, self._acks)
        answers: dict[int, str] = {}
        for entries, reply in zip(by_shard.values(), replies, strict=True):
            for (i, *_), value in zip(entries, reply, strict=True):
                answers[i] = value.decode()
        return answers

    def _calls(
        self,
        channel: str,
        accepted_at_ms: int,
        request_id: str,
        by_shard: dict[int, list[tuple[int, Item, bytes]]],
        mode: str,
        tally: bytes,
    ) -> list[tuple[list[str], list[Any]]]:
        """KEYS and ARGV of a round's script call per shard; the first carries ``tally``."""
        calls: list[tuple[list[str], list[Any]]] = []
        for shard, entries in by_shard.items():
            industries = contract.pack_names([item.industry for _, item, _ in entries])
            argv: list[Any] = [channel, accepted_at_ms, request_id, mode, b"".join(d for _, _, d in entries)]
            argv += [b"" if calls else tally, industries]
            for _, item, _ in entries:
                argv += [item.key, item.packed, item.person[:PERSON_TAG]]
            calls.append((shard_keys(shard), argv))
        return calls


def shard_keys(shard: int) -> list[str]:
    """KEYS of the claim script for one shard (the bitmaps of every possible generation)."""
    return list(_shard_keys(shard))


@functools.lru_cache(maxsize=1024)
def _shard_keys(shard: int) -> tuple[str, ...]:
    bitmaps = [keys.bloom(shard, g) for g in range(1, MAX_GENERATIONS + 1)]
    named = [keys.inflight(shard), keys.stream(shard), keys.bloom_meta(shard), keys.duplicates(shard)]
    return (*named, keys.unacked(shard), *bitmaps)


async def committed_owners(pool: asyncpg.Pool, invoice_keys: list[str]) -> dict[str, str]:
    """The owner (as a claim would name it) of each key already in PostgreSQL (the unique index is the final
    guard)."""
    rows = await pool.fetch(
        "SELECT key, channel, person, (extract(epoch FROM accepted_at) * 1000)::bigint AS at_ms"
        " FROM invoices WHERE key = ANY($1::text[])",
        invoice_keys,
    )
    return {r["key"]: f"{r['channel']}|{r['at_ms']}||{r['person'][:PERSON_TAG]}" for r in rows}


def _channel_of(claim: str) -> str:
    owner = parse_owner(claim)
    return owner.channel if owner else ""


async def record_duplicates(pool: asyncpg.Pool, uploads: list[tuple[str, str]], at_ms: int) -> None:
    """Remember that a channel uploaded a key another channel got in first, so it may read "duplicate"."""
    if not uploads:
        return
    await pool.execute(
        "INSERT INTO duplicate_uploads (key, channel, at)"
        " SELECT k, c, to_timestamp($3::bigint / 1000.0) FROM unnest($1::text[], $2::text[]) AS u(k, c)"
        " ON CONFLICT DO NOTHING",
        [k for k, _ in uploads],
        [c for _, c in uploads],
        at_ms,
    )
