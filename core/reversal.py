"""Who may reverse what, and what a reversal does once it takes effect (the gateway's ``POST /v1/reversals`` and
the workers' confirmations, workers/confirm.py, share it).

The rule: a reversal takes effect when the channel that sent it submitted the invoice, or once the tax service
confirmed its red-letter invoice (``confirmed_at``). Any other channel's reversal is recorded and waits for that
confirmation: a rival channel, or a leaked channel secret, cannot void another channel's winners. The rule in
SQL is ``EFFECTIVE``, which the sink also applies to a reversal recorded before its invoice commits
(workers/sink.py).

``take_effect`` makes invoices ``reversed``: their event, the withdrawal of an ``add`` entry not sealed yet, a
``void`` entry for one already fed, the day's figures (core/rollup.py) and the national platform's record
(core/outbox.py), in the caller's transaction. The caller holds the sealer's lock and the reversal lock,
exclusively (``LOCKS``): a pending ``add`` entry is withdrawn only between two seals, so no batch's content ever
differs from its hash, and no sink transaction commits the invoice unseen beside it.
"""

from __future__ import annotations

import asyncpg

from core import feed, locks, outbox, prizes
from core import rollup as rollups
from core.rollup import Conn, Rollup

LOCKS = "SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)"
LOCK_IDS = (locks.SEAL, locks.REVERSAL)
REASON = "reversed_by_red_invoice"
# A reversal row ``r`` takes effect on an invoice of channel ``owner``.
EFFECTIVE = "(r.channel = {owner} OR r.confirmed_at IS NOT NULL)"

TAKE_EFFECT = """
WITH old AS (
    SELECT i.key, i.channel, i.status, i.batch_seq, i.person, i.amount_fen, i.issue_date, i.seller_tax_id,
           i.category, i.accepted_at
    FROM invoices i
    WHERE i.key = ANY($1::text[]) AND i.status <> 'reversed'
    FOR UPDATE OF i
), changed AS (
    UPDATE invoices i SET status = 'reversed', reason = 'reversed_by_red_invoice', updated_at = now()
    FROM old WHERE i.key = old.key
    RETURNING i.key
), events AS (
    INSERT INTO invoice_events (key, channel, status, reason, at)
    SELECT key, channel, 'reversed', 'reversed_by_red_invoice', now() FROM old
), withdrawn AS (
    DELETE FROM feed_entries f USING old
    WHERE f.key = old.key AND f.kind = 'add' AND f.batch_seq IS NULL
)
SELECT o.key, o.status AS was, o.channel, o.person, o.amount_fen, o.issue_date, o.seller_tax_id, o.category,
       o.accepted_at, now() AS at
FROM old o
"""


async def take_effect(conn: Conn, keys: list[str], rollup: Rollup, actor: str) -> list[str]:
    """Reverse the committed invoices of ``keys`` not reversed yet (the caller holds ``LOCKS``); returns them.
    The prizes of those that were fed are withdrawn in the prize ledger (a clawback when paid), by ``actor``."""
    if not keys:
        return []
    rows = await conn.fetch(TAKE_EFFECT, keys)
    fed = [r for r in rows if r["was"] == "eligible"]
    await feed.append(conn, "void", [feed.of_row("void", r) for r in fed])
    if fed:  # a fed invoice may have won
        await prizes.withdraw(conn, [r["key"] for r in fed], REASON, fed[0]["at"], actor)
    await _account(conn, rows, rollup)
    return [r["key"] for r in rows]


async def _account(conn: Conn, reversed_now: list[asyncpg.Record], rollup: Rollup) -> None:
    """The day's figures and the national platform's record of each invoice reversed now."""
    deltas = rollups.Deltas()
    records = []
    for r in reversed_now:
        day = rollup.day(r["at"])
        deltas.add(day, r["channel"], rollup.industry(r["category"]), "reversed", REASON, 1, r["amount_fen"])
        deltas.add_hour(rollup.hour_of(r["at"]), r["channel"], "reversed", REASON, 1, r["amount_fen"])
        records.append(outbox.invoice(r["key"], r["channel"], [outbox.event("reversed", r["at"], REASON)]))
    await rollups.apply(conn, deltas)
    await outbox.add(conn, records)
