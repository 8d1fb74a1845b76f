"""``GET /v1/invoices?user=ID&from=DATE&to=DATE&limit=N&after=CURSOR`` (role channel): the invoices one of the
channel's consumers had accepted, oldest first, as the workers have written them (an invoice still queued shows
in ``GET /v1/invoices/{key}`` first, here once committed, within seconds).

``user`` is the channel's own ``user.id``: the gateway keeps only its keyed hash (``user_ref``), so it hashes the
given id the same way and finds that user's invoices through a hash index (migration 022), then sorts them.
``from`` and ``to`` are dates of acceptance in the campaign's time zone, both included; ``next`` pages on (pass
it as ``after``), null at the end. Each invoice: ``key``, ``status``, ``reason``, ``batch_seq``,
``accepted_at``, ``issue_date``, ``amount_fen``, ``seller_tax_id``: nothing personal.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.campaign import Campaign
from core.hashing import user_ref
from core.times import iso_ms
from gateway import admit, codes
from gateway.deps import deps
from gateway.errors import Problem
from gateway.params import int_param
from gateway.validate import zone

CURSOR = re.compile(r"([0-9]{1,19})-([0-9]{1,32})")
MAX_LIMIT = 500
FAR = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)

READ = """
SELECT key, status, reason, batch_seq, accepted_at, issue_date, amount_fen, seller_tax_id,
       (extract(epoch FROM accepted_at) * 1000000)::bigint AS at_us
FROM invoices
WHERE user_ref = $1 AND channel = $2 AND accepted_at >= $3 AND accepted_at < $4
  AND (accepted_at, key) > ('epoch'::timestamptz + $5::bigint * interval '1 microsecond', $6::text)
ORDER BY accepted_at, key LIMIT $7
"""


async def invoices_of_user(request: Request) -> Response:
    d = deps(request)
    client, _ = await admit.channel_request(request, d.clients, d.redis, d.settings.api, d.ratelimiter)
    user = request.query_params.get("user", "")
    if not 1 <= len(user) <= 200:
        raise Problem(codes.BAD_PARAMETER, "user must be the consumer's user.id, 1 to 200 characters")
    since = _day(request, "from", d.campaign) or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    until = _day(request, "to", d.campaign, next_day=True) or FAR
    limit = int_param(request, "limit", 100, 1, MAX_LIMIT)
    after = _cursor(request.query_params.get("after", ""))
    ref = user_ref(d.settings.secrets.person_secret, client.client_id, user)
    rows = await d.pool.fetch(READ, ref, client.client_id, since, until, after[0], after[1], limit)
    found = [_invoice(r) for r in rows]
    next_cursor = f"{rows[-1]['at_us']}-{rows[-1]['key']}" if len(rows) == limit else None
    return Response(orjson.dumps({"invoices": found, "next": next_cursor}), media_type="application/json")


def _invoice(row: asyncpg.Record) -> dict[str, Any]:
    found = {
        "key": row["key"],
        "status": row["status"],
        "accepted_at": iso_ms(row["accepted_at"]),
        "issue_date": row["issue_date"].isoformat(),
        "amount_fen": row["amount_fen"],
        "seller_tax_id": row["seller_tax_id"],
    }
    if row["reason"] is not None:
        found["reason"] = row["reason"]
    if row["batch_seq"] is not None:
        found["batch_seq"] = row["batch_seq"]
    return found


def _day(request: Request, name: str, campaign: Campaign, next_day: bool = False) -> dt.datetime | None:
    """The start of the named date (or of the day after it) in the campaign's time zone."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        day = dt.date.fromisoformat(raw) if len(raw) == 10 else None
    except ValueError:
        day = None
    if day is None or day.year < 1971 or day.year > 9990:
        raise Problem(codes.BAD_PARAMETER, f"{name} must be a date, YYYY-MM-DD")
    start = dt.datetime.combine(day, dt.time(), zone(campaign.caps.timezone))
    return start + dt.timedelta(days=1) if next_day else start


def _cursor(raw: str) -> tuple[int, str]:
    if not raw:
        return 0, ""
    m = CURSOR.fullmatch(raw)
    if m is None:
        raise Problem(codes.BAD_PARAMETER, "after must be the next this list gave")
    return int(m[1]), m[2]
