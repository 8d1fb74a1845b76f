"""The PostgreSQL sink: one transaction per batch, COPY into staging, then an idempotent upsert.

``INSERT .. ON CONFLICT DO NOTHING RETURNING key`` names the invoices that are new in this transaction, and
only those get status events and feed entries (core/feed.py writes them): a batch delivered twice (a worker died
before XACK) writes nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg
import msgspec

from core import feed, locks
from core.contract import Duplicate, Queued
from core.times import from_ms
from workers.judge import Judgement

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS staging (
    key text, channel text, number text, code text, issue_date date, amount_fen bigint,
    seller_tax_id text, seller_name text, category text, person text, user_ref text, device_ref text,
    status text, reason text, accepted_at timestamptz, verified_at timestamptz, feed_body text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS staging_dups (key text, channel text, at timestamptz) ON COMMIT DELETE ROWS;
"""

STAGING_COLUMNS = (
    "key",
    "channel",
    "number",
    "code",
    "issue_date",
    "amount_fen",
    "seller_tax_id",
    "seller_name",
    "category",
    "person",
    "user_ref",
    "device_ref",
    "status",
    "reason",
    "accepted_at",
    "verified_at",
    "feed_body",
)

UPSERT = """
WITH d AS (
    -- A key can only be here twice if it was enqueued twice: keep one row, so one bad pair cannot block
    -- the batch (the feed's unique index would refuse the second "add" forever).
    SELECT DISTINCT ON (key) * FROM staging ORDER BY key, accepted_at
), s AS (
    -- A reversal that arrived before its invoice: the invoice is reversed, and not fed.
    SELECT d.key, d.channel, d.number, d.code, d.issue_date, d.amount_fen, d.seller_tax_id, d.seller_name,
           d.category, d.person, d.user_ref, d.device_ref, d.accepted_at, d.verified_at,
           CASE WHEN r.key IS NULL THEN d.status ELSE 'reversed' END AS status,
           CASE WHEN r.key IS NULL THEN d.reason ELSE 'reversed_by_red_invoice' END AS reason,
           CASE WHEN r.key IS NULL THEN d.feed_body END AS feed_body
    FROM d LEFT JOIN reversals r USING (key)
), new AS (
    INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name,
                          category, person, user_ref, device_ref, status, reason, accepted_at, updated_at)
    SELECT key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name, category,
           person, user_ref, device_ref, status, reason, accepted_at, coalesce(verified_at, now())
    FROM s
    ON CONFLICT (key) DO NOTHING
    RETURNING key
), events AS (
    INSERT INTO invoice_events (key, channel, status, reason, at)
    SELECT s.key, s.channel, e.status, e.reason, e.at
    FROM s JOIN new USING (key)
    CROSS JOIN LATERAL (VALUES
        (0, 'accepted', NULL, s.accepted_at),
        (1, 'verified', NULL, s.verified_at),
        (2, s.status, s.reason, coalesce(s.verified_at, now()))
    ) AS e(step, status, reason, at)
    WHERE e.at IS NOT NULL AND NOT (e.step = 2 AND s.status = 'verified')
    ORDER BY s.key, e.step
), fed AS (
    -- The feed entries of the new eligible invoices, their text made by core/feed.py and written here, inside
    -- the upsert: a statement of its own (core.feed.append) cost the sink 28% of its rows/s (25,400 against
    -- 34,700 in benchmarks/pipeline_bench.py --burst-only, same run).
    INSERT INTO feed_entries (key, kind, body, ready_at)
    SELECT s.key, 'add', s.feed_body, now() + make_interval(secs => $1)
    FROM s JOIN new USING (key) WHERE s.feed_body IS NOT NULL
)
SELECT count(*) FROM new
"""

DUPLICATES = """
INSERT INTO duplicate_uploads (key, channel, at) SELECT key, channel, at FROM staging_dups
ON CONFLICT DO NOTHING
"""


class Judged(msgspec.Struct, frozen=True):
    queued: Queued
    judgement: Judgement
    verified_at: dt.datetime | None


async def prepare(conn: asyncpg.Connection) -> None:
    """Per-connection setup (the pool's ``init``): the session's staging tables."""
    await conn.execute(STAGING_DDL)


async def write(pool: asyncpg.Pool, judged: Sequence[Judged], dups: Sequence[Duplicate], hold_s: float = 0.0) -> int:
    """Write one batch in one transaction; returns how many invoices were new. Eligible invoices are sealed
    into the feed no sooner than ``hold_s`` from now (the campaign's payout hold)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", locks.REVERSAL)
        new = 0
        if judged:
            await conn.copy_records_to_table("staging", records=[_row(j) for j in judged], columns=STAGING_COLUMNS)
            new = await conn.fetchval(UPSERT, float(hold_s))
        if dups:
            records = [(d.key, d.channel, from_ms(d.at_ms)) for d in dups]
            await conn.copy_records_to_table("staging_dups", records=records)
            await conn.execute(DUPLICATES)
    return int(new)


def _row(j: Judged) -> tuple[object, ...]:
    q = j.queued
    return (
        q.key,
        q.channel,
        q.number,
        q.code,
        dt.date.fromisoformat(q.issue_date),
        q.amount_fen,
        q.seller_tax_id,
        q.seller_name,
        q.category,
        q.person,
        q.user_ref,
        q.device_ref,
        j.judgement.status,
        j.judgement.reason,
        from_ms(q.accepted_at_ms),
        j.verified_at,
        feed.text(feed.of_queued("add", q)) if j.judgement.feeds else None,
    )
