"""Dedup at scale, against this machine's own Redis, in one run (issue 3's figures).

    .venv/bin/python benchmarks/dedup_bench.py [--keys 10000000] [--requests 2000]

Starts its own Redis (the project's config: AOF on) and PostgreSQL under .data/bench, then:

1. creates the filter for ``--keys`` at the campaign's false-positive rate and shard count, and loads that
   many distinct keys into it (``bloom_add.lua``, the rebuild path): keys/s on this one Redis;
2. memory: the filter's bytes (MEMORY USAGE of every bitmap) and Redis ``used_memory`` growth, per key,
   and the same filter sized for 100 M keys (its bitmaps are preallocated, so the size is exact);
3. false-positive rate: 1,000,000 keys never added, tested read-only, against the configured rate;
4. hot path: the gateway's claim + enqueue call (``Claimer.claim_and_enqueue``) for a 100-invoice request
   of new keys on the loaded filter, beside one SADD of the same 100 keys and 100 pipelined SADDs, in
   the same run: median of ``--requests`` requests, three rounds, each printed.

Writes benchmarks/results/dedup.json and dedup.md and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import bench_stack, save  # noqa: E402
from core import campaign as campaigns  # noqa: E402
from core import keys  # noqa: E402
from core.settings import from_env  # noqa: E402
from core.stores import open_redis  # noqa: E402
from dedup import bloom, scripts, sizing  # noqa: E402
from dedup.claim import Claimer, Item  # noqa: E402
from dedup.rebuild import Adder  # noqa: E402


def fresh_keys(rng: random.Random, n: int, prefix: str) -> list[str]:
    """Distinct 20-digit keys: a prefix that no other set uses, then a counter-derived sequence."""
    return [f"{prefix}{rng.randrange(10**14):014d}" for _ in range(n)]


async def timed_rounds(call: Any, make_args: Any, requests: int, rounds: int = 3) -> list[float]:
    """Median latency (µs) of ``call(*make_args())`` over ``requests`` calls, for each round."""
    medians = []
    for _ in range(rounds):
        samples = []
        for _ in range(requests):
            args = make_args()
            started = time.perf_counter()
            await call(*args)
            samples.append(time.perf_counter() - started)
        medians.append(statistics.median(samples) * 1e6)
    return medians


async def run(stack: Any, n_keys: int, requests: int) -> dict[str, Any]:
    settings = from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")})
    config = campaigns.load(settings.campaign_file).dedup
    redis = open_redis(settings.stores)
    pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=4)
    rng = random.Random(2026)
    out: dict[str, Any] = {"keys": n_keys, "shards": config.shards, "target_fpr": config.false_positive_rate}
    try:
        await redis.flushall()
        base_memory = (await redis.info("memory"))["used_memory"]
        k, blocks = await bloom.add_generation(redis, config.shards, n_keys, config.false_positive_rate)
        await bloom.set_ready(redis, config.shards, True)
        out.update(k=k, blocks_per_shard=blocks)

        adder = Adder(redis, config.shards)
        started, loaded = time.perf_counter(), 0
        while loaded < n_keys:
            batch = fresh_keys(rng, min(20_000, n_keys - loaded), "2634")
            await adder.add(batch)
            loaded += len(batch)
        load_s = time.perf_counter() - started
        out["load_keys_per_s"] = n_keys / load_s

        filters = await bloom.describe(redis, config.shards)
        bitmap_bytes = 0
        for shard in range(config.shards):
            bitmap_bytes += await redis.memory_usage(keys.bloom(shard, 1)) or 0
        used = (await redis.info("memory"))["used_memory"] - base_memory
        out["filter_bytes"] = bitmap_bytes
        out["bytes_per_key_filter"] = bitmap_bytes / n_keys
        out["bytes_per_key_used_memory"] = used / n_keys
        _, blocks100 = sizing.size(100_000_000, config.false_positive_rate)
        out["bytes_per_key_at_100m"] = blocks100 * sizing.BLOCK_BITS / 8 / 100_000_000
        out["estimated_fpr"] = max(f.false_positive_rate() for f in filters)

        probes = fresh_keys(rng, 1_000_000, "2635")  # another prefix: never added
        unseen = 0
        for i in range(0, len(probes), 20_000):
            unseen += await adder.add(probes[i : i + 20_000], only_test=True)
        out["measured_fpr"] = (len(probes) - unseen) / len(probes)

        packed = msgspec.msgpack.encode(["x" * 40] * 15)  # a stand-in invoice of realistic size
        claimer = Claimer(redis, pool, config.shards)
        counter = iter(range(10**9))

        def claim_args() -> tuple[Any, ...]:
            i = next(counter)
            items = [Item(key, packed, "p" * 64) for key in fresh_keys(rng, 100, "2636")]
            return ("bench", 1, f"bench-{i}", items)

        await redis.config_resetstat()
        out["claim_100_us"] = await timed_rounds(claimer.claim_and_enqueue, claim_args, requests)
        out["claim_server_us"] = await _server_us_per_request(redis, "evalsha", 3 * requests)
        # The same requests through the script with the filter step cut out: what the filter itself costs.
        unfiltered = Claimer(redis, pool, config.shards)
        unfiltered._script = redis.register_script(
            scripts.load("claim_enqueue.lua").replace(
                "local bits_seen = seen_or_set(digests, d, k, sizes, 6)", "local bits_seen = false"
            )
        )
        await redis.config_resetstat()
        out["claim_without_filter_100_us"] = await timed_rounds(unfiltered.claim_and_enqueue, claim_args, requests)
        out["claim_without_filter_server_us"] = await _server_us_per_request(redis, "evalsha", 3 * requests)

        async def sadd(members: list[str]) -> None:
            await redis.sadd("bench:set", *members)

        async def sadd_pipelined(members: list[str]) -> None:
            async with redis.pipeline(transaction=False) as pipe:
                for m in members:
                    pipe.sadd("bench:set2", m)
                await pipe.execute()

        out["sadd_100_us"] = await timed_rounds(sadd, lambda: (fresh_keys(rng, 100, "2637"),), requests)
        out["sadd_pipelined_100_us"] = await timed_rounds(
            sadd_pipelined, lambda: (fresh_keys(rng, 100, "2637"),), requests
        )

        async def ping() -> None:
            await redis.ping()

        out["ping_us"] = await timed_rounds(ping, tuple, requests)
        claim_med = statistics.median(out["claim_100_us"])
        sadd_med = statistics.median(out["sadd_100_us"])
        out["claim_keys_per_s"] = 100 / claim_med * 1e6
        out["sadd_keys_per_s"] = 100 / sadd_med * 1e6
        out["claim_over_sadd"] = claim_med / sadd_med
    finally:
        await pool.close()
        await redis.aclose()
    return out


async def _server_us_per_request(redis: Any, command: str, requests: int) -> float:
    """Server-side microseconds spent in ``command`` per request (INFO commandstats), all shards together."""
    stats = (await redis.info("commandstats"))[f"cmdstat_{command}"]
    return float(stats["usec"]) / requests


def markdown(r: dict[str, Any]) -> str:
    def med(name: str) -> str:
        values = r[name]
        return f"{statistics.median(values):,.0f} µs (rounds: {', '.join(f'{v:,.0f}' for v in values)})"

    rows = [
        ("keys in the filter", f"{r['keys']:,} over {r['shards']} shards, k={r['k']}"),
        ("filter bytes per key (MEMORY USAGE of the bitmaps)", f"{r['bytes_per_key_filter']:.3f} B"),
        ("Redis used_memory growth per key", f"{r['bytes_per_key_used_memory']:.3f} B"),
        ("filter bytes per key sized for 100 M keys", f"{r['bytes_per_key_at_100m']:.3f} B (target ≤ 2.5 B)"),
        ("configured false-positive rate", f"{r['target_fpr']:.4%}"),
        ("estimated false-positive rate (from fill)", f"{r['estimated_fpr']:.4%}"),
        (
            "measured false-positive rate (1 M unseen keys)",
            f"{r['measured_fpr']:.4%} ({r['measured_fpr'] / r['target_fpr'] - 1:+.0%} of configured; target ±20%)",
        ),
        ("claim + enqueue, 100 new keys (the gateway's call)", med("claim_100_us")),
        ("  of which inside Redis (the script, INFO commandstats)", f"{r['claim_server_us']:,.0f} µs"),
        ("same call with the filter step cut out", med("claim_without_filter_100_us")),
        ("  of which inside Redis", f"{r['claim_without_filter_server_us']:,.0f} µs"),
        (
            "the filter's own cost per 100 keys (difference)",
            f"{statistics.median(r['claim_100_us']) - statistics.median(r['claim_without_filter_100_us']):,.0f} µs"
            f" (target ≤ 500 µs)",
        ),
        ("one SADD of the same 100 keys", med("sadd_100_us")),
        ("100 pipelined SADDs", med("sadd_pipelined_100_us")),
        ("PING round trip", med("ping_us")),
        ("claim + enqueue / SADD of 100 (target ≤ 2x)", f"{r['claim_over_sadd']:.2f}x"),
        ("keys/s, claim + enqueue, one client", f"{r['claim_keys_per_s']:,.0f}"),
        ("keys/s, SADD of 100, one client", f"{r['sadd_keys_per_s']:,.0f}"),
        ("keys/s, bulk load (rebuild path), this one Redis", f"{r['load_keys_per_s']:,.0f}"),
    ]
    return "| what | measured |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with bench_stack(full=False) as stack:
        result = asyncio.run(run(stack, args.keys, args.requests))
    save("dedup", "Dedup benchmark", result, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
