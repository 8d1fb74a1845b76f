"""Confirmations of reversals sent by a channel that did not submit the invoice (core/reversal.py's rule): the
tax service is asked whether it holds the red-letter invoice; yes, the reversal takes effect (the invoice is
reversed, and voided in the feed if it was fed); no, after the re-checks a new invoice gets
(``GATEWAY_VERIFY_RECHECK_S``: a red invoice reaches the tax system late too), it is refused and the invoice stays
as it was. A failed call is asked again later without spending a check.

Only reversals of committed invoices of another channel are asked about: one sent before its invoice waits for
it (it may turn out to be the sender's own). Each is leased for ``LEASE_S`` while it is asked, so two workers
never ask about the same one, and one whose worker died is asked again after the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import asyncpg

from core import reversal
from core.rollup import Rollup
from workers import metrics
from workers.verify import Verifier

log = logging.getLogger(__name__)
ACTOR = "workers (red-letter confirmation)"  # who withdrew a prize, in the prize ledger
LEASE_S = 60.0
ERROR_WAIT_S = 5.0

TAKE = """
WITH due AS (
    SELECT r.key, r.channel FROM reversals r JOIN invoices i USING (key)
    WHERE r.confirmed_at IS NULL AND r.refused_at IS NULL AND r.check_after <= now()
      AND i.channel <> r.channel AND i.status <> 'reversed'
    ORDER BY r.check_after LIMIT $1
    FOR UPDATE OF r SKIP LOCKED
)
UPDATE reversals r SET check_after = now() + make_interval(secs => $2), checks = r.checks + 1
FROM due, invoices i
WHERE r.key = due.key AND r.channel = due.channel AND i.key = r.key
RETURNING r.key, r.channel, r.red_number, r.checks, i.number, i.code
"""
CONFIRM = "UPDATE reversals SET confirmed_at = now() WHERE key = $1 AND channel = $2"
AGAIN = """
UPDATE reversals SET check_after = now() + make_interval(secs => $3), checks = checks - $4::int
WHERE key = $1 AND channel = $2
"""
REFUSE = "UPDATE reversals SET refused_at = now() WHERE key = $1 AND channel = $2"


async def confirm_due(
    pool: asyncpg.Pool, verifier: Verifier, rollup: Rollup, recheck_s: Sequence[float], limit: int = 50
) -> int:
    """Ask the tax service about the reversals due; returns how many were decided (confirmed or refused)."""
    taken = await pool.fetch(TAKE, limit, LEASE_S)
    decided = 0
    for r in taken:
        outcome = await verifier.red_letter(r["number"], r["code"], r["red_number"])
        metrics.REVERSAL_CHECKS.labels(outcome).inc()
        if outcome == "found":
            await _confirmed(pool, r["key"], r["channel"], rollup)
        elif outcome == "not_found" and r["checks"] > len(recheck_s):
            await pool.execute(REFUSE, r["key"], r["channel"])
        elif outcome == "not_found":
            await pool.execute(AGAIN, r["key"], r["channel"], float(recheck_s[r["checks"] - 1]), 0)
            continue
        else:  # no answer: nothing was learnt, no check spent
            await pool.execute(AGAIN, r["key"], r["channel"], ERROR_WAIT_S, 1)
            continue
        decided += 1
    return decided


async def _confirmed(pool: asyncpg.Pool, key: str, channel: str, rollup: Rollup) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(reversal.LOCKS, *reversal.LOCK_IDS)
        await conn.execute(CONFIRM, key, channel)
        done = await reversal.take_effect(conn, [key], rollup, ACTOR)
    log.info("a reversal by %s confirmed by the tax service: %d invoice reversed", channel, len(done))
