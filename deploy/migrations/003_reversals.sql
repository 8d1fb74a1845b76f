-- Red-letter reversals (红冲): one per invoice key, whenever it arrives (before or after the invoice).
CREATE TABLE reversals (
    key        text PRIMARY KEY,
    red_number text NOT NULL,
    reason     text NOT NULL,
    channel    text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
-- A key is voided in the feed at most once.
CREATE UNIQUE INDEX feed_entries_one_void ON feed_entries (key) WHERE kind = 'void';
