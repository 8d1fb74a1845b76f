-- The change feed of a channel (GET /v1/events, gateway/events.py) reads invoice_events, which every status
-- change already writes.
--
-- batch_seq: the feed batch of an "eligible" event (written by the sealer).
-- tx: the writing transaction. Ids are handed out when rows are inserted, not when they commit, so a reader
-- paging by id alone could pass an id whose transaction commits later, and miss it for good. The feed pages
-- by (tx, id) instead and serves only events of transactions older than every one still running (the
-- snapshot's xmin): no later commit can land behind its cursor. A later change of an invoice is written by a
-- transaction that saw the earlier one committed, so it has a larger tx: each invoice's events stay in order.
-- The existing rows are all of this migration's transaction (a stable default: no rewrite of the table).
-- On a large table, add the columns and build the index CONCURRENTLY by hand first: each step here then
-- finds it done (deploy/README.md).
ALTER TABLE invoice_events ADD COLUMN IF NOT EXISTS batch_seq bigint;
ALTER TABLE invoice_events ADD COLUMN IF NOT EXISTS tx xid8 NOT NULL DEFAULT pg_current_xact_id();
-- The feed's scan: one channel's events after a cursor, without the "accepted" ones (the 202 told those).
CREATE INDEX IF NOT EXISTS invoice_events_channel ON invoice_events (channel, tx, id) WHERE status <> 'accepted';

-- Wakes the gateways' long polls (gateway/feedwatch.py): once per statement, not per row.
CREATE OR REPLACE FUNCTION notify_invoice_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('invoice_events', '');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER invoice_events_notify AFTER INSERT ON invoice_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_invoice_events();
