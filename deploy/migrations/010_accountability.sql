-- Accountable to the city: the auditor role, the daily rollups behind the reports, the ledger of accepted keys
-- that reconciliation starts from, the closed days, and the outbox that relays deliver to the national
-- monitoring platform (and, later, to channels' webhooks).

-- A read-only caller of reports and reconciliation.
ALTER TABLE api_clients DROP CONSTRAINT api_clients_role_check;
ALTER TABLE api_clients ADD CONSTRAINT api_clients_role_check
    CHECK (role IN ('channel', 'draw', 'admin', 'auditor'));

-- Daily figures (core/rollup.py), added to in the transaction that makes each change, never recounted from the
-- invoices. day: in the campaign's time zone. Additive metrics are kept per channel and industry (summed when
-- read); the distinct counts ("merchants", "consumers") per scope, '' meaning every channel or every industry.
CREATE TABLE report_daily (
    day        date   NOT NULL,
    channel    text   NOT NULL,
    industry   text   NOT NULL,
    metric     text   NOT NULL,
    reason     text   NOT NULL,
    count      bigint NOT NULL,
    amount_fen bigint NOT NULL,
    PRIMARY KEY (day, channel, industry, metric, reason)
);

-- The distinct sellers (kind 'm') and persons (kind 'p') among each day's eligible invoices, per scope, by a
-- 64-bit hash: a value new to its scope adds one to that scope's count in report_daily.
CREATE TABLE report_distinct (
    day      date   NOT NULL,
    kind     text   NOT NULL CHECK (kind IN ('m', 'p')),
    channel  text   NOT NULL,
    industry text   NOT NULL,
    value    bigint NOT NULL,
    PRIMARY KEY (day, kind, channel, industry, value)
);

-- The gateway's tallies (core/contract.py) already added to report_daily: a stream entry delivered twice, or
-- written twice by a retried script call, is counted once. Pruned once its day is closed.
CREATE TABLE tally_parts (
    request text NOT NULL,
    part    text NOT NULL,
    day     date NOT NULL,
    PRIMARY KEY (request, part)
);

-- Every key the sink committed, by the day it was accepted: what reconciliation checks the invoices against,
-- so that a row deleted from invoices is still named.
CREATE TABLE accepted_ledger (
    day date NOT NULL,
    key text NOT NULL,
    PRIMARY KEY (day, key)
);

-- Closed days: the report as it was written to files and sent.
CREATE TABLE report_days (
    day       date PRIMARY KEY,
    closed_at timestamptz NOT NULL,
    report    jsonb NOT NULL
);

-- Records of changes for relays (core/outbox.py), written in the transaction that makes the change; one row per
-- destination. Delivered, or parked with the reason the destination gave (parked_after: the parked record of the
-- same subject it waits behind), never dropped.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    destination   text NOT NULL,
    subject       text NOT NULL,
    kind          text NOT NULL,
    record        jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    delivered_at  timestamptz,
    parked_at     timestamptz,
    parked_reason text,
    parked_after  bigint
);
CREATE INDEX outbox_pending ON outbox (destination, id) WHERE delivered_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked ON outbox (destination, id) WHERE delivered_at IS NULL AND parked_at IS NOT NULL;
CREATE INDEX outbox_subject ON outbox (subject, id);
CREATE INDEX outbox_created ON outbox USING brin (created_at);

-- A time as the API and the feed write them (core/times.py): UTC, milliseconds, 2026-03-01T20:00:01.250Z. The
-- sink builds its outbox records with it inside its upsert.
CREATE FUNCTION iso_ms(at timestamptz) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Reconciliation finds a day's batches by their seal time.
CREATE INDEX feed_batches_sealed_at ON feed_batches (sealed_at);
