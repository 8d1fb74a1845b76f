-- Re-verification before payout (workers/reverify.py, campaign `reverify`).
--
-- feed_entries.reverify_at: an add entry that must be verified again with the tax service before it is sealed
-- (campaign reverify = "all" with a payout hold): when to try next (its hold's end, then after each failed try).
-- NULL once it passed, or when the campaign re-verifies nothing before sealing. The sealer takes only entries
-- without it, and each side reads its own partial index: entries waiting for the tax service never slow a seal.
-- Both indexes hold unsealed entries only (a few thousand), but building one reads the whole table: seconds at
-- 10 M entries, while the sealer waits.
ALTER TABLE feed_entries ADD COLUMN reverify_at timestamptz;
DROP INDEX feed_entries_unsealed;
CREATE INDEX feed_entries_unsealed ON feed_entries (ready_at, id) WHERE batch_seq IS NULL AND reverify_at IS NULL;
CREATE INDEX feed_entries_reverify ON feed_entries (reverify_at, id) WHERE batch_seq IS NULL AND reverify_at IS NOT NULL;

-- The last 6 digits of a legacy invoice's check code (校验码): the tax service needs them to verify a legacy
-- ordinary invoice again. NULL for digital invoices (数电), which need none.
ALTER TABLE invoices ADD COLUMN check_code text;

-- The change feed carries the prizes of a channel's invoices too (GET /v1/events): a prize's event names it.
-- Such rows are not status changes: an invoice's status and history read the rows without one.
ALTER TABLE invoice_events ADD COLUMN prize_id text;
