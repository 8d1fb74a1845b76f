"""``GET /v1/invoices/{key}``: an invoice's status and history, for the channel that submitted it."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.errors import STORE_ERRORS, StoreUnavailable
from core.stores import RedisClient
from core.times import iso_from_ms, iso_ms
from dedup import inflight
from gateway import admit, codes, metrics, reads
from gateway.deps import deps
from gateway.errors import Problem

# The invoice's month from invoice_keys: the lookup then reads that month's partition only (pruned when it runs),
# and its events only from that month on (no event of an invoice is older than its acceptance).
INVOICE = """
SELECT channel, status, reason, batch_seq, accepted_at FROM invoices
WHERE key = $1 AND accepted_at = (SELECT accepted_at FROM invoice_keys WHERE key = $1)
"""
EVENTS = (
    "SELECT status, reason, at FROM invoice_events"
    " WHERE key = $1 AND channel = $2 AND at >= $3 AND prize_id IS NULL ORDER BY id"
)


async def status(request: Request) -> Response:
    d = deps(request)
    client, _ = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    key = request.path_params["key"]
    # The replica, unless it has not replayed this channel's own last write yet (gateway/reads.py).
    pool = await reads.for_channel(d.pool, d.read_pool, d.redis, client.client_id)
    found = await lookup(key, client.client_id, pool, d.redis, d.campaign.dedup.shards)
    if found is None and pool is not d.pool:  # committed and out of Redis, not replayed yet: the primary has it
        pool = d.pool
        found = await lookup(key, client.client_id, pool, d.redis, d.campaign.dedup.shards)
    metrics.DATABASE_READS.labels("status", "primary" if pool is d.pool else "replica").inc()
    if found is None:
        raise Problem(codes.UNKNOWN_INVOICE, "no invoice with this key was submitted by this channel")
    return Response(orjson.dumps(found), media_type="application/json")


async def lookup(key: str, channel: str, pool: asyncpg.Pool, redis: RedisClient, shards: int) -> dict[str, Any] | None:
    """The status as this channel may see it: committed, duplicate, or still queued."""
    if len(key) > 32 or not (key.isascii() and key.isdigit()):
        return None
    async with pool.acquire() as conn:
        row = await conn.fetchrow(INVOICE, key)
        if row is not None and row["channel"] == channel:
            events = await conn.fetch(EVENTS, key, channel, row["accepted_at"])
            found = {"key": key, "status": row["status"], "history": [_event(e) for e in events]}
            if row["reason"] is not None:
                found["reason"] = row["reason"]
            if row["batch_seq"] is not None:
                found["batch_seq"] = row["batch_seq"]
            return found
        dup_at = await conn.fetchval(
            "SELECT at FROM duplicate_uploads WHERE key = $1 AND channel = $2 ORDER BY at LIMIT 1", key, channel
        )
    if dup_at is not None:
        return _duplicate(key, iso_ms(dup_at))
    return await _in_redis(key, channel, redis, shards, committed=row is not None)


async def _in_redis(key: str, channel: str, redis: RedisClient, shards: int, committed: bool) -> dict[str, Any] | None:
    """Still queued by this channel, or uploaded by it while another channel's upload was: the workers have not
    recorded either yet."""
    try:
        owner, dup_at_ms = await inflight.seen_by(redis, shards, key, channel)
    except STORE_ERRORS as exc:
        raise StoreUnavailable("the intake queue cannot be read now") from exc
    if dup_at_ms is not None:
        return _duplicate(key, iso_from_ms(dup_at_ms))
    if committed or owner is None or owner.channel != channel:
        return None
    at = iso_from_ms(owner.accepted_at_ms)
    return {"key": key, "status": "accepted", "history": [{"status": "accepted", "at": at}]}


def _duplicate(key: str, at: str) -> dict[str, Any]:
    return {"key": key, "status": "duplicate", "history": [{"status": "duplicate", "at": at}]}


def _event(e: Any) -> dict[str, Any]:
    event = {"status": e["status"], "at": iso_ms(e["at"])}
    if e["reason"] is not None:
        event["reason"] = e["reason"]
    return event
