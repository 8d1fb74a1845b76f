-- Who may reverse what (core/reversal.py): a channel's reversal takes effect at once on an invoice it submitted;
-- any other channel's is recorded and takes effect once the tax service confirms its red-letter invoice
-- (workers/confirm.py), so that a rival channel, or a leaked channel secret, cannot void another's winners.
-- One reversal per key and channel (two channels may each send one; the invoice's own channel's is never hidden
-- behind another's).
ALTER TABLE reversals DROP CONSTRAINT reversals_pkey;
ALTER TABLE reversals ADD PRIMARY KEY (key, channel);
ALTER TABLE reversals ADD COLUMN confirmed_at timestamptz;  -- the tax service holds the red-letter invoice
ALTER TABLE reversals ADD COLUMN refused_at timestamptz;  -- it does not, after its re-checks
ALTER TABLE reversals ADD COLUMN checks integer NOT NULL DEFAULT 0;  -- times the tax service was asked
ALTER TABLE reversals ADD COLUMN check_after timestamptz NOT NULL DEFAULT now();  -- when to ask it next
-- Reversals recorded before this rule took effect whoever sent them: they keep that effect.
UPDATE reversals SET confirmed_at = at;
-- The workers' scan for reversals to confirm.
CREATE INDEX reversals_unconfirmed ON reversals (check_after) WHERE confirmed_at IS NULL AND refused_at IS NULL;
