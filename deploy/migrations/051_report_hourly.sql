-- Hourly figures per channel (core/rollup.py), for the console's uploads per hour and its channels page: what
-- the uploads' tallies count (received, accepted, duplicate, rejected, rate_limited, capped) and red-letter
-- reversals, added to in the same transactions as report_daily, never recounted from the invoices.
-- hour: the start of the UTC hour of the upload (or reversal). No industry: the daily rollups keep that.
-- Hours before this migration have no rows.
CREATE TABLE report_hourly (
    hour       timestamptz NOT NULL,
    channel    text   NOT NULL,
    metric     text   NOT NULL,
    reason     text   NOT NULL,
    count      bigint NOT NULL,
    amount_fen bigint NOT NULL,
    PRIMARY KEY (hour, channel, metric, reason)
);
