"""Re-verification before payout: what the tax service knows of a reversal never reaches a payout unseen.

A campaign that holds payouts names what is verified again (campaign ``reverify``):

- ``all``: every eligible invoice, when its payout hold ends, just before it is sealed. The sink wrote its feed
  entry with ``reverify_at`` (its hold's end); the sealer takes no such entry, and this loop takes them as they
  fall due: confirmed, the entry is sealed at the next seal; found reversed or changed, the invoice is withdrawn
  (``reversed`` or ``ineligible`` with its reason) and its entry is never fed.
- ``winners``: each winning invoice, before its prize becomes payable. A prize recorded by the draw service is
  ``awarded`` with a ``check_at``: confirmed, the prize is ``payable``; found reversed or changed, the invoice is
  withdrawn, a ``void`` entry follows it in the feed, and its prizes are withdrawn in the prize ledger.

Each call goes through the worker's verifier, so it keeps to the tax service's shared QPS pace (workers/verify.py
``Pace``), and never through the verified-answer cache: the point is a new answer. An invoice the service does not
answer for (errors, the breaker, 429) waits and is asked again later, as long as it takes: nothing is sealed or
paid unconfirmed. Items are taken under a lease (``reverify_at``, ``check_at`` pushed ahead, ``FOR UPDATE SKIP
LOCKED``), so any number of workers share the work and one killed mid-call loses nothing.

What counts as changed: the tax service no longer knows the invoice, or holds another total, issue date or seller
than the one fed (a partial red-letter reversal lowers the total).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Literal, NamedTuple

import asyncpg
import msgspec

from core import feed, locks, outbox, prizes
from core import rollup as rollups
from core.campaign import Campaign
from core.rollup import Conn, Rollup
from workers import metrics
from workers.verify import Verification, Verifier

log = logging.getLogger(__name__)
ACTOR = "workers (re-verification)"

# Each leased invoice's facts looked up by its key: a nested loop on each month's index (LATERAL, and LIMIT 1 so
# that the planner cannot flatten it into a join; a key is in one month only). A plain join let the planner, who
# cannot see that the lease holds at most $1 rows, sort the whole invoices table to merge it with them (246 ms a
# call during a 100,000-invoice burst with nothing due, more as the table grows) or hash it.
FACTS = """
SELECT l.ref, i.key, i.number, i.code, i.issue_date, i.amount_fen, i.seller_tax_id, coalesce(i.check_code, '') AS
       check_code, i.person, i.accepted_at
FROM leased l CROSS JOIN LATERAL (SELECT * FROM invoices WHERE invoices.key = l.key LIMIT 1) i
"""
DUE_ENTRIES = (
    """
WITH due AS (
    SELECT id FROM feed_entries WHERE batch_seq IS NULL AND reverify_at IS NOT NULL AND reverify_at <= now()
    ORDER BY reverify_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE feed_entries f SET reverify_at = now() + make_interval(secs => $2) FROM due WHERE f.id = due.id
    RETURNING f.id::text AS ref, f.key
)"""
    + FACTS
)
DUE_PRIZES = (
    """
WITH due AS (
    SELECT id FROM prizes WHERE status = 'awarded' AND check_at <= now()
    ORDER BY check_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE prizes p SET check_at = now() + make_interval(secs => $2) FROM due WHERE p.id = due.id
    RETURNING p.id AS ref, p.key
)"""
    + FACTS
)


class Withdrawal(NamedTuple):
    key: str
    status: str  # "reversed" or "ineligible"
    reason: str


Verdict = Withdrawal | Literal["confirmed", "unanswered"]


class Slot(msgspec.Struct, frozen=True):
    """What places a withdrawn invoice in the caps (ratelimit.caps.Counted), to give its slot back."""

    key: str
    person: str
    accepted_at_ms: int


def verdict(row: asyncpg.Record, v: Verification) -> Verdict:
    """What a new answer says of an invoice fed (or about to be): confirmed, withdrawn (reversed or changed), or
    unanswered (the service failed or refused: ask again later)."""
    if v.outcome == "not_found":
        return Withdrawal(row["key"], "ineligible", "not_found_at_reverification")
    if v.outcome != "found" or v.invoice is None:
        return "unanswered"
    found = v.invoice
    if found.status == "reversed":
        return Withdrawal(row["key"], "reversed", "reversed_at_reverification")
    changed = (
        found.amount_fen != row["amount_fen"]
        or found.issue_date != row["issue_date"].isoformat()
        or (found.seller_tax_id is not None and found.seller_tax_id != row["seller_tax_id"])
    )
    return Withdrawal(row["key"], "ineligible", "changed_at_reverification") if changed else "confirmed"


class Reverifier:
    """The worker's re-verification loop: entries due (``all``) and winners waiting (``winners``)."""

    def __init__(
        self, pool: asyncpg.Pool, verifier: Verifier, campaign: Campaign, lease_s: float, retry_s: float
    ) -> None:
        self.pool = pool
        self.verifier = verifier
        self.claim_s = campaign.draw.claim_days * 86400
        self.rollup = Rollup.of(campaign)
        self.lease_s = lease_s
        self.retry_s = retry_s
        self.withdrawn: list[Slot] = []  # cap slots to give back, taken by the worker after each round

    async def round(self, limit: int) -> int:
        """Verify again up to ``limit`` entries due and ``limit`` winners waiting; returns how many were asked."""
        entries = await self.pool.fetch(DUE_ENTRIES, limit, self.lease_s)
        winners = await self.pool.fetch(DUE_PRIZES, limit, self.lease_s)
        if not entries and not winners:
            return 0
        answers = await self._ask(list({r["key"]: r for r in (*entries, *winners)}.values()))
        await self._settle(entries, answers, "entry")
        await self._settle(winners, answers, "winner")
        return len(answers)

    async def _ask(self, rows: Sequence[asyncpg.Record]) -> dict[str, Verdict]:
        """One new answer per invoice (an invoice with two prizes is asked once)."""

        async def one(r: asyncpg.Record) -> Verdict:
            inputs = (r["number"], r["code"], r["issue_date"].isoformat(), r["amount_fen"], r["check_code"])
            found = verdict(r, await self.verifier.ask(*inputs))
            metrics.REVERIFIED.labels(found if isinstance(found, str) else "withdrawn").inc()
            return found

        return dict(zip((r["key"] for r in rows), await self.verifier.each(rows, one), strict=True))

    async def _settle(self, rows: Sequence[asyncpg.Record], answers: dict[str, Verdict], what: str) -> None:
        confirmed = [r["ref"] for r in rows if answers[r["key"]] == "confirmed"]
        waiting = [r["ref"] for r in rows if answers[r["key"]] == "unanswered"]
        withdrawn = {r["key"]: r for r in rows if isinstance(answers[r["key"]], Withdrawal)}
        now = dt.datetime.now(dt.UTC)
        if not rows:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            if what == "entry":
                await conn.execute(CONFIRMED, confirmed)
                await conn.execute(RETRY_ENTRIES, waiting, self.retry_s)
            else:
                await prizes.make_payable(conn, confirmed, now, self.claim_s, ACTOR)
                await conn.execute(RETRY_PRIZES, waiting, self.retry_s)
            if withdrawn:
                found = [a for k, a in answers.items() if k in withdrawn and isinstance(a, Withdrawal)]
                await withdraw(conn, found, now, self.rollup)
        self.withdrawn += [
            Slot(r["key"], r["person"], round(r["accepted_at"].timestamp() * 1000)) for r in withdrawn.values()
        ]


CONFIRMED = "UPDATE feed_entries SET reverify_at = NULL WHERE id = ANY($1::text[]::bigint[]) AND batch_seq IS NULL"
RETRY_ENTRIES = """
UPDATE feed_entries SET reverify_at = now() + make_interval(secs => $2)
WHERE id = ANY($1::text[]::bigint[]) AND batch_seq IS NULL
"""
RETRY_PRIZES = """
UPDATE prizes SET check_at = now() + make_interval(secs => $2) WHERE id = ANY($1::text[]) AND status = 'awarded'
"""

# The invoices found reversed or changed, as a red-letter reversal takes them (gateway/reversals.py): an entry
# still waiting is withdrawn from the feed, an invoice already fed gets a void entry (below).
WITHDRAW = """
WITH w AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS w(key, status, reason)
), old AS (
    SELECT i.key, i.channel, i.status, i.person, i.amount_fen, i.issue_date, i.seller_tax_id, i.category,
           i.accepted_at, w.status AS new_status, w.reason
    FROM invoices i JOIN w USING (key)
    WHERE i.status IN ('verified', 'eligible')
    FOR UPDATE OF i
), changed AS (
    UPDATE invoices i SET status = old.new_status, reason = old.reason, updated_at = $4
    FROM old WHERE i.key = old.key
), events AS (
    INSERT INTO invoice_events (key, channel, status, reason, at)
    SELECT key, channel, new_status, reason, $4 FROM old
), unfed AS (
    DELETE FROM feed_entries f USING old WHERE f.key = old.key AND f.kind = 'add' AND f.batch_seq IS NULL
)
SELECT * FROM old ORDER BY key
"""


async def withdraw(conn: Conn, found: Sequence[Withdrawal], at: dt.datetime, rollup: Rollup) -> list[str]:
    """Withdraw invoices found reversed or changed (the caller's transaction): their status, history, feed
    (a void entry where they were fed), daily figures, outbox records and prizes. Returns the keys withdrawn."""
    # The sealer's lock, as reversals take it: no batch is sealed while an entry is withdrawn from under it.
    await conn.execute("SELECT pg_advisory_xact_lock($1)", locks.SEAL)
    rows = await conn.fetch(WITHDRAW, [w.key for w in found], [w.status for w in found], [w.reason for w in found], at)
    await feed.append(conn, "void", [feed.of_row("void", r) for r in rows if r["status"] == "eligible"])
    deltas = rollups.Deltas()
    records = []
    by_reason: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        amount = r["amount_fen"] if r["new_status"] == "reversed" else 0
        industry = rollup.industry(r["category"])
        deltas.add(rollup.day(at), r["channel"], industry, r["new_status"], r["reason"], 1, amount)
        records.append(outbox.invoice(r["key"], r["channel"], [outbox.event(r["new_status"], at, r["reason"])]))
        by_reason[r["reason"]].append(r["key"])
        log.info("withdrawn at re-verification: %s (%s)", r["key"], r["reason"])
    await rollups.apply(conn, deltas)
    await outbox.add(conn, records)
    for reason, keys in sorted(by_reason.items()):
        await prizes.withdraw(conn, keys, reason, at, ACTOR)
    return [r["key"] for r in rows]
