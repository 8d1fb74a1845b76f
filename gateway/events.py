"""``GET /v1/events?after=CURSOR&limit=N&wait=S`` (role channel): the change feed of the calling channel's
invoices, one event per status change after the 202, in order, resumable by cursor, kept for the campaign.

Each event names the invoice ``key``, its new ``status`` (``verified``, ``eligible`` with ``batch_seq``,
``ineligible``, ``held`` and ``reversed`` with their ``reason``; ``verified`` with reason ``released_in_review``
when a review releases a held invoice, ``ineligible`` with ``rejected_in_review`` when it rejects one), the time
``at``, and its ``cursor``; and the invoice's prizes: ``prize_awarded``, ``prize_payable``, ``prize_paid``,
``prize_withdrawn`` and ``prize_clawback`` (with the reversal's reason), ``prize_expired``, each with its
``prize_id`` (GET /v1/prizes tells the rest). ``next`` is where to resume: pass it as ``after`` (omit ``after``
to start from the campaign's first event). A cursor is opaque: store it as given. With ``wait``, the request waits
up to ``S`` seconds for an event when none is there (long poll), woken by the database (gateway/feedwatch.py).

The events are the ``invoice_events`` rows of the channel, read by (transaction, id) from the index of
migration 021, and only those of transactions older than any still running: none can commit later behind a
cursor already handed out (the migration says why).
"""

from __future__ import annotations

import re
import time
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.times import iso_ms
from gateway import admit, codes
from gateway.deps import deps
from gateway.errors import Problem
from gateway.feedwatch import EVENTS
from gateway.params import int_param, seconds_param

CURSOR = re.compile(r"([0-9]{1,19})-([0-9]{1,19})")
MAX_LIMIT = 1000

READ = """
SELECT tx::text AS tx_text, id, key, status, reason, batch_seq, prize_id, at FROM invoice_events
WHERE channel = $1 AND status <> 'accepted' AND (tx, id) > ($2::text::xid8, $3::bigint)
  AND tx < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY tx, id LIMIT $4
"""


async def events(request: Request) -> Response:
    d = deps(request)
    client, _ = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    after = _cursor(request.query_params.get("after", ""))
    limit = int_param(request, "limit", 100, 1, MAX_LIMIT)
    wait_s = seconds_param(request, "wait", 0.0, d.settings.feed.max_wait_s)
    deadline = time.monotonic() + wait_s
    found = await read(d.pool, client.client_id, after, limit)
    while not found and (left := deadline - time.monotonic()) > 0:
        await d.feed_watch.wait(min(left, 1.0), EVENTS)
        found = await read(d.pool, client.client_id, after, limit)
        if request.app.state.draining:  # a long poll must not hold a stopping process (gateway/server.py)
            break
    next_cursor = found[-1]["cursor"] if found else _text(after)
    return Response(orjson.dumps({"events": found, "next": next_cursor}), media_type="application/json")


async def read(pool: asyncpg.Pool, channel: str, after: tuple[int, int], limit: int) -> list[dict[str, Any]]:
    """The channel's events after the cursor (transaction, id), oldest first."""
    rows = await pool.fetch(READ, channel, str(after[0]), after[1], limit)
    return [_event(r) for r in rows]


def _event(row: asyncpg.Record) -> dict[str, Any]:
    event: dict[str, Any] = {
        "cursor": f"{row['tx_text']}-{row['id']}",
        "key": row["key"],
        "status": row["status"],
        "at": iso_ms(row["at"]),
    }
    if row["reason"] is not None:
        event["reason"] = row["reason"]
    if row["batch_seq"] is not None:
        event["batch_seq"] = row["batch_seq"]
    if row["prize_id"] is not None:
        event["prize_id"] = row["prize_id"]
    return event


def _cursor(raw: str) -> tuple[int, int]:
    if not raw:
        return 0, 0
    m = CURSOR.fullmatch(raw)
    if m is None or int(m[1]) >= 2**63 or int(m[2]) >= 2**63:
        raise Problem(codes.BAD_PARAMETER, "after must be a cursor the feed gave (its next, or an event's cursor)")
    return int(m[1]), int(m[2])


def _text(cursor: tuple[int, int]) -> str:
    return "" if cursor == (0, 0) else f"{cursor[0]}-{cursor[1]}"
