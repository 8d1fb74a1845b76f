"""Invoice lookup, for support answering a consumer: by key (``GET ?key=``), or by channel and the channel's own
user id (a POST, so the id never sits in a URL, a history or a log), hashed as uploads hash it
(core/hashing.py ``user_ref``) and found through the same hash index as ``GET /v1/invoices?user=``.

An invoice shows its facts, its status history with times and reasons, its reviews, other channels' duplicate
uploads, its reversal, its place in the feed (batch, entry, seal time) and its cases: never a name, an ID
number, a location, or the hashes that stand for them. Each lookup is in the audit log.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg
from starlette.responses import Response

from core.errors import STORE_ERRORS, StoreUnavailable
from core.hashing import user_ref
from core.times import from_ms
from dedup import inflight
from gateway import audit
from gateway.console.page import Visit, page
from gateway.deps import Deps

KEY = re.compile(r"[0-9]{8,32}")
LISTED = 100

INVOICE = """
SELECT key, channel, number, code, issue_date, amount_fen, seller_tax_id, category, status, reason, accepted_at,
       updated_at, batch_seq
FROM invoices WHERE key = $1
"""
HISTORY = "SELECT channel, status, reason, at, batch_seq FROM invoice_events WHERE key = $1 ORDER BY id"
REVIEWS = "SELECT decision, reviewer, note, at FROM reviews WHERE key = $1 ORDER BY id"
DUPLICATES = "SELECT channel, at FROM duplicate_uploads WHERE key = $1 ORDER BY at"
REVERSAL = "SELECT red_number, reason, channel, at FROM reversals WHERE key = $1"
# Each arm reads one of the partial unique indexes of feed_entries (one add, one void per key); the entry's
# place in its batch counts along feed_entries_batch.
FEED = """
SELECT f.kind, f.batch_seq, b.sealed_at, b.count,
       (SELECT count(*) FROM feed_entries e WHERE e.batch_seq = f.batch_seq AND e.id <= f.id) AS place
FROM (SELECT id, kind, batch_seq FROM feed_entries WHERE key = $1 AND kind = 'add'
      UNION ALL SELECT id, kind, batch_seq FROM feed_entries WHERE key = $1 AND kind = 'void') f
LEFT JOIN feed_batches b ON b.seq = f.batch_seq
ORDER BY f.id
"""
CASES = "SELECT id, summary, state, due_at, opened_at FROM cases WHERE {where} ORDER BY id DESC LIMIT 50"
OF_USER = """
SELECT key, status, reason, batch_seq, accepted_at, issue_date, amount_fen FROM invoices
WHERE user_ref = $1 AND channel = $2
"""


@page("lookup")
async def by_key(visit: Visit) -> Response:
    """The lookup form; with ``?key=``, that invoice."""
    key = visit.request.query_params.get("key", "").strip()
    found: dict[str, Any] | None = None
    if key:
        found = await invoice(visit.deps, key) if KEY.fullmatch(key) else {"missing": True}
        async with visit.deps.pool.acquire() as conn:
            await audit.record(conn, visit.actor, "lookup", key[:32])
    return visit.render("lookup.html", key=key, found=found, channels=_channels(visit.deps), user=None)


@page("lookup")
async def by_user(visit: Visit) -> Response:
    """The invoices of a channel's user (``channel``, ``user``: the channel's user id, only hashed)."""
    channel, user = visit.form.get("channel"), visit.form.get("user").strip()
    known = _channels(visit.deps)
    listed: list[asyncpg.Record] = []
    cases: list[asyncpg.Record] = []
    if channel in known and 1 <= len(user) <= 200:
        ref = user_ref(visit.deps.settings.secrets.person_secret, channel, user)
        async with visit.deps.pool.acquire() as conn:
            rows = await conn.fetch(OF_USER, ref, channel)
            listed = sorted(rows, key=lambda r: r["accepted_at"], reverse=True)[:LISTED]
            cases = await conn.fetch(CASES.format(where="user_ref = $1"), ref)
            await audit.record(conn, visit.actor, "lookup", f"user of {channel}", {"user_ref": ref[:16]})
    found_user = {"channel": channel, "invoices": listed, "cases": cases, "asked": True}
    return visit.render("lookup.html", key="", found=None, channels=known, user=found_user, listed=LISTED)


async def invoice(d: Deps, key: str) -> dict[str, Any]:
    """Everything the console shows of one invoice (``missing``, or ``queued`` while it is still in Redis)."""
    async with d.pool.acquire() as conn:
        row = await conn.fetchrow(INVOICE, key)
        if row is None:
            return await _queued(d, key)
        return {
            "invoice": row,
            "history": await conn.fetch(HISTORY, key),
            "reviews": await conn.fetch(REVIEWS, key),
            "duplicates": await conn.fetch(DUPLICATES, key),
            "reversal": await conn.fetchrow(REVERSAL, key),
            "feed": await conn.fetch(FEED, key),
            "cases": await conn.fetch(CASES.format(where="invoice_key = $1"), key),
        }


async def _queued(d: Deps, key: str) -> dict[str, Any]:
    try:
        owner = await inflight.owner(d.redis, d.campaign.dedup.shards, key)
    except STORE_ERRORS as exc:
        raise StoreUnavailable("the intake queue cannot be read now") from exc
    if owner is None:
        return {"missing": True}
    return {"queued": True, "channel": owner.channel, "accepted_at": from_ms(owner.accepted_at_ms)}


def _channels(d: Deps) -> list[str]:
    return sorted(c.client_id for c in d.clients.all() if c.role == "channel")
