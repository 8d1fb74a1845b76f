"""Operations endpoints, unsigned: ``/healthz``, ``/readyz``, ``/metrics``."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import asyncpg
from redis.asyncio import RedisCluster
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core import keys, outbox, partitions
from core.metrics import exposition
from core.stores import RedisClient
from dedup import bloom, sizing
from dedup import metrics as dedup_metrics
from gateway import memory, metrics
from gateway.deps import deps


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request: Request) -> Response:
    """200 only when Redis and PostgreSQL answer in time and the process is not draining."""
    d = deps(request)
    stores = d.settings.stores
    checks = {
        "redis": await _answers(d.redis.ping(), stores.redis_timeout_ms / 1000),
        "postgres": await _answers(d.pool.fetchval("SELECT 1"), stores.database_timeout_ms / 1000),
        "draining": request.app.state.draining,
    }
    metrics.STORE_UP.labels("redis").set(1 if checks["redis"] else 0)
    metrics.STORE_UP.labels("postgres").set(1 if checks["postgres"] else 0)
    ready = checks["redis"] and checks["postgres"] and not checks["draining"]
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)


async def _answers(call: object, timeout_s: float) -> bool:
    try:
        await asyncio.wait_for(call, timeout_s)  # type: ignore[arg-type]
    except Exception:  # any failure of the store means "not ready": the answer is the point
        return False
    return True


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text of every process; the dedup filters' and the feed's gauges are refreshed first."""
    d = deps(request)
    shards = d.campaign.dedup.shards
    await asyncio.gather(
        _refresh_filters(d.redis, shards),
        _refresh_feed(d.pool),
        _refresh_redis(d.redis, shards),
        _refresh_export(d.pool),
        _refresh_partitions(d.pool),
        _refresh_memory(d.redis, shards),
    )
    body, content_type = exposition(d.settings.metrics_dir)
    return Response(body, media_type=content_type)


async def _refresh_filters(redis: RedisClient, shards: int) -> None:
    try:
        filters = await asyncio.wait_for(bloom.describe(redis, shards), 1.0)
    except Exception:  # the filter gauges keep their last values; the scrape itself must not fail
        return
    for f in filters:
        dedup_metrics.READY.labels(str(f.shard)).set(1 if f.ready else 0)
        dedup_metrics.FPR.labels(str(f.shard)).set(f.false_positive_rate())
        for g, gen in enumerate(f.generations, 1):
            labels = (str(f.shard), str(g))
            dedup_metrics.KEYS.labels(*labels).set(gen.keys)
            dedup_metrics.CAPACITY.labels(*labels).set(gen.bytes)
            dedup_metrics.FILL.labels(*labels).set(sizing.fill_ratio(gen.keys, f.k, gen.blocks))


# Both use an index: the primary key of feed_batches, and feed_entries_unsealed (ready_at, id).
FRESHNESS = """
SELECT (SELECT extract(epoch FROM now() - sealed_at) FROM feed_batches ORDER BY seq DESC LIMIT 1) AS newest,
       (SELECT extract(epoch FROM now() - min(ready_at)) FROM feed_entries
         WHERE batch_seq IS NULL AND kind = 'add' AND ready_at <= now()) AS oldest_unfed
"""


async def _refresh_feed(pool: asyncpg.Pool) -> None:
    try:
        row = await asyncio.wait_for(pool.fetchrow(FRESHNESS), 1.0)
    except Exception:  # the feed gauges keep their last values; the scrape itself must not fail
        return
    assert row is not None
    metrics.FEED_NEWEST_BATCH_AGE.set(math.nan if row["newest"] is None else float(row["newest"]))
    metrics.FEED_OLDEST_UNFED_AGE.set(0.0 if row["oldest_unfed"] is None else float(row["oldest_unfed"]))


# Each subquery matches a partial index of the outbox (pending, parked): none reads delivered records.
EXPORT = """
SELECT d.destination,
       (SELECT count(*) FROM (SELECT 1 FROM outbox o WHERE o.destination = d.destination
          AND o.delivered_at IS NULL AND o.parked_at IS NULL LIMIT 1000000) p) AS pending,
       (SELECT count(*) FROM outbox o WHERE o.destination = d.destination
          AND o.delivered_at IS NULL AND o.parked_at IS NOT NULL) AS parked,
       (SELECT extract(epoch FROM now() - o.created_at) FROM outbox o WHERE o.destination = d.destination
          AND o.delivered_at IS NULL AND o.parked_at IS NULL ORDER BY o.id LIMIT 1) AS oldest
FROM (SELECT unnest($1::text[]) UNION SELECT 'webhook:' || channel FROM webhooks) AS d(destination)
"""


async def _refresh_export(pool: asyncpg.Pool) -> None:
    """The outbox's backlog per destination, from PostgreSQL: right even when no relay runs (the lag alert)."""
    try:
        rows = await asyncio.wait_for(pool.fetch(EXPORT, list(outbox.DESTINATIONS)), 1.0)
    except Exception:  # the gauges keep their last values; the scrape itself must not fail
        return
    for r in rows:
        metrics.EXPORT_PENDING.labels(r["destination"]).set(r["pending"])
        metrics.EXPORT_PARKED.labels(r["destination"]).set(r["parked"])
        metrics.EXPORT_OLDEST_PENDING_AGE.labels(r["destination"]).set(float(r["oldest"] or 0.0))


async def _refresh_partitions(pool: asyncpg.Pool) -> None:
    """The months of partitions made ahead, and the rows that fell into a default partition (core/partitions.py)."""
    try:
        async with pool.acquire() as conn:
            found = await asyncio.wait_for(partitions.health(conn), 1.0)
    except Exception:  # the gauges keep their last values; the scrape itself must not fail
        return
    for h in found:
        metrics.PARTITION_MONTHS_AHEAD.labels(h.table).set(h.months_ahead)
        metrics.PARTITION_DEFAULT_ROWS.labels(h.table).set(h.default_rows)


async def _refresh_memory(redis: RedisClient, shards: int) -> None:
    """Redis's memory by key family, from a sample taken at most once a minute (gateway/memory.py)."""
    try:
        families = await asyncio.wait_for(memory.due_sample(redis, shards), 1.0)
    except Exception:  # the gauges keep their last values; the scrape itself must not fail
        return
    for family, size in (families or {}).items():
        metrics.REDIS_MEMORY_BY_FAMILY.labels(family).set(size)


async def _refresh_redis(redis: RedisClient, shards: int) -> None:
    """From Redis, in one pipelined round trip: the entries read by a worker and not acknowledged yet, per shard
    (XPENDING), and Redis's memory against its limit (it runs with noeviction: full, it refuses every write).
    On a cluster, the memory of the primary nearest its limit (each primary refuses writes on its own)."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for shard in range(shards):
                pipe.xpending(keys.stream(shard), keys.GROUP)
            if not isinstance(redis, RedisCluster):
                pipe.info("memory")
            replies = await asyncio.wait_for(pipe.execute(raise_on_error=False), 1.0)
        if isinstance(redis, RedisCluster):
            by_node = await asyncio.wait_for(redis.info("memory", target_nodes=RedisCluster.PRIMARIES), 1.0)
            replies.append(max(by_node.values(), key=_memory_share, default=None))
    except Exception:  # the gauges keep their last values; the scrape itself must not fail
        return
    *pending, memory = replies
    for shard, reply in enumerate(pending):
        if isinstance(reply, dict):
            metrics.PENDING.labels(str(shard)).set(reply["pending"])
        elif "NOGROUP" in str(reply):  # no worker ever ran: nothing was delivered
            metrics.PENDING.labels(str(shard)).set(0)
    if isinstance(memory, dict):
        metrics.REDIS_USED_MEMORY.set(float(memory.get("used_memory", 0)))
        metrics.REDIS_MEMORY_LIMIT.set(float(_memory_limit(memory)))


def _memory_limit(memory: dict[str, Any]) -> float:
    return float(memory.get("maxmemory") or memory.get("total_system_memory") or math.nan)


def _memory_share(memory: Any) -> float:
    return float(memory.get("used_memory", 0)) / _memory_limit(memory) if isinstance(memory, dict) else 0.0
