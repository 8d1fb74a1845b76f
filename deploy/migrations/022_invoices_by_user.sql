-- A channel's list of its consumer's invoices (GET /v1/invoices?user=ID, gateway/listing.py): user_ref is the
-- keyed hash of the channel and its user id. A hash index: equality is all the list needs (a user's invoices
-- are few, bounded by the per-user rate limits, and sorted after the lookup), and its entries are 4-byte hash
-- codes, where a B-tree's hold the 64-character ref: half the sink's cost of a B-tree on (user_ref,
-- accepted_at, key), measured (benchmarks/channel_cost.py; 0.95 of main's rows/s against 0.91).
-- (On a large table, build it beforehand with CREATE INDEX CONCURRENTLY under this name: a migration runs in a
-- transaction, and a plain CREATE INDEX holds the sink's inserts while it builds.)
CREATE INDEX IF NOT EXISTS invoices_user ON invoices USING hash (user_ref);
