"""What writing a batch's verified answers to the workers' cache costs (workers/verify.py ``Cache.put``): a batch of
2,500 answers on one shard, as a burst's batches are, written 30 times; the worker's CPU time an invoice (nearly all
of it spent before the write's first await, so the event loop runs nothing else meanwhile), Redis's CPU time (INFO
used_cpu_sys + used_cpu_user) and the wall time.

    .venv/bin/python benchmarks/cache_put_cost.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import bench_stack
from core import keys
from core.settings import Settings, from_env
from core.stores import open_redis
from workers.verify import Cache, Verified

BATCH = 2500
ROUNDS = 30


async def run(settings: Settings) -> dict[str, float]:
    redis = open_redis(settings.stores)
    cache = Cache(redis, 7 * 86400)
    answer = Verified(18800, "2026-06-01", "normal", "91340104000000044P", None, "person", "normal", "catering")
    cpu, wall, server = [], [], []
    for r in range(ROUNDS):
        answers = [(0, f"2634{r:04d}{i:012d}", answer) for i in range(BATCH)]
        before = await redis_cpu_s(redis)
        c, t = time.process_time(), time.perf_counter()
        await cache.put(answers)
        cpu.append((time.process_time() - c) / BATCH * 1e6)
        wall.append((time.perf_counter() - t) / BATCH * 1e6)
        server.append((await redis_cpu_s(redis) - before) / BATCH * 1e6)
    found = await cache.get([(0, f"2634{ROUNDS - 1:04d}{i:012d}") for i in range(BATCH)])
    assert len(found) == BATCH and found[f"2634{ROUNDS - 1:04d}{0:012d}"] == answer
    assert 0 < await redis.ttl(keys.verified(0, f"2634{0:04d}{0:012d}")) <= 7 * 86400
    await redis.aclose()
    return {k: statistics.median(v) for k, v in (("cpu_us", cpu), ("redis_us", server), ("wall_us", wall))}


async def redis_cpu_s(redis: Any) -> float:
    info = await redis.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main() -> None:
    with bench_stack(False, name="cache-put") as stack:
        found = asyncio.run(run(from_env({k: v for k, v in stack.env.items() if k.startswith("GATEWAY_")})))
    print(
        f"Cache.put, {BATCH:,} answers a call, median of {ROUNDS}: {found['cpu_us']:.1f} µs of the worker's CPU"
        f", {found['redis_us']:.1f} µs of Redis's and {found['wall_us']:.1f} µs of wall time an invoice"
    )


if __name__ == "__main__":
    main()
