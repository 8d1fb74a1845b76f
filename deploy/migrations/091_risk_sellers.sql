-- The risk rules' figures of each seller, kept up to date by the sink in the transaction that commits its invoices
-- (workers/sink.py), so that a batch reads a row a seller instead of its newest 2,000 invoices (workers/risk.py):
--   risk_sellers: the newest persons to whom the seller's invoices went (each once, with when it was last seen,
--     newest first, at most workers/risk.py PERSONS_KEPT), and when its newest high-value invoices were accepted
--     (newest first, at most the campaign's high_value_burst + 1);
--   risk_seller_days: how many invoices the seller had each day (UTC); days older than the longest window are
--     removed by the workers (core/partitions.py's hourly round).
-- Both are derived from invoices: risk_sellers_rebuild() makes them again from it.
CREATE TABLE risk_sellers (
    seller_tax_id text PRIMARY KEY,
    persons       text[] NOT NULL,
    seen_at       timestamptz[] NOT NULL,
    high_at       timestamptz[] NOT NULL
);

CREATE TABLE risk_seller_days (
    seller_tax_id text NOT NULL,
    day           date NOT NULL,
    invoices      integer NOT NULL,
    PRIMARY KEY (seller_tax_id, day)
);

-- The newest ``kept`` of two lists of (person, last seen), each person once at its latest.
CREATE FUNCTION risk_newest_persons(
    a_persons text[], a_seen timestamptz[], b_persons text[], b_seen timestamptz[], kept integer,
    OUT persons text[], OUT seen_at timestamptz[]
) LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(person ORDER BY at DESC, person), '{}'),
           coalesce(array_agg(at ORDER BY at DESC, person), '{}')
    FROM (
        SELECT person, max(at) AS at FROM (
            SELECT * FROM unnest(a_persons, a_seen) UNION ALL SELECT * FROM unnest(b_persons, b_seen)
        ) AS u(person, at) GROUP BY person ORDER BY max(at) DESC, person LIMIT kept
    ) AS newest
$$;

-- The newest ``kept`` of two lists of instants (an instant twice counts twice).
CREATE FUNCTION risk_newest_instants(a timestamptz[], b timestamptz[], kept integer) RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(at ORDER BY at DESC), '{}')
    FROM (SELECT at FROM unnest(a || b) AS u(at) ORDER BY at DESC LIMIT kept) AS newest
$$;

-- Make both tables again from the invoices accepted in the last ``span``.
CREATE FUNCTION risk_sellers_rebuild(span interval, persons_kept integer, high_fen bigint, high_kept integer)
RETURNS void LANGUAGE sql AS $$
    TRUNCATE risk_sellers, risk_seller_days;
    INSERT INTO risk_seller_days (seller_tax_id, day, invoices)
    SELECT seller_tax_id, (accepted_at AT TIME ZONE 'UTC')::date, count(*) FROM invoices
    WHERE accepted_at > now() - span GROUP BY 1, 2;
    INSERT INTO risk_sellers (seller_tax_id, persons, seen_at, high_at)
    SELECT s.seller_tax_id, p.persons, p.seen_at, coalesce(h.high_at, '{}')
    FROM (SELECT DISTINCT seller_tax_id FROM risk_seller_days) AS s
    CROSS JOIN LATERAL (
        SELECT array_agg(person ORDER BY at DESC, person) AS persons, array_agg(at ORDER BY at DESC, person) AS seen_at
        FROM (
            SELECT person, max(accepted_at) AS at FROM invoices
            WHERE seller_tax_id = s.seller_tax_id AND accepted_at > now() - span
            GROUP BY person ORDER BY max(accepted_at) DESC, person LIMIT persons_kept
        ) AS newest
    ) AS p
    LEFT JOIN LATERAL (
        SELECT array_agg(accepted_at ORDER BY accepted_at DESC) AS high_at FROM (
            SELECT accepted_at FROM invoices
            WHERE seller_tax_id = s.seller_tax_id AND amount_fen >= high_fen AND accepted_at > now() - span
            ORDER BY accepted_at DESC LIMIT high_kept
        ) AS newest
    ) AS h ON true;
$$;

-- The campaigns' defaults (core/campaign.py Risk: 30 days, 500,000 fen, 20 + 1): a campaign with other
-- high-value thresholds counts its bursts right again one high_value_window_s (an hour) after the upgrade.
SELECT risk_sellers_rebuild(interval '92 days', 16, 500000, 21);
