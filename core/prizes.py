"""Prizes and the prize ledger (资金台账): every movement of prize money is a row of ``prize_ledger`` with its cause
and who caused it, written in the transaction that makes it, beside the prize's new status, the winner's event on
its channel's change feed (``invoice_events`` with its ``prize_id``: GET /v1/events) and its outbox record for the
national platform (core/outbox.py). The ledger is append-only (migration 061 refuses any change).

A prize's life: ``awarded`` (the draw service recorded it; waiting for the winner's re-verification when the
campaign re-verifies winners) -> ``payable`` -> ``paid`` (its channel confirmed the payment). Before it is paid,
its invoice's reversal ``withdraws`` it (the money goes back to the budget); after, it is a ``clawback`` (money to
recover). A payable prize not paid in time ``expires``. Movements of money: ``budget`` (the campaign's budget_fen,
or a change of it), ``awarded``, ``withdrawn``, ``paid``, ``clawback``, ``expired``, ``returned`` (what remained,
given back at the campaign's end). ``payable`` moves no money: it is an event only.

Both apps move prizes: the gateway (awards, payments, reversals) and the workers (re-verification, expiry). Each
caller holds the sealer's advisory lock where a prize's invoice may change under it (awards, reversals,
re-verification), so that a reversal and an award never miss each other.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import NamedTuple

import asyncpg

from core import outbox
from core import rollup as rollups
from core.rollup import Conn, Rollup

MONEY = ("budget", "awarded", "withdrawn", "paid", "clawback", "expired", "returned")
OPEN = ("awarded", "payable")  # not paid, withdrawn or expired yet: the money is committed
EVENT = {
    "awarded": "prize_awarded",
    "payable": "prize_payable",
    "paid": "prize_paid",
    "withdrawn": "prize_withdrawn",
    "clawback": "prize_clawback",
    "expired": "prize_expired",
}
EVENTS = tuple(EVENT.values())


class Prize(NamedTuple):
    """What every movement of a prize names."""

    id: str
    draw_id: str
    tier: str
    amount_fen: int
    key: str
    channel: str


class Award(NamedTuple):
    """A prize the draw service awards, with what the gateway found of its invoice."""

    prize: Prize
    person: str
    batch_seq: int
    category: str


class Move(NamedTuple):
    prize: Prize
    movement: str  # one of MONEY, or "payable"
    cause: str | None


LEDGER = """
INSERT INTO prize_ledger (at, actor, movement, prize_id, tier, amount_fen, cause)
SELECT $1, $2, m, p, t, a, c FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])
    AS l(m, p, t, a, c)
"""
EVENTS_SQL = """
INSERT INTO invoice_events (at, key, channel, status, reason, prize_id)
SELECT $1, k, ch, s, r, p FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS e(k, ch, s, r, p)
"""
AWARD = """
INSERT INTO prizes (id, draw_id, tier, amount_fen, key, channel, person, batch_seq, status, awarded_at, expires_at,
                    check_at, updated_at)
SELECT id, $1, tier, amount, key, channel, person, seq, $2, $3::timestamptz,
       $3::timestamptz + make_interval(secs => $4), CASE WHEN $2 = 'awarded' THEN $3::timestamptz END, $3::timestamptz
FROM unnest($5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[])
    AS a(id, tier, amount, key, channel, person, seq)
"""


async def record(conn: Conn, moves: Sequence[Move], at: dt.datetime, actor: str) -> None:
    """The ledger rows of the money movements among ``moves``, every move's event on its channel's change feed,
    and the outbox records of the money movements (the caller's transaction)."""
    money = [m for m in moves if m.movement in MONEY]
    if money:
        await conn.execute(
            LEDGER,
            at,
            actor,
            [m.movement for m in money],
            [m.prize.id for m in money],
            [m.prize.tier for m in money],
            [m.prize.amount_fen for m in money],
            [m.cause or m.movement for m in money],
        )
        await outbox.add(conn, [outbox.prize(m.movement, at, m.cause, **_named(m.prize)) for m in money])
    if moves:
        columns = ([m.prize.key for m in moves], [m.prize.channel for m in moves], [EVENT[m.movement] for m in moves])
        await conn.execute(EVENTS_SQL, at, *columns, [m.cause for m in moves], [m.prize.id for m in moves])


async def award(
    conn: Conn, awards: Sequence[Award], *, at: dt.datetime, check: bool, claim_s: float, actor: str, rollup: Rollup
) -> None:
    """Record prizes of one draw: ``awarded`` while the winner waits for its re-verification (``check``), else
    payable at once (``claim_s`` to be paid); the prize money counts in the daily report on the day of the award."""
    if not awards:
        return
    status = "awarded" if check else "payable"
    p = [a.prize for a in awards]
    await conn.execute(
        AWARD,
        p[0].draw_id,
        status,
        at,
        float(claim_s),
        [x.id for x in p],
        [x.tier for x in p],
        [x.amount_fen for x in p],
        [x.key for x in p],
        [x.channel for x in p],
        [a.person for a in awards],
        [a.batch_seq for a in awards],
    )
    moves = [Move(x, "awarded", f"drawn in {x.draw_id}") for x in p]
    if not check:
        moves += [Move(x, "payable", None) for x in p]
    await record(conn, moves, at, actor)
    deltas = rollups.Deltas()
    for a in awards:
        deltas.add(
            rollup.day(at), a.prize.channel, rollup.industry(a.category), "prize", a.prize.tier, 1, a.prize.amount_fen
        )
    await rollups.apply(conn, deltas)


TAKE_OF_KEYS = """
SELECT id, draw_id, tier, amount_fen, key, channel, status FROM prizes
WHERE key = ANY($1::text[]) AND status IN ('awarded', 'payable', 'paid') ORDER BY id FOR UPDATE
"""
WITHDRAW = """
UPDATE prizes SET status = CASE WHEN status = 'paid' THEN 'clawback' ELSE 'withdrawn' END, reason = $2,
                  check_at = NULL, updated_at = $3
WHERE id = ANY($1::text[])
"""


async def withdraw(conn: Conn, keys: Sequence[str], cause: str, at: dt.datetime, actor: str) -> list[Move]:
    """The prizes of invoices reversed (or changed) now: withdrawn when not paid yet, a clawback when paid."""
    if not keys:
        return []
    rows = await conn.fetch(TAKE_OF_KEYS, list(keys))
    if not rows:
        return []
    await conn.execute(WITHDRAW, [r["id"] for r in rows], cause, at)
    moves = [Move(_prize(r), "clawback" if r["status"] == "paid" else "withdrawn", cause) for r in rows]
    await record(conn, moves, at, actor)
    return moves


PAYABLE = """
UPDATE prizes SET status = 'payable', check_at = NULL, expires_at = $2::timestamptz + make_interval(secs => $3),
                  updated_at = $2::timestamptz
WHERE id = ANY($1::text[]) AND status = 'awarded'
RETURNING id, draw_id, tier, amount_fen, key, channel
"""


async def make_payable(conn: Conn, ids: Sequence[str], at: dt.datetime, claim_s: float, actor: str) -> int:
    """Winners verified again: their prizes may be paid from now, for ``claim_s``."""
    rows = await conn.fetch(PAYABLE, list(ids), at, float(claim_s))
    await record(conn, [Move(_prize(r), "payable", None) for r in rows], at, actor)
    return len(rows)


PAY = """
SELECT id, draw_id, tier, amount_fen, key, channel, status, payment_ref FROM prizes
WHERE id = $1 AND channel = $2 FOR UPDATE
"""


async def pay(conn: Conn, prize_id: str, channel: str, payment_ref: str, at: dt.datetime) -> tuple[str, str]:
    """Its channel confirms a prize paid: ``("paid", status)`` now or before with the same reference (status
    ``paid``, or ``clawback`` since); else why not: ``("unknown", "")``, ``("conflict", ref)`` (paid before with
    another reference), ``("not_payable", status)``."""
    row = await conn.fetchrow(PAY, prize_id, channel)
    if row is None:
        return "unknown", ""
    if row["status"] in ("paid", "clawback"):
        return ("paid", row["status"]) if row["payment_ref"] == payment_ref else ("conflict", row["payment_ref"])
    if row["status"] != "payable":
        return "not_payable", row["status"]
    await conn.execute(
        "UPDATE prizes SET status = 'paid', payment_ref = $2, paid_at = $3, updated_at = $3 WHERE id = $1",
        prize_id,
        payment_ref,
        at,
    )
    await record(conn, [Move(_prize(row), "paid", f"paid by {channel}: {payment_ref}")], at, channel)
    return "paid", "paid"


EXPIRE = """
WITH due AS (
    SELECT id FROM prizes WHERE status = 'payable' AND expires_at <= $1 ORDER BY expires_at LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE prizes p SET status = 'expired', updated_at = $1 FROM due WHERE p.id = due.id
RETURNING p.id, p.draw_id, p.tier, p.amount_fen, p.key, p.channel, p.expires_at
"""


async def expire_due(conn: Conn, at: dt.datetime, actor: str, limit: int = 1000) -> int:
    """Payable prizes whose channel did not confirm them paid in time: expired (unclaimed), money back."""
    rows = await conn.fetch(EXPIRE, at, limit)
    moves = [Move(_prize(r), "expired", "unclaimed: not paid by its deadline") for r in rows]
    await record(conn, moves, at, actor)
    return len(rows)


async def ensure_budget(conn: Conn, budget_fen: int, at: dt.datetime, actor: str) -> None:
    """The ledger's budget made the campaign's (``budget_fen``): a ``budget`` row for the difference, if any.
    Under the sealer's lock (awards and commitments take it), so that two never add the same difference."""
    held = await conn.fetchval("SELECT coalesce(sum(amount_fen), 0) FROM prize_ledger WHERE movement = 'budget'")
    if held != budget_fen:
        cause = f"campaign budget_fen {held} -> {budget_fen}"
        await conn.execute(
            "INSERT INTO prize_ledger (at, actor, movement, amount_fen, cause) VALUES ($1, $2, 'budget', $3, $4)",
            at,
            actor,
            budget_fen - held,
            cause,
        )


def _prize(r: asyncpg.Record) -> Prize:
    return Prize(r["id"], r["draw_id"], r["tier"], r["amount_fen"], r["key"], r["channel"])


def _named(p: Prize) -> dict[str, str | int]:
    """A prize as its outbox record names it."""
    return {
        "prize_id": p.id,
        "draw_id": p.draw_id,
        "tier": p.tier,
        "amount_fen": p.amount_fen,
        "key": p.key,
        "channel": p.channel,
    }
