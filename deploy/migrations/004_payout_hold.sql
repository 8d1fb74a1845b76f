-- The payout hold: an entry is sealed into the feed only once its ready_at has passed.
ALTER TABLE feed_entries ADD COLUMN ready_at timestamptz NOT NULL DEFAULT now();
DROP INDEX feed_entries_unsealed;
CREATE INDEX feed_entries_unsealed ON feed_entries (ready_at, id) WHERE batch_seq IS NULL;
