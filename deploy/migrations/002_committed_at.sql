-- When each invoice row was committed: `dedup rebuild` re-reads the keys committed while it ran.
ALTER TABLE invoices ADD COLUMN committed_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX invoices_committed_at ON invoices (committed_at);
