"""The PostgreSQL sink: one transaction per batch, COPY into staging, then an idempotent upsert.

``INSERT INTO invoice_keys .. ON CONFLICT DO NOTHING RETURNING key`` names the invoices that are new in this
transaction, and only those get their row in ``invoices`` (partitioned by month), status events, feed entries
(core/feed.py writes them), a line in the ledger of accepted keys, an outbox record for the national platform
(core/outbox.py) and their figures in the daily rollups (core/rollup.py): a batch delivered twice (a worker died
before XACK) writes nothing the second time. The requests' tallies that the batch's entries carry are rolled up
in the same transaction, each part once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg
import msgspec

from core import feed, locks, reversal
from core import rollup as rollups
from core.campaign import Risk
from core.contract import Duplicate, Queued, TallyPart
from core.rollup import UTC_ANY, Conn, Rollup
from core.times import from_ms
from workers import risk
from workers.judge import Judgement

STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS staging (
    key text, channel text, number text, code text, issue_date date, amount_fen bigint,
    seller_tax_id text, seller_name text, category text, person text, user_ref text, device_ref text,
    status text, reason text, accepted_at timestamptz, verified_at timestamptz, feed_body text, accepted_day date,
    verified_day date, industry text, check_code text
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
    "accepted_day",
    "verified_day",
    "industry",
    "check_code",
)

UPSERT = """
WITH d AS (
    -- A key can only be here twice if it was enqueued twice: keep one row, so one bad pair cannot block
    -- the batch (the feed's unique index would refuse the second "add" forever).
    SELECT DISTINCT ON (key) * FROM staging ORDER BY key, accepted_at
), s AS (
    -- A reversal that arrived before its invoice, and may take effect on it (core/reversal.py: sent by the
    -- invoice's channel, or confirmed by the tax service): the invoice is reversed, and not fed.
    SELECT d.key, d.channel, d.number, d.code, d.issue_date, d.amount_fen, d.seller_tax_id, d.seller_name,
           d.category, d.person, d.user_ref, d.device_ref, d.accepted_at, d.verified_at, d.accepted_day,
           d.verified_day, d.industry, d.check_code,
           CASE WHEN r.hit IS NULL THEN d.status ELSE 'reversed' END AS status,
           CASE WHEN r.hit IS NULL THEN d.reason ELSE 'reversed_by_red_invoice' END AS reason,
           CASE WHEN r.hit IS NULL THEN d.feed_body END AS feed_body
    FROM d LEFT JOIN LATERAL (
        SELECT true AS hit FROM reversals r WHERE r.key = d.key AND EFFECTIVE LIMIT 1
    ) r ON true
), new AS (
    -- The final guard of "exactly once": invoices is partitioned by month, so its own key cannot be unique
    -- across months; invoice_keys is not (deploy/migrations/030_partitions.sql).
    INSERT INTO invoice_keys (key, accepted_at) SELECT key, accepted_at FROM s
    ON CONFLICT (key) DO NOTHING
    RETURNING key
), stored AS (
    INSERT INTO invoices (key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name,
                          category, person, user_ref, device_ref, status, reason, accepted_at, updated_at, check_code)
    SELECT key, channel, number, code, issue_date, amount_fen, seller_tax_id, seller_name, category,
           person, user_ref, device_ref, status, reason, accepted_at, coalesce(verified_at, now()), check_code
    FROM s JOIN new USING (key)
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
    -- 34,700 in benchmarks/pipeline_bench.py --burst-only, same run). $3: verified again when the hold ends.
    INSERT INTO feed_entries (key, kind, body, ready_at, reverify_at)
    SELECT s.key, 'add', s.feed_body, r.ready_at, CASE WHEN $3 THEN r.ready_at END
    FROM s JOIN new USING (key), LATERAL (SELECT now() + make_interval(secs => $1) AS ready_at) AS r
    WHERE s.feed_body IS NOT NULL
), ledger AS (
    INSERT INTO accepted_ledger (day, key) SELECT s.accepted_day, s.key FROM s JOIN new USING (key)
    ON CONFLICT DO NOTHING
), outboxed AS (
    -- The national platform's record of each new invoice (core/outbox.py's "invoice" kind, with its facts),
    -- made here rather than in Python for the same reason as the feed entries: 30 ms per 1,000 invoices less.
    INSERT INTO outbox (destination, subject, kind, record)
    SELECT 'national', s.key, 'invoice', jsonb_build_object(
        'key', s.key, 'channel', s.channel,
        'events', jsonb_path_query_array(jsonb_build_array(
            jsonb_build_object('status', 'received', 'at', iso_ms(s.accepted_at)),
            CASE WHEN s.verified_at IS NOT NULL
                THEN jsonb_build_object('status', 'verified', 'at', iso_ms(s.verified_at)) END,
            CASE WHEN s.status IN ('ineligible', 'reversed') THEN jsonb_build_object(
                'status', s.status, 'at', iso_ms(coalesce(s.verified_at, now())), 'reason', s.reason) END
        ), '$[*] ? (@ != null)'),
        'invoice', jsonb_build_object(
            'person', s.person, 'seller_tax_id', s.seller_tax_id, 'amount_fen', s.amount_fen,
            'issue_date', s.issue_date, 'industry', s.industry, 'accepted_at', iso_ms(s.accepted_at)))
    FROM s JOIN new USING (key) ORDER BY s.key
), risk_days AS (
    -- The sellers' figures for the risk rules (workers/risk.py, migration 091), rows in key order: two batches
    -- of the same sellers wait for each other here, never in a cycle.
    INSERT INTO risk_seller_days AS r (seller_tax_id, day, invoices)
    SELECT s.seller_tax_id, (s.accepted_at AT TIME ZONE 'UTC')::date, count(*) FROM s JOIN new USING (key)
    GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (seller_tax_id, day) DO UPDATE SET invoices = r.invoices + excluded.invoices
), risk_seen AS (
    -- The batch's own newest persons and high-value instants of each seller, merged with those kept (a function
    -- call a seller only for the sellers already there).
    INSERT INTO risk_sellers AS r (seller_tax_id, persons, seen_at, high_at)
    SELECT p.seller_tax_id, p.persons[:$4], p.seen_at[:$4], coalesce(h.high_at[:$6], '{}')
    FROM (
        SELECT seller_tax_id, array_agg(person ORDER BY at DESC, person) AS persons,
               array_agg(at ORDER BY at DESC, person) AS seen_at
        FROM (SELECT s.seller_tax_id, s.person, max(s.accepted_at) AS at FROM s JOIN new USING (key) GROUP BY 1, 2) x
        GROUP BY seller_tax_id
    ) AS p LEFT JOIN (
        SELECT s.seller_tax_id, array_agg(s.accepted_at ORDER BY s.accepted_at DESC) AS high_at
        FROM s JOIN new USING (key) WHERE s.amount_fen >= $5 GROUP BY 1
    ) AS h USING (seller_tax_id)
    ORDER BY p.seller_tax_id
    ON CONFLICT (seller_tax_id) DO UPDATE SET
        (persons, seen_at) = (
            SELECT * FROM risk_newest_persons(r.persons, r.seen_at, excluded.persons, excluded.seen_at, $4)
        ),
        high_at = risk_newest_instants(r.high_at, excluded.high_at, $6)
), counted AS (
    -- The daily figures of the new invoices, on the day of their verification ("held" is counted, not sent).
    SELECT day, channel, industry, metric, reason, count(*) AS n, sum(amount)::bigint AS amount FROM (
        SELECT s.verified_day AS day, s.channel, s.industry, 'verified' AS metric, '' AS reason, 0 AS amount
        FROM s JOIN new USING (key) WHERE s.verified_at IS NOT NULL
        UNION ALL
        SELECT coalesce(s.verified_day, (now() AT TIME ZONE $2)::date), s.channel, s.industry, s.status, s.reason,
               CASE WHEN s.status = 'reversed' THEN s.amount_fen ELSE 0 END
        FROM s JOIN new USING (key) WHERE s.status IN ('ineligible', 'reversed', 'held')
    ) AS figures GROUP BY 1, 2, 3, 4, 5
)
SELECT (SELECT count(*) FROM new) AS new, c.* FROM (VALUES (1)) AS one LEFT JOIN counted c ON true
"""

UPSERT = UPSERT.replace("EFFECTIVE", reversal.EFFECTIVE.format(owner="d.channel"))

DEFAULT_RISK = Risk()

DUPLICATES = """
INSERT INTO duplicate_uploads (key, channel, at) SELECT key, channel, at FROM staging_dups
ON CONFLICT DO NOTHING
"""


class Judged(msgspec.Struct, frozen=True):
    queued: Queued
    judgement: Judgement
    verified_at: dt.datetime | None


async def committed(pool: asyncpg.Pool, keys: list[str]) -> set[str]:
    """Which of ``keys`` were committed before (``invoice_keys``): a batch delivered again after its commit
    (a crash before the acknowledgement, entries added again) is not verified twice, though the verified
    answers go once their invoices are committed (dedup/inflight.py's Releaser)."""
    if not keys:
        return set()
    return {r["key"] for r in await pool.fetch("SELECT key FROM invoice_keys WHERE key = ANY($1::text[])", keys)}


async def prepare(conn: asyncpg.Connection) -> None:
    """Per-connection setup (the pool's ``init``): the session's staging tables."""
    await conn.execute(STAGING_DDL)


async def write(
    pool: asyncpg.Pool,
    judged: Sequence[Judged],
    dups: Sequence[Duplicate],
    hold_s: float = 0.0,
    tallies: Sequence[TallyPart] = (),
    rollup: Rollup = UTC_ANY,
    reverify: bool = False,
    rules: Risk = DEFAULT_RISK,
) -> int:
    """Write one batch in one transaction; returns how many invoices were new. Eligible invoices are sealed
    into the feed no sooner than ``hold_s`` from now (the campaign's payout hold), and with ``reverify`` only
    once the tax service has confirmed them again then (workers/reverify.py). ``rollup``: the campaign's days
    and industries, for the daily figures of the new invoices and of ``tallies``; ``rules``: the campaign's risk
    rules, for the sellers' figures they read (workers/risk.py)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", locks.REVERSAL)
        deltas = rollups.Deltas()
        new = 0
        if judged:
            staged = [_row(j, rollup) for j in judged]
            await conn.copy_records_to_table("staging", records=staged, columns=STAGING_COLUMNS)
            rows = await conn.fetch(
                UPSERT,
                float(hold_s),
                rollup.zone.key,
                reverify,
                risk.persons_kept(rules),
                rules.high_value_fen,
                risk.high_kept(rules),
            )
            new = rows[0]["new"]
            for r in rows:
                if r["metric"] is not None:
                    deltas.add(r["day"], r["channel"], r["industry"], r["metric"], r["reason"], r["n"], r["amount"])
        if dups:
            records = [(d.key, d.channel, from_ms(d.at_ms)) for d in dups]
            await conn.copy_records_to_table("staging_dups", records=records)
            await conn.execute(DUPLICATES)
        await _tallied(conn, tallies, deltas, rollup)
        await rollups.apply(conn, deltas)
    return int(new)


async def _tallied(conn: Conn, tallies: Sequence[TallyPart], deltas: rollups.Deltas, rollup: Rollup) -> None:
    """Add the requests' tallies to ``deltas``, each part only the first time it is seen (on its upload's day,
    and in its upload's hour)."""
    if not tallies:
        return
    days = {(t.request, t.part): rollup.day_of_ms(t.at_ms) for t in tallies}
    fresh = await rollups.new_tallies(conn, [(r, p, d) for (r, p), d in days.items()])
    for t in tallies:
        if (t.request, t.part) in fresh:
            fresh.discard((t.request, t.part))  # a part twice in one batch counts once too
            hour = rollup.hour_of_ms(t.at_ms)
            for metric, reason, industry, count, amount in t.rows:
                deltas.add(days[t.request, t.part], t.channel, industry, metric, reason, count, amount)
                deltas.add_hour(hour, t.channel, metric, reason, count, amount)


def _row(j: Judged, rollup: Rollup) -> tuple[object, ...]:
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
        rollup.day_of_ms(q.accepted_at_ms),
        None if j.verified_at is None else rollup.day(j.verified_at),
        rollup.industry(q.category),
        q.check_code or None,  # legacy invoices: what their re-verification needs
    )
