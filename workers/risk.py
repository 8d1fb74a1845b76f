"""Risk rules on a batch's invoices, applied to those found eligible: a hit is "held" for review with its reason
code, never dropped (an admin releases or rejects it: ``/v1/admin/held``). They need only what was uploaded, so
the workers run them while the tax service answers.

One query per batch decides them all, counting over each device's and seller's newest ``SCAN`` (2,000)
invoices of the last ``window_days`` together with the batch's own (a ticket farm's invoices often arrive in
one batch), so a batch costs the same however big a seller grows. The thresholds are the campaign's ``[risk]``
section (core/campaign.py); a held invoice keeps its cap slot until a review decides.

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

# Each device's and seller's newest invoices only, at most this many: enough for every threshold, and a
# batch's cost stays flat however big a seller grows.
SCAN = 2000

RULES = """
WITH c AS (
    SELECT * FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::timestamptz[]
    ) AS c(key, person, user_ref, device_ref, seller_tax_id, amount_fen, accepted_at)
), recent AS (
    -- An index scan per device and per seller of the batch (migration 005), newest first and capped, never
    -- a scan of the whole table (LATERAL with LIMIT keeps the planner from hashing it while its statistics
    -- are young); then the batch itself, which is not committed yet.
    SELECT i.* FROM (SELECT DISTINCT device_ref FROM c) d CROSS JOIN LATERAL (
        SELECT key, person, device_ref, seller_tax_id, amount_fen, accepted_at FROM invoices
        WHERE device_ref = d.device_ref AND accepted_at > now() - make_interval(secs => $8)
        ORDER BY accepted_at DESC LIMIT $17
    ) i
    UNION
    SELECT i.* FROM (SELECT DISTINCT seller_tax_id FROM c) s CROSS JOIN LATERAL (
        SELECT key, person, device_ref, seller_tax_id, amount_fen, accepted_at FROM invoices
        WHERE seller_tax_id = s.seller_tax_id AND accepted_at > now() - make_interval(secs => $8)
        ORDER BY accepted_at DESC LIMIT $17
    ) i
    UNION
    SELECT key, person, device_ref, seller_tax_id, amount_fen, accepted_at FROM c
), devices AS (
    SELECT device_ref, count(DISTINCT person) AS persons FROM recent GROUP BY device_ref
), sellers AS (
    SELECT seller_tax_id, count(*) AS invoices, count(DISTINCT person) AS persons,
           count(*) FILTER (WHERE amount_fen >= $12 AND accepted_at > now() - make_interval(secs => $14)) AS high
    FROM recent GROUP BY seller_tax_id
), reversed AS (
    -- Reversed however it was learnt: a red-letter reversal, or the tax service's answer (migration 006).
    SELECT seller_tax_id, count(*) AS n FROM invoices
    WHERE status = 'reversed' AND seller_tax_id IN (SELECT seller_tax_id FROM c)
      AND updated_at > now() - make_interval(secs => $8)
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
        max(SCAN, risk.seller_min_invoices),
    )
    for row in rows:
        if row["reason"] is not None:
            held.setdefault(row["key"], row["reason"])
    return held
