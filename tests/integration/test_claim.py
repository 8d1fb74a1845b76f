"""Deduplication on the real Redis and PostgreSQL: atomic, exact behind the filter, safe to retry, rebuildable."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import asyncpg
import msgspec
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from core import campaign as campaigns
from core import keys, locks
from core import settings as config
from core.settings import Settings
from core.shards import digest, shard_of
from core.stores import open_redis
from dedup import bloom, inflight, rebuild
from dedup.claim import Claimer, Item
from dedup.inflight import Owner
from gateway.parse import as_invoice
from gateway.validate import check
from loadtest import sample
from loadtest.client import SignedClient
from tests.topology import ON_BOTH
from workers.verify import PUT_CHUNK, Cache, Verified

T = TypeVar("T")
SHARDS = 4  # tests/campaigns/hefei-2026-sharded.toml


def packed_invoices(settings: Settings, n: int, rng: random.Random | None = None) -> list[Item]:
    camp = campaigns.load(settings.campaign_file)
    rng = rng or random.Random()
    items = []
    for _ in range(n):
        q = check(as_invoice(sample.invoice(rng)), camp, "demo-channel", "k", 1)
        items.append(Item(q.key, msgspec.msgpack.encode(q), q.person))  # type: ignore[union-attr]
    return items


def with_stores(settings: Settings, body: Callable[[Any, asyncpg.Pool], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        redis = open_redis(settings.stores)
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
        try:
            return await body(redis, pool)
        finally:
            await pool.close()
            await redis.aclose()

    return asyncio.run(run())


async def stream_lengths(redis: Any) -> int:
    return sum([await redis.xlen(keys.stream(s)) for s in range(SHARDS)])


def test_retried_call_answers_accepted_again_and_enqueues_once(settings: Settings, drain: Any) -> None:
    items = packed_invoices(settings, 30)

    async def body(redis: Any, pool: asyncpg.Pool) -> tuple[list[Any], list[Any], list[Any], list[int]]:
        claimer = Claimer(redis, pool, SHARDS)
        added = [await stream_lengths(redis)]
        first = await claimer.claim_and_enqueue("demo-channel", 1, "req-retry-1", items)
        added.append(await stream_lengths(redis))
        again = await claimer.claim_and_enqueue("demo-channel", 1, "req-retry-1", items)
        added.append(await stream_lengths(redis))
        other = await claimer.claim_and_enqueue("demo-channel", 1, "req-retry-2", items)
        added.append(await stream_lengths(redis))
        return first, again, other, [b - a for a, b in itertools.pairwise(added)]

    first, again, other, added = with_stores(settings, body)
    assert first == again == [None] * 30
    assert other == [Owner("demo-channel", item.person[:16], 1) for item in items]
    # One entry per shard the request touched, written once: the retry adds none. Another request of the same
    # keys enqueues no invoice, but its entries carry its outcomes ("duplicate") for the daily reports.
    assert 1 <= added[0] <= SHARDS and added[1] == 0 and added[2] == added[0]
    drain()


@ON_BOTH
def test_concurrent_uploads_of_one_key_from_both_channels_accept_exactly_one(
    base_url: str, draw: SignedClient, drain: Any
) -> None:
    inv = sample.invoice(random.Random())
    statuses: list[str] = []
    lock = threading.Lock()

    def upload(client_id: str, n: int) -> None:
        mine = {**inv, "user": {"id": f"racer-{n}", "device_id": f"racer-{n}"}}  # each its own user: no rate limit
        with SignedClient(base_url, client_id, f"{client_id}-secret") as client:
            status = client.upload([mine]).json()["results"][0]["status"]
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=upload, args=(("demo-channel", "demo-channel-2")[i % 2], i)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(set(statuses)) == ["accepted", "duplicate"]
    assert statuses.count("accepted") == 1
    drain()


def test_duplicate_of_in_flight_and_of_committed_key(
    channel: SignedClient, channel2: SignedClient, settings: Settings, drain: Any
) -> None:
    inv = sample.invoice(random.Random())
    first = channel.upload([inv]).json()["results"][0]
    key, receipt = first["key"], first["receipt"]
    assert channel2.upload([inv]).json()["results"][0]["status"] == "duplicate"  # in flight
    seen = channel2.status(key).json()  # at once, before any worker recorded it
    assert seen["status"] == "duplicate" and seen["history"][0]["status"] == "duplicate"
    drain()  # committed, and released from the in-flight hash (grace 0 in the tests)

    async def in_flight(redis: Any, pool: asyncpg.Pool) -> int:
        noted = [await redis.hexists(keys.duplicates(s), f"demo-channel-2|{key}") for s in range(SHARDS)]
        return sum([await redis.hexists(keys.inflight(s), key) for s in range(SHARDS)]) + sum(noted)

    assert with_stores(settings, in_flight) == 0  # the duplicate's note too, now that PostgreSQL has it
    before = REGISTRY.get_sample_value("dedup_duplicates_total", {"where": "committed"}) or 0.0
    assert channel2.upload([inv]).json()["results"][0]["status"] == "duplicate"  # committed: PostgreSQL says so
    own = channel.upload([inv]).json()["results"][0]
    assert own["status"] == "duplicate" and own["receipt"] == receipt  # its own upload: the receipt again
    assert channel2.status(key).json()["status"] == "duplicate"
    assert channel.status(key).json()["status"] == "eligible"
    assert before == (REGISTRY.get_sample_value("dedup_duplicates_total", {"where": "committed"}) or 0.0)


def test_200000_new_keys_through_an_overfull_filter_are_never_refused(settings: Settings) -> None:
    """A filter sized for 2,000 keys is saturated early: nearly every key is a "maybe", resolved exactly."""
    scratch = config.replace(settings, redis_url=settings.stores.redis_url.rsplit("/", 1)[0] + "/1")
    rng = random.Random(2026)
    items = packed_invoices(settings, 500, rng)

    async def body(redis: Any, pool: asyncpg.Pool) -> tuple[int, int, float]:
        await redis.flushdb()
        await bloom.add_generation(redis, SHARDS, 2_000, 0.001)
        await bloom.set_ready(redis, SHARDS, True)
        claimer = Claimer(redis, pool, SHARDS)
        refused = 0
        for r in range(400):
            batch = [Item(f"2634{r:06d}{i:010d}", it.packed, it.person) for i, it in enumerate(items)]
            owners = await claimer.claim_and_enqueue("demo-channel", 1, f"big-{r}", batch)
            refused += sum(1 for o in owners if o is not None)
        entries = await stream_lengths(redis)
        await redis.flushdb()
        return refused, entries, REGISTRY.get_sample_value("dedup_false_positives_total") or 0.0

    refused, entries, false_positives = with_stores(scratch, body)
    assert refused == 0
    assert entries >= 400
    assert false_positives > 100_000  # the exact check really ran behind the filter


def test_rebuild_after_the_filter_keys_are_flushed(
    channel: SignedClient, channel2: SignedClient, draw: SignedClient, settings: Settings, drain: Any
) -> None:
    rng = random.Random()
    committed = sample.invoice(rng)
    channel.upload([committed])
    drain()

    async def flush_filters(redis: Any, pool: asyncpg.Pool) -> None:
        for s in range(SHARDS):
            await redis.delete(keys.bloom_meta(s), *(keys.bloom(s, g) for g in range(1, 9)))

    with_stores(settings, flush_filters)
    # The filter is gone: the exact path still catches duplicates and takes new keys.
    assert channel2.upload([committed]).json()["results"][0]["status"] == "duplicate"
    during = sample.invoice(rng)
    assert channel.upload([during]).json()["results"][0]["status"] == "accepted"

    async def rebuild_all(redis: Any, pool: asyncpg.Pool) -> list[bloom.ShardFilter]:
        config = campaigns.load(settings.campaign_file).dedup
        await rebuild.rebuild(redis, pool, config, 0.0, lambda done, total: None)
        return await bloom.describe(redis, SHARDS)

    filters = with_stores(settings, rebuild_all)
    assert all(f.ready and f.generations for f in filters)
    for inv in (committed, during):
        assert channel2.upload([inv]).json()["results"][0]["status"] == "duplicate"
    assert channel.upload([sample.invoice(rng)]).json()["results"][0]["status"] == "accepted"
    drain()
    # Each key added once (a reversal, which other tests of the session make, is a "void" entry of its own).
    fed = [e["key"] for b in _whole_feed(draw) for e in b["entries"] if e["kind"] == "add"]
    assert len(fed) == len(set(fed))


def _whole_feed(draw: SignedClient) -> list[dict[str, Any]]:
    batches: list[dict[str, Any]] = []
    while page := draw.feed(after=batches[-1]["seq"] if batches else 0, limit=100).json()["batches"]:
        batches.extend(page)
    return batches


def test_grown_filter_still_knows_old_keys_and_adds_new_ones_to_the_newest(settings: Settings) -> None:
    scratch = config.replace(settings, redis_url=settings.stores.redis_url.rsplit("/", 1)[0] + "/2")
    old_keys = [f"263400{i:014d}" for i in range(3_000)]
    new_keys = [f"263401{i:014d}" for i in range(3_000)]

    async def body(redis: Any, pool: asyncpg.Pool) -> tuple[int, int, list[bloom.ShardFilter]]:
        await redis.flushdb()
        await bloom.add_generation(redis, SHARDS, 4_000, 0.001)
        await bloom.set_ready(redis, SHARDS, True)
        adder = rebuild.Adder(redis, SHARDS)
        await adder.add(old_keys)
        await bloom.add_generation(redis, SHARDS, 4_000, 0.001)
        unseen_old = await adder.add(old_keys, only_test=True)
        added_new = await adder.add(new_keys)
        filters = await bloom.describe(redis, SHARDS)
        await redis.flushdb()
        return unseen_old, added_new, filters

    unseen_old, added_new, filters = with_stores(scratch, body)
    assert unseen_old == 0  # every old key is still "seen" through its generation
    assert added_new >= 2_990  # a few may be false positives of the first generation
    assert all(len(f.generations) == 2 and f.k == filters[0].k for f in filters)
    assert sum(f.generations[1].keys for f in filters) == added_new
    assert sum(f.generations[0].keys for f in filters) == 3_000


def test_a_key_sets_the_bits_the_filter_layout_names_and_no_others(settings: Settings) -> None:
    """The bit layout is what filters already in Redis were written with: a block is eight big-endian 32-bit
    words, position p is bit p % 32 of word p // 32; the block is bytes 4-7 of the digest modulo the blocks,
    the positions are bytes 8 onwards."""
    scratch = config.replace(settings, redis_url=settings.stores.redis_url.rsplit("/", 1)[0] + "/3")
    key = "26340000000000000042"

    async def body(redis: Any, pool: asyncpg.Pool) -> tuple[bytes, int, int]:
        await redis.flushdb()
        k, blocks = await bloom.add_generation(redis, SHARDS, 4_000, 0.001)
        await bloom.set_ready(redis, SHARDS, True)
        await rebuild.Adder(redis, SHARDS).add([key])
        bitmap = await redis.get(keys.bloom(shard_of(digest(key), SHARDS), 1))
        await redis.flushdb()
        return bitmap, k, blocks

    bitmap, k, blocks = with_stores(scratch, body)
    d = digest(key)
    words = [0] * 8
    for pos in d[8 : 8 + k]:
        words[pos // 32] |= 1 << (pos % 32)
    block = int.from_bytes(d[4:8], "big") % blocks
    expected = bytearray(blocks * 32)
    expected[block * 32 : block * 32 + 32] = b"".join(w.to_bytes(4, "big") for w in words)
    assert bitmap == bytes(expected)


def test_only_one_rebuild_runs_at_a_time(settings: Settings) -> None:
    config = campaigns.load(settings.campaign_file).dedup

    async def body(redis: Any, pool: asyncpg.Pool) -> str:
        async with pool.acquire() as holder:
            await holder.execute("SELECT pg_advisory_lock($1)", locks.REBUILD)
            try:
                await rebuild.rebuild(redis, pool, config, 0.0, lambda done, total: None)
            except RuntimeError as exc:
                return str(exc)
            finally:
                await holder.execute("SELECT pg_advisory_unlock($1)", locks.REBUILD)
        return "ran"

    assert with_stores(settings, body) == "another dedup rebuild is running"


def test_worker_start_releases_committed_keys_left_in_flight_on_every_shard(settings: Settings, drain: Any) -> None:
    async def body(redis: Any, pool: asyncpg.Pool) -> tuple[int, int, int, int]:
        committed = [r["key"] for r in await pool.fetch("SELECT key FROM invoices LIMIT 40")]
        for key in committed:  # as if dead workers had left them in flight, on whichever shard
            await redis.hset(keys.inflight(shard_of(digest(key), SHARDS)), key, "demo-channel|1|r|p")
            await redis.set(keys.verified(shard_of(digest(key), SHARDS), key), b"answer")  # and their answers
        released = await inflight.release_committed(redis, pool, SHARDS, 0.0)
        answers = sum([await redis.exists(keys.verified(shard_of(digest(k), SHARDS), k)) for k in committed])
        return len(committed), len({shard_of(digest(k), SHARDS) for k in committed}), released, answers

    planted, shards_used, released, answers_left = with_stores(settings, body)
    assert planted >= 8 and shards_used == SHARDS  # the leftovers sit on every shard
    assert released >= planted
    assert answers_left == 0  # their verified answers went with them


def test_uploads_go_on_after_redis_forgets_its_scripts(settings: Settings, channel: SignedClient) -> None:
    """A lone script call is sent as EVALSHA without a SCRIPT EXISTS first: on NOSCRIPT it loads and runs."""
    import redis as redis_sync

    rng = random.Random()
    for n in (1, 8):  # one invoice: lone calls; eight over 4 shards: pipelines
        redis_sync.Redis.from_url(settings.stores.redis_url).script_flush()
        results = channel.upload([sample.invoice(rng) for _ in range(n)]).json()["results"]
        assert [r["status"] for r in results] == ["accepted"] * n


def test_a_dead_workers_duplicate_notes_are_swept_once_recorded_and_old(settings: Settings) -> None:
    """A worker that died after its commit leaves its duplicates noted in Redis: a starting worker (or a rebuild)
    removes those PostgreSQL has, once their grace is over, and keeps the others."""

    async def run(redis: Any, pool: asyncpg.Pool) -> tuple[bool, bool]:
        old, recent = "26340000000000000901", "26340000000000000902"
        long_ago = int((time.time() - 3600) * 1000)
        for key, at in ((old, long_ago), (recent, int(time.time() * 1000))):
            shard = shard_of(digest(key), SHARDS)
            await redis.hset(keys.duplicates(shard), f"sweep-test|{key}", at)
            await pool.execute(
                "INSERT INTO duplicate_uploads (key, channel, at) VALUES ($1, 'sweep-test', now())"
                " ON CONFLICT DO NOTHING",
                key,
            )
        await inflight.release_committed(redis, pool, SHARDS, 30.0)
        left = [
            bool(await redis.hexists(keys.duplicates(shard_of(digest(k), SHARDS)), f"sweep-test|{k}"))
            for k in (old, recent)
        ]
        await redis.hdel(keys.duplicates(shard_of(digest(recent), SHARDS)), f"sweep-test|{recent}")
        return left[0], left[1]

    old_left, recent_left = with_stores(settings, run)
    assert not old_left and recent_left


def test_verified_answers_are_kept_for_their_ttl_and_read_back_whole(settings: Settings) -> None:
    """Cache.put writes a batch's answers in a script call per shard and chunk (workers/cache_put.lua): each one
    read back as it was given, under its shard's key, with the cache's TTL; an answer with every field set too."""
    full = Verified(18800, "2026-06-01", "reversed", "91340104000000044P", "b" * 64, "organisation", "on_behalf", "x")
    answers = [
        (shard, f"cache-test-{shard}-{i}", full if i == 3 else Verified(100 + i, "2026-06-01", "normal"))
        for shard in range(SHARDS)
        for i in range(PUT_CHUNK + 2 if shard == 1 else 5)
    ]

    async def run(redis: Any, pool: asyncpg.Pool) -> tuple[dict[str, Verified], list[int]]:
        await Cache(redis, 600).put(answers)
        found = await Cache(redis, 600).get([(shard, key) for shard, key, _ in answers])
        ttls = [await redis.ttl(keys.verified(shard, key)) for shard, key, _ in answers[:: len(answers) // 7]]
        await redis.delete(*(keys.verified(shard, key) for shard, key, _ in answers))
        return found, ttls

    found, ttls = with_stores(settings, run)
    assert found == {key: answer for _, key, answer in answers}
    assert all(590 <= ttl <= 600 for ttl in ttls), ttls


def test_a_committed_invoice_leaves_no_verified_answer_behind(
    channel: SignedClient, settings: Settings, drain: Any
) -> None:
    """The verified-answer cache is for invoices not committed yet: once committed (and released from the
    in-flight hash, grace 0 in the tests), nothing of the invoice stays in Redis."""
    key = channel.upload([sample.invoice(random.Random())]).json()["results"][0]["key"]
    shard = shard_of(digest(key), SHARDS)
    drain()
    assert channel.status(key).json()["status"] == "eligible"

    async def left(redis: Any, pool: asyncpg.Pool) -> int:
        return int(await redis.exists(keys.verified(shard, key))) + int(await redis.hexists(keys.inflight(shard), key))

    assert with_stores(settings, left) == 0


def test_claims_whose_release_failed_are_released_by_the_next_call(settings: Settings) -> None:
    """A release whose round trip fails (Redis away, a timeout in a burst) keeps its claims due: the next call
    releases them, where they stayed in flight until a worker's next start."""
    from redis.asyncio import Redis

    keys_by_shard = {s: [f"release-again-{s}-{random.randrange(10**12)}"] for s in range(SHARDS)}

    async def run(redis: Any, pool: asyncpg.Pool) -> tuple[int, int, int]:
        for shard, names in keys_by_shard.items():
            await redis.hset(keys.inflight(shard), names[0], "demo-channel|1|r|p")
        releaser = inflight.Releaser(0.0)
        releaser.schedule(keys_by_shard)
        nowhere = Redis(port=1, socket_connect_timeout=0.5)  # nothing listens there
        try:
            await releaser.release_due(nowhere)
        except (OSError, RedisConnectionError):
            pass
        finally:
            await nowhere.aclose()
        still = sum([await redis.hexists(keys.inflight(s), n[0]) for s, n in keys_by_shard.items()])
        released = await releaser.release_due(redis)
        left = sum([await redis.hexists(keys.inflight(s), n[0]) for s, n in keys_by_shard.items()])
        return still, released, left

    assert with_stores(settings, run) == (SHARDS, SHARDS, 0)
