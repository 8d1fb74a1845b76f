"""Review of held invoices (role admin): ``GET /v1/admin/held`` lists them, ``POST /v1/admin/held/{key}``
releases one into the feed or rejects it, recording who decided and why.

``{"decision": "release" | "reject", "note": "..."}``. A released invoice is ``verified`` again and joins the
feed after the campaign's payout hold, as if no rule had been hit; a rejected one is ``ineligible`` with reason
``rejected_in_review``. Only a held invoice can be decided: anything else is ``409`` ``not_held``, an unknown
key ``404``, a bad decision or an empty note ``400``. The admin client and the note are kept in ``reviews`` and
the invoice's history, and the decision in the audit log (gateway/audit.py). The console's held queue decides
through the same transaction (``settle``), so the two can never decide differently.

The list gives, per held invoice, ``key``, ``channel``, ``reason``, ``seller_tax_id``, ``amount_fen`` and
``accepted_at``: no person data.
"""

from __future__ import annotations

import logging
from typing import Literal

import asyncpg
import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import feed, locks, outbox
from core import rollup as rollups
from core.campaign import Campaign
from core.errors import STORE_ERRORS
from core.rollup import Conn, Rollup
from core.times import iso_ms
from gateway import audit, auth, codes
from gateway.deps import deps
from gateway.errors import Problem
from gateway.parse import UNDECODABLE
from ratelimit.caps import Caps

log = logging.getLogger(__name__)


class Decision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decision: Literal["release", "reject"]
    note: str


DECODE = msgspec.json.Decoder(Decision)

DECIDE = """
WITH target AS (
    SELECT key FROM invoices WHERE key = $1 AND status = 'held' FOR UPDATE
), decided AS (
    UPDATE invoices i
    SET status = CASE WHEN $2 = 'release' THEN 'verified' ELSE 'ineligible' END,
        reason = CASE WHEN $2 = 'release' THEN NULL ELSE 'rejected_in_review' END,
        updated_at = now()
    FROM target WHERE i.key = target.key
    RETURNING i.key, i.channel, i.status, i.person, i.amount_fen, i.issue_date, i.seller_tax_id, i.category,
              i.accepted_at, now() AS at
), reviewed AS (
    INSERT INTO reviews (key, decision, reviewer, note) SELECT key, $2, $3, $4 FROM decided
), events AS (
    INSERT INTO invoice_events (key, channel, status, reason, at)
    SELECT key, channel, status, CASE WHEN $2 = 'release' THEN 'released_in_review' ELSE 'rejected_in_review' END,
           now()
    FROM decided
)
SELECT * FROM decided
"""


async def held(request: Request) -> Response:
    """The held invoices, oldest first: ``?after=KEY`` pages on, ``?limit=N`` (at most 500)."""
    d = deps(request)
    await auth.authenticate(request, "admin", d.clients, d.redis, d.settings.api)
    try:
        limit = min(500, max(1, int(request.query_params.get("limit", "100"))))
    except ValueError as exc:
        raise Problem(codes.INVALID_LIMIT, "limit: a whole number") from exc
    after = request.query_params.get("after", "")
    if "\x00" in after:  # PostgreSQL's text holds none: it answered 503 (found by tests/e2e/test_fuzz.py)
        raise Problem(codes.BAD_PARAMETER, "after: an invoice key")
    rows = await d.pool.fetch(
        "SELECT key, channel, reason, seller_tax_id, amount_fen, accepted_at FROM invoices"
        " WHERE held AND key > $1 ORDER BY key LIMIT $2",
        after,
        limit,
    )
    found = [{**dict(r), "accepted_at": iso_ms(r["accepted_at"])} for r in rows]
    return Response(orjson.dumps({"held": found}), media_type="application/json")


async def decide(request: Request) -> Response:
    d = deps(request)
    client, body = await auth.authenticate(request, "admin", d.clients, d.redis, d.settings.api)
    try:
        decision = DECODE.decode(body)
    except UNDECODABLE as exc:
        raise Problem(codes.MALFORMED_BODY, f'{{"decision": "release" | "reject", "note": "..."}}: {exc}') from exc
    key = request.path_params["key"]
    actor = audit.Actor(client.client_id, client.role, "api", audit.source_of(request))
    status = await settle(d.pool, d.campaign, d.caps, key, decision, actor)
    return Response(orjson.dumps({"key": key, "status": status}), media_type="application/json")


def clean_note(note: str) -> str:
    """A review's note, trimmed: why, 1 to 500 characters (``invalid_note`` otherwise)."""
    if not 1 <= len(note.strip()) <= 500:
        raise Problem(codes.INVALID_NOTE, "note: why, 1 to 500 characters")
    return note.strip()


async def settle(
    pool: asyncpg.Pool, campaign: Campaign, caps: Caps, key: str, decision: Decision, actor: audit.Actor
) -> str:
    """Release or reject one held invoice, in one transaction with its review, its history, its feed entry (or
    its figures) and its audit row; returns its new status. ``unknown_invoice``, ``not_held`` and
    ``invalid_note`` are ``Problem``s."""
    note = clean_note(decision.note)
    async with pool.acquire() as conn, conn.transaction():
        # The sealer's lock, as reversals take it: a reversal never runs beside a release it cannot see.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.SEAL)
        row = await conn.fetchrow(DECIDE, key, decision.decision, actor.name, note)
        if row is None:
            now = await conn.fetchval("SELECT status FROM invoices WHERE key = $1", key)
            if now is None:
                raise Problem(codes.UNKNOWN_INVOICE, "no invoice with this key")
            raise Problem(codes.NOT_HELD, f"the invoice is {now}, not held")
        if decision.decision == "release":
            hold_s, reverify = campaign.payout_hold_s, campaign.reverifies_entries
            await feed.append(conn, "add", [feed.of_row("add", row)], hold_s, reverify)
        else:
            await _account_rejection(conn, row, Rollup.of(campaign))
        await audit.record(conn, actor, decision.decision, key, {"note": note})
    if decision.decision == "reject" and campaign.caps.ineligible_returns_slot:
        await _give_back_slot(caps, row)
    return str(row["status"])


async def reversals_by_seller(request: Request) -> Response:
    """Sellers by how many of the campaign's invoices were reversed in the last ``?days=N`` (default 7): mass
    red-letter reversals after a draw are a known fraud pattern (the risk rule ``seller_reversal_spike``)."""
    d = deps(request)
    await auth.authenticate(request, "admin", d.clients, d.redis, d.settings.api)
    try:
        days = float(request.query_params.get("days", "7"))
    except ValueError as exc:
        raise Problem(codes.INVALID_DAYS, "days: a number") from exc
    if not 0 < days <= 366:
        raise Problem(codes.INVALID_DAYS, "days: more than 0, at most 366")
    rows = await d.pool.fetch(
        # Reversed however it was learnt: a red-letter reversal, or the tax service's answer (reversed_at:
        # migrations 006, 093).
        "SELECT seller_tax_id, count(*) AS reversed, max(reversed_at) AS last_at FROM invoices"
        " WHERE reversed_at > now() - make_interval(secs => $1)"
        " GROUP BY seller_tax_id ORDER BY reversed DESC, seller_tax_id LIMIT 100",
        days * 86400.0,
    )
    found = [{**dict(r), "last_at": iso_ms(r["last_at"])} for r in rows]
    return Response(orjson.dumps({"days": days, "sellers": found}), media_type="application/json")


async def _account_rejection(conn: Conn, row: asyncpg.Record, rollup: Rollup) -> None:
    """A rejected invoice is ineligible from now: in the daily figures and for the national platform."""
    reason = "rejected_in_review"
    deltas = rollups.Deltas()
    deltas.add(rollup.day(row["at"]), row["channel"], rollup.industry(row["category"]), "ineligible", reason)
    await rollups.apply(conn, deltas)
    await outbox.add(
        conn, [outbox.invoice(row["key"], row["channel"], [outbox.event("ineligible", row["at"], reason)])]
    )


class _Slot(msgspec.Struct, frozen=True):
    """What places a committed invoice in the caps (ratelimit.caps.Counted)."""

    key: str
    person: str
    accepted_at_ms: int


async def _give_back_slot(caps: Caps, row: asyncpg.Record) -> None:
    """A rejected invoice gives its cap slot back, as one found ineligible by the workers does (campaign setting;
    best effort: the rejection stands if Redis cannot be reached)."""
    slot = _Slot(row["key"], row["person"], round(row["accepted_at"].timestamp() * 1000))
    try:
        await caps.release([slot])
    except STORE_ERRORS as exc:
        log.warning("could not give back the cap slot of a rejected invoice: %s", type(exc).__name__)
