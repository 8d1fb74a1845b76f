-- The relay's look for pending records (workers/relay.py PENDING) asks, for each record of its batch, for the
-- first parked record of the same subject ahead of it. outbox_parked (destination, id) could only answer that by
-- reading every parked record of the destination with a smaller id and filtering on the subject: with 26 parked
-- in a 50,000-invoice burst (the national simulator refuses some invoices on purpose), 6,643 buffers a batch of
-- 200; it grows with every record parked and not sent again. This index answers it in one descent. A partial
-- index, as outbox_parked: it holds the parked records only, and costs the sink's inserts nothing.
CREATE INDEX outbox_parked_subject ON outbox (destination, subject, id) WHERE delivered_at IS NULL AND parked_at IS NOT NULL;
