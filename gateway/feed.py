"""``GET /v1/feed``: sealed batches after a cursor, oldest first, with an optional long poll. Read from the
streaming replica when there is one (gateway/reads.py): a batch never changes once sealed, so a lagging replica
only shows it a moment later."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.times import iso_ms
from gateway import auth, metrics, reads
from gateway.deps import deps
from gateway.params import int_param, seconds_param


async def feed(request: Request) -> Response:
    d = deps(request)
    await auth.authenticate(request, "draw", d.clients, d.redis, d.settings.api)
    after = int_param(request, "after", 0, 0, 2**62)
    limit = int_param(request, "limit", 10, 1, d.settings.feed.max_limit)
    wait_s = seconds_param(request, "wait", 0.0, d.settings.feed.max_wait_s)
    deadline = time.monotonic() + wait_s
    batches = await read_batches(d.read_pool, after, limit)
    # The primary's NOTIFY wakes the poll before a replica has the batch: then it looks again soon.
    every_s = 1.0 if d.read_pool is d.pool else reads.REPLICA_POLL_S
    while not batches and (left := deadline - time.monotonic()) > 0:
        await d.feed_watch.wait(min(left, every_s))
        batches = await read_batches(d.read_pool, after, limit)
        if request.app.state.draining:  # a long poll must not hold a stopping process (gateway/server.py)
            break
    metrics.DATABASE_READS.labels("feed", "primary" if d.read_pool is d.pool else "replica").inc()
    return Response(orjson.dumps({"batches": batches}), media_type="application/json")


async def read_batches(pool: asyncpg.Pool, after: int, limit: int) -> list[dict[str, Any]]:
    """Batches with seq > ``after``, each with its entries exactly as they were hashed."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT seq, sealed_at, count, prev_sha256, sha256 FROM feed_batches WHERE seq > $1 ORDER BY seq LIMIT $2",
            after,
            limit,
        )
        if not rows:
            return []
        entries = await conn.fetch(
            "SELECT batch_seq, body FROM feed_entries WHERE batch_seq = ANY($1::bigint[]) ORDER BY batch_seq, id",
            [r["seq"] for r in rows],
        )
    by_seq: dict[int, list[orjson.Fragment]] = {r["seq"]: [] for r in rows}
    for e in entries:
        by_seq[e["batch_seq"]].append(orjson.Fragment(e["body"]))
    return [
        {
            "seq": r["seq"],
            "sealed_at": iso_ms(r["sealed_at"]),
            "count": r["count"],
            "prev_sha256": r["prev_sha256"],
            "sha256": r["sha256"],
            "entries": by_seq[r["seq"]],
        }
        for r in rows
    ]
