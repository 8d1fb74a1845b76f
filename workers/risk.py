"""Risk rules on a batch's invoices, applied to those found eligible: a hit is "held" for review with its reason
code, never dropped (an admin releases or rejects it: ``/v1/admin/held``). They need only what was uploaded, so
the workers run them while the tax service answers.

One query per batch decides them all, counting together with the batch's own invoices (a ticket farm's
invoices often arrive in one batch), so a batch costs the same however big a seller grows:

- a device's: over its newest ``SCAN`` (2,000) invoices of the last ``window_days`` (a device has few);
- a seller's: from its figures the sink keeps up to date in the transaction that commits its invoices
  (``risk_sellers`` and ``risk_seller_days``, migration 091): its invoices by day, the newest persons its
  invoices went to (``PERSONS_KEPT``, more than ``seller_max_persons``: the rule needs no more) and when its
  newest high-value invoices came (``high_value_burst`` + 1). Reading a seller's newest 2,000 invoices
  instead took 5 to 11 s a batch in a 10 M burst (benchmarks/README.md); ``benchmarks/risk_cost.py``
  measures both. The window's first day counts whole (days are UTC).

The thresholds are the campaign's ``[risk]`` section (core/campaign.py); a held invoice keeps its cap slot until
a review decides.

- ``blacklisted_person``, ``blacklisted_device``, ``blacklisted_seller``: in the blacklist (黄牛库), table
  ``blacklist``; a person blacklisted as a channel's user stays caught when an ID number is added;
- ``device_many_persons``: one device used by more than ``device_max_persons`` persons;
- ``seller_few_persons``: a seller with at least ``seller_min_invoices`` invoices going to at most
  ``seller_max_persons`` persons;
- ``seller_high_value_burst``: a high-value invoice (at least ``high_value_fen``) from a seller with more than
  ``high_value_burst`` of them within ``high_value_window_s``;
- ``seller_reversal_spike``: a seller with more than ``seller_reversals`` reversed invoices in the window,
  found reversed by a red-letter reversal or by the tax service (mass 红冲);
- ``upload_far_from_city``: uploaded more than ``max_distance_km`` from the campaign's centre (decided without
  the database; only the distance leaves the gateway, never the location).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import asyncpg

from core.campaign import Risk
from core.contract import Queued

# Each device's newest invoices only, at most this many: enough for its threshold, and a batch's cost stays flat
# however much a device is used.
SCAN = 2000
# The newest persons kept for each seller (more if the campaign's seller_max_persons needs them): the rule asks
# whether more than seller_max_persons persons were seen in the window, and if the newest this many all were, so
# were more than it.
PERSONS_KEPT = 16

RULES = """
WITH c AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::timestamptz[]
    ) AS c(key, person, user_ref, device_ref, seller_tax_id, amount_fen, accepted_at)
), recent AS (
    -- An index scan per device of the batch (migration 005), newest first and capped, never a scan of the
    -- whole table (LATERAL with LIMIT keeps the planner from hashing it while its statistics are young); then
    -- the batch itself, which is not committed yet.
    SELECT i.person, i.device_ref FROM (SELECT DISTINCT device_ref FROM c) d CROSS JOIN LATERAL (
        SELECT person, device_ref FROM invoices
        WHERE device_ref = d.device_ref AND accepted_at > now() - make_interval(secs => $8)
        ORDER BY accepted_at DESC LIMIT $17
    ) i
    UNION ALL
    SELECT person, device_ref FROM c
), devices AS (
    SELECT device_ref, count(DISTINCT person) AS persons FROM recent GROUP BY device_ref
), batch_sellers AS (
    SELECT seller_tax_id, count(*) AS invoices, array_agg(person) AS persons,
           count(*) FILTER (WHERE amount_fen >= $12 AND accepted_at > now() - make_interval(secs => $14)) AS high
    FROM c GROUP BY seller_tax_id
), sellers AS MATERIALIZED (
    -- Each seller's kept figures (a row by primary key, and its days in the window), with the batch's own:
    -- worked out once a seller (inlined, the planner worked them out once an invoice, 3 times slower).
    SELECT b.seller_tax_id,
           b.invoices + coalesce((
               SELECT sum(n.invoices) FROM risk_seller_days n
               WHERE n.seller_tax_id = b.seller_tax_id
                 AND n.day >= ((now() - make_interval(secs => $8)) AT TIME ZONE 'UTC')::date
           ), 0) AS invoices,
           (SELECT count(DISTINCT x.person) FROM (
               SELECT unnest(b.persons)
               UNION ALL
               SELECT u.person FROM unnest(r.persons, r.seen_at) AS u(person, at)
               WHERE u.at > now() - make_interval(secs => $8)
           ) AS x(person)) AS persons,
           b.high + (
               SELECT count(*) FROM unnest(r.high_at) AS h(at) WHERE h.at > now() - make_interval(secs => $14)
           ) AS high
    FROM batch_sellers b LEFT JOIN risk_sellers r USING (seller_tax_id)
), reversed AS (
    -- Reversed however it was learnt: a red-letter reversal, or the tax service's answer (reversed_at:
    -- migrations 006, 093).
    SELECT seller_tax_id, count(*) AS n FROM invoices
    WHERE reversed_at > now() - make_interval(secs => $8) AND seller_tax_id IN (SELECT seller_tax_id FROM c)
    GROUP BY seller_tax_id
)
SELECT c.key, CASE
    -- A person blacklisted by ID number, or by a channel's user id (which an ID number given later does not
    -- hide: the user's own hash travels too).
    WHEN $16 AND EXISTS (SELECT 1 FROM blacklist b WHERE b.kind = 'person' AND b.value IN (c.person, c.user_ref))
        THEN 'blacklisted_person'
    WHEN $16 AND EXISTS (SELECT 1 FROM blacklist b WHERE b.kind = 'device' AND b.value = c.device_ref)
        THEN 'blacklisted_device'
    WHEN $16 AND EXISTS (SELECT 1 FROM blacklist b WHERE b.kind = 'seller' AND b.value = c.seller_tax_id)
        THEN 'blacklisted_seller'
    WHEN $9 > 0 AND d.persons > $9 THEN 'device_many_persons'
    WHEN $10 > 0 AND s.invoices >= $10 AND s.persons <= $11 THEN 'seller_few_persons'
    WHEN $13 > 0 AND c.amount_fen >= $12 AND s.high > $13 THEN 'seller_high_value_burst'
    WHEN $15 > 0 AND coalesce(rv.n, 0) > $15 THEN 'seller_reversal_spike'
END AS reason
FROM c JOIN devices d USING (device_ref) JOIN sellers s USING (seller_tax_id)
LEFT JOIN reversed rv USING (seller_tax_id)
"""


async def holds(conn: asyncpg.Connection | asyncpg.Pool, invoices: Sequence[Queued], risk: Risk) -> dict[str, str]:
    """The invoices among ``invoices`` to hold if found eligible, by key, with their reason."""
    if not invoices:
        return {}
    held = {
        q.key: "upload_far_from_city"
        for q in invoices
        if risk.max_distance_km > 0 and q.distance_km > risk.max_distance_km
    }
    rows = await conn.fetch(
        RULES,
        [q.key for q in invoices],
        [q.person for q in invoices],
        [q.user_ref for q in invoices],
        [q.device_ref for q in invoices],
        [q.seller_tax_id for q in invoices],
        [q.amount_fen for q in invoices],
        [dt.datetime.fromtimestamp(q.accepted_at_ms / 1000, dt.UTC) for q in invoices],
        risk.window_days * 86400.0,
        risk.device_max_persons,
        risk.seller_min_invoices,
        risk.seller_max_persons,
        risk.high_value_fen,
        risk.high_value_burst,
        risk.high_value_window_s,
        risk.seller_reversals,
        risk.blacklist,
        SCAN,
    )
    for row in rows:
        if row["reason"] is not None:
            held.setdefault(row["key"], row["reason"])
    return held


def persons_kept(risk: Risk) -> int:
    """How many of each seller's newest persons the sink keeps (``PERSONS_KEPT``, or more for the campaign)."""
    return max(PERSONS_KEPT, risk.seller_max_persons + 1)


def high_kept(risk: Risk) -> int:
    """How many of each seller's newest high-value invoices the sink keeps: one more than the burst allowed."""
    return risk.high_value_burst + 1


async def rebuild(conn: asyncpg.Connection | asyncpg.Pool, risk: Risk) -> None:
    """Make the sellers' kept figures again from the invoices of the window (migration 091's function)."""
    await conn.execute(
        "SELECT risk_sellers_rebuild(make_interval(secs => $1), $2, $3, $4)",
        risk.window_days * 86400.0,
        persons_kept(risk),
        risk.high_value_fen,
        high_kept(risk),
    )


async def prune(conn: asyncpg.Connection | asyncpg.Pool, risk: Risk) -> int:
    """Remove the sellers' days before the window's first day (which counts whole); returns how many went."""
    gone = await conn.execute(
        "DELETE FROM risk_seller_days WHERE day < ((now() - make_interval(secs => $1)) AT TIME ZONE 'UTC')::date",
        risk.window_days * 86400.0,
    )
    return int(gone.split()[-1])
