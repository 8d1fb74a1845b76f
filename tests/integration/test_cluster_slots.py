"""Every script call's keys share one slot: recorded on the cluster as the calls go out, then each key's slot
asked of Redis itself (CLUSTER KEYSLOT). A cluster refuses a call whose keys span slots (CROSSSLOT); this says
which call, and that each script was exercised."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import msgspec
import pytest
from redis.asyncio.cluster import ClusterNode

from core import campaign as campaigns
from core import keys
from core.acks import Acks
from core.settings import Settings
from core.stores import open_redis
from dedup.claim import Claimer, Item
from dedup.rebuild import Adder
from deploy import rediscluster
from gateway.parse import as_invoice
from gateway.validate import check
from loadtest import sample
from ratelimit.caps import Caps
from ratelimit.limits import Nonce, RateLimiter
from tests.conftest import settings_of
from workers.recheck import Rechecks
from workers.verify import PUT_CHUNK, Cache, Pace, Verified

Call = tuple[str, list[bytes]]  # the script's sha, its KEYS


def script_calls(args: tuple[Any, ...]) -> list[Call]:
    if str(args[0]).upper() not in ("EVALSHA", "EVAL"):
        return []
    count = int(args[2])
    return [(str(args[1]), [k if isinstance(k, bytes) else str(k).encode() for k in args[3 : 3 + count]])]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Call]:
    """Every script call sent to a cluster node by this process, alone or in a pipeline."""
    calls: list[Call] = []
    alone, piped = ClusterNode.execute_command, ClusterNode.execute_pipeline

    async def execute_command(node: ClusterNode, *args: Any, **kwargs: Any) -> Any:
        calls.extend(script_calls(args))
        return await alone(node, *args, **kwargs)

    async def execute_pipeline(node: ClusterNode, commands: list[Any]) -> bool:
        for command in commands:
            calls.extend(script_calls(command.args))
        return await piped(node, commands)

    monkeypatch.setattr(ClusterNode, "execute_command", execute_command)
    monkeypatch.setattr(ClusterNode, "execute_pipeline", execute_pipeline)
    return calls


def items(settings: Settings, n: int) -> list[Item]:
    camp = campaigns.load(settings.campaign_file)
    rng = random.Random()
    found = []
    for _ in range(n):
        q = check(as_invoice(sample.invoice(rng)), camp, "demo-channel", "k", 1)
        found.append(Item(q.key, msgspec.msgpack.encode(q), q.person))  # type: ignore[union-attr]
    return found


async def every_script(settings: Settings) -> int:
    """Each script of the gateway and the workers, with a request's worth of keys over every shard."""
    camp = campaigns.load(settings.campaign_file)
    redis = open_redis(settings.stores)
    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=2)
    try:
        batch = items(settings, 40)
        queued = [check(as_invoice(sample.invoice(random.Random())), camp, "demo-channel", "k", 1) for _ in range(8)]
        nonce = Nonce(keys.nonce("demo-channel", "slot-test-nonce-0001"), b"token", 60)
        await RateLimiter(redis, camp.limits).decide("demo-channel", 8, queued, nonce)  # type: ignore[arg-type]
        caps = Caps(redis, camp)
        await caps.reserve(queued)  # type: ignore[arg-type]
        await caps.release(queued)  # type: ignore[arg-type]
        claimer = Claimer(redis, pool, camp.dedup.shards, Acks.of(settings.stores))
        await claimer.claim_and_enqueue("demo-channel", 1, "slot-test-1", batch)
        # Unacknowledged (more replicas than there are): the claims are left for the retry (dedup/unacked.lua).
        greedy = Claimer(redis, pool, camp.dedup.shards, Acks(5, 10))
        with pytest.raises(Exception, match="acknowledged"):
            await greedy.claim_and_enqueue("demo-channel", 2, "slot-test-2", items(settings, 20))
        await Adder(redis, camp.dedup.shards).add([i.key for i in batch], only_test=True)
        await Rechecks(redis, camp.dedup.shards, 1.0).take_due(10)
        await Pace(redis, 1000.0).wait()
        answers = [
            (shard, f"slot-test-{shard}-{i}", Verified(100 + i, "2026-06-01", "normal"))
            for shard in range(camp.dedup.shards)
            for i in range(2 if shard else PUT_CHUNK + 1)  # shard 0's in two calls
        ]
        cache = Cache(redis, 60)
        await cache.put(answers)
        assert await cache.get([(shard, key) for shard, key, _ in answers]) == {k: v for _, k, v in answers}
        return camp.dedup.shards
    finally:
        await pool.close()
        await redis.aclose()


def test_each_script_call_on_the_cluster_names_keys_of_one_slot(cluster_stack: Any, recorded: list[Call]) -> None:
    settings = settings_of(cluster_stack)
    shards = asyncio.run(every_script(settings))
    port = cluster_stack.cluster_ports[0]
    slots_of = {key: rediscluster.key_slot(port, key.decode()) for _, names in recorded for key in set(names)}
    assert all(slot in range(rediscluster.SLOTS) for slot in slots_of.values())
    spanning = [(sha[:8], names) for sha, names in recorded if len({slots_of[k] for k in names}) != 1]
    assert spanning == [], f"script calls whose keys span slots: {spanning}"
    # Each script ran (limits, caps, caps_release, claim_enqueue in each shard, unacked, bloom_add,
    # recheck_take, pace, cache_put): eight scripts besides the claim's, the claim reaching every shard.
    assert len({sha for sha, _ in recorded}) >= 9
    claim_slots = {slots_of[names[0]] for _, names in recorded if names[0].endswith(b":inflight")}
    assert len(claim_slots) == shards
