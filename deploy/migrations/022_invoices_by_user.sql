-- A channel's list of its consumer's invoices (GET /v1/invoices?user=ID, gateway/listing.py): user_ref is the
-- keyed hash of the channel and its user id, so one index range per user, in acceptance order.
-- (On a large table, build it beforehand with CREATE INDEX CONCURRENTLY under this name: a migration runs in a
-- transaction, and a plain CREATE INDEX holds the sink's inserts while it builds.)
CREATE INDEX IF NOT EXISTS invoices_user ON invoices (user_ref, accepted_at, key);
