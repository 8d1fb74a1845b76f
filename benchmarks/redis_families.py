"""Redis's keys counted by family (``core/keys.family``), with MEMORY USAGE of a sample and the TTLs that tell what
outlives a day: for ``make bench-memory`` (benchmarks/redis_memory.py) and ``make bench``'s row of Redis memory
(benchmarks/pipeline_bench.py)."""

from __future__ import annotations

import contextlib
import random
import statistics
from typing import Any

import redis

from core import keys
from deploy import devstack

DAY_MS = 86_400_000
SCAN_COUNT = 2000


def snapshot(client: redis.Redis, sample: int) -> dict[str, Any]:
    """Every family's key count, bytes (count x mean of a sample) and TTLs; Redis's used_memory."""
    by_family: dict[str, list[bytes]] = {f: [] for f in keys.FAMILIES}
    for key in client.scan_iter(count=SCAN_COUNT):
        by_family[keys.family(key)].append(key)
    families = {f: _family(client, found, sample) for f, found in by_family.items()}
    return {"used_memory": int(client.info("memory")["used_memory"]), "families": families}


def _family(client: redis.Redis, found: list[bytes], sample: int) -> dict[str, Any]:
    picked = found if len(found) <= sample else random.sample(found, sample)
    pipe = client.pipeline(transaction=False)
    for key in picked:
        pipe.memory_usage(key, samples=0)  # every element: exact, for a stream or a hash too
        pipe.pttl(key)
    replies = pipe.execute()
    sizes, ttls = [int(r or 0) for r in replies[0::2]], [int(r) for r in replies[1::2]]
    mean = statistics.fmean(sizes) if sizes else 0.0
    # Keys without a TTL (-1) outlive any window; a key gone meanwhile (-2) counts as expired.
    lasting = [s for s, t in zip(sizes, ttls, strict=True) if t == -1 or t > DAY_MS]
    share = len(lasting) / len(sizes) if sizes else 0.0
    return {
        "keys": len(found),
        "bytes": round(mean * len(found)),
        "bytes_after_24h": round((statistics.fmean(lasting) if lasting else 0.0) * share * len(found)),
        "mean_key_bytes": round(mean, 1),
        "ttl_s_median": _median_ttl(ttls),
        "ttl_s_max": max((t for t in ttls if t >= 0), default=-1) / 1000,
    }


def _median_ttl(ttls: list[int]) -> float | None:
    timed = [t for t in ttls if t >= 0]
    return statistics.median(timed) / 1000 if timed else None


def wait_for_inflight_empty(client: redis.Redis, shards: int, timeout_s: float = 600) -> None:
    """Until the in-flight claims are gone (each is kept a grace period after its commit)."""
    devstack.wait_until(
        "in-flight claims cleared", lambda: sum(client.hlen(keys.inflight(s)) for s in range(shards)) == 0, timeout_s
    )


def intake_shards(client: redis.Redis) -> int:
    return int(client.eval("return #redis.call('KEYS', '{s*}:intake')", 0) or 1)  # type: ignore[arg-type]


def kept_after_drain(client: redis.Redis, before: dict[str, Any], n: int, sample: int = 2000) -> dict[str, float]:
    """Bytes an invoice each family keeps once a drained burst of ``n`` invoices has had its in-flight claims'
    grace period waited out and every rate window has passed (the TTLs of a sample), beyond ``before`` (a
    ``snapshot`` from before the burst): ``make bench``'s row of Redis memory. Claims still in flight after
    two minutes (a grace period is 30 s) are counted as kept: they have no TTL."""
    with contextlib.suppress(TimeoutError):
        wait_for_inflight_empty(client, intake_shards(client), 120)
    at = snapshot(client, sample)["families"]
    return {f: (at[f]["bytes_after_24h"] - before["families"][f]["bytes"]) / n for f in keys.FAMILIES}
