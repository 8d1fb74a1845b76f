"""The sealer: closes pending feed entries into numbered batches, each chained to the one before.

Any number of worker processes may run it: a transaction-scoped advisory lock lets one seal at a time, so the
chain never forks. In the same transaction, the invoices fed become eligible: their daily figures (eligible,
its amount, the distinct merchants and consumers: core/rollup.py) and their outbox records (each invoice, and
the batch with its hash: core/outbox.py) are written with them.
"""

from __future__ import annotations

import datetime as dt

import asyncpg

from core import locks, outbox
from core import rollup as rollups
from core.feed import GENESIS, batch_sha256
from core.rollup import UTC_ANY, Conn, Rollup

# The entries due, oldest due first: the order of the partial index feed_entries_unsealed (ready_at, id), so the
# scan stops after the batch's rows. Ordered by id, as it was, the planner walked the primary key from the first
# entry ever sealed and filtered: 5.2 s a batch with 5.6 M entries sealed (the 10 M burst's feed stalled at
# 1,000 entries/s), 26 ms this way. An entry still to be verified again (reverify_at) is not due: the index
# leaves it out (migration 060), however many wait for the tax service.
PENDING = """
SELECT id, key, kind, body FROM feed_entries WHERE batch_seq IS NULL AND reverify_at IS NULL AND ready_at <= now()
ORDER BY ready_at, id LIMIT $1
"""


# The months of the batch's invoices, from their keys (invoice_keys): with them the update reads only those
# months' partitions of invoices (pruned when it runs), not every month's index once per key.
FEED = """
WITH months AS MATERIALIZED (
    SELECT min(accepted_at) AS first, max(accepted_at) AS last FROM invoice_keys WHERE key = ANY($3::text[])
), fed AS (
    UPDATE invoices SET status = 'eligible', batch_seq = $1, updated_at = $2
    WHERE key = ANY($3::text[]) AND status = 'verified'
      AND accepted_at >= (SELECT first FROM months) AND accepted_at <= (SELECT last FROM months)
    RETURNING key, channel, amount_fen, category, person, seller_tax_id
), events AS (
    INSERT INTO invoice_events (key, channel, status, at, batch_seq) SELECT key, channel, 'eligible', $2, $1 FROM fed
)
SELECT * FROM fed ORDER BY key
"""


async def seal_once(pool: asyncpg.Pool, max_entries: int, rollup: Rollup = UTC_ANY) -> int | None:
    """Seal up to ``max_entries`` pending entries into one batch; returns its seq, or None if none was due.
    ``rollup``: the campaign's days and industries, for the daily figures of the invoices fed."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", locks.SEAL):
            return None
        # The batch is hashed, and read back by the feed, in id order.
        pending = sorted(await conn.fetch(PENDING, max_entries), key=lambda r: r["id"])
        if not pending:
            return None
        last = await conn.fetchrow("SELECT seq, sha256 FROM feed_batches ORDER BY seq DESC LIMIT 1")
        seq, prev = (1, GENESIS) if last is None else (last["seq"] + 1, last["sha256"])
        sha = batch_sha256(prev, [r["body"] for r in pending])
        now = dt.datetime.now(dt.UTC)
        await conn.execute(
            "INSERT INTO feed_batches (seq, sealed_at, count, prev_sha256, sha256) VALUES ($1, $2, $3, $4, $5)",
            seq,
            now,
            len(pending),
            prev,
            sha,
        )
        await conn.execute(
            "UPDATE feed_entries SET batch_seq = $1 WHERE id = ANY($2::bigint[])", seq, [r["id"] for r in pending]
        )
        fed = await conn.fetch(FEED, seq, now, [r["key"] for r in pending if r["kind"] == "add"])
        await _account(conn, rollup, now, fed, outbox.batch(seq, now, len(pending), prev, sha))
        await conn.execute("SELECT pg_notify('feed_sealed', $1)", str(seq))
    return int(seq)


async def _account(
    conn: Conn, rollup: Rollup, now: dt.datetime, fed: list[asyncpg.Record], sealed: outbox.Record
) -> None:
    """The daily figures and the outbox records of a batch and of the invoices it made eligible."""
    deltas = rollups.Deltas()
    day = rollup.day(now)
    eligible = []
    records = [sealed]
    event = outbox.event("eligible", now, batch_seq=sealed.body["seq"])  # the same for each invoice of the batch
    for r in fed:
        industry = rollup.industry(r["category"])
        deltas.add(day, r["channel"], industry, "eligible", "", 1, r["amount_fen"])
        eligible.append((day, r["channel"], industry, r["seller_tax_id"], r["person"]))
        records.append(outbox.invoice(r["key"], r["channel"], [event]))
    await rollups.count_distinct(conn, deltas, eligible)
    await rollups.apply(conn, deltas)
    await outbox.add(conn, records)


async def seal_all(pool: asyncpg.Pool, max_entries: int, rollup: Rollup = UTC_ANY) -> list[int]:
    """Seal until nothing is pending (or another process holds the lock)."""
    sealed: list[int] = []
    while (seq := await seal_once(pool, max_entries, rollup)) is not None:
        sealed.append(seq)
    return sealed
